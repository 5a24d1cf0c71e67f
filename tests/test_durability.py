"""Crash safety with real server processes: SIGKILL, restarts, shared databases, retention.

The servers here are real `python -m overmind_mcp` stdio processes driven by the SDK's
client; the children are the stand-in claude and plain commands.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import anyio
import psutil
import pytest
from mcp import Client

from overmind_mcp.models import SpawnRequest
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import Store
from overmind_mcp.supervision.supervisor import Supervisor
from tests.conftest import assert_no_leftovers, processes_of
from tests.helpers import call, script, stdio_server, until_printed
from tests.test_supervisor_raw import until_gone

pytestmark = pytest.mark.anyio

# Crash tests start more children than the default admission limit.
MANY = {"OVERMIND_MAX_CONCURRENT": "64"}


async def all_lines(client: Client, mission_id: str) -> list[str]:
    lines, cursor = [], 0
    while True:
        page = await call(client, "logs", id=mission_id, cursor=cursor, limit=500)
        lines += page["lines"]
        cursor = page["next_cursor"]
        if not page["more"]:
            return lines


async def exit_recorded(mission_dir: Path, within: float = 5) -> dict[str, int | None]:
    """The exit status a mission's keeper wrote, once it has (a few ms after the process ends)."""
    with anyio.fail_after(within):
        while not (mission_dir / "exit.json").exists():  # noqa: ASYNC110 (written by another process)
            await anyio.sleep(0.01)
    record: dict[str, int | None] = json.loads((mission_dir / "exit.json").read_text())
    return record


async def test_sigkill_of_the_server_loses_nothing(settings: Settings) -> None:
    expected: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    async with stdio_server(settings, **MANY) as (client, process):
        for index in range(20):
            # Even children finish while no server runs; odd ones outlive the downtime.
            finishes_early = index % 2 == 0
            said = [f"child {index} line {k}" for k in range(5)]
            directives = [f"say {line}" for line in said]
            directives += ["grandchild"] if index == 0 else []
            directives += ["say ready"]
            directives += ["sleep 1.5" if finishes_early else "sleep 5", f"answer finished {index}"]
            spawned = await call(client, "spawn", prompt=script(*directives), name=f"child-{index}")
            expected[spawned["id"]] = [*said, "ready", f"finished {index}"]
            kinds[spawned["id"]] = "early" if finishes_early else "late"
        # Commands, each with an exit code of its own: half end while no server runs, half after it is back.
        codes: dict[str, int] = {}
        commands_early: list[str] = []
        for index in range(10):
            gate = settings.home / ("early-go" if index % 2 == 0 else "late-go")
            wait_for_gate = f"while [ ! -e '{gate}' ]; do sleep 0.05; done"
            command = ["sh", "-c", f"echo command {index}; {wait_for_gate}; exit {3 + index}"]
            spawned = await call(client, "spawn", command=command, name=f"command-{index}")
            codes[spawned["id"]] = 3 + index
            if index % 2 == 0:
                commands_early.append(spawned["id"])
        for mission_id in codes:
            await until_printed(client, mission_id, "command")
        for mission_id in expected:
            await until_printed(client, mission_id, "ready")
        pids = {entry["id"]: entry for entry in (await call(client, "ps"))["missions"]}
        assert all(pids[mission_id]["status"] == "running" for mission_id in expected)
        process.kill()
        process.wait()

    # While no server runs, the early children end; one leaves a grandchild behind.
    store = await Store.open(settings.database_path)
    rows = {row.id: row for row in await store.missions()}
    await store.close()
    for mission_id, kind in kinds.items():
        if kind == "early":
            await until_gone(rows[mission_id].pid or 0, within=20)
    (settings.home / "early-go").touch()
    for mission_id in commands_early:
        await until_gone(rows[mission_id].pid or 0, within=20)
        # Its exit status is on disk beside its output as it ends (its keeper reaps it just after), unwatched.
        exit_record = await exit_recorded(Path(rows[mission_id].output_path).parent)
        assert exit_record["code"] == codes[mission_id]
    orphaned = processes_of(set(rows))
    assert orphaned, "the early child's grandchild should have outlived its parent"

    async with stdio_server(settings, **MANY) as (client, _process):
        # Every process still carrying one of our mission ids is tracked by a running mission.
        listing = {entry["id"]: entry for entry in (await call(client, "ps", limit=1000))["missions"]}
        assert len(listing) == 30
        for mission_id in codes:
            assert listing[mission_id]["status"] == ("failed" if mission_id in commands_early else "running")
        for leftover in processes_of(set(rows)):
            try:
                mission_id = leftover.environ()["OVERMIND_MISSION_ID"]
            except psutil.NoSuchProcess:
                continue  # a gate's `sleep 0.05`, ended since the listing
            assert listing[mission_id]["status"] == "running", f"untracked process {leftover.pid}"
        (settings.home / "late-go").touch()
        waited = await call(client, "wait", ids=list(expected), timeout_s=30)
        assert not waited["timed_out"]
        results = {result["id"]: result for result in waited["done"]}
        assert len(results) == 20
        for mission_id, lines in expected.items():
            result = results[mission_id]
            assert result["status"] == "succeeded", result
            assert result["text"] == lines[-1]
            assert result["session_id"]
            assert result["cost_usd"] > 0
            printed = [
                line
                for line in await all_lines(client, mission_id)
                if not line.startswith(("[", "→", "←", "grandchild pid"))
            ]
            assert printed == lines, f"lines lost for {mission_id}"
        commands = await call(client, "wait", ids=list(codes), timeout_s=30)
        assert not commands["timed_out"]
        for result in commands["done"]:
            # A command's only outcome is its exit status: its keeper kept it through the crash.
            assert (result["status"], result["exit_code"]) == ("failed", codes[result["id"]]), result
            index = codes[result["id"]] - 3
            assert await all_lines(client, result["id"]) == [f"command {index}"]
    await assert_no_leftovers(settings)


