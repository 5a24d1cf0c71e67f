"""Benchmark 4: many concurrent idle children: the server's memory, and its CPU while they idle.

The children are the stand-in claude with `fake: hang` (it prints its `system/init` line, then
waits for a signal without using CPU), so each mission is what a real idle agent looks like to
the server: started, followed, parsed once, then silent. Once every child has printed its init
line, the server's CPU (psutil user + system) is read across an idle window with no client
activity. The baseline is the bare loop (common.py) holding the same number of the same
children over a window of the same length: its CPU is this process's `time.process_time`.
Ending them is timed too: one `kill(force=true)` against SIGKILL + reap in the bare loop.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio

from overmind_mcp.runners.local.watch import FileWatcher
from tools.bench.common import (
    FAKE_CLAUDE,
    BareLoop,
    Child,
    Config,
    McpServer,
    cpu_percent,
    median,
    mib,
    overmind_env,
    overmind_server,
    row,
)

PROMPT = "Wait for orders.\nfake: hang"
CPU_TARGET_PERCENT = 2.0


async def until_written(paths: list[Path], timeout_s: float) -> None:
    """Until every file (which must exist) is non-empty: woken by inotify, as the server itself is."""
    watcher = FileWatcher()
    async with anyio.create_task_group() as group:
        group.start_soon(watcher.run)
        with anyio.fail_after(timeout_s):
            for path in paths:
                with watcher.watch(path) as wakeup:
                    # Checked after the watch is in place, so a write in between is not missed.
                    while path.stat().st_size == 0:
                        await wakeup.wait()
        group.cancel_scope.cancel()


async def idle_mcp(server: McpServer, home: Path, count: int, window_s: float) -> dict[str, float]:
    rss_before = server.rss()
    ids = []
    started = time.perf_counter()
    for _ in range(count):
        ids.append((await server.call("spawn", {"prompt": PROMPT}))["id"])
    spawn_s = time.perf_counter() - started
    await until_written([home / "missions" / mission_id / "output.jsonl" for mission_id in ids], 120 + count)
    await server.call("status", {})  # one round trip: the server has handled what woke it meanwhile
    cpu_before, idle_started = server.cpu_seconds(), time.perf_counter()
    await anyio.sleep(window_s)  # the idle window itself: nothing is to happen in it
    cpu = server.cpu_seconds() - cpu_before
    idle_wall = time.perf_counter() - idle_started
    rss_idle = server.rss()
    started = time.perf_counter()
    ended = await server.call("kill", {"ids": ids, "force": True})
    kill_s = time.perf_counter() - started
    if len(ended["ended"]) != count:
        raise RuntimeError(f"kill ended {len(ended['ended'])} of {count}")
    return {
        "cpu_percent": cpu_percent(cpu, idle_wall),
        "rss_mb": mib(rss_idle),
        "rss_growth_mb": mib(rss_idle - rss_before),
        "spawn_ms_each": spawn_s * 1000 / count,
        "kill_ms": kill_s * 1000,
    }


async def idle_bare(bare: BareLoop, count: int, window_s: float) -> dict[str, float]:
    child = Child.claude(FAKE_CLAUDE, PROMPT)
    started = [bare.start(child) for _ in range(count)]
    await until_written([path for _, path in started], 120 + count)
    async with anyio.create_task_group() as group:
        # What the bare loop does while they idle: one pidfd wait per child.
        for process, _ in started:
            group.start_soon(bare.reap, process)
        cpu_before, idle_started = time.process_time(), time.perf_counter()
        await anyio.sleep(window_s)
        cpu = time.process_time() - cpu_before
        idle_wall = time.perf_counter() - idle_started
        kill_started = time.perf_counter()
        for process, _ in started:
            os.killpg(process.pid, signal.SIGKILL)
    kill_s = time.perf_counter() - kill_started
    return {"cpu_percent": cpu_percent(cpu, idle_wall), "kill_ms": kill_s * 1000}


async def run(config: Config) -> dict[str, Any]:
    count, window_s, rounds = (5, 0.5, 1) if config.quick else (200, 10.0, 3)
    home, bare_dir = config.scratch / "home", config.scratch / "bare"
    bare_dir.mkdir(parents=True)
    env = overmind_env(home)
    bare = BareLoop(bare_dir, env)
    ours: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    try:
        async with overmind_server(home, env=env) as server:
            await server.call("status", {})
            idle_rss = mib(server.rss())
            for number in range(rounds):
                # Alternate which side goes first: the machine's load drifts.
                if number % 2 == 0:
                    ours.append(await idle_mcp(server, home, count, window_s))
                    base.append(await idle_bare(bare, count, window_s))
                else:
                    base.append(await idle_bare(bare, count, window_s))
                    ours.append(await idle_mcp(server, home, count, window_s))
    finally:
        bare.kill_all()
    cpu = [entry["cpu_percent"] for entry in ours]
    growth = [entry["rss_growth_mb"] for entry in ours]
    kill = [entry["kill_ms"] for entry in ours]
    rows = [
        row(
            f"{count} idle children: server CPU over a {window_s:g} s idle window",
            ours=median(cpu),
            baseline=median([entry["cpu_percent"] for entry in base]),
            unit="% of a core",
            baseline_name="bare loop awaiting the same children",
            spread_of="per-round server CPU (%)",
            spread_values=cpu,
            target=f"< {CPU_TARGET_PERCENT:g}% of a core",
            met=median(cpu) < CPU_TARGET_PERCENT,
        ),
        row(
            f"{count} idle children: server RSS",
            ours=median([entry["rss_mb"] for entry in ours]),
            baseline=idle_rss,
            unit="MB",
            baseline_name="the same server with no children",
            spread_of="per-round growth (MB)",
            spread_values=growth,
            digits=1,
            note=f"{median(growth) * 1024 / count:.0f} KB per child",
        ),
        row(
            f"kill {count} idle children (force)",
            ours=median(kill),
            baseline=median([entry["kill_ms"] for entry in base]),
            unit="ms",
            baseline_name="bare loop: SIGKILL each group, reap",
            spread_of="per-round kill time (ms)",
            spread_values=kill,
        ),
    ]
    return {"rows": rows, "details": {"mcp": ours, "bare": base, "count": count, "window_s": window_s}}
