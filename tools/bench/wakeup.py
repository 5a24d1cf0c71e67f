"""Benchmark 2: wait wake-up latency, from a child's exit to the client holding `wait`'s answer.

The child (the stand-in claude, `fake: write_exit_time`) writes `time.time_ns()` to a file
just before it exits. Through MCP: the client calls `wait` right after `spawn` (the child
sleeps 50 ms first, so the wait is in place), and takes `time.time_ns()` as soon as the answer
has been received and parsed. The limit: the bare loop (common.py) awaiting the same child
on a pidfd in this process and taking the time when the pidfd fires and the child is reaped.
The MCP floor: a bare `MCPServer` whose one tool starts the same child and answers when its
pidfd fires (trivial_server.py `run`), timed the same way as overmind's `wait`: what the SDK's
stdio transport and the client alone cost, with no supervisor.
The SDK's transport: the same `wait` through a second overmind server on `OVERMIND_STDIO=sdk`.
The same clock (CLOCK_REALTIME) is read on both sides of the exit, on one machine.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from tools.bench.common import (
    FAKE_CLAUDE,
    BareLoop,
    Child,
    Config,
    McpServer,
    median,
    overmind_env,
    overmind_server,
    row,
    summary,
    trivial_server,
)

TARGET_MS = 1.5


def prompt(exit_file: Path) -> str:
    return f"Finish soon.\nfake: sleep 0.05\nfake: write_exit_time {exit_file}\nfake: answer done"


def exit_time_ns(path: Path) -> int:
    return int(path.read_text().strip())


async def through_mcp(server: McpServer, exit_file: Path) -> float:
    spawned = await server.call("spawn", {"prompt": prompt(exit_file)})
    answer = await server.call("wait", {"ids": [spawned["id"]], "timeout_s": 60})
    received = time.time_ns()
    if not answer["done"]:
        raise RuntimeError(f"wait answered without the mission: {answer}")
    return (received - exit_time_ns(exit_file)) / 1e6


async def through_bare(bare: BareLoop, exit_file: Path) -> float:
    process, _ = bare.start(Child.claude(FAKE_CLAUDE, prompt(exit_file)))
    await bare.reap(process)
    reaped = time.time_ns()
    return (reaped - exit_time_ns(exit_file)) / 1e6


async def through_floor(floor: McpServer, exit_file: Path) -> float:
    child = Child.claude(FAKE_CLAUDE, prompt(exit_file))
    await floor.call_text("run", {"argv": child.argv, "stdin": child.stdin.decode()})
    received = time.time_ns()
    return (received - exit_time_ns(exit_file)) / 1e6


async def run(config: Config) -> dict[str, Any]:
    rounds, per_round = (1, 3) if config.quick else (3, 20)
    home, bare_dir = config.scratch / "home", config.scratch / "bare"
    bare_dir.mkdir(parents=True)
    env = overmind_env(home)
    bare = BareLoop(bare_dir, env)
    samples: dict[str, list[list[float]]] = {"mcp": [], "bare": [], "floor": [], "sdk": []}
    serial = 0
    sdk_env = overmind_env(config.scratch / "home-sdk") | {"OVERMIND_STDIO": "sdk"}
    async with (
        overmind_server(home, env=env) as server,
        overmind_server(config.scratch / "home-sdk", env=sdk_env) as sdk_server,
        trivial_server() as floor,
    ):
        measures = {
            "sdk": lambda exit_file: through_mcp(sdk_server, exit_file),
            "mcp": lambda exit_file: through_mcp(server, exit_file),
            "bare": lambda exit_file: through_bare(bare, exit_file),
            "floor": lambda exit_file: through_floor(floor, exit_file),
        }
        for warm in range(2):
            for variant, measure in measures.items():
                await measure(config.scratch / f"warm-{variant}-{warm}")
        for number in range(rounds):
            this_round: dict[str, list[float]] = {variant: [] for variant in measures}
            for sample in range(per_round):
                # Interleaved sample by sample, the order rotating, so all three see the same load.
                shift = (number + sample) % len(measures)
                order = list(measures)[shift:] + list(measures)[:shift]
                for variant in order:
                    serial += 1
                    this_round[variant].append(await measures[variant](config.scratch / f"exit-{serial}"))
            for variant, values in this_round.items():
                samples[variant].append(values)
    flat = {variant: list(itertools.chain(*rounds_)) for variant, rounds_ in samples.items()}
    ours, base, floor_p50 = median(flat["mcp"]), median(flat["bare"]), median(flat["floor"])
    ours_all = flat["mcp"]
    return {
        "rows": [
            row(
                "wait wake-up: child exit → client has wait's answer, p50",
                ours=ours,
                baseline=base,
                unit="ms",
                baseline_name="bare loop: pidfd fires, child reaped",
                spread_of="per-round p50 (ms)",
                spread_values=[median(values) for values in samples["mcp"]],
                target=f"p50 < {TARGET_MS} ms",
                met=ours < TARGET_MS,
                note=f"p90 {summary(ours_all)['p90']:.2f} ms, {len(ours_all)} samples",
            ),
            row(
                "wait wake-up: the same through a bare MCPServer tool awaiting the pidfd (MCP floor), p50",
                ours=ours,
                baseline=floor_p50,
                unit="ms",
                baseline_name="bare MCPServer + pidfd, same client",
                spread_of="per-round p50 of the floor (ms)",
                spread_values=[median(values) for values in samples["floor"]],
                note=f"overmind's own share: {ours - floor_p50:.2f} ms",
            ),
            row(
                "wait wake-up: the same through the SDK's stdio transport (OVERMIND_STDIO=sdk), p50",
                ours=ours,
                baseline=median(flat["sdk"]),
                unit="ms",
                baseline_name="overmind on the SDK's transport",
                spread_of="per-round p50 on the SDK's transport (ms)",
                spread_values=[median(values) for values in samples["sdk"]],
            ),
        ],
        "details": {variant: summary(values) for variant, values in flat.items()} | {"rounds": rounds},
    }
