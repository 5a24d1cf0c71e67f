"""Benchmark 3: ingestion of one child's large stream-json output.

The child is the stand-in claude with `fake: flood <MB>`: ~1 KB assistant lines shaped like the
real CLI's (ids, uuids, timestamps, usage). Through MCP: spawn it and `wait` for it; the
figure is the server process's own CPU seconds (user + system, psutil) over that span, per
100 MB of output, and its peak RSS growth (the kernel's VmHWM, reset just before the spawn).
The limit: a tight `json.loads` loop over the very same file's lines in this process, timed
with `time.process_time` — the least any follower that parses each line must spend.

Plain text: a `command` child (`yes <an 80-byte line> | head -c <bytes>`) prints plain lines,
measured the same way; its limit is a tight loop reading the same file's lines and decoding
each as UTF-8 — the least a follower that hands each line on as text must spend.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tools.bench.common import Config, McpServer, median, mib, overmind_server, row

RSS_TARGET_MB = 30
PLAIN_TARGET_RATIO = 2


PLAIN_LINE = "a plain line of build output: compiling module 42 of 97, no warnings so far, fine"


def plain_flood(megabytes: float) -> dict[str, Any]:
    """Spawn arguments for a command child printing `megabytes` of plain text lines."""
    script = f"yes '{PLAIN_LINE}' | head -c {int(megabytes * 1e6)}"
    return {"command": ["sh", "-c", script]}


def stream_json_flood(megabytes: float) -> dict[str, Any]:
    return {"prompt": f"Talk a lot.\nfake: flood {megabytes}\nfake: answer done"}


def decode_lines_cpu(path: Path) -> float:
    """CPU seconds of reading every line of `path` and decoding it, nothing else."""
    started = time.process_time()
    with path.open("rb") as file:
        for line in file:
            line.decode("utf-8", "replace")
    return time.process_time() - started


def json_loads_cpu(path: Path) -> float:
    """CPU seconds of reading and parsing every line of `path` with json.loads, nothing else."""
    loads = json.loads
    started = time.process_time()
    with path.open("rb") as file:
        for line in file:
            loads(line)
    return time.process_time() - started


async def flood_once(server: McpServer, home: Path, spawn_args: dict[str, Any]) -> dict[str, Any]:
    peak_reset = server.reset_peak_rss()
    rss_before = server.rss()
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    spawned = await server.call("spawn", spawn_args)
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
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    async with overmind_server(home) as server:
        await flood_once(server, home, stream_json_flood(1))  # warm-up: first-call work is not ingestion
        kinds = {
            "stream-json": (stream_json_flood, json_loads_cpu, "tight json.loads loop"),
            "plain text": (plain_flood, decode_lines_cpu, "tight line-reading + decoding loop"),
        }
        for kind, (flood, limit_cpu, limit_name) in kinds.items():
            ours: list[dict[str, Any]] = []
            limit: list[float] = []
            for number in range(rounds):
                measured = await flood_once(server, home, flood(megabytes))
                # The limit reads the file just written, right after, so both see the same page cache state.
                limit.append(limit_cpu(measured["output"]) / (measured["bytes"] / 1e8))
                ours.append(measured)
                measured["output"].unlink()  # 200 MB a round: do not keep them
                print(
                    f"[ingest] {kind} round {number + 1}/{rounds}: {measured['cpu_s_per_100mb']:.2f} s/100 MB",
                    file=sys.stderr,
                )
            rows += _rows(kind, ours, limit, limit_name)
            details[kind] = {
                "rounds": [{key: value for key, value in entry.items() if key != "output"} for entry in ours],
                "limit_cpu_s_per_100mb": limit,
            }
    return {"rows": rows, "details": details}


def _rows(kind: str, ours: list[dict[str, Any]], limit: list[float], limit_name: str) -> list[dict[str, Any]]:
    per_100 = [entry["cpu_s_per_100mb"] for entry in ours]
    ratios = [m / b for m, b in zip(per_100, limit, strict=True)]
    growth = [entry["peak_rss_growth_mb"] for entry in ours if entry["peak_rss_growth_mb"] is not None]
    mb = ours[0]["bytes"] / 1e6
    plain = kind == "plain text"
    rows = [
        row(
            f"ingest {mb:.0f} MB of {kind}: server CPU per 100 MB",
            ours=median(per_100),
            baseline=median(limit),
            unit="s",
            baseline_name=limit_name,
            spread_of="per-round ratio",
            spread_values=ratios,
            target=f"≤ {PLAIN_TARGET_RATIO}× the limit" if plain else None,
            met=median(ratios) <= PLAIN_TARGET_RATIO if plain else None,
            note=f"server wall time {median([entry['wall_s'] for entry in ours]):.1f} s per flood",
        )
    ]
    if growth:
        rows.append(
            row(
                f"ingest {mb:.0f} MB of {kind}: server peak RSS growth",
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
    return rows
