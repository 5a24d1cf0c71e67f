"""A person's hold on a live session, on the server side, with the stand-in claude.

The server parks a session between turns (its headless process ends, the mission keeps
running), refuses agents' messages while a person holds it, and resumes it with --resume when
the hold ends: on release, when the holder's process ends, or not at all when it is stopped
meanwhile. The console reaches it over the request path (attach/wire.py), tested here too; the
real CLI in a real terminal is tests/e2e/test_attach_real_cli.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import psutil
import pytest

from overmind_mcp.attach import serving, wire
from overmind_mcp.attach.models import AttachRequest, ReleaseRequest, SendRequest
from overmind_mcp.errors import Conflict, InvalidRequest, NotFound
from overmind_mcp.models import AttachGrant, Released, SpawnRequest, TurnResult
from overmind_mcp.runners.local.process import process_start_time
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.holds import Holder
from overmind_mcp.supervision.supervisor import Supervisor
from tests.helpers import script, server_env
from tests.test_supervisor_raw import until_output

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _sessions_in_a_home_of_their_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stand-in keeps sessions under $HOME/.claude, as the real CLI does.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
async def supervisor(supervisor: Supervisor) -> AsyncIterator[Supervisor]:
    """The supervisor, answering the console's requests as a real server does (cli.py starts the same)."""
    async with anyio.create_task_group() as task_group:
        await task_group.start(serving.serve, supervisor)
        yield supervisor
        task_group.cancel_scope.cancel()


def me() -> Holder:
    return Holder(os.getpid(), process_start_time(os.getpid()) or 0.0)


async def session(supervisor: Supervisor, name: str = "chat") -> str:
    """A live session that has had its first turn; its pid."""
    await supervisor.spawn(SpawnRequest(prompt=script("answer one"), session=True, name=name))
    [first] = (await supervisor.wait([name], timeout_s=20)).done
    assert (first.text, first.session_state) == ("one", "idle")
    pid = (await supervisor.mission(name)).pid
    assert pid is not None
    return pid


async def until_state(supervisor: Supervisor, ref: str, state: str | None, within: float = 10) -> None:
    """Wait (woken by the supervisor's own changes) until a session is in `state`."""
    with anyio.fail_after(within):
        while (await supervisor.result(ref)).session_state != state:
            await supervisor.wait([ref], timeout_s=0.2)


async def test_attach_waits_for_the_turn_refuses_agents_and_release_resumes_the_conversation(
    supervisor: Supervisor,
) -> None:
    headless = await session(supervisor)
    await supervisor.send("chat", script("say thinking", "sleep 1", "answer two"), wait=False)
    await until_output(supervisor, "chat", "thinking")

    grant = await wire.ask(supervisor.server_id, "attach", AttachRequest(id="chat"), AttachGrant)
    # Handed over between turns: the turn in flight ended first, and so did the process.
    log = (await supervisor.logs("chat")).lines
    assert log.index("two") < log.index(
        f"--- attached by a person (pid {os.getpid()}): agents' messages are refused ---"
    )
    assert not psutil.pid_exists(headless) or psutil.Process(headless).status() == psutil.STATUS_ZOMBIE
    row = await supervisor.mission("chat")
    assert (grant.name, grant.session_id, grant.cwd) == ("chat", row.session_id, row.cwd)
    held = await supervisor.result("chat")
    assert (held.status, held.session_state) == ("running", "attached")
    assert (await supervisor.ps()).missions[0].session_state == "attached"
    with pytest.raises(Conflict, match="attached by a person"):
        await supervisor.send("chat", "an agent's message")
    with pytest.raises(Conflict, match="attached by a person"):
        await supervisor.interrupt("chat")
    with pytest.raises(Conflict, match="attached by a person"):
        await wire.ask(supervisor.server_id, "attach", AttachRequest(id="chat"), AttachGrant)

    released = await wire.ask(supervisor.server_id, "release", ReleaseRequest(id="chat"), Released)
    assert (released.status, released.session_id) == ("running", grant.session_id)
    assert released.pid is not None and released.pid != headless
    turn = await wire.ask(
        supervisor.server_id, "send", SendRequest(id="chat", message=script("answer three")), TurnResult
    )
    assert (turn.turn, turn.state) == (2, "working")
    [three] = (await supervisor.wait(["chat"], timeout_s=20)).done
    assert (three.text, three.session_id, three.session_state) == ("three", grant.session_id, "idle")
    assert f"--resume={grant.session_id}" in psutil.Process(released.pid).cmdline()
    assert "--- the person has left: the session goes on with their turns ---" in (await supervisor.logs("chat")).lines
    with pytest.raises(Conflict, match="not attached"):
        await supervisor.release("chat")
    await supervisor.kill(["chat"])


async def test_a_hold_ends_with_the_holders_process(supervisor: Supervisor) -> None:
    await session(supervisor)
    async with await anyio.open_process(["sleep", "600"]) as person:
        holder = Holder(person.pid, process_start_time(person.pid) or 0.0)
        await supervisor.attach("chat", holder)
        person.kill()
    # Nobody released it: the server noticed the holder's end on its own.
    await until_state(supervisor, "chat", "idle")
    answer = await supervisor.send("chat", script("answer back again"))
    assert answer.text == "back again"
    await supervisor.kill(["chat"])


