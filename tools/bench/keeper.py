"""Benchmark: what the keeper (runners/local/keeper.py) costs a spawn and a live child.

In one run, interleaved round by round, the local runner's `start` (the part the keeper
changes: the server forks and execs the child itself, or asks the state directory's keeper
to) for `/bin/true`, with the child's files opened as a spawn opens them; each child is
awaited, untimed, before the next round. The figure is the p50 of `start`, with and without
the keeper; the budget is 1 ms more.

Memory: `width` idle children (`sleep`) started through each, and the growth of the
resident set (RSS) of whatever holds them: this process alone without the keeper, this
process plus the keeper with it, divided by the number of children; the budget is 1 MB a
child. For the choice the keeper's docstring explains, the alternative is measured too: a
monitor process per mission (a `python -I -S` start, and the RSS of one idle such process).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import psutil

from overmind_mcp.runners.base import Handle, Launch
from overmind_mcp.runners.local import LocalRunner
from overmind_mcp.runners.local.kept import KeeperClient
from tools.bench.common import Config, alternate, median, row, spread


def _launch(directory: Path, index: int, argv: list[str]) -> Launch:
    mission_dir = directory / f"m{index}"
    mission_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Launch(
        mission_id=f"bench-{index}",
        argv=argv,
        cwd=directory,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        stdout_path=mission_dir / "output.jsonl",
        stderr_path=mission_dir / "stderr.log",
    )


async def _timed_start(runner: LocalRunner, launch: Launch) -> tuple[float, Handle]:
    started = time.perf_counter()
    handle = await runner.start(launch)
    return (time.perf_counter() - started) * 1000, handle


def _rss(pids: list[int]) -> int:
    return sum(psutil.Process(pid).memory_info().rss for pid in pids)


async def _rss_per_child(runner: LocalRunner, directory: Path, width: int, holders: list[int]) -> float:
    before = _rss(holders)
    handles = [await runner.start(_launch(directory, index, ["sleep", "600"])) for index in range(width)]
    after = _rss(holders)
    for handle in handles:
        handle.signal_group(signal.SIGKILL)
        await handle.wait()
    return (after - before) / width


def _monitor_process_cost() -> tuple[float, float]:
    """A monitor per mission: the start of `python -I -S` (ms), and one idle such process's RSS (bytes)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
    start_ms = (time.perf_counter() - started) * 1000
    idle = subprocess.Popen([sys.executable, "-I", "-S", "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        time.sleep(0.2)  # an idle process's resident set, once its start is over
        rss = psutil.Process(idle.pid).memory_info().rss
    finally:
        assert idle.stdin is not None
        idle.stdin.close()
        idle.wait()
    return start_ms, rss


async def run(config: Config) -> dict[str, Any]:
    rounds = 30 if config.quick else 300
    width = 10 if config.quick else 100
    state = config.scratch / "state"
    state.mkdir(mode=0o700)
    client = KeeperClient(state)
    kept, bare = LocalRunner(client), LocalRunner()
    times: dict[str, list[float]] = {"keeper": [], "bare": []}
    try:
        # The keeper starts once per state directory: not part of a spawn's figure.
        warm = await kept.start(_launch(config.scratch, 0, ["/bin/true"]))
        await warm.wait()
        for number in range(rounds):
            for name in alternate(number, "keeper", "bare"):
                runner = kept if name == "keeper" else bare
                elapsed, handle = await _timed_start(runner, _launch(config.scratch, number, ["/bin/true"]))
                await handle.wait()
                times[name].append(elapsed)
        assert client.keeper_pid is not None
        rss_kept = await _rss_per_child(kept, config.scratch / "rss-kept", width, [os.getpid(), client.keeper_pid])
        rss_bare = await _rss_per_child(bare, config.scratch / "rss-bare", width, [os.getpid()])
    finally:
        await client.aclose()
    monitor_start_ms, monitor_rss = await anyio.to_thread.run_sync(_monitor_process_cost)
    keeper_p50, bare_p50 = median(times["keeper"]), median(times["bare"])
    differences = [k - b for k, b in zip(times["keeper"], times["bare"], strict=True)]
    return {
        "rounds": rounds,
        "children": width,
        "rows": [
            row(
                "spawn: the runner's start, p50",
                ours=keeper_p50,
                baseline=bare_p50,
                unit="ms",
                baseline_name="the server forks the child itself",
                spread_of="keeper − bare, per round",
                spread_values=differences,
                target="≤ 1 ms more",
                met=keeper_p50 - bare_p50 <= 1.0,
            ),
            row(
                "RSS per idle child",
                # In KiB: a child costs the keeper a pidfd and a few hundred bytes, "0.00" in MiB.
                ours=kib(rss_kept),
                baseline=kib(rss_bare),
                unit="KiB",
                baseline_name="the server alone holds it",
                spread_of="one measurement",
                target="≤ 1 MB a child",
                met=rss_kept <= 1_000_000,
                note="server + keeper with it, the server without it",
            ),
            row(
                "the alternative: a monitor process per mission, its start",
                ours=monitor_start_ms,
                baseline=keeper_p50 - bare_p50,
                unit="ms",
                baseline_name="what the shared keeper adds",
                spread_of="one measurement",
            ),
            row(
                "the alternative: a monitor process per mission, its RSS",
                ours=kib(monitor_rss),
                baseline=kib(rss_kept),
                unit="KiB",
                baseline_name="the shared keeper, per child",
                spread_of="one measurement",
            ),
        ],
        "spawn_ms": {"keeper": spread(times["keeper"]), "bare": spread(times["bare"])},
    }


def kib(value: float) -> float:
    """Bytes as KiB."""
    return value / 1024
