"""The supervisor with real subprocesses running plain commands (the `raw` provider)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import psutil
import pytest

from overmind_mcp.errors import Conflict, InvalidRequest, NotFound, SpawnError
from overmind_mcp.models import SpawnRequest
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor
from tests.conftest import assert_no_leftovers

pytestmark = pytest.mark.anyio

PY = sys.executable


def cmd(*argv: str, **options: object) -> SpawnRequest:
    return SpawnRequest(command=list(argv), **options)


def python(code: str, **options: object) -> SpawnRequest:
    return SpawnRequest(command=[PY, "-c", code], **options)


# A child that says it is ready, then refuses SIGINT and SIGTERM: only SIGKILL ends it.
STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(600)\n"
)


async def until_output(supervisor: Supervisor, ref: str, text: str, within: float = 10) -> None:
    """Wait (on events, not sleeps) until a mission has printed `text`."""
    with anyio.fail_after(within):
        while True:
            page = await supervisor.logs(ref)
            if any(text in line for line in page.lines):
                return
            await supervisor.wait([ref], timeout_s=0.2)


async def until_gone(pid: int, within: float = 5) -> None:
    """Wait until a process (not necessarily our child) has terminated: its pidfd turns readable."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        with anyio.fail_after(within):
            await anyio.wait_readable(pidfd)
    finally:
        os.close(pidfd)


async def test_exit_codes_decide_status(supervisor: Supervisor) -> None:
    ok = await supervisor.spawn(cmd("sh", "-c", "echo hello"))
    bad = await supervisor.spawn(cmd("sh", "-c", "echo oops >&2; exit 3"))
    done = await supervisor.wait([ok.id, bad.id], timeout_s=10)
    assert not done.timed_out
    results = {result.id: result for result in done.done}
    assert results[ok.id].status == "succeeded"
    assert results[ok.id].exit_code == 0
    assert results[ok.id].text == "hello"
    assert results[bad.id].status == "failed"
    assert results[bad.id].exit_code == 3
    assert results[bad.id].errors == ["oops"]


async def test_wait_any_returns_first_and_times_out_harmlessly(supervisor: Supervisor) -> None:
    quick = await supervisor.spawn(cmd("true", name="quick"))
    slow = await supervisor.spawn(cmd("sleep", "30", name="slow"))
    answer = await supervisor.wait(["quick", "slow"], mode="any", timeout_s=10)
    assert [result.id for result in answer.done] == [quick.id]
    assert [summary.id for summary in answer.pending] == [slow.id]
    assert not answer.timed_out

    started = time.monotonic()
    answer = await supervisor.wait(["slow"], timeout_s=0.3)
    assert answer.timed_out
    assert 0.25 < time.monotonic() - started < 2
    assert answer.pending[0].status == "running"
    # A timed-out wait leaves the mission alone.
    assert (await supervisor.result("slow")).status == "running"


async def test_cancelled_wait_does_not_touch_the_mission(supervisor: Supervisor) -> None:
    await supervisor.spawn(cmd("sleep", "30", name="sleeper"))
    with anyio.move_on_after(0.2):
        await supervisor.wait(["sleeper"], timeout_s=30)
    result = await supervisor.result("sleeper")
    assert result.status == "running"
    assert result.progress is not None


async def test_wait_wakes_on_exit_without_polling(supervisor: Supervisor) -> None:
    mission = await supervisor.spawn(python("import time; time.sleep(0.3)"))
    started = time.monotonic()
    answer = await supervisor.wait([mission.id], timeout_s=20)
    # Woken by the exit itself: nowhere near the 10 s heartbeat.
    assert time.monotonic() - started < 3
    assert answer.done[0].status == "succeeded"


