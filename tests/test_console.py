"""The `overmind` console against real stdio servers with real children.

Every verb runs as its own process (`python -m overmind_mcp.console`), as a person at
another terminal would run it, while the SDK's client owns the server over stdio. The
`--json` answers are checked against what the MCP tools say about the same missions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import anyio
import psutil
import pytest

from overmind_mcp.models import LIVE
from overmind_mcp.settings import Settings
from tests.conftest import assert_no_leftovers, mission_ids, processes_of
from tests.helpers import call, script, server_env, stdio_server, until_printed
from tests.test_supervisor_raw import until_gone

pytestmark = pytest.mark.anyio


async def overmind(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one verb to completion; its output as text."""
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [sys.executable, "-m", "overmind_mcp.console", *args], env=server_env(settings), check=False
        )
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


async def overmind_json(settings: Settings, *args: str) -> Any:
    done = await overmind(settings, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in keys}


def same_listing(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Two `ps` answers agree; ages of live missions may differ by the time between the calls."""
    assert ours["totals"] == theirs["totals"]
    assert [entry["id"] for entry in ours["missions"]] == [entry["id"] for entry in theirs["missions"]]
    for mine, other in zip(ours["missions"], theirs["missions"], strict=True):
        if mine["status"] in LIVE:
            assert abs(mine["age_s"] - other["age_s"]) < 10
            assert without(mine, "age_s") == without(other, "age_s")
        else:
            assert mine == other


async def test_ps_tree_top_and_json_agree_with_the_mcp_tools(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _process):
        root = await call(client, "spawn", prompt=script("say planning", "tool Bash {}", "hang"), name="root")
        middle = await call(
            client, "spawn", prompt=script("say working", "grandchild", "hang"), name="a", parent="root"
        )
        await call(client, "spawn", command=["sleep", "600"], name="a1", parent="a")
        done = await call(client, "spawn", command=["sh", "-c", "echo done b"], name="b", parent="root")
        await call(client, "wait", ids=["b"], timeout_s=10)
        await until_printed(client, root["id"], "← ok")
        await until_printed(client, middle["id"], "grandchild pid")

        listing = await overmind(settings, "ps", "--tree")
        assert listing.returncode == 0, listing.stderr
        names = [line.split()[1:3] for line in listing.stdout.splitlines()[1:5]]
        assert names == [["root", "running"], ["├─", "a"], ["│", "└─"], ["└─", "b"]]
        assert "│  └─ a1" in listing.stdout and "4 missions, 3 running" in listing.stdout

        same_listing(await overmind_json(settings, "ps", "--all"), await call(client, "ps"))
        same_listing(await overmind_json(settings, "ps", "--all", "--tree"), await call(client, "ps", tree=True))
        assert await overmind_json(settings, "result", "b") == await call(client, "result", id="b")
        running, theirs = await overmind_json(settings, "result", "root"), await call(client, "result", id="root")
        assert without(running, "progress") == without(theirs, "progress")
        assert without(running["progress"], "idle_s") == without(theirs["progress"], "idle_s")
        assert await overmind_json(settings, "logs", "b") == await call(client, "logs", id="b")
        raw_events = await call(client, "logs", id="root", format="events")
        assert await overmind_json(settings, "logs", "root", "--events") == raw_events

        info = await overmind_json(settings, "info", "root")
        assert info["mission"]["id"] == root["id"] and info["process_alive"] and info["server"]["alive"]
        assert {child["name"] for child in info["children"]} == {"a", "b"}
        status = await overmind_json(settings, "status")
        assert status["running"] == 3 and len(status["servers"]) == 1

        # top: the whole process tree of each mission, measured over an interval.
        frame = await overmind_json(settings, "top", "--once", "--interval", "0.3", "--sort", "rss")
        entries = {entry["name"]: entry for entry in frame["missions"]}
        assert set(entries) == {"root", "a", "a1"}
        assert entries["a"]["processes"] >= 2  # the claude stand-in and its grandchild
        assert all(entry["rss_bytes"] > 0 and entry["cpu_percent"] >= 0 for entry in entries.values())
        assert entries["root"]["tokens"]["total"] > 0 and entries["root"]["turns"] == 1
        rss = [entry["rss_bytes"] for entry in frame["missions"]]
        assert rss == sorted(rss, reverse=True)
        table = await overmind(settings, "top", "--interval", "0.2")  # not a terminal: one frame
        assert table.returncode == 0 and "3 running" in table.stdout and "PROCS" in table.stdout

        # kill from this terminal: the whole tree, children first; the owning server records it.
        killed = await overmind_json(settings, "kill", "root")
        assert [entry["name"] for entry in killed["ended"]] == ["a1", "a", "b", "root"]
        assert {entry["name"]: entry["how"] for entry in killed["ended"]} == {
            "a1": "SIGINT",
            "a": "SIGINT",
            "b": "already succeeded",
            "root": "SIGINT",
        }
        assert [entry["status"] for entry in killed["ended"]] == ["stopped", "stopped", "succeeded", "stopped"]
        assert (await call(client, "result", id="root"))["status"] == "stopped"
        grandchild = int(
            next(line for line in (await call(client, "logs", id="a"))["lines"] if "pid" in line).split()[-1]
        )
        await until_gone(grandchild)
        assert done["id"] in {entry["id"] for entry in (await call(client, "ps"))["missions"]}
    await assert_no_leftovers(settings)


async def test_logs_follow_wait_and_kill_options(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _process):
        talker = await call(client, "spawn", prompt=script("say first", "sleep 1", "say second", "answer the end"))
        await until_printed(client, talker["id"], "first")
        async with await anyio.open_process(
            [sys.executable, "-m", "overmind_mcp.console", "logs", "-f", talker["id"]], env=server_env(settings)
        ) as follower:
            waiter = await anyio.open_process(
                [sys.executable, "-m", "overmind_mcp.console", "wait", talker["name"]], env=server_env(settings)
            )
            assert follower.stdout is not None and follower.stderr is not None
            try:
                with anyio.fail_after(20):
                    printed = b"".join([chunk async for chunk in follower.stdout]).decode()
                    trailer = b"".join([chunk async for chunk in follower.stderr]).decode()
                    assert await follower.wait() == 0
                    assert await waiter.wait() == 0
            finally:
                # A failure here must not leave the followers running (and the test waiting on them).
                for process in (follower, waiter):
                    if process.returncode is None:
                        process.kill()
                await waiter.aclose()
        lines = printed.splitlines()
        assert lines[0].startswith("[init] session") and "first" in lines and "second" in lines
        assert lines[-1].startswith("[result ok (success)")
        # It stopped because the server recorded the end, not because the output went quiet.
        assert "succeeded" in trailer
        assert (await call(client, "result", id=talker["id"]))["status"] == "succeeded"

        # monitor follows every running mission from where it is, and (here) stops once none runs.
        watched = await call(client, "spawn", prompt=script("say up", "hang"), name="watched")
        await until_printed(client, watched["id"], "up")
        command = [sys.executable, "-m", "overmind_mcp.console", "monitor", "--exit-when-idle", "--json"]
        async with await anyio.open_process(command, env=server_env(settings)) as monitor:
            assert monitor.stdout is not None and monitor.stderr is not None
            with anyio.fail_after(20):
                said = b""
                while b"following 1 running" not in said:
                    said += await monitor.stderr.receive()
                # Interrupted, the stand-in prints its (aborted) result: a line written while monitor follows.
                await call(client, "kill", ids=["watched"])
                output = b"".join([chunk async for chunk in monitor.stdout])
                assert await monitor.wait() == 0
        monitored = [json.loads(line) for line in output.splitlines()]
        said_lines = [line for entry in monitored for line in entry.get("lines", [])]
        assert any(line.startswith("[result") for line in said_lines), monitored
        assert monitored[-1] == {"id": watched["id"], "name": "watched", "status": "stopped", "event": "ended"}

        failing = await call(client, "spawn", command=["sh", "-c", "echo oops; exit 3"])
        assert (await overmind(settings, "wait", failing["id"])).returncode == 3
        parent = await call(client, "spawn", prompt=script("say up", "hang"), name="parent")
        child = await call(client, "spawn", command=["sleep", "600"], name="child", parent="parent")
        assert (await overmind(settings, "wait", "child", "--timeout", "0.2")).returncode == 124
        timed_out = await overmind(settings, "wait", "child", "parent", "--any", "--timeout", "0.1", "--json")
        waited = json.loads(timed_out.stdout)
        assert timed_out.returncode == 124 and waited["timed_out"]
        assert {entry["name"] for entry in waited["pending"]} == {"child", "parent"}

        await until_printed(client, parent["id"], "up")
        alone = await overmind_json(settings, "kill", "parent", "--no-cascade")
        assert [(entry["name"], entry["status"], entry["how"]) for entry in alone["ended"]] == [
            ("parent", "stopped", "SIGINT")
        ]
        assert (await call(client, "result", id="child"))["status"] == "running"
        forced = await overmind_json(settings, "kill", child["id"], "--force")
        assert [(entry["status"], entry["how"]) for entry in forced["ended"]] == [("killed", "SIGKILL")]
        assert (await overmind(settings, "kill", "no-such-mission")).returncode == 3
    await assert_no_leftovers(settings)


async def test_missions_of_a_crashed_server(settings: Settings) -> None:
    try:
        await missions_of_a_crashed_server(settings)
    finally:
        # No server is left to end the children if an assertion failed half way.
        for leftover in processes_of(await mission_ids(settings)):
            leftover.kill()
    await assert_no_leftovers(settings)


async def missions_of_a_crashed_server(settings: Settings) -> None:
    async with stdio_server(settings) as (client, process):
        ending = await call(client, "spawn", prompt=script("say up", "sleep 1", "answer bye"), name="ending")
        stuck = await call(client, "spawn", prompt=script("say up", "hang"), name="stuck")
        await until_printed(client, ending["id"], "up")
        await until_printed(client, stuck["id"], "up")
        process.kill()
        process.wait()
    # No server is left to record anything: wait notices the end on the process's pidfd.
    waited = await overmind(settings, "wait", "ending")
    assert waited.returncode == 1 and "next server to start records how it ended" in waited.stdout
    listing = await overmind(settings, "ps")
    assert "running*" in listing.stdout and "the next server to start adopts it" in listing.stdout
    # A kill does not wait for a record that nobody will write.
    with anyio.fail_after(5):
        killed = await overmind_json(settings, "kill", "stuck")
    assert [(entry["status"], entry["how"]) for entry in killed["ended"]] == [("running", "SIGINT")]
    assert not psutil.pid_exists(stuck["pid"]) or psutil.Process(stuck["pid"]).status() == psutil.STATUS_ZOMBIE
    doctor = await overmind_json(settings, "doctor", "--port", "0")
    missions = next(check for check in doctor["checks"] if check["name"] == "missions")
    assert missions["status"] == "warn" and "2 marked running" in missions["detail"]


async def test_sessions_and_the_queue_agree_with_the_mcp_tools(settings: Settings) -> None:
    # Two processes at most: the next spawns wait in the server's queue, which only it holds in memory.
    async with stdio_server(settings, OVERMIND_MAX_CONCURRENT="2") as (client, _process):
        await call(client, "spawn", prompt=script("say hi"), name="chat", session=True)
        await call(client, "spawn", command=["sleep", "600"], name="busy")
        for name in ("first", "second"):
            await call(client, "spawn", command=["sleep", "600"], name=name)
        turn = await call(client, "send", id="chat", message=script("say again", "answer ok"), wait=True)
        assert turn["state"] == "done"
        same_listing(await overmind_json(settings, "ps"), await call(client, "ps"))
        listing = (await overmind(settings, "ps")).stdout
        assert "queued (#1)" in listing and "queued (#2)" in listing and "[idle] turn 2: ok" in listing
        ours, theirs = await overmind_json(settings, "result", "chat"), await call(client, "result", id="chat")
        assert ours["session_state"] == "idle" and without(ours, "progress") == without(theirs, "progress")
    await assert_no_leftovers(settings)
