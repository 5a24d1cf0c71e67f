"""Missions on a real Ray cluster: placement, the same output and results as local, kill, sessions,
a server SIGKILL and re-attach, a node that dies, and twenty children over the nodes."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import anyio
import psutil
import pytest

from overmind_mcp.errors import InvalidRequest
from overmind_mcp.models import LogPage, MissionResult, SpawnRequest
from overmind_mcp.runners.base import RunRecord
from overmind_mcp.runners.ray import RayRunner
from overmind_mcp.runners.ray.actor import spool_root
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import Store
from overmind_mcp.supervision.supervisor import Supervisor
from tests.conftest import assert_no_leftovers, processes_of
from tests.helpers import call, script, stdio_server, until_printed
from tests.ray.conftest import FIGURES
from tests.test_supervisor_raw import until_gone
from tools.ray_cluster import LocalCluster

pytestmark = pytest.mark.anyio

# What differs between two runs of the same thing, whatever runs them.
_PER_RUN = {"id", "name", "started_at", "ended_at", "duration_ms", "session_id", "node", "progress"}


def node_id_of(result: MissionResult) -> str:
    assert result.node is not None, result
    return result.node.split()[1]


def named(cluster: LocalCluster, result: MissionResult) -> str:
    """The name (head, alpha, beta) of the node a mission ran on."""
    short = node_id_of(result)
    [name] = [name for name, node_id in cluster.node_ids.items() if node_id.startswith(short)]
    return name


def same_lines(ours: LogPage, theirs: LogPage, *, session_ids: tuple[str | None, str | None]) -> bool:
    """Whether two readable logs say the same, but for each run's own session id."""
    said = "\n".join(ours.lines)
    if session_ids[0] and session_ids[1]:
        said = said.replace(session_ids[0], session_ids[1])
    return said == "\n".join(theirs.lines)


async def spool_of(supervisor: Supervisor, mission_id: str) -> Path:
    """Where a Ray mission's run keeps its output on its node."""
    state = (await supervisor.mission(mission_id)).runner_state or {}
    return spool_root() / state["namespace"] / state["actor"]


def keepers_of(spools: list[Path]) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "keeper.py" in cmdline and any(str(spool) in cmdline for spool in spools):
            found.append(process)
    return found


def contents(path: str) -> bytes:
    return Path(path).read_bytes()


async def run(supervisor: Supervisor, request: SpawnRequest, timeout_s: float = 60) -> MissionResult:
    spawned = await supervisor.spawn(request)
    [done] = (await supervisor.wait([spawned.id], timeout_s=timeout_s)).done
    return done


async def test_missions_go_to_the_nodes_their_resources_name(ray_settings: Settings, ray_cluster: LocalCluster) -> None:
    async with Supervisor.running(ray_settings) as supervisor:
        for name in ("alpha", "beta", "head"):
            done = await run(supervisor, SpawnRequest(command=["echo", name], runner="ray", resources={name: 1}))
            assert (done.status, done.text, named(ray_cluster, done)) == ("succeeded", name, name)
            [listed] = [entry for entry in (await supervisor.ps()).missions if entry.id == done.id]
            assert listed.node == done.node
        local = await run(supervisor, SpawnRequest(command=["true"]))
        assert local.node is None
        with pytest.raises(InvalidRequest, match="no live node of the Ray cluster has that much"):
            await supervisor.spawn(SpawnRequest(command=["true"], runner="ray", resources={"gamma": 1}))
        with pytest.raises(InvalidRequest, match='runner="ray"'):
            await supervisor.spawn(SpawnRequest(command=["true"], resources={"alpha": 1}))
        with pytest.raises(InvalidRequest, match="positive amount"):
            await supervisor.spawn(SpawnRequest(command=["true"], runner="ray", resources={"alpha": -1}))
    await assert_no_leftovers(ray_settings)


