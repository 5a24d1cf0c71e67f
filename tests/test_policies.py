"""Supervision policies: restarts, stall detection, live sessions, budgets, admission control."""

from __future__ import annotations

import fcntl
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from overmind_mcp.errors import Conflict, InvalidRequest, Refused
from overmind_mcp.models import SpawnRequest
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import Store
from overmind_mcp.supervision.restarts import RestartHistory, RestartPolicy
from overmind_mcp.supervision.supervisor import Supervisor
from tests.conftest import assert_no_leftovers
from tests.test_supervisor_raw import until_output

pytestmark = pytest.mark.anyio


@pytest.fixture
def quick(settings: Settings) -> Settings:
    """Short backoffs, so restarts take milliseconds instead of seconds."""
    return settings.model_copy(update={"restart_backoff_s": 0.05, "restart_backoff_max_s": 0.4})


@pytest.fixture
async def supervisor(quick: Settings) -> AsyncIterator[Supervisor]:
    async with Supervisor.running(quick) as running:
        yield running
    await assert_no_leftovers(quick)


def script(*directives: str) -> str:
    return "\n".join(["A task.", *(f"fake: {directive}" for directive in directives)])


async def events_of(settings: Settings, mission_id: str) -> list[tuple[str, dict]]:
    store = await Store.open(settings.database_path)
    try:
        return [(kind, data) for _at, kind, data in await store.events(mission_id)]
    finally:
        await store.close()


# -- restarts -----------------------------------------------------------------------------------


def test_backoff_doubles_is_capped_and_resets_after_a_stable_run() -> None:
    policy = RestartPolicy(mode="on-failure", max_restarts=10, window_s=1000, backoff_s=1, backoff_max_s=5, stable_s=30)
    history = RestartHistory()
    delays = [history.next_delay(policy, failed=True, run_s=1, now=float(t)) for t in range(5)]
    assert delays == [1, 2, 4, 5, 5]
    assert history.next_delay(policy, failed=True, run_s=60, now=10.0) == 1
    assert history.next_delay(policy, failed=False, run_s=1, now=11.0) is None


def test_the_restart_window_slides() -> None:
    policy = RestartPolicy(mode="always", max_restarts=2, window_s=10, backoff_s=0, stable_s=100)
    history = RestartHistory()
    assert history.next_delay(policy, failed=False, run_s=1, now=0.0) == 0
    assert history.next_delay(policy, failed=False, run_s=1, now=1.0) == 0
    assert history.next_delay(policy, failed=False, run_s=1, now=5.0) is None
    # The first restart has slid out of the window.
    assert history.next_delay(policy, failed=False, run_s=1, now=10.5) == 0