async def test_giving_up_before_the_handover_leaves_the_session_alone(supervisor: Supervisor) -> None:
    headless = await session(supervisor)
    await supervisor.send("chat", script("say thinking", "sleep 30", "answer late"), wait=False)
    await until_output(supervisor, "chat", "thinking")
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(wire.ask, supervisor.server_id, "attach", AttachRequest(id="chat"), AttachGrant)
        await until_state(supervisor, "chat", "attached")
        # The person hangs up (Ctrl-C) while the turn runs: the connection closes, the request is cancelled.
        task_group.cancel_scope.cancel()
    await until_state(supervisor, "chat", "working")
    assert (await supervisor.mission("chat")).pid == headless
    queued = await supervisor.send("chat", script("answer after"), wait=False)
    assert queued.state == "queued"
    await supervisor.interrupt("chat")
    [after] = (await supervisor.wait(["chat"], timeout_s=20)).done
    assert after.text == "after"
    await supervisor.kill(["chat"])


async def test_a_parked_session_is_killed_from_another_process(supervisor: Supervisor, settings: Settings) -> None:
    await session(supervisor)
    await supervisor.attach("chat", me())
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [sys.executable, "-m", "overmind_mcp.console", "kill", "chat"], env=server_env(settings), check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    row = await supervisor.mission("chat")
    assert (row.status, row.end_reason) == ("stopped", "ended on request; ended by SIGINT")
    with pytest.raises(Conflict, match="not attached"):
        await supervisor.release("chat")


async def test_a_parked_session_ends_with_its_kill_or_its_timeout(supervisor: Supervisor) -> None:
    await session(supervisor, "killed")
    await supervisor.attach("killed", me())
    [outcome] = (await supervisor.kill(["killed"])).ended
    assert outcome.status == "stopped"
    await supervisor.spawn(SpawnRequest(prompt=script("answer one"), session=True, name="timed", timeout_s=1.5))
    await supervisor.wait(["timed"], timeout_s=20)
    await supervisor.attach("timed", me())
    [timed] = (await supervisor.wait(["timed"], timeout_s=20)).done
    assert timed.status == "timed_out"
    row = await supervisor.mission("timed")
    assert row.end_reason == "timeout_s passed; ended by its server, while a person held it"


async def test_what_cannot_be_attached_says_why(supervisor: Supervisor) -> None:
    task = await supervisor.spawn(SpawnRequest(command=["sleep", "600"], name="task"))
    with pytest.raises(InvalidRequest, match="not a session"):
        await supervisor.attach(task.id, me())
    await supervisor.spawn(SpawnRequest(session=True, name="fresh"))
    with pytest.raises(Conflict, match="no conversation yet"):
        await supervisor.attach("fresh", me())
    # Refused, so not held: agents still talk to it.
    assert (await supervisor.send("fresh", script("answer hello"))).text == "hello"
    with pytest.raises(NotFound):
        await wire.ask(supervisor.server_id, "attach", AttachRequest(id="nobody"), AttachGrant)
    with pytest.raises(InvalidRequest, match="unknown request 'detonate'"):
        await wire.ask(supervisor.server_id, "detonate", AttachRequest(id="fresh"), AttachGrant)
    with pytest.raises(InvalidRequest, match="bad send request"):
        await wire.ask(supervisor.server_id, "send", AttachRequest(id="fresh"), TurnResult)
    with pytest.raises(wire.Unreachable, match="does not answer"):
        await wire.ask("0000000000000000", "attach", AttachRequest(id="fresh"), AttachGrant)
    await supervisor.kill(["task", "fresh"])


async def test_the_console_refuses_what_it_cannot_attach(supervisor: Supervisor, settings: Settings) -> None:
    await supervisor.spawn(SpawnRequest(command=["sleep", "600"], name="task"))
    await session(supervisor)

    async def attach(ref: str) -> subprocess.CompletedProcess[bytes]:
        with anyio.fail_after(30):
            return await anyio.run_process(
                [sys.executable, "-m", "overmind_mcp.console", "attach", ref], env=server_env(settings), check=False
            )

    task = await attach("task")
    assert (task.returncode, task.stderr.decode()) == (
        1,
        "overmind attach: 'task' is a task: only a live session (spawn session=true) can be attached\n",
    )
    nobody = await attach("nobody")
    assert nobody.returncode == 3
    # Not a terminal: nothing is asked of the server, and the session goes on.
    chat = await attach("chat")
    assert (chat.returncode, chat.stderr.decode()) == (
        2,
        "overmind attach: attach needs a terminal: `claude --resume` is interactive\n",
    )
    assert (await supervisor.result("chat")).session_state == "idle"
    await supervisor.kill(["task", "chat"])
    ended = await attach("chat")
    assert ended.returncode == 1 and "is stopped, not running" in ended.stderr.decode()
