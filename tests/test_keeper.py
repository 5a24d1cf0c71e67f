"""The keeper (runners/local/keeper.py) with real servers: sessions and delegation outlive a server's crash,
and a keeper that is killed leaves a clear status, no process and a server that serves on."""

from __future__ import annotations

import json
import signal

import anyio
import psutil
import pytest

from overmind_mcp.settings import Settings
from tests.conftest import assert_no_leftovers, processes_of
from tests.helpers import call, script, stdio_server

pytestmark = pytest.mark.anyio


def mcp(tool: str, **arguments: object) -> str:
    return f"mcp {tool} {json.dumps(arguments)}"


def keeper_of(settings: Settings) -> psutil.Process:
    """The keeper of this state directory (it is nobody's child here: it forked away from its server)."""
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if any(arg.endswith("keeper.py") for arg in cmdline) and str(settings.home) in cmdline:
            return process
    raise LookupError(f"no keeper runs for {settings.home}")


async def test_a_session_survives_a_server_crash_and_takes_its_next_turn(settings: Settings) -> None:
    async with stdio_server(settings) as (client, process):
        spawned = await call(client, "spawn", prompt=script("answer first"), name="chat", session=True)
        turn = await call(client, "send", id="chat", message=script("answer second"), wait=True)
        assert (turn["state"], turn["text"]) == ("done", "second")
        before = await call(client, "result", id="chat")
        process.kill()
        process.wait()
    assert psutil.pid_exists(spawned["pid"]), "the session should outlive its server"
    async with stdio_server(settings) as (client, _process):
        turn = await call(client, "send", id="chat", message=script("answer third"), wait=True, timeout_s=20)
        assert (turn["state"], turn["text"]) == ("done", "third"), turn
        after = await call(client, "result", id="chat")
        # The same process, the same conversation: no restart, no --resume.
        assert after["session_id"] == before["session_id"]
        assert psutil.Process(spawned["pid"]).status() != psutil.STATUS_ZOMBIE
        ended = await call(client, "kill", ids=["chat"])
        assert ended["ended"][0]["how"] == "end of input"
    await assert_no_leftovers(settings)


async def test_a_readopted_delegating_child_spawns_and_kills_through_the_next_server(settings: Settings) -> None:
    async with stdio_server(settings) as (client, process):
        boss = await call(
            client,
            "spawn",
            prompt=script("answer up"),
            name="boss",
            session=True,
            delegate=True,
            allowed_tools=["Bash"],
        )
        assert (await call(client, "send", id="boss", message=script("answer ready"), wait=True))["state"] == "done"
        process.kill()
        process.wait()
    async with stdio_server(settings) as (client, _process):
        spawn = mcp("spawn", command=["sleep", "600"], name="grandchild")
        turn = await call(client, "send", id="boss", message=script(spawn, "answer {last}"), wait=True, timeout_s=30)
        assert turn["state"] == "done" and not turn["is_error"], turn
        listing = {entry["name"]: entry for entry in (await call(client, "ps"))["missions"]}
        assert "grandchild" in listing, (turn["text"], turn["errors"])
        assert listing["grandchild"]["parent"] == boss["id"]
        assert listing["grandchild"]["status"] == "running"
        kill = mcp("kill", ids=["grandchild"])
        turn = await call(client, "send", id="boss", message=script(kill, "answer {last}"), wait=True, timeout_s=30)
        assert turn["state"] == "done" and not turn["is_error"], turn
        assert (await call(client, "result", id="grandchild"))["status"] in {"stopped", "killed"}
        await call(client, "kill", ids=["boss"])
    await assert_no_leftovers(settings)


async def test_a_killed_keeper_leaves_a_clear_status_no_process_and_a_serving_server(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _process):
        ids = []
        for index in range(3):
            # Each leaves a second process in its group, which the keeper's death does not reach by itself.
            command = ["sh", "-c", f"echo up {index}; sleep 600 & sleep 600"]
            ids.append((await call(client, "spawn", command=command))["id"])
        for mission_id in ids:
            with anyio.fail_after(10):
                while not (await call(client, "logs", id=mission_id))["lines"]:
                    await call(client, "wait", ids=[mission_id], timeout_s=0.2)
        keeper = keeper_of(settings)
        keeper.send_signal(signal.SIGKILL)
        waited = await call(client, "wait", ids=ids, timeout_s=20)
        assert not waited["timed_out"]
        for result in waited["done"]:
            assert result["status"] == "lost", result["end_reason"]
            assert f"its keeper (pid {keeper.pid}) was killed" in str(result.get("end_reason")), sorted(result.items())
        assert not processes_of(set(ids))
        # A new keeper for what comes next: the server serves on.
        again = await call(client, "spawn", command=["sh", "-c", "exit 5"])
        done = (await call(client, "wait", ids=[again["id"]], timeout_s=20))["done"][0]
        assert (done["status"], done["exit_code"]) == ("failed", 5)
        assert keeper_of(settings).pid != keeper.pid
    await assert_no_leftovers(settings)
    with anyio.fail_after(5):
        while True:  # the last keeper leaves once it has no child and no server
            try:
                keeper_of(settings)
            except LookupError:
                break
            await anyio.sleep(0.05)


async def test_a_mission_that_ends_after_its_keeper_is_gone_is_lost_with_the_reason(settings: Settings) -> None:
    async with stdio_server(settings) as (client, process):
        spawned = await call(client, "spawn", command=["sh", "-c", "echo up; exec sleep 600"])
        finished = await call(client, "spawn", command=["sh", "-c", "exit 9"])
        await call(client, "wait", ids=[finished["id"]], timeout_s=10)
        process.kill()
        process.wait()
    keeper = keeper_of(settings)
    keeper.kill()
    keeper.wait(5)
    async with stdio_server(settings) as (client, _process):
        lost = await call(client, "result", id=spawned["id"])
        assert lost["status"] == "lost" and "its keeper died before it did" in lost["end_reason"], lost
        assert (await call(client, "result", id=finished["id"]))["exit_code"] == 9
    await assert_no_leftovers(settings)
