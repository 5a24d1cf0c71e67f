"""Benchmark: missions on a Ray cluster against the same missions on this machine.

A real local cluster (tools/ray_cluster.py: a head and two workers on 127.0.0.1) and one
supervisor in this process, which is then a Ray driver. Local and Ray samples alternate.

- spawn latency: `spawn` until it returns (the child has started: for Ray, an actor was
  placed on a node and started it through its keeper), for `true`;
- spawn → result: the same mission until the supervisor has recorded its end;
- per-line streaming latency: a child prints its clock (time.time_ns) on each line, 20 ms
  apart; the latency of a line is from that clock to the moment the supervisor has read
  and parsed it (its output event on the bus). A local child writes the mission's file
  itself; a Ray child's line travels node spool → actor → pull → the mission's file;
- memory: the cluster's processes (Ray's own, the actors' workers, keepers and children)
  idle and with idle Ray children, per child; and what becoming a Ray driver costs the server.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil

from overmind_mcp.bus import OutputArrived
from overmind_mcp.models import SpawnRequest
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor
from tools.bench.common import Config, alternate, median, mib, row, summary
from tools.ray_cluster import LocalCluster, local_cluster

LINE_GAP_S = 0.02


def _printer(lines: int) -> list[str]:
    code = f"import time\nfor _ in range({lines}):\n    print(time.time_ns(), flush=True)\n    time.sleep({LINE_GAP_S})"
    return [sys.executable, "-c", code]


async def _spawn_latency(supervisor: Supervisor, runner: str) -> tuple[float, float]:
    """(ms until spawn returned, ms until the end was recorded) for a child that does nothing."""
    started = time.perf_counter()
    spawned = await supervisor.spawn(SpawnRequest(command=["true"], runner=runner))
    returned = time.perf_counter()
    [done] = (await supervisor.wait([spawned.id], timeout_s=120)).done
    ended = time.perf_counter()
    if done.status != "succeeded":
        raise RuntimeError(f"{runner}: {done}")
    return (returned - started) * 1000, (ended - started) * 1000


async def _line_latencies(supervisor: Supervisor, runner: str, lines: int) -> list[float]:
    """ms from each line's clock to the supervisor having parsed it."""
    latencies: list[float] = []
    with supervisor.bus.subscribe(lambda event: isinstance(event, OutputArrived)) as events:
        spawned = await supervisor.spawn(SpawnRequest(command=_printer(lines), runner=runner))
        with anyio.fail_after(120):
            while len(latencies) < lines:
                event = await events.next()
                now = time.time_ns()
                if not isinstance(event, OutputArrived) or event.mission_id != spawned.id:
                    continue
                mission = supervisor.ctx.roster.live(spawned.id) or supervisor.ctx.roster.recent(spawned.id)
                assert mission is not None
                latencies += [(now - int(text)) / 1e6 for text in list(mission.tail)[-event.lines :]]
    await supervisor.wait([spawned.id], timeout_s=60)
    return latencies


