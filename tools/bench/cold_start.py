"""Benchmark 5: cold start, `initialize` + `tools/list` over stdio, against a bare `MCPServer`.

Timed from just before the client starts the server process to the `tools/list` answer:
interpreter start, imports, the server's start-up work (overmind: its lifespan opens the
store and the memory, registers itself, looks for orphans), the initialize handshake and the
listing. The limit is `trivial_server.py`: `MCPServer` with one trivial tool, started the
same way. Both run in alternation; overmind uses a state directory that already exists
(created by a warm-up start), as on every start but the first. A third starter runs overmind
on the SDK's stdio transport (`OVERMIND_STDIO=sdk`).

Every server here may write its bytecode (`PYTHONDONTWRITEBYTECODE` is not passed on), so the
warm-up start compiles what each imports and the timed starts read it, as an installed package
does (pip compiles on install): otherwise overmind's few hundred modules would be compiled on
every start while the SDK's come precompiled from site-packages.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tools.bench.common import Config, alternate, child_env, mcp_server, median, overmind_env, overmind_server, row

TARGET_RATIO = 1.2


def with_bytecode(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name != "PYTHONDONTWRITEBYTECODE"}


async def start_overmind(config: Config, **extra: str) -> float:
    home = config.scratch / "home"
    started = time.perf_counter()
    async with overmind_server(home, env=with_bytecode(overmind_env(home) | extra)) as server:
        await server.client.list_tools()
        return (time.perf_counter() - started) * 1000


async def start_trivial(config: Config) -> float:
    started = time.perf_counter()
    args = ["-m", "tools.bench.trivial_server"]
    async with mcp_server(sys.executable, args, with_bytecode(child_env()), marker="trivial_server") as server:
        await server.client.list_tools()
        return (time.perf_counter() - started) * 1000


async def run(config: Config) -> dict[str, Any]:
    rounds = 2 if config.quick else 10
    starters = {
        "overmind": start_overmind,
        "trivial": start_trivial,
        "overmind_sdk_stdio": lambda config: start_overmind(config, OVERMIND_STDIO="sdk"),
    }
    for start in starters.values():
        await start(config)  # warm-up: page cache, bytecode caches, overmind's state directory
    times: dict[str, list[float]] = {name: [] for name in starters}
    for number in range(rounds):
        for name in (*alternate(number, "overmind", "trivial"), "overmind_sdk_stdio"):
            times[name].append(await starters[name](config))
    ours, base = median(times["overmind"]), median(times["trivial"])
    ratios = [m / b for m, b in zip(times["overmind"], times["trivial"], strict=True)]
    return {
        "rows": [
            row(
                "cold start: spawn server + initialize + tools/list",
                ours=ours,
                baseline=base,
                unit="ms",
                baseline_name="bare MCPServer, one trivial tool",
                spread_of="per-round ratio",
                spread_values=ratios,
                target=f"within {TARGET_RATIO}× of the bare server",
                met=ours / base <= TARGET_RATIO,
                digits=1,
            ),
            row(
                "cold start: the same, overmind on the SDK's stdio transport (OVERMIND_STDIO=sdk)",
                ours=ours,
                baseline=median(times["overmind_sdk_stdio"]),
                unit="ms",
                baseline_name="overmind on the SDK's transport",
                spread_of="per-round ratio",
                spread_values=[m / b for m, b in zip(times["overmind"], times["overmind_sdk_stdio"], strict=True)],
                digits=1,
            ),
        ],
        "details": times,
    }