async def test_a_flaky_command_fails_twice_then_succeeds(supervisor: Supervisor, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    code = (
        f"from pathlib import Path\np = Path({str(counter)!r})\nn = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(n + 1))\nprint('attempt', n + 1)\nraise SystemExit(0 if n >= 2 else 3)\n"
    )
    started = time.monotonic()
    mission = await supervisor.spawn(SpawnRequest(command=[sys.executable, "-c", code], restart="on-failure"))
    answer = await supervisor.wait([mission.id], timeout_s=30)
    elapsed = time.monotonic() - started
    result = answer.done[0]
    assert (result.status, result.restarts, result.exit_code) == ("succeeded", 2, 0)
    log = (await supervisor.logs(mission.id)).lines
    assert [line for line in log if line.startswith("attempt")] == ["attempt 1", "attempt 2", "attempt 3"]
    assert sum("restart #" in line for line in log) == 2
    kinds = [kind for kind, _data in await events_of(supervisor.settings, mission.id)]
    assert kinds.count("restart") == 2
    # Backoff 0.05 s, then 0.1 s.
    assert elapsed < 10


async def test_a_crashed_claude_task_resumes_its_conversation(supervisor: Supervisor) -> None:
    mission = await supervisor.spawn(SpawnRequest(prompt=script("say working", "exit 3"), restart="on-failure"))
    answer = await supervisor.wait([mission.id], timeout_s=30)
    result = answer.done[0]
    assert (result.status, result.restarts) == ("succeeded", 1)
    # The second run was `--resume=<session>` with a prompt to continue, not the task again.
    assert result.text and result.text.startswith("MOCK REPLY to: Continue the task")
    assert "exited with code 3" in result.text
    first_session = next(
        line for line in (await supervisor.logs(mission.id)).lines if line.startswith("[init] session")
    )
    assert result.session_id in first_session


async def test_restarts_stop_at_the_limit(supervisor: Supervisor) -> None:
    mission = await supervisor.spawn(SpawnRequest(command=["false"], restart="always", max_restarts=2))
    result = (await supervisor.wait([mission.id], timeout_s=30)).done[0]
    assert (result.status, result.restarts) == ("failed", 2)


async def test_a_mission_ended_on_request_is_never_restarted(supervisor: Supervisor) -> None:
    mission = await supervisor.spawn(SpawnRequest(command=["sleep", "600"], restart="always"))
    outcome = await supervisor.kill([mission.id])
    assert outcome.ended[0].status == "stopped"
    assert (await supervisor.result(mission.id)).restarts == 0


async def test_a_kill_during_the_backoff_ends_it_at_once(quick: Settings) -> None:
    slow = quick.model_copy(update={"restart_backoff_s": 30.0, "restart_backoff_max_s": 30.0})
    async with Supervisor.running(slow) as supervisor:
        mission = await supervisor.spawn(SpawnRequest(command=["false"], restart="always", name="retrying"))
        with anyio.fail_after(10):
            while (await supervisor.result(mission.id)).status != "restarting":
                await supervisor.wait([mission.id], timeout_s=0.2)
        with pytest.raises(Conflict, match="already used"):
            await supervisor.spawn(SpawnRequest(command=["true"], name="retrying"))
        started = time.monotonic()
        await supervisor.kill([mission.id])
        assert time.monotonic() - started < 2
        assert (await supervisor.result(mission.id)).status == "stopped"
    await assert_no_leftovers(quick)


# -- stall detection ----------------------------------------------------------------------------


async def test_a_stall_is_detected_within_the_timeout_plus_slack(supervisor: Supervisor) -> None:
    mission = await supervisor.spawn(SpawnRequest(prompt=script("say alive", "hang"), activity_timeout_s=0.6))
    await until_output(supervisor, mission.id, "alive")
    last_output = time.monotonic()
    result = (await supervisor.wait([mission.id], timeout_s=10)).done[0]
    latency = time.monotonic() - last_output
    assert result.status == "failed"
    assert (
        any("stalled" in error for error in result.errors)
        or "stalled" in (await supervisor.mission(mission.id)).end_reason
    )
    assert latency < 0.6 + 1.0, f"stall seen {latency:.2f}s after the last output"


async def test_a_stalled_command_is_restarted(supervisor: Supervisor, tmp_path: Path) -> None:
    marker = tmp_path / "ran-once"
    code = (
        f"from pathlib import Path\nimport time\np = Path({str(marker)!r})\n"
        "if p.exists():\n    print('second run')\nelse:\n    p.touch()\n    time.sleep(600)\n"
    )
    mission = await supervisor.spawn(
        SpawnRequest(command=[sys.executable, "-c", code], activity_timeout_s=0.5, restart="on-failure")
    )
    result = (await supervisor.wait([mission.id], timeout_s=20)).done[0]
    assert (result.status, result.restarts, result.text) == ("succeeded", 1, "second run")


async def test_output_keeps_a_mission_from_stalling(supervisor: Supervisor) -> None:
    code = "import time\nfor i in range(8):\n    print(i, flush=True)\n    time.sleep(0.2)\n"
    mission = await supervisor.spawn(SpawnRequest(command=[sys.executable, "-c", code], activity_timeout_s=0.6))
    assert (await supervisor.wait([mission.id], timeout_s=20)).done[0].status == "succeeded"


# -- admission control ----------------------------------------------------------------------


async def test_fifty_spawns_with_four_at_a_time(settings: Settings, tmp_path: Path) -> None:
    limited = settings.model_copy(update={"max_concurrent": 4})
    journal = tmp_path / "journal"
    gate = tmp_path / "gate"
    gate.touch()
    # Each child waits for a shared lock on the gate, which the test holds until all fifty are spawned.
    code = (
        "import fcntl, os, sys, time\n"
        f"log = open({str(journal)!r}, 'a')\n"
        "log.write(f'start {sys.argv[1]} {time.monotonic()}\\n'); log.flush()\n"
        f"fcntl.flock(open({str(gate)!r}), fcntl.LOCK_SH)\n"
        "time.sleep(0.05)\n"
        "log.write(f'end {sys.argv[1]} {time.monotonic()}\\n'); log.flush()\n"
    )
    async with Supervisor.running(limited) as supervisor:
        with gate.open() as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            spawned = [
                await supervisor.spawn(SpawnRequest(command=[sys.executable, "-c", code, str(index)]))
                for index in range(50)
            ]
            assert [s.status for s in spawned[:4]] == ["running"] * 4
            assert all(s.status == "queued" for s in spawned[4:])
            listing = await supervisor.ps()
            assert [m.queue_position for m in listing.missions[4:7]] == [1, 2, 3]
        answer = await supervisor.wait([s.id for s in spawned], timeout_s=120)
        assert not answer.timed_out
        assert all(result.status == "succeeded" for result in answer.done)
        launched = [(await supervisor.mission(s.id)).started_at or 0 for s in spawned]
        assert launched == sorted(launched), "queued missions start in the order they were spawned"
    events = [line.split() for line in journal.read_text().splitlines()]
    running, most = 0, 0
    for kind, _index, _at in sorted(events, key=lambda event: float(event[2])):
        running += 1 if kind == "start" else -1
        most = max(most, running)
    assert most <= 4
    assert sum(kind == "end" for kind, _index, _at in events) == 50
    await assert_no_leftovers(settings)


async def test_a_queued_mission_can_be_killed_before_it_starts(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_concurrent": 1})
    async with Supervisor.running(limited) as supervisor:
        first = await supervisor.spawn(SpawnRequest(command=["sleep", "600"]))
        second = await supervisor.spawn(SpawnRequest(command=["echo", "never"]))
        assert second.status == "queued"
        outcome = await supervisor.kill([second.id])
        assert (outcome.ended[0].status, outcome.ended[0].how) == ("stopped", "never started (it was queued)")
        await supervisor.kill([first.id])
    await assert_no_leftovers(settings)


async def test_shutdown_with_a_queue_ends_everything_and_keeps_detached_work(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_concurrent": 2})
    async with Supervisor.running(limited) as supervisor:
        running = [await supervisor.spawn(SpawnRequest(command=["sleep", "600"])) for _ in range(2)]
        waiting = await supervisor.spawn(SpawnRequest(command=["echo", "later"]))
        kept = await supervisor.spawn(SpawnRequest(command=["echo", "kept for later"], detach=True))
        assert (waiting.status, kept.status) == ("queued", "queued")
    async with Supervisor.running(limited) as supervisor:
        assert [(await supervisor.result(m.id)).status for m in running] == ["stopped", "stopped"]
        assert (await supervisor.result(waiting.id)).status == "stopped"
        # The detached one stayed queued in the store, and this server ran it.
        result = (await supervisor.wait([kept.id], timeout_s=20)).done[0]
        assert (result.status, result.text) == ("succeeded", "kept for later")
    await assert_no_leftovers(settings)


# -- budgets --------------------------------------------------------------------------------


async def test_a_spent_budget_stops_the_subtree_and_keeps_partial_output(supervisor: Supervisor) -> None:
    parent = await supervisor.spawn(SpawnRequest(prompt=script("say lead", "hang"), name="lead", max_budget_usd=0.01))
    cheap = await supervisor.spawn(SpawnRequest(prompt=script("cost 0.004", "answer cheap"), parent="lead"))
    await supervisor.wait([cheap.id], timeout_s=20)
    assert (await supervisor.mission(cheap.id)).spec.max_budget_usd == pytest.approx(0.01)
    worker = await supervisor.spawn(SpawnRequest(prompt=script("say partial work", "hang"), parent="lead"))
    await until_output(supervisor, worker.id, "partial work")
    # The inherited budget is what is left of the parent's.
    assert (await supervisor.mission(worker.id)).spec.max_budget_usd == pytest.approx(0.006)
    spender = await supervisor.spawn(SpawnRequest(prompt=script("cost 0.007", "answer spent"), parent="lead"))
    answer = await supervisor.wait([worker.id, parent.id, spender.id], timeout_s=20)
    statuses = {result.id: result for result in answer.done}
    assert statuses[worker.id].status == "stopped"
    assert statuses[parent.id].status == "stopped"
    assert "budget" in (await supervisor.mission(worker.id)).end_reason
    assert "partial work" in (await supervisor.logs(worker.id)).lines
    with pytest.raises(Refused, match="budget"):
        await supervisor.spawn(SpawnRequest(prompt="more", parent="lead"))


# -- live sessions --------------------------------------------------------------------------


async def test_a_session_with_three_turns_and_an_interrupt(supervisor: Supervisor) -> None:
    session = await supervisor.spawn(SpawnRequest(prompt=script("answer first answer"), session=True, name="chat"))
    first = await supervisor.wait(["chat"], timeout_s=20)
    assert first.done[0].text == "first answer"
    assert first.done[0].session_state == "idle"
    second = await supervisor.send("chat", script("answer second answer"))
    assert (second.turn, second.state, second.text) == (1, "done", "second answer")
    long_turn = await supervisor.send("chat", script("say thinking", "sleep 30", "answer too late"), wait=False)
    queued = await supervisor.send("chat", script("answer third answer"), wait=False)
    assert (long_turn.state, queued.state, queued.queue_position) == ("working", "queued", 1)
    await until_output(supervisor, "chat", "thinking")
    assert (await supervisor.ps()).missions[0].session_state == "working"
    interrupted = await supervisor.interrupt("chat")
    assert (interrupted.turn, interrupted.state, interrupted.is_error) == (2, "interrupted", True)
    # The queued message runs next, on the same live process and conversation.
    third = await supervisor.send("chat", script("answer after the interrupt"))
    assert third.state == "done"
    result = await supervisor.result("chat")
    assert (result.status, result.text) == ("running", "after the interrupt")
    assert result.session_id == second.session_id
    assert result.cost_usd and second.cost_usd and result.cost_usd > second.cost_usd
    outcome = await supervisor.kill(["chat"])
    assert (outcome.ended[0].status, outcome.ended[0].how) == ("stopped", "end of input")
    with pytest.raises(Conflict, match="has ended"):
        await supervisor.send("chat", "anyone there?")
    assert session.status == "running"


async def test_sending_to_a_task_or_empty_is_a_clear_error(supervisor: Supervisor) -> None:
    task = await supervisor.spawn(SpawnRequest(command=["sleep", "600"]))
    with pytest.raises(InvalidRequest, match="not a session"):
        await supervisor.send(task.id, "hello")
    chat = await supervisor.spawn(SpawnRequest(session=True))
    with pytest.raises(InvalidRequest, match="empty"):
        await supervisor.send(chat.id, "   ")
    with pytest.raises(Conflict, match="idle"):
        await supervisor.interrupt(chat.id)
    answer = await supervisor.send(chat.id, script("answer hi"))
    assert answer.text == "hi"
    await supervisor.kill([task.id, chat.id])


async def test_a_session_can_be_resumed_in_a_new_one(supervisor: Supervisor) -> None:
    first = await supervisor.spawn(SpawnRequest(prompt=script("answer remembered"), session=True, name="one"))
    await supervisor.wait([first.id], timeout_s=20)
    session_id = (await supervisor.result(first.id)).session_id
    await supervisor.kill([first.id])
    again = await supervisor.spawn(SpawnRequest(prompt=script("answer resumed"), resume=session_id))
    result = (await supervisor.wait([again.id], timeout_s=20)).done[0]
    assert (result.status, result.session_id, result.text) == ("succeeded", session_id, "resumed")