async def test_output_and_result_are_those_of_a_local_child(ray_settings: Settings, tmp_path: Path) -> None:
    lines = "; ".join(f"echo line {number}" for number in range(200))
    command = ["sh", "-c", f"{lines}; echo to stderr >&2; printf 'no newline'; exit 3"]
    claude_task = script("say thinking", 'tool Bash {"command": "echo hi"}', "answer all done")
    async with Supervisor.running(ray_settings.model_copy(update={"runner": "ray"})) as supervisor:
        runs = {}
        for kind, request in (
            ("command", SpawnRequest(command=command, cwd=str(tmp_path))),
            ("claude", SpawnRequest(prompt=claude_task)),
        ):
            runs[kind] = (
                await run(supervisor, request),
                await run(supervisor, request.model_copy(update={"runner": "local"})),
            )
        for on_ray, local in runs.values():
            assert on_ray.node is not None and local.node is None
            assert on_ray.model_dump(exclude=_PER_RUN) == local.model_dump(exclude=_PER_RUN)
            ray_page, local_page = await supervisor.logs(on_ray.id), await supervisor.logs(local.id)
            assert same_lines(ray_page, local_page, session_ids=(on_ray.session_id, local.session_id))
        on_ray, local = runs["command"]
        ray_row, local_row = await supervisor.mission(on_ray.id), await supervisor.mission(local.id)
        # A command's output is the same to the byte (a Claude child's differs in ids and durations).
        assert contents(ray_row.output_path) == contents(local_row.output_path)
        for log_format in ("text", "events"):
            ray_page = await supervisor.logs(on_ray.id, format=log_format)
            local_page = await supervisor.logs(local.id, format=log_format)
            assert ray_page.model_dump(exclude={"id", "name"}) == local_page.model_dump(exclude={"id", "name"})
        assert contents(ray_row.stderr_path) == contents(local_row.stderr_path) == b"to stderr\n"
        assert (on_ray.status, on_ray.exit_code, on_ray.end_reason) == ("failed", 3, "exited with code 3")
        assert on_ray.text is not None and on_ray.text.endswith("line 199\nno newline")
        assert runs["claude"][0].text == "all done"
    await assert_no_leftovers(ray_settings)


async def test_kill_leaves_nothing_on_the_node(ray_settings: Settings, ray_cluster: LocalCluster) -> None:
    import ray

    # A child and a grandchild that both ignore SIGINT and SIGTERM: only the ladder's SIGKILL ends them.
    stubborn = ["sh", "-c", "trap '' INT TERM; sh -c \"trap '' INT TERM; sleep 300\" & echo ready; wait"]
    async with Supervisor.running(ray_settings) as supervisor:
        spawned = await supervisor.spawn(SpawnRequest(command=stubborn, runner="ray", resources={"beta": 1}))
        row = await supervisor.mission(spawned.id)
        assert row.runner_state is not None
        actor_name, namespace = row.runner_state["actor"], row.runner_state["namespace"]
        while "ready" not in (await supervisor.logs(spawned.id)).lines:
            await supervisor.wait([spawned.id], timeout_s=0.2)
        # The child, the grandchild's shell and its sleep.
        assert len(processes_of({spawned.id})) == 3
        outcome = await supervisor.kill([spawned.id])
        assert [(entry.status, entry.how) for entry in outcome.ended] == [("killed", "SIGKILL")]
        assert not processes_of({spawned.id})
        with pytest.raises(ValueError):
            await anyio.to_thread.run_sync(ray.get_actor, actor_name, namespace)
        assert not (spool_root() / namespace).exists()
    await assert_no_leftovers(ray_settings)


async def test_a_session_takes_its_input_through_the_actor(ray_settings: Settings) -> None:
    async with Supervisor.running(ray_settings) as supervisor:
        spawned = await supervisor.spawn(
            SpawnRequest(session=True, prompt=script("answer first"), runner="ray", resources={"alpha": 1})
        )
        turn = await supervisor.send(spawned.id, script("answer second"), timeout_s=60)
        assert (turn.state, turn.text) == ("done", "second")
        outcome = await supervisor.kill([spawned.id])
        assert [entry.how for entry in outcome.ended] == ["end of input"]
        assert (await supervisor.result(spawned.id)).text == "second"
    await assert_no_leftovers(ray_settings)


