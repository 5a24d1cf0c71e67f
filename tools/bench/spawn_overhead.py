"""Benchmark 1: spawn-to-result overhead, against the bare loop.

Each mission goes spawn → wait → result through a real MCP client over stdio. The limit is
`BareLoop` (common.py): the same argv started the same way (own session, stdout and stderr
to files), awaited on a pidfd, reaped and its stdout read back, in this process, with no MCP
and no storage. Raw children are `/bin/echo`; claude children are the stand-in with the argv
and stdin overmind builds for a prompt (`providers.claude`), so both sides run the same bytes.

Sequential: one mission at a time; the figure is the p50 latency of a mission. Concurrent:
`width` workers pull missions until all are done; the figure is wall time / missions. The
10-way figure: ten claude children spawned at once and one `wait` for all of them, against
ten bare children started at once and all reaped.

The MCP floor (sequential only): the same three tool calls to a bare `MCPServer`
(trivial_server.py), `run(argv)` starting and reaping the same child, then two `ping`s. What
overmind costs beyond it is its own; what the floor costs beyond the bare loop is the SDK's
stdio transport and the client, which no server built on them can avoid.

The SDK's transport: the same missions through a second overmind server started with
`OVERMIND_STDIO=sdk`, in the same rounds, so our stdio transport is compared with the SDK's.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from tools.bench.common import (
    FAKE_CLAUDE,
    BareLoop,
    Child,
    Config,
    McpServer,
    alternate,
    median,
    overmind_env,
    overmind_server,
    row,
    summary,
    trivial_server,
    wall,
)

RAW_ARGV = ["/bin/echo", "mission accomplished"]
CLAUDE_PROMPT = "Say it is done.\nfake: answer done"

Mission = Callable[[], Awaitable[None]]


def claude_child() -> Child:
    return Child.claude(FAKE_CLAUDE, CLAUDE_PROMPT)


def through_mcp(server: McpServer, spawn_args: dict[str, Any]) -> Mission:
    async def mission() -> None:
        spawned = await server.call("spawn", spawn_args)
        await server.call("wait", {"ids": [spawned["id"]], "timeout_s": 120})
        result = await server.call("result", {"id": spawned["id"]})
        if result["status"] != "succeeded":
            raise RuntimeError(f"mission ended {result['status']}: {result.get('errors')}")

    return mission


def through_bare(bare: BareLoop, child: Child) -> Mission:
    async def mission() -> None:
        await bare.run(child)

    return mission


def through_floor(floor: McpServer, child: Child) -> Mission:
    async def mission() -> None:
        await floor.call_text("run", {"argv": child.argv, "stdin": child.stdin.decode()})
        await floor.call_text("ping", {})
        await floor.call_text("ping", {})

    return mission


async def sequential(mission: Mission, count: int) -> list[float]:
    """Latency of each of `count` missions run one after another (ms)."""
    latencies = []
    for _ in range(count):
        started = wall()
        await mission()
        latencies.append((wall() - started) * 1000)
    return latencies


async def concurrent(mission: Mission, count: int, width: int) -> float:
    """Wall time per mission (ms) for `count` missions, `width` in flight at a time."""
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await mission()

    started = wall()
    async with anyio.create_task_group() as group:
        for _ in range(width):
            group.start_soon(worker)
    return (wall() - started) * 1000 / count


async def ten_at_once_mcp(server: McpServer, count: int) -> float:
    """Spawn `count` claude children at once, one wait for all; ms to all results."""
    ids: list[str] = []
    started = wall()

    async def spawn_one() -> None:
        ids.append((await server.call("spawn", {"prompt": CLAUDE_PROMPT}))["id"])

    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(spawn_one)
    answer = await server.call("wait", {"ids": ids, "mode": "all", "timeout_s": 120})
    elapsed = (wall() - started) * 1000
    if len(answer["done"]) != count or any(result["status"] != "succeeded" for result in answer["done"]):
        raise RuntimeError(f"not every child succeeded: {answer}")
    return elapsed


async def ten_at_once_bare(bare: BareLoop, child: Child, count: int) -> float:
    started = wall()
    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(bare.run, child)
    return (wall() - started) * 1000


async def run(config: Config) -> dict[str, Any]:
    quick = config.quick
    sizes = {
        "raw": (10 if quick else 200, 2 if quick else 5),
        "claude": (4 if quick else 200, 2 if quick else 3),
    }
    width = 4 if quick else 50
    ten, ten_rounds = (3, 2) if quick else (10, 7)
    home = config.scratch / "spawn-home"
    bare_dir = config.scratch / "spawn-bare"
    bare_dir.mkdir(parents=True)
    env = overmind_env(home)
    bare = BareLoop(bare_dir, env)
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {"width": width, "ten": ten}
    sdk_env = overmind_env(config.scratch / "spawn-home-sdk") | {"OVERMIND_STDIO": "sdk"}
    async with (
        overmind_server(home, env=env) as server,
        overmind_server(config.scratch / "spawn-home-sdk", env=sdk_env) as sdk_server,
        trivial_server() as floor,
    ):
        kinds = {
            "raw": ({"command": RAW_ARGV}, Child(RAW_ARGV)),
            "claude": ({"prompt": CLAUDE_PROMPT}, claude_child()),
        }
        for kind, (spawn_args, child) in kinds.items():
            count, rounds = sizes[kind]
            variants = {
                "mcp": through_mcp(server, spawn_args),
                "bare": through_bare(bare, child),
                "floor": through_floor(floor, child),
                "sdk": through_mcp(sdk_server, spawn_args),
            }
            # Warm both paths (imports, page cache, the server's first-call work) before timing.
            for mission in variants.values():
                await sequential(mission, 2)
            seq: dict[str, list[list[float]]] = {"mcp": [], "bare": [], "floor": [], "sdk": []}
            conc: dict[str, list[float]] = {"mcp": [], "bare": []}
            server_cpu = 0.0
            for number in range(rounds):
                for variant in (*alternate(number, "mcp", "bare"), *alternate(number, "floor", "sdk")):
                    cpu_before = server.cpu_seconds()
                    seq[variant].append(await sequential(variants[variant], count))
                    if variant == "mcp":
                        server_cpu += server.cpu_seconds() - cpu_before
                for variant in alternate(number, "bare", "mcp"):
                    conc[variant].append(await concurrent(variants[variant], count, width))
            rows += _rows(kind, count, width, seq, conc, server_cpu * 1000 / (count * rounds))
            details[kind] = {
                "server_cpu_ms_per_mission": server_cpu * 1000 / (count * rounds),
                "missions_per_round": count,
                "rounds": rounds,
                "sequential_ms": {
                    variant: summary(list(itertools.chain(*rounds_))) for variant, rounds_ in seq.items()
                },
                "concurrent_ms_per_mission": conc,
            }
        deltas, ours, base = [], [], []
        child = claude_child()
        for number in range(ten_rounds):
            measured = {}
            for variant in alternate(number, "mcp", "bare"):
                if variant == "mcp":
                    measured[variant] = await ten_at_once_mcp(server, ten)
                else:
                    measured[variant] = await ten_at_once_bare(bare, child, ten)
            ours.append(measured["mcp"])
            base.append(measured["bare"])
            deltas.append(measured["mcp"] - measured["bare"])
        rows.append(
            row(
                f"{ten} concurrent claude children: time to all results",
                ours=median(ours),
                baseline=median(base),
                unit="ms",
                baseline_name="bare anyio loop",
                spread_of="per-round difference (ms)",
                spread_values=deltas,
                target="within 50 ms of the bare loop",
                met=median(deltas) < 50,
                note=f"median of per-round differences {median(deltas):.1f} ms over {ten_rounds} rounds",
            )
        )
        details["ten_at_once_ms"] = {"mcp": ours, "bare": base}
    return {"rows": rows, "details": details}


def _rows(
    kind: str,
    count: int,
    width: int,
    seq: dict[str, list[list[float]]],
    conc: dict[str, list[float]],
    server_cpu_ms: float,
) -> list[dict[str, Any]]:
    per_round_seq = [median(m) - median(b) for m, b in zip(seq["mcp"], seq["bare"], strict=True)]
    per_round_conc = [m - b for m, b in zip(conc["mcp"], conc["bare"], strict=True)]
    seq_ours = median([median(r) for r in seq["mcp"]])
    seq_base = median([median(r) for r in seq["bare"]])
    conc_ours, conc_base = median(conc["mcp"]), median(conc["bare"])
    floor = median([median(r) for r in seq["floor"]])
    base_round_p50s = [median(r) for r in seq["bare"]]
    # "Within the noise": the difference is no larger than the bare loop's own round-to-round spread.
    noise = max(base_round_p50s) - min(base_round_p50s)
    if kind == "raw":
        target, met = "overhead < 2 ms p50", seq_ours - seq_base < 2
        conc_target, conc_met = "overhead < 2 ms", conc_ours - conc_base < 2
    else:
        target = f"within the noise (bare loop's round-to-round spread, here {noise:.1f} ms)"
        met = abs(seq_ours - seq_base) <= noise
        conc_noise = max(conc["bare"]) - min(conc["bare"])
        conc_target = f"within the noise (here {conc_noise:.1f} ms)"
        conc_met = abs(conc_ours - conc_base) <= conc_noise
    return [
        row(
            f"{kind}: {count} sequential spawn→wait→result, p50 per mission",
            ours=seq_ours,
            baseline=seq_base,
            unit="ms",
            baseline_name="bare anyio loop",
            spread_of="per-round p50 difference (ms)",
            spread_values=per_round_seq,
            target=target,
            met=met,
            note=f"server CPU {server_cpu_ms:.2f} ms a mission",
        ),
        row(
            f"{kind}: the same against the MCP floor (bare MCPServer: run + 2 pings), p50 per mission",
            ours=seq_ours,
            baseline=floor,
            unit="ms",
            baseline_name="MCP floor",
            spread_of="per-round p50 difference (ms)",
            spread_values=[median(m) - median(f) for m, f in zip(seq["mcp"], seq["floor"], strict=True)],
            note=f"the floor is {floor - seq_base:.2f} ms above the bare loop",
        ),
        row(
            f"{kind}: the same through the SDK's stdio transport (OVERMIND_STDIO=sdk), p50 per mission",
            ours=seq_ours,
            baseline=median([median(r) for r in seq["sdk"]]),
            unit="ms",
            baseline_name="overmind on the SDK's transport",
            spread_of="per-round p50 difference (ms)",
            spread_values=[median(m) - median(f) for m, f in zip(seq["mcp"], seq["sdk"], strict=True)],
        ),
        row(
            f"{kind}: {count} missions {width}-way concurrent, wall time per mission",
            ours=conc_ours,
            baseline=conc_base,
            unit="ms",
            baseline_name="bare anyio loop",
            spread_of="per-round difference (ms)",
            spread_values=per_round_conc,
            target=conc_target,
            met=conc_met,
        ),
    ]