async def test_graceful_kill_stops_with_sigint(supervisor: Supervisor) -> None:
    mission = await supervisor.spawn(python("import time; print('ready', flush=True); time.sleep(600)"))
    await until_output(supervisor, mission.id, "ready")
    outcome = await supervisor.kill([mission.id])
    assert [(o.id, o.status, o.how) for o in outcome.ended] == [(mission.id, "stopped", "SIGINT")]
    result = await supervisor.result(mission.id)
    assert result.status == "stopped"
    assert not psutil.pid_exists(mission.pid or 0) or psutil.Process(mission.pid).status() == psutil.STATUS_ZOMBIE


async def test_kill_escalates_to_sigkill_for_a_stubborn_child(supervisor: Supervisor) -> None:
    mission = await supervisor.spawn(python(STUBBORN))
    await until_output(supervisor, mission.id, "ready")
    started = time.monotonic()
    outcome = await supervisor.kill([mission.id])
    elapsed = time.monotonic() - started
    assert outcome.ended[0].how == "SIGKILL"
    assert outcome.ended[0].status == "killed"
    # Two grace periods of 1 s (SIGINT, SIGTERM), then SIGKILL.
    assert 1.9 < elapsed < 5


async def test_force_kill_is_immediate(supervisor: Supervisor) -> None:
    mission = await supervisor.spawn(python(STUBBORN))
    await until_output(supervisor, mission.id, "ready")
    started = time.monotonic()
    outcome = await supervisor.kill([mission.id], force=True)
    assert time.monotonic() - started < 1
    assert (outcome.ended[0].status, outcome.ended[0].how) == ("killed", "SIGKILL")


async def test_grandchild_that_ignores_sigterm_dies_with_its_group(supervisor: Supervisor) -> None:
    # The child starts a grandchild that ignores every gentle signal, then waits on it.
    code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {STUBBORN!r}])\n"
        "print('grandchild', child.pid, flush=True)\n"
        "child.wait()\n"
    )
    mission = await supervisor.spawn(python(code))
    await until_output(supervisor, mission.id, "ready")
    page = await supervisor.logs(mission.id)
    grandchild = int(next(line for line in page.lines if line.startswith("grandchild")).split()[1])
    assert psutil.pid_exists(grandchild)
    outcome = await supervisor.kill([mission.id])
    assert outcome.ended[0].status in {"stopped", "killed"}
    await until_gone(grandchild)


async def test_leftovers_die_when_the_leader_exits(supervisor: Supervisor) -> None:
    # The leader exits at once, leaving a background grandchild behind in its group.
    code = (
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {STUBBORN!r}], stdout=subprocess.PIPE)\n"
        "child.stdout.readline()\n"
        "print('grandchild', child.pid, flush=True)\n"
    )
    mission = await supervisor.spawn(python(code))
    answer = await supervisor.wait([mission.id], timeout_s=10)
    assert answer.done[0].status == "succeeded"
    grandchild = int(answer.done[0].text.split()[1])
    await until_gone(grandchild)


async def test_cascade_kills_children_before_parents(supervisor: Supervisor) -> None:
    root = await supervisor.spawn(cmd("sleep", "600", name="root"))
    middle = await supervisor.spawn(cmd("sleep", "600", name="middle", parent="root"))
    leaf = await supervisor.spawn(cmd("sleep", "600", name="leaf", parent="middle"))
    other = await supervisor.spawn(cmd("sleep", "600", name="other"))
    outcome = await supervisor.kill(["root"])
    assert [o.id for o in outcome.ended] == [leaf.id, middle.id, root.id]
    ended_at = {o.id: (await supervisor.result(o.id)).ended_at for o in outcome.ended}
    assert ended_at[leaf.id] <= ended_at[middle.id] <= ended_at[root.id]
    assert all(o.status == "stopped" for o in outcome.ended)
    assert (await supervisor.result(other.id)).status == "running"


async def test_kill_without_cascade_leaves_children(supervisor: Supervisor) -> None:
    await supervisor.spawn(cmd("sleep", "600", name="p"))
    child = await supervisor.spawn(cmd("sleep", "600", name="c", parent="p"))
    outcome = await supervisor.kill(["p"], cascade=False)
    assert [o.name for o in outcome.ended] == ["p"]
    assert (await supervisor.result(child.id)).status == "running"
    # Killing an ended mission is harmless and says so.
    again = await supervisor.kill(["p"])
    assert "already" in next(o.how for o in again.ended if o.name == "p")