async def test_a_server_killed_mid_mission_is_succeeded_by_one_that_gets_the_real_exit_code(
    ray_settings: Settings, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    ends_while_down, ends_after = tmp_path / "ends-while-down", tmp_path / "ends-after"
    for fifo in (ends_while_down, ends_after):
        os.mkfifo(fifo)
    settings = {"OVERMIND_RUNNER": "ray", "OVERMIND_RAY_ADDRESS": ray_cluster.address}

    def reads(fifo: Path, code: int) -> list[str]:
        return ["sh", "-c", f'echo one; read word < {fifo}; echo "two $word"; exit {code}']

    async with stdio_server(ray_settings, **settings) as (client, server):
        early = await call(client, "spawn", command=reads(ends_while_down, 7), resources={"alpha": 1})
        late = await call(client, "spawn", command=reads(ends_after, 0), resources={"beta": 1})
        for spawned in (early, late):
            await until_printed(client, spawned["id"], "one")
        server.send_signal(signal.SIGKILL)
        server.wait()
    store = await Store.open(ray_settings.database_path)
    early_pid = (await store.get(early["id"])).pid  # type: ignore[union-attr]
    await store.close()
    # While no server runs, one child ends: its actor keeps its exit status.
    ends_while_down.write_text("down\n")
    await until_gone(early_pid or 0, within=20)
    async with stdio_server(ray_settings, **settings) as (client, _server):
        [done] = (await call(client, "wait", ids=[early["id"]], timeout_s=60))["done"]
        assert (done["status"], done["exit_code"], done["end_reason"]) == ("failed", 7, "exited with code 7")
        assert (await call(client, "logs", id=early["id"]))["lines"] == ["one", "two down"]
        # The other was re-attached while it ran, and its output goes on where the first server left it.
        ends_after.write_text("later\n")
        [done] = (await call(client, "wait", ids=[late["id"]], timeout_s=60))["done"]
        assert (done["status"], done["exit_code"]) == ("succeeded", 0)
        assert done["node"].startswith("127.0.0.1 ")
        assert (await call(client, "logs", id=late["id"]))["lines"] == ["one", "two later"]
    await assert_no_leftovers(ray_settings)


async def test_a_child_on_a_node_reaches_akasha_on_the_server(
    ray_settings: Settings, ray_cluster: LocalCluster
) -> None:
    settings = {"OVERMIND_RUNNER": "ray", "OVERMIND_RAY_ADDRESS": ray_cluster.address}
    remember = 'mcp remember {"content": "written on a node", "key": "from-ray"}'
    async with stdio_server(ray_settings, **settings) as (client, _server):
        spawned = await call(client, "spawn", prompt=script(remember, "answer {last}"), resources={"alpha": 1})
        [done] = (await call(client, "wait", ids=[spawned["id"]], timeout_s=60))["done"]
        assert done["status"] == "succeeded", done
        found = await call(client, "recall", key="from-ray")
        assert [(hit["content"], hit["mission_id"]) for hit in found["hits"]] == [("written on a node", spawned["id"])]
    await assert_no_leftovers(ray_settings)


async def test_a_node_that_dies_ends_its_missions_as_lost_and_restarts_apply(
    ray_settings: Settings, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    # Its first run marks that it ran, then waits; a run that finds the mark succeeds at once.
    marker = tmp_path / "ran-once"
    once = ["sh", "-c", f"echo run; [ -e {marker} ] && exit 0; touch {marker}; exec sleep 300"]
    async with Supervisor.running(ray_settings) as supervisor:
        restarting = await supervisor.spawn(
            SpawnRequest(command=once, runner="ray", resources={"worker": 1}, restart="on-failure")
        )
        while not marker.exists():
            await supervisor.wait([restarting.id], timeout_s=0.2)
        doomed = named(ray_cluster, await supervisor.result(restarting.id))
        lost = await supervisor.spawn(
            SpawnRequest(command=["sh", "-c", "echo up; exec sleep 300"], runner="ray", resources={doomed: 1})
        )
        while "up" not in (await supervisor.logs(lost.id)).lines:
            await supervisor.wait([lost.id], timeout_s=0.2)
        spools = [await spool_of(supervisor, mission_id) for mission_id in (restarting.id, lost.id)]
        pids = [process.pid for process in processes_of({restarting.id, lost.id}) + keepers_of(spools)]
        try:
            ray_cluster.kill_node(doomed)
            [done] = (await supervisor.wait([lost.id], timeout_s=60)).done
            assert done.status == "lost"
            assert done.end_reason is not None and "died" in done.end_reason, done.end_reason
            # The children died with their actors (their keepers saw to it, and removed their spools).
            for pid in pids:
                await until_gone(pid, within=20)
            assert not [spool for spool in spools if spool.exists()]
            [again] = (await supervisor.wait([restarting.id], timeout_s=90)).done
            assert (again.status, again.restarts) == ("succeeded", 1)
            assert named(ray_cluster, again) != doomed
            assert (await supervisor.logs(restarting.id)).lines[0] == "run"
        finally:
            ray_cluster.add_node(doomed)
    await assert_no_leftovers(ray_settings)


async def test_twenty_children_spread_over_the_nodes(
    ray_settings: Settings, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    # Every child waits for a line on one FIFO, held open here so that none waits to open it.
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    held = os.open(gate, os.O_RDWR)
    spawned: dict[int, str] = {}
    try:
        async with Supervisor.running(ray_settings.model_copy(update={"runner": "ray"})) as supervisor:

            async def one(number: int) -> None:
                # Concurrent readers may share out the bytes oddly, but each read ends at a newline of its own.
                request = SpawnRequest(command=["sh", "-c", f"read go < {gate}; echo {number}"])
                spawned[number] = (await supervisor.spawn(request)).id

            async with anyio.create_task_group() as group:
                for number in range(20):
                    group.start_soon(one, number)
            FIGURES["cluster memory with 20 Ray children running"] = f"{ray_cluster.rss_bytes() / 2**20:.0f} MiB"
            os.write(held, b"go\n" * 20)
            done = (await supervisor.wait(list(spawned.values()), timeout_s=120)).done
    finally:
        os.close(held)
    assert sorted((result.status, result.text) for result in done) == sorted(
        ("succeeded", str(number)) for number in range(20)
    )
    assert {named(ray_cluster, result) for result in done} == {"head", "alpha", "beta"}
    await assert_no_leftovers(ray_settings)
    assert not keepers_of([spool_root()])


async def test_a_server_whose_cluster_does_not_answer_starts_and_keeps_its_ray_missions(
    ray_settings: Settings, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    reachable = {"OVERMIND_RUNNER": "ray", "OVERMIND_RAY_ADDRESS": ray_cluster.address}
    async with stdio_server(ray_settings, **reachable) as (client, server):
        spawned = await call(client, "spawn", command=["sh", "-c", f"echo up; read x < {gate}"], resources={"beta": 1})
        await until_printed(client, spawned["id"], "up")
        server.send_signal(signal.SIGKILL)
        server.wait()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nowhere = {"OVERMIND_RAY_ADDRESS": f"127.0.0.1:{sock.getsockname()[1]}", "OVERMIND_RAY_START_TIMEOUT_S": "2"}
        async with stdio_server(ray_settings, **nowhere) as (client, _server):
            # It started, and the mission is still its: not settled as lost while nobody can see it.
            [listed] = (await call(client, "ps"))["missions"]
            assert (listed["id"], listed["status"]) == (spawned["id"], "running")
            [ended] = (await call(client, "kill", ids=[spawned["id"]]))["ended"]
            assert ended["status"] == "lost"
            [done] = (await call(client, "wait", ids=[spawned["id"]], timeout_s=10))["done"]
            assert "did not answer" in done["end_reason"], done
    # Its actor did run on: end it from here, through the runner, as a server would once the cluster answers.
    store = await Store.open(ray_settings.database_path)
    row = await store.get(spawned["id"])
    await store.close()
    assert row is not None and row.runner_state is not None
    runner = RayRunner(ray_cluster.address, row.runner_state["namespace"])
    record = RunRecord(pid=row.pid, pgid=row.pgid, start_time=row.proc_start, extra=row.runner_state)
    handle = await runner.reattach(spawned["id"], record)
    assert handle is not None and handle.running
    handle.signal_group(signal.SIGKILL)
    assert (await handle.wait()).signal == signal.SIGKILL
    await runner.aclose()
    await assert_no_leftovers(ray_settings)
