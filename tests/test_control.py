"""The control mailbox: the `overmind` command acts through live server processes on the same state directory.

Servers are real `python -m overmind_mcp` processes driven over stdio; the console runs as its own
process, as a person at another terminal would run it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from pydantic import BaseModel

from overmind_mcp.control.client import ControlError, call
from overmind_mcp.control.mailbox import FILENAME
from overmind_mcp.control.registry import handles, load_handlers
from overmind_mcp.control.verbs import SPAWN, Verb
from overmind_mcp.models import Spawned, SpawnRequest
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.settings import Settings
from overmind_mcp.storage.changes import relay_commits
from tests.conftest import assert_no_leftovers
from tests.helpers import call as call_tool
from tests.helpers import script, server_env, stdio_server
from tests.test_supervisor_raw import until_gone

pytestmark = pytest.mark.anyio


async def overmind(settings: Settings, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "overmind_mcp.console", *args], env=server_env(settings), check=False, cwd=cwd
        )
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def requests(settings: Settings) -> list[tuple[str, str, str | None]]:
    """(verb, state, claimed_by) of every request in the mailbox, oldest first."""
    with sqlite3.connect(settings.home / FILENAME) as db:
        return db.execute("SELECT verb, state, claimed_by FROM requests ORDER BY id").fetchall()


async def until_a_request_is(settings: Settings, state: str) -> None:
    """Wait, on commits to the mailbox (not a timer), until some request is in `state`."""
    watcher, changes = FileWatcher(), Wakeup()
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(watcher.run)
        await task_group.start(relay_commits, watcher, settings.home / FILENAME, changes)
        with anyio.fail_after(20):
            while not any(found == state for _verb, found, _by in requests(settings)):
                await changes.wait()
        task_group.cancel_scope.cancel()


async def test_run_starts_a_command_in_the_terminals_directory_and_waits_for_its_exit_code(
    settings: Settings, tmp_path: Path
) -> None:
    async with stdio_server(settings) as (client, _server):
        started = await overmind(settings, "run", "--name", "hello", "--", "sh", "-c", "pwd; exit 0", cwd=tmp_path)
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith("hello (")
        finished = await call_tool(client, "wait", ids=["hello"], timeout_s=10)
        assert finished["done"][0]["status"] == "succeeded"
        assert finished["done"][0]["text"] == str(tmp_path)

        failing = await overmind(settings, "run", "--wait", "--", "sh", "-c", "echo broken; exit 3")
        assert failing.returncode == 3, failing.stderr
        assert "failed, exit code 3" in failing.stdout and "broken" in failing.stdout

        claude = await overmind(settings, "run", "--wait", "--prompt", script("answer from the terminal"))
        assert claude.returncode == 0, claude.stderr
        assert "succeeded" in claude.stdout and "from the terminal" in claude.stdout
        # `run` is a quest: a spawn with its provenance (see test_rituals.py).
        assert [verb for verb, _state, _by in requests(settings)] == ["quest", "quest", "quest"]
        assert {state for _verb, state, _by in requests(settings)} == {"answered"}
    await assert_no_leftovers(settings)


async def test_a_refusal_comes_back_as_the_servers_own_words(settings: Settings, tmp_path: Path) -> None:
    async with stdio_server(settings):
        missing = await overmind(settings, "run", "--cwd", str(tmp_path / "nowhere"), "--", "true")
        assert missing.returncode == 2
        assert "is not an existing directory" in missing.stderr
        neither = await overmind(settings, "run")
        assert neither.returncode == 2 and "either --prompt" in neither.stderr
        unknown = await overmind(settings, "send", "nobody", "hello")
        assert unknown.returncode == 3 and "no mission has the id or name 'nobody'" in unknown.stderr
        assert requests(settings)[-1][1] == "failed"

        # A verb the server does not know, and a payload that does not fit.
        class Nothing(BaseModel):
            pass

        with pytest.raises(ControlError, match="does not answer 'frobnicate'") as unknown_verb:
            await call(settings.home, Verb("frobnicate", Nothing, Nothing), Nothing())
        assert unknown_verb.value.kind == "InvalidRequest"


async def test_send_talks_to_a_session_through_the_server_that_runs_it(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _server):
        await call_tool(client, "spawn", prompt=script("answer hello"), session=True, name="chat")
        await call_tool(client, "wait", ids=["chat"], timeout_s=10)
        answered = await overmind(settings, "send", "chat", script("answer second answer"), "--wait")
        assert answered.returncode == 0, answered.stderr
        assert "chat turn 1: done" in answered.stdout and "second answer" in answered.stdout

        queued = await overmind(settings, "send", "chat", script("sleep 0.3", "answer third"), "--json")
        assert queued.returncode == 0, queued.stderr
        assert '"state":"working"' in queued.stdout.replace(" ", "") or '"state":"queued"' in queued.stdout.replace(
            " ", ""
        )
        result = await call_tool(client, "wait", ids=["chat"], timeout_s=10)
        assert result["done"][0]["text"] == "third"
        await call_tool(client, "kill", ids=["chat"])
    await assert_no_leftovers(settings)


async def test_with_no_server_running_the_console_says_how_to_start_one(settings: Settings) -> None:
    never = await overmind(settings, "run", "--", "true")
    assert never.returncode == 1
    expected = f"no overmind-mcp server is running on {settings.home}; start one with `overmind-mcp serve`"
    assert expected in never.stderr
    async with stdio_server(settings):
        pass
    # The mailbox is there now, and its server is gone.
    gone = await overmind(settings, "send", "chat", "hello")
    assert gone.returncode == 1 and expected in gone.stderr


async def test_a_server_that_dies_mid_request_is_reported_at_once(settings: Settings) -> None:
    async with stdio_server(settings) as (client, server):
        await call_tool(client, "spawn", prompt=script("answer ready"), session=True, name="slow")
        await call_tool(client, "wait", ids=["slow"], timeout_s=10)
        async with anyio.create_task_group() as task_group:
            outcome: list[subprocess.CompletedProcess[str]] = []

            async def send() -> None:
                outcome.append(await overmind(settings, "send", "slow", script("hang"), "--wait", "--timeout", "600"))

            task_group.start_soon(send)
            await until_a_request_is(settings, "claimed")
            started = anyio.current_time()
            os.kill(server.pid, signal.SIGKILL)
        assert anyio.current_time() - started < 10
        [done] = outcome
        assert done.returncode == 1
        assert "stopped before answering; it may have been partly carried out" in done.stderr
    # The session's child outlived its server: the next server re-adopts it and, closing, ends it.
    async with stdio_server(settings):
        pass
    await assert_no_leftovers(settings)


async def test_a_request_for_a_server_that_is_not_running_fails_clearly(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _server):
        server_id = (await call_tool(client, "status"))["server_id"]
    refused = await overmind(settings, "run", "--server", server_id, "--", "true")
    assert refused.returncode == 1
    assert f"server {server_id} is not running on {settings.home}" in refused.stderr


async def test_two_servers_on_one_directory_answer_each_request_once(settings: Settings) -> None:
    count = 24
    async with stdio_server(settings) as (first, _one), stdio_server(settings) as (second, _two):
        answers: list[Spawned] = []

        async def ask(number: int) -> None:
            request = SpawnRequest(command=["true"], name=f"job-{number}", cwd=str(settings.home))
            answers.append(await call(settings.home, SPAWN, request, timeout_s=30))

        async with anyio.create_task_group() as task_group:
            for number in range(count):
                task_group.start_soon(ask, number)
        assert sorted(answer.name for answer in answers) == sorted(f"job-{number}" for number in range(count))
        listed = await call_tool(first, "ps", limit=1000)
        assert sorted(entry["name"] for entry in listed["missions"]) == sorted(answer.name for answer in answers)
        handled = requests(settings)
        assert len(handled) == count and {state for _verb, state, _by in handled} == {"answered"}
        servers = {(await call_tool(client, "status"))["server_id"] for client in (first, second)}
        assert {by for _verb, _state, by in handled} <= servers
    await assert_no_leftovers(settings)


def test_a_verb_has_one_handler() -> None:
    async def other(_supervisor: object, request: SpawnRequest) -> Spawned:
        raise AssertionError("never called")

    assert {"spawn", "send"} <= set(load_handlers())
    with pytest.raises(RuntimeError, match="'spawn' already has a handler"):
        handles(SPAWN)(other)  # type: ignore[arg-type]


async def test_a_withdrawn_request_is_never_carried_out(settings: Settings) -> None:
    """A client that gives up before any server claims its request takes it back."""
    async with stdio_server(settings) as (client, server):
        os.kill(server.pid, signal.SIGSTOP)  # alive, but deaf
        try:
            with pytest.raises(ControlError, match=r"no server took the request within 0\.5s; it was withdrawn"):
                await call(settings.home, SPAWN, SpawnRequest(command=["true"], name="late"), timeout_s=0.5)
        finally:
            os.kill(server.pid, signal.SIGCONT)
        # The server wakes to a withdrawn request and leaves it alone.
        await call(settings.home, SPAWN, SpawnRequest(command=["true"], name="next"), timeout_s=30)
        names = [entry["name"] for entry in (await call_tool(client, "ps"))["missions"]]
        assert names == ["next"]
        assert [state for _verb, state, _by in requests(settings)] == ["withdrawn", "answered"]
    await until_gone(server.pid)