async def test_timeout_ends_the_mission(supervisor: Supervisor) -> None:
    mission = await supervisor.spawn(cmd("sleep", "600", timeout_s=0.3))
    answer = await supervisor.wait([mission.id], timeout_s=10)
    assert answer.done[0].status == "timed_out"


async def test_child_environment_and_stdin(supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDECODE", "1")
    monkeypatch.setenv("CLAUDE_CODE_ENTRYPOINT", "sdk-cli")
    code = (
        "import os, sys\n"
        "print(os.environ.get('OVERMIND_MISSION_ID'), os.environ.get('OVERMIND_MISSION_NAME'),"
        " os.environ.get('OVERMIND_PARENT_ID'), os.environ.get('CLAUDECODE'),"
        " os.environ.get('CLAUDE_CODE_ENTRYPOINT'), os.environ.get('EXTRA'), repr(sys.stdin.read()),"
        " os.getpgid(0) == os.getpid())\n"
    )
    parent = await supervisor.spawn(cmd("sleep", "600", name="the-parent"))
    child = await supervisor.spawn(
        SpawnRequest(command=[PY, "-c", code], name="the-child", parent="the-parent", env={"EXTRA": "x"})
    )
    answer = await supervisor.wait([child.id], timeout_s=10)
    assert answer.done[0].text == f"{child.id} the-child {parent.id} None None x '' True"
    await supervisor.kill([parent.id])


async def test_cwd(supervisor: Supervisor, tmp_path: Path) -> None:
    mission = await supervisor.spawn(cmd("pwd", cwd=str(tmp_path)))
    answer = await supervisor.wait([mission.id], timeout_s=10)
    assert answer.done[0].text == str(tmp_path)
    assert answer.done[0].cwd == str(tmp_path)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (SpawnRequest(), "exactly one of"),
        (SpawnRequest(prompt="x", command=["true"]), "exactly one of"),
        (SpawnRequest(prompt="   "), "empty"),
        (SpawnRequest(command=[]), "non-empty argv"),
        (SpawnRequest(command=["true"], model="opus"), "only apply to Claude"),
        (SpawnRequest(command=["true"], cwd="/does/not/exist"), "not an existing directory"),
        (SpawnRequest(command=["true"], name="no spaces"), "bad name"),
        (SpawnRequest(command=["true"], name="0123456789abcdef"), "look like a mission id"),
        (SpawnRequest(prompt="x", env={"OVERMIND_MISSION_ID": "spoof"}), "reserved"),
    ],
)
async def test_bad_spawn_requests_say_what_to_fix(supervisor: Supervisor, request_: SpawnRequest, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await supervisor.spawn(request_)


async def test_unknown_program_fails_cleanly_and_is_recorded(supervisor: Supervisor) -> None:
    with pytest.raises(SpawnError, match="no such program"):
        await supervisor.spawn(cmd("/no/such/program", name="ghost"))
    assert (await supervisor.result("ghost")).status == "failed"


async def test_names_are_unique_among_live_missions(supervisor: Supervisor) -> None:
    first = await supervisor.spawn(cmd("sleep", "600", name="worker"))
    with pytest.raises(Conflict, match="already used"):
        await supervisor.spawn(cmd("true", name="worker"))
    await supervisor.kill(["worker"])
    # Once it has ended, the name is free again, and names resolve to the live mission first.
    second = await supervisor.spawn(cmd("sleep", "600", name="worker"))
    assert (await supervisor.result("worker")).id == second.id
    assert (await supervisor.result(first.id)).status == "stopped"
    await supervisor.kill(["worker"])


async def test_unknown_references(supervisor: Supervisor) -> None:
    with pytest.raises(NotFound, match="call ps"):
        await supervisor.result("nobody")
    with pytest.raises(NotFound):
        await supervisor.spawn(cmd("true", parent="nobody"))
    with pytest.raises(InvalidRequest):
        await supervisor.wait([], timeout_s=1)
    with pytest.raises(InvalidRequest):
        await supervisor.kill([])


async def test_ps_tree_and_totals(supervisor: Supervisor) -> None:
    await supervisor.spawn(cmd("sleep", "600", name="a"))
    await supervisor.spawn(cmd("sleep", "600", name="b"))
    await supervisor.spawn(cmd("sleep", "600", name="a1", parent="a"))
    await supervisor.spawn(cmd("true", name="b1", parent="b"))
    await supervisor.spawn(cmd("sleep", "600", name="a11", parent="a1"))
    listing = await supervisor.ps(tree=True)
    assert [(m.name, m.depth) for m in listing.missions] == [("a", 0), ("a1", 1), ("a11", 2), ("b", 0), ("b1", 1)]
    assert listing.totals.missions == 5
    subtree = await supervisor.ps(parent="a", tree=True)
    assert [m.name for m in subtree.missions] == ["a", "a1", "a11"]
    children = await supervisor.ps(parent="a")
    assert [m.name for m in children.missions] == ["a1"]
    await supervisor.kill(["a", "b"])
    stopped = await supervisor.ps(status="stopped")
    assert {m.name for m in stopped.missions} == {"a", "a1", "a11", "b"}


async def test_logs_page_through_long_output(supervisor: Supervisor) -> None:
    mission = await supervisor.spawn(python("for i in range(1000): print(f'line {i}')"))
    await supervisor.wait([mission.id], timeout_s=10)
    seen, cursor = [], 0
    while True:
        page = await supervisor.logs(mission.id, cursor=cursor, limit=300)
        seen += page.lines
        cursor = page.next_cursor
        if not page.more:
            break
    assert seen == [f"line {i}" for i in range(1000)]
    events = await supervisor.logs(mission.id, limit=2, format="events")
    assert events.events == [{"type": "plain", "text": "line 0"}, {"type": "plain", "text": "line 1"}]
    with pytest.raises(InvalidRequest):
        await supervisor.logs(mission.id, cursor=-1)


async def test_status(supervisor: Supervisor) -> None:
    await supervisor.spawn(cmd("sleep", "600"))
    await supervisor.spawn(cmd("false"))
    status = await supervisor.status()
    assert status.children_running >= 1
    assert sum(status.missions_by_status.values()) == 2


async def test_shutdown_ends_every_child(settings: Settings) -> None:
    async with Supervisor.running(settings) as supervisor:
        stubborn = await supervisor.spawn(python(STUBBORN))
        await until_output(supervisor, stubborn.id, "ready")
        plain = await supervisor.spawn(cmd("sleep", "600"))
    await assert_no_leftovers(settings)
    async with Supervisor.running(settings) as supervisor:
        assert (await supervisor.result(stubborn.id)).status == "killed"
        assert (await supervisor.result(plain.id)).status == "stopped"


async def test_reads_stay_consistent_while_missions_churn(settings: Settings) -> None:
    # Reads share the store's connection with every write; a read split in two could see a write
    # land mid-scan and return garbage (a status of None, here).
    async with Supervisor.running(settings.model_copy(update={"max_concurrent": 3})) as supervisor:
        async with anyio.create_task_group() as task_group:

            async def churn() -> None:
                for _ in range(60):
                    await supervisor.spawn(cmd("true"))

            task_group.start_soon(churn)
            for _ in range(1500):
                counts = (await supervisor.status()).missions_by_status
                assert all(isinstance(status, str) for status in counts)
                await anyio.lowlevel.checkpoint()
        await supervisor.wait([m.id for m in (await supervisor.ps(limit=1000)).missions], timeout_s=60)
    await assert_no_leftovers(settings)
