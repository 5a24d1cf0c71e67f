"""Benchmark 3: ingestion of one child's large stream-json output.

The child is the stand-in claude with `fake: flood <MB>`: ~1 KB assistant lines shaped like the
real CLI's (ids, uuids, timestamps, usage). Through MCP: spawn it and `wait` for it; the
figure is the server process's own CPU seconds (user + system, psutil) over that span, per
100 MB of output, and its peak RSS growth (the kernel's VmHWM, reset just before the spawn).
The limit: a tight `json.loads` loop over the very same file's lines in this process, timed
with `time.process_time` — the least any follower that parses each line must spend.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tools.bench.common import Config, McpServer, median, mib, overmind_server, row

RSS_TARGET_MB = 30


def json_loads_cpu(path: Path) -> float:
    """CPU seconds of reading and parsing every line of `path` with json.loads, nothing else."""
    loads = json.loads
    started = time.process_time()
    with path.open("rb") as file:
        for line in file:
            loads(line)
    return time.process_time() - started


async def flood_once(server: McpServer, home: Path, megabytes: float) -> dict[str, Any]:
    peak_reset = server.reset_peak_rss()
    rss_before = server.rss()
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    spawned = await server.call("spawn", {"prompt": f"Talk a lot.\nfake: flood {megabytes}\nfake: answer done"})
    answer = await server.call("wait", {"ids": [spawned["id"]], "timeout_s": 600})
    seconds = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu_before
    if not answer["done"] or answer["done"][0]["status"] != "succeeded":
        raise RuntimeError(f"the flood did not succeed: {answer}")
    output = home / "missions" / spawned["id"] / "output.jsonl"
    size = output.stat().st_size
    return {
        "output": output,
        "bytes": size,
        "cpu_s": cpu,
        "wall_s": seconds,
        "cpu_s_per_100mb": cpu / (size / 1e8),
        "peak_rss_growth_mb": mib(server.peak_rss() - rss_before) if peak_reset else None,
    }


async def run(config: Config) -> dict[str, Any]:
    megabytes, rounds = (2, 1) if config.quick else (200, 3)
    home = config.scratch / "home"
    ours: list[dict[str, Any]] = []
    limit: list[float] = []
    async with overmind_server(home) as server:
        await flood_once(server, home, 1)  # warm-up: first-call work is not ingestion
        for number in range(rounds):
            measured = await flood_once(server, home, megabytes)
            # The limit parses the file just written, right after, so both see the same page cache state.
            limit.append(json_loads_cpu(measured["output"]) / (measured["bytes"] / 1e8))
            ours.append(measured)
            measured["output"].unlink()  # 200 MB a round: do not keep them
            print(f"[ingest] round {number + 1}/{rounds}: {measured['cpu_s_per_100mb']:.2f} s/100 MB", file=sys.stderr)
    per_100 = [entry["cpu_s_per_100mb"] for entry in ours]
    ratios = [m / b for m, b in zip(per_100, limit, strict=True)]
    growth = [entry["peak_rss_growth_mb"] for entry in ours if entry["peak_rss_growth_mb"] is not None]
    mb = ours[0]["bytes"] / 1e6
    rows = [
        row(
            f"ingest {mb:.0f} MB of stream-json: server CPU per 100 MB",
            ours=median(per_100),
            baseline=median(limit),
            unit="s",
            baseline_name="tight json.loads loop",
            spread_of="per-round ratio",
            spread_values=ratios,
            note=f"server wall time {median([entry['wall_s'] for entry in ours]):.1f} s per flood",
        )
    ]
    if growth:
        rows.append(
            row(
                f"ingest {mb:.0f} MB: server peak RSS growth",
                ours=median(growth),
                baseline=None,
                unit="MB",
                baseline_name="",
                spread_of="per-round growth (MB)",
                spread_values=growth,
                target=f"< {RSS_TARGET_MB} MB",
                met=median(growth) < RSS_TARGET_MB,
                digits=1,
            )
        )
    details = {
        "rounds": [{key: value for key, value in entry.items() if key != "output"} for entry in ours],
        "json_loads_cpu_s_per_100mb": limit,
    }
    return {"rows": rows, "details": details}