async def test_sigkill_during_writes_leaves_a_sound_database(settings: Settings) -> None:
    spawned = 0
    enough = anyio.Event()

    async def churn(client: Client, worker: int) -> None:
        nonlocal spawned
        for index in range(1000):
            result = await client.call_tool("spawn", {"command": ["true"], "name": f"w{worker}-{index}"})
            assert not result.is_error
            spawned += 1
            if spawned >= 60:
                enough.set()

    try:
        async with stdio_server(settings, **MANY) as (client, process), anyio.create_task_group() as task_group:
            for worker in range(4):
                task_group.start_soon(churn, client, worker)
            with anyio.fail_after(30):
                await enough.wait()
            # Killed in the middle of four streams of spawns, each a few writes.
            process.kill()
            process.wait()
            task_group.cancel_scope.cancel()
    except* Exception:
        pass  # the calls in flight die with the server's connection
    with sqlite3.connect(settings.database_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    async with Supervisor.running(settings) as supervisor:
        counts = (await supervisor.status()).missions_by_status
        assert counts.get("running", 0) == 0, counts
        assert sum(counts.values()) >= 60
    await assert_no_leftovers(settings)


async def test_two_servers_share_one_database(settings: Settings) -> None:
    async with stdio_server(settings, **MANY) as (first, _a), stdio_server(settings, **MANY) as (second, _b):
        mine = await call(first, "spawn", command=["sleep", "600"], name="shared-name")
        refused = await second.call_tool("spawn", {"command": ["true"], "name": "shared-name"})
        assert refused.is_error and "already used" in refused.content[0].text
        theirs = await call(second, "spawn", command=["sh", "-c", "sleep 0.5; echo from B"], name="b-task")
        # Each sees the other's missions, and can wait for them.
        seen = {entry["name"] for entry in (await call(second, "ps"))["missions"]}
        assert {"shared-name", "b-task"} <= seen
        waited = await call(first, "wait", ids=["b-task"], timeout_s=20)
        assert waited["done"][0]["text"] == "from B"
        assert waited["done"][0]["id"] == theirs["id"]
        # A kill from the other server ends the process and the owner records a stop on request.
        killed = await call(second, "kill", ids=["shared-name"])
        assert killed["ended"][0]["how"] == "SIGINT"
        result = await call(first, "result", id=mine["id"])
        assert result["status"] == "stopped"
        assert (await call(second, "result", id=mine["id"]))["status"] == "stopped"
    await assert_no_leftovers(settings)


async def test_a_detached_mission_outlives_its_server_and_is_readopted(settings: Settings) -> None:
    async with stdio_server(settings, **MANY) as (client, _process):
        kept = await call(client, "spawn", prompt=script("say begun", "sleep 1.5", "answer kept"), detach=True)
        ended = await call(client, "spawn", command=["sleep", "600"])
        await until_printed(client, kept["id"], "begun")
    assert psutil.pid_exists(kept["pid"])
    # The start time that names the process for good is stored (read off the event loop, after spawn answered).
    store = await Store.open(settings.database_path)
    try:
        stored = await store.get(kept["id"])
    finally:
        await store.close()
    assert stored is not None and stored.proc_start == pytest.approx(psutil.Process(kept["pid"]).create_time())
    async with stdio_server(settings, **MANY) as (client, _process):
        assert (await call(client, "result", id=ended["id"]))["status"] == "stopped"
        waited = await call(client, "wait", ids=[kept["id"]], timeout_s=20)
        assert (waited["done"][0]["status"], waited["done"][0]["text"]) == ("succeeded", "kept")
    await assert_no_leftovers(settings)


async def test_an_adopted_mission_can_be_killed_and_keeps_its_timeout(settings: Settings) -> None:
    async with stdio_server(settings, **MANY) as (client, process):
        victim = await call(client, "spawn", prompt=script("say up", "grandchild", "hang"), name="victim")
        timed = await call(client, "spawn", prompt=script("say up", "hang"), timeout_s=5)
        await until_printed(client, victim["id"], "grandchild pid")
        await until_printed(client, timed["id"], "up")
        log = (await call(client, "logs", id=victim["id"]))["lines"]
        grandchild = int(next(line for line in log if "grandchild pid" in line).split()[-1])
        process.kill()
        process.wait()
    async with stdio_server(settings, **MANY) as (client, _process):
        killed = await call(client, "kill", ids=["victim"])
        assert killed["ended"][0]["status"] in {"stopped", "killed"}
        await until_gone(grandchild)
        waited = await call(client, "wait", ids=[timed["id"]], timeout_s=20)
        assert waited["done"][0]["status"] == "timed_out"
    await assert_no_leftovers(settings)


async def test_results_survive_restarts_and_retention_prunes_old_trees(settings: Settings) -> None:
    async with Supervisor.running(settings) as supervisor:
        parent = await supervisor.spawn(SpawnRequest(command=["echo", "old parent"], name="old"))
        child = await supervisor.spawn(SpawnRequest(command=["echo", "old child"], parent="old"))
        recent = await supervisor.spawn(SpawnRequest(command=["echo", "recent"]))
        await supervisor.wait([parent.id, child.id, recent.id], timeout_s=10)
    async with Supervisor.running(settings) as supervisor:
        assert (await supervisor.result(child.id)).text == "old child"
    store = await Store.open(settings.database_path)
    long_ago = time.time() - 40 * 86400
    for mission_id in (parent.id, child.id):
        await store.update(mission_id, ended_at=long_ago)
    await store.close()
    async with Supervisor.running(settings) as supervisor:
        assert {row.id for row in await supervisor.ctx.store.missions()} == {recent.id}
        assert not (settings.missions_dir / parent.id).exists()
        assert (await supervisor.result(recent.id)).text == "recent"


async def test_a_child_whose_pid_was_never_recorded_is_found_and_adopted(settings: Settings) -> None:
    async with Supervisor.running(settings) as supervisor:
        mission = await supervisor.spawn(SpawnRequest(command=["sleep", "600"], detach=True))
    # As if the server had died between starting the child and recording its pid.
    store = await Store.open(settings.database_path)
    await store.update(mission.id, pid=None, pgid=None, proc_start=None)
    await store.close()
    async with Supervisor.running(settings) as supervisor:
        row = await supervisor.mission(mission.id)
        assert (row.status, row.pid) == ("running", mission.pid)
        outcome = await supervisor.kill([mission.id])
        assert outcome.ended[0].how == "SIGINT"
    await assert_no_leftovers(settings)


async def test_a_kill_from_another_process_is_not_undone_by_a_restart_policy(settings: Settings) -> None:
    async with stdio_server(settings, **MANY) as (owner, _a), stdio_server(settings, **MANY) as (other, _b):
        stubborn = await call(owner, "spawn", command=["sleep", "600"], restart="always", name="persistent")
        killed = await call(other, "kill", ids=["persistent"])
        assert killed["ended"][0]["how"] == "SIGINT"
        result = await call(owner, "result", id=stubborn["id"])
        assert (result["status"], result["restarts"]) == ("stopped", 0)
    await assert_no_leftovers(settings)


async def test_the_disk_holds_every_one_of_a_thousand_short_missions(settings: Settings) -> None:
    many = settings.model_copy(update={"max_concurrent": 16})
    async with Supervisor.running(many) as supervisor:
        spawned = [
            await supervisor.spawn(SpawnRequest(command=["echo", f"mission {index}"], name=f"short-{index}"))
            for index in range(1000)
        ]
        answer = await supervisor.wait([mission.id for mission in spawned], timeout_s=300)
        assert not answer.timed_out
    # Read back cold, from the files alone: the database and each mission's output.
    store = await Store.open(settings.database_path)
    rows = {row.name: row for row in await store.missions()}
    await store.close()
    assert len(rows) == 1000
    for index in range(1000):
        row = rows[f"short-{index}"]
        assert (row.status, row.exit_code) == ("succeeded", 0)
        assert row.result is not None and row.result["text"] == f"mission {index}"
        assert await anyio.Path(row.output_path).read_text() == f"mission {index}\n"
    with sqlite3.connect(settings.database_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