async def _memory(supervisor: Supervisor, cluster: LocalCluster, children: int, scratch: Path) -> dict[str, float]:
    """The cluster's RSS idle, then with `children` idle Ray children (each waits for a line on a FIFO)."""
    idle = cluster.rss_bytes()
    gate = scratch / "gate"
    os.mkfifo(gate)
    held = os.open(gate, os.O_RDWR)
    try:
        ids = [
            (await supervisor.spawn(SpawnRequest(command=["sh", "-c", f"read go < {gate}"], runner="ray"))).id
            for _ in range(children)
        ]
        loaded = cluster.rss_bytes()
        os.write(held, b"go\n" * children)
        await supervisor.wait(ids, timeout_s=120)
    finally:
        os.close(held)
    return {"idle": idle, "loaded": loaded}


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """This process talks to the cluster while the block lasts (see tools/ray_cluster.py)."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def run(config: Config) -> dict[str, Any]:
    rounds, per_round, lines, children = (1, 2, 10, 2) if config.quick else (3, 6, 50, 10)
    with local_cluster() as cluster, _environment(cluster.environment()):
        settings = Settings(
            home=config.scratch / "home",
            ray_address=cluster.address,
            max_concurrent=max(32, children + 2),
            kill_grace_s=1.0,
        )
        driver_before = psutil.Process().memory_info().rss
        async with Supervisor.running(settings) as supervisor:
            await _spawn_latency(supervisor, "ray")  # connects, and warms a worker on some node
            driver_after = psutil.Process().memory_info().rss
            spawn: dict[str, list[list[float]]] = {"local": [], "ray": []}
            end: dict[str, list[list[float]]] = {"local": [], "ray": []}
            streaming: dict[str, list[float]] = {"local": [], "ray": []}
            for number in range(rounds):
                this_spawn: dict[str, list[float]] = {"local": [], "ray": []}
                this_end: dict[str, list[float]] = {"local": [], "ray": []}
                for _sample in range(per_round):
                    for runner in alternate(number + _sample, "local", "ray"):
                        returned, ended = await _spawn_latency(supervisor, runner)
                        this_spawn[runner].append(returned)
                        this_end[runner].append(ended)
                for runner in alternate(number, "local", "ray"):
                    streaming[runner] += await _line_latencies(supervisor, runner, lines)
                for runner in ("local", "ray"):
                    spawn[runner].append(this_spawn[runner])
                    end[runner].append(this_end[runner])
            memory = await _memory(supervisor, cluster, children, config.scratch)

    def flat(samples: list[list[float]]) -> list[float]:
        return [value for values in samples for value in values]

    spawn_ray, spawn_local = median(flat(spawn["ray"])), median(flat(spawn["local"]))
    end_ray, end_local = median(flat(end["ray"])), median(flat(end["local"]))
    line_ray, line_local = median(streaming["ray"]), median(streaming["local"])
    per_child = (memory["loaded"] - memory["idle"]) / children
    return {
        "rows": [
            row(
                "ray: spawn returns (child started on its node), p50",
                ours=spawn_ray,
                baseline=spawn_local,
                unit="ms",
                baseline_name="local runner",
                spread_of="per-round p50, ray (ms)",
                spread_values=[median(values) for values in spawn["ray"]],
            ),
            row(
                "ray: spawn → end recorded, for `true`, p50",
                ours=end_ray,
                baseline=end_local,
                unit="ms",
                baseline_name="local runner",
                spread_of="per-round p50, ray (ms)",
                spread_values=[median(values) for values in end["ray"]],
            ),
            row(
                "ray: a printed line → parsed by the server, p50",
                ours=line_ray,
                baseline=line_local,
                unit="ms",
                baseline_name="local runner",
                spread_of="p90 ray, p90 local (ms)",
                spread_values=[summary(streaming["ray"])["p90"], summary(streaming["local"])["p90"]],
                note=f"{len(streaming['ray'])} lines each, {LINE_GAP_S * 1000:g} ms apart",
            ),
            row(
                f"ray: cluster memory with {children} idle Ray children",
                ours=mib(memory["loaded"]),
                baseline=mib(memory["idle"]),
                unit="MiB",
                baseline_name="the cluster idle (head and two workers)",
                spread_of="-",
                note=f"{mib(per_child):.0f} MiB per Ray child (its actor's worker, its keeper, the child); "
                f"cluster start {cluster.started_s:.1f} s",
            ),
            row(
                "ray: the server's memory as a Ray driver",
                ours=mib(driver_after),
                baseline=mib(driver_before),
                unit="MiB",
                baseline_name="before its first Ray mission",
                spread_of="-",
            ),
        ],
        "details": {
            "spawn_ms": {runner: summary(flat(values)) for runner, values in spawn.items()},
            "end_ms": {runner: summary(flat(values)) for runner, values in end.items()},
            "line_ms": {runner: summary(values) for runner, values in streaming.items()},
            "cluster_start_s": cluster.started_s,
        },
    }
