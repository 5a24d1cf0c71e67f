"""Blueprints: what a run adds to each agent over spawning it directly, and how long checking a big one takes.

* Scheduling overhead per node: the same short commands (`/bin/echo`) as a blueprint run and
  as bare `spawn → wait` calls on the same supervisor (in process: no MCP transport in either),
  interleaved round by round. A *chain* (each node depends on the one before) shows the latency
  a dependent pays to start once its input is ready; a *layer* (all independent) the cost of
  running them side by side. The run's overhead is its journal writes, template rendering,
  its log, and its own mission.
* Validate and plan a 100-node DAG: `load` (TOML, every check, templates, cycles) plus the
  topological layers, against `tomllib.loads` of the same text alone.
"""

from __future__ import annotations

import time
import tomllib
from typing import Any

from overmind_mcp.blueprints.launch import start_run
from overmind_mcp.blueprints.plan import plan_of
from overmind_mcp.blueprints.validate import load
from overmind_mcp.models import SpawnRequest
from overmind_mcp.server.hosting import supervising
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor
from tools.bench.common import FAKE_CLAUDE, Config, alternate, median, row

ARGV = ["/bin/echo", "done"]


def chain(count: int) -> str:
    nodes = [f'[agents.n{index}]\ncommand = ["/bin/echo", "done"]' for index in range(count)]
    return "\n".join(
        node + (f'\ndepends_on = ["n{index - 1}"]' if index else "") + "\n" for index, node in enumerate(nodes)
    )


def layer(count: int) -> str:
    return "\n".join(f'[agents.n{index}]\ncommand = ["/bin/echo", "done"]\n' for index in range(count))


def big_dag(count: int = 100) -> str:
    """`count` nodes, ten layers of ten, each reading two nodes of the layer before through templates."""
    parts = ['name = "big"\n[vars]\ntopic = "x"\n[defaults]\ntimeout_s = 60\n']
    for index in range(count):
        deps = [f"n{index - 10}", f"n{index - 10 + (1 if index % 10 < 9 else -1)}"] if index >= 10 else []
        reads = " ".join(f"{{{{ nodes.{dep}.result }}}}" for dep in deps)
        parts.append(
            f"[agents.n{index}]\n"
            f'prompt = "Step {index} on {{{{ vars.topic }}}}: {reads}"\n'
            f"depends_on = {deps!r}\n".replace("'", '"')
            + (f"when = \"nodes.{deps[0]}.status == 'succeeded'\"\n" if deps else "")
        )
    return "\n".join(parts)


async def _bare(supervisor: Supervisor, count: int, *, sequential: bool) -> float:
    started = time.perf_counter()
    if sequential:
        for _ in range(count):
            spawned = await supervisor.spawn(SpawnRequest(command=ARGV))
            await supervisor.wait([spawned.id], timeout_s=60)
    else:
        ids = [(await supervisor.spawn(SpawnRequest(command=ARGV))).id for _ in range(count)]
        await supervisor.wait(ids, timeout_s=60)
    return time.perf_counter() - started


async def _run(supervisor: Supervisor, text: str) -> float:
    started = time.perf_counter()
    run = await start_run(supervisor, text)
    answer = await supervisor.wait([run.id], timeout_s=120)
    assert answer.done and answer.done[0].status == "succeeded", answer
    return time.perf_counter() - started


async def _scheduling(config: Config, shape: str) -> dict[str, Any]:
    count = 5 if config.quick else 20
    rounds = 2 if config.quick else 6
    text = chain(count) if shape == "chain" else layer(count)
    settings = Settings(
        home=config.scratch / f"blueprints-{shape}",
        claude_bin=str(FAKE_CLAUDE),
        max_concurrent=64,
        max_children=10_000,
        retention_days=0,
    )
    per_round: dict[str, list[float]] = {"run": [], "bare": []}
    async with supervising(settings) as supervisor:
        await _run(supervisor, text)  # warm: the journal's file, the imports
        for number in range(rounds):
            for variant in alternate(number, "run", "bare"):
                if variant == "run":
                    seconds = await _run(supervisor, text)
                else:
                    seconds = await _bare(supervisor, count, sequential=shape == "chain")
                per_round[variant].append(seconds * 1000 / count)
    diffs = [ours - bare for ours, bare in zip(per_round["run"], per_round["bare"], strict=True)]
    return row(
        f"{count} nodes as a {shape}{' (each after the one before)' if shape == 'chain' else ' (all at once)'}, "
        "per node",
        ours=median(per_round["run"]),
        baseline=median(per_round["bare"]),
        unit="ms",
        baseline_name="spawn→wait of the same commands" + (" in turn" if shape == "chain" else ", all at once"),
        spread_of="Δ per node",
        spread_values=diffs,
    )


def _validation(config: Config) -> dict[str, Any]:
    text = big_dag(100)
    rounds = 5 if config.quick else 40
    ours, floor = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        plan = plan_of(load(text))
        ours.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        tomllib.loads(text)
        floor.append((time.perf_counter() - started) * 1000)
    assert plan.nodes == 100 and len(plan.layers) == 10
    return row(
        "validate and plan a 100-node DAG (10 layers, 180 template references, 90 when)",
        ours=median(ours),
        baseline=median(floor),
        unit="ms",
        baseline_name="tomllib.loads alone",
        spread_of="ours",
        spread_values=ours,
    )


async def run(config: Config) -> dict[str, Any]:
    rows = [await _scheduling(config, "chain"), await _scheduling(config, "layer"), _validation(config)]
    return {
        "rows": rows,
        "notes": [
            "In process, no MCP: both sides call the same supervisor; the run adds its journal writes "
            "(three per node), template rendering, its log lines and its own mission.",
            "Nodes run again after a SIGKILL of the server: 0 (tests/test_blueprints_durable.py counts "
            "each agent's executions in a file across the crash).",
        ],
    }
