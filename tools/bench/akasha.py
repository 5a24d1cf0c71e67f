"""Akasha benchmark: recall latency and remember throughput, and a side-by-side with server-memory.

    python -m tools.bench.akasha            # 10k and 100k memories; store level, over stdio, and server-memory at 10k
    python -m tools.bench.akasha --quick    # a tiny run that proves the harness works (no npm)
    python -m tools.bench --only akasha     # the same, as part of the benchmark runner (`run_for_runner`)

Store level calls `Akasha` directly. Over stdio, a real MCP client drives a server process
(`python -m overmind_mcp`)
whose state directory holds the same memories. `@modelcontextprotocol/server-memory`, from
the npm registry, gets the same 10k texts as observations and the same queries, through the
same client. Results go to tools/bench/results/akasha.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from mcp import Client, StdioServerParameters

from overmind_mcp.akasha import FILENAME, Akasha, NewMemory, namespaces
from overmind_mcp.server import toolset as mcp_tools
from tools.bench.common import NODE_DIR, Config, row
from tools.bench.corpus import Corpus, generate
from tools.npm import npm_install

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tools" / "bench" / "results"

SERVER_MEMORY = "@modelcontextprotocol/server-memory@2026.8.31"
SERVER_MEMORY_ENTRY = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"
RUN_ID = "0123456789abcdef"
WARMUP = 30
LOAD_BATCH = 5_000


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(cuts[94], 3),
        "p99_ms": round(cuts[98], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "n": len(ordered),
    }


async def timed(calls: Sequence[Callable[[], Awaitable[Any]]]) -> tuple[list[float], list[Any]]:
    latencies, results = [], []
    for call in calls:
        started = time.perf_counter()
        results.append(await call())
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies, results


# -- store level ---------------------------------------------------------------------------------


def corpus_for(size: int, project_dir: Path, *, queries: int = 300) -> Corpus:
    """`size` memories for a server whose project is `project_dir`, and the queries to time."""
    return generate(size, project=namespaces.project(project_dir), runs=[namespaces.run(RUN_ID)], queries=queries)


async def store_benchmark(corpus: Corpus, home: Path, project_dir: Path, *, writes: int = 1_000) -> dict[str, Any]:
    """Load the corpus into `home/akasha.db`, then time recall and remember on it, in process."""
    size = len(corpus.memories)
    async with await Akasha.open(home / FILENAME, project_dir=project_dir) as akasha:
        started = time.perf_counter()
        for start in range(0, size, LOAD_BATCH):
            await akasha.remember_many(corpus.memories[start : start + LOAD_BATCH])
        load_s = time.perf_counter() - started

        visible = akasha.scope().visible()
        for query in corpus.queries[:WARMUP]:
            await akasha.recall(query, namespaces=visible)
        latencies, results = await timed(
            [lambda query=query: akasha.recall(query, namespaces=visible) for query in corpus.queries]
        )

        extra = generate(writes, project=namespaces.project(project_dir), seed=7, queries=0).memories
        started = time.perf_counter()
        for memory in extra:
            await akasha.remember(memory.content, namespace=memory.namespace, key=memory.key, tags=memory.tags)
        remember_s = time.perf_counter() - started
    return {
        "memories": size,
        "database_mb": round((home / FILENAME).stat().st_size / 2**20, 1),
        "bulk_load_per_s": round(size / load_s),
        "recall": percentiles(latencies)
        | {
            "with_hits": sum(bool(result.hits) for result in results) / len(results),
            "modes": dict(Counter(result.mode for result in results)),
        },
        "remember_per_s": round(writes / remember_s),
    }


# -- over stdio ----------------------------------------------------------------------------------


def overmind_params(home: Path, project_dir: Path) -> StdioServerParameters:
    env = {
        **os.environ,
        "OVERMIND_HOME": str(home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return StdioServerParameters(command=sys.executable, args=["-m", "overmind_mcp"], env=env, cwd=str(project_dir))


async def stdio_benchmark(home: Path, project_dir: Path, queries: Sequence[str], *, writes: int) -> dict[str, Any]:
    """Recall and remember through a real MCP client and a server process over stdio."""
    params = overmind_params(home, project_dir)
    async with Client(params, mode="legacy") as client:

        async def recall(query: str) -> Any:
            result = await client.call_tool("recall", {"query": query})
            if result.is_error:
                raise RuntimeError(result.content[0].text)
            return result.structured_content

        for query in queries[:WARMUP]:
            await recall(query)
        latencies, results = await timed([lambda query=query: recall(query) for query in queries])
        extra = generate(writes, project=namespaces.project(project_dir), seed=11, queries=0).memories
        started = time.perf_counter()
        for memory in extra:
            result = await client.call_tool("remember", {"content": memory.content, "tags": list(memory.tags)})
            if result.is_error:
                raise RuntimeError(result.content[0].text)
        remember_s = time.perf_counter() - started
    return {
        "server": params.args[-1],
        "recall": percentiles(latencies) | {"with_hits": sum(bool(r["hits"]) for r in results) / len(results)},
        "remember_per_s": round(writes / remember_s),
    }


# -- @modelcontextprotocol/server-memory -----------------------------------------------------------


async def ensure_server_memory() -> Path:
    """server-memory's entry point, installed from the npm registry into .cache/bench-node/ the first time."""
    if not SERVER_MEMORY_ENTRY.exists():
        await anyio.to_thread.run_sync(npm_install, NODE_DIR, SERVER_MEMORY)
    return SERVER_MEMORY_ENTRY


async def server_memory_benchmark(
    memories: Sequence[NewMemory], queries: Sequence[str], workdir: Path
) -> dict[str, Any]:
    """The same texts as observations (one entity each), the same queries as search_nodes calls."""
    entry = await ensure_server_memory()
    node = shutil.which("node") or "node"
    env = {**os.environ, "MEMORY_FILE_PATH": str(workdir / "server-memory.jsonl")}
    params = StdioServerParameters(command=node, args=[str(entry)], env=env)
    names = [f"memory-{number:06d}" for number in range(len(memories))]
    async with Client(params, mode="legacy") as client:
        started = time.perf_counter()
        for start in range(0, len(memories), 500):
            entities = [
                {"name": name, "entityType": (memory.tags or ["note"])[0], "observations": [memory.content]}
                for name, memory in zip(names[start : start + 500], memories[start : start + 500], strict=True)
            ]
            result = await client.call_tool("create_entities", {"entities": entities})
            if result.is_error:
                raise RuntimeError(result.content[0].text)
        load_s = time.perf_counter() - started

        async def search(query: str) -> list[str]:
            # Its search is a substring test of the whole string: our operators mean nothing to it.
            plain = " ".join(query.replace('"', " ").replace("*", " ").split())
            result = await client.call_tool("search_nodes", {"query": plain})
            if result.is_error:
                raise RuntimeError(result.content[0].text)
            return [entity["name"] for entity in (result.structured_content or {}).get("entities", [])]

        for query in queries[:WARMUP]:
            await search(query)
        latencies, results = await timed([lambda query=query: search(query) for query in queries])
    position = {name: number for number, name in enumerate(names)}
    ordered = [[position[name] for name in found] for found in results if len(found) > 1]
    in_file_order = all(found == sorted(found) for found in ordered)
    return {
        "package": SERVER_MEMORY,
        "observations": len(memories),
        "load_per_s": round(len(memories) / load_s),
        "search": percentiles(latencies)
        | {
            "with_hits": sum(bool(found) for found in results) / len(results),
            "mean_results": round(statistics.fmean(len(found) for found in results), 1),
            "max_results": max(len(found) for found in results),
        },
        "ranked": not in_file_order,
        "order": "file (insertion) order, unranked" if in_file_order else "not file order",
        "multi_result_queries": len(ordered),
    }


# -- the run -------------------------------------------------------------------------------------


async def run(
    sizes: Sequence[int], *, queries: int, writes: int, stdio: bool, compare_at: int | None
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            # Figures from a busy machine are not comparable with those from an idle one.
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "wired_into_overmind_server": any(tool.fn.__name__ == "recall" for tool in mcp_tools.ALL),
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="akasha-bench-") as scratch:
        for size in sizes:
            home = Path(scratch) / str(size)
            project_dir = home / "project"
            project_dir.mkdir(parents=True)
            corpus = corpus_for(size, project_dir, queries=queries)
            print(f"{size:,} memories: store level…", file=sys.stderr)
            entry: dict[str, Any] = {"store": await store_benchmark(corpus, home, project_dir, writes=writes)}
            if stdio:
                print(f"{size:,} memories: over stdio…", file=sys.stderr)
                entry["stdio"] = await stdio_benchmark(home, project_dir, corpus.queries, writes=writes)
            if size == compare_at:
                print(f"{size:,} memories: server-memory over stdio…", file=sys.stderr)
                other = await server_memory_benchmark(corpus.memories, corpus.queries, home)
                entry["server_memory"] = other
                ours = entry.get("stdio", entry["store"])["recall"]
                entry["ratio"] = {
                    "p50": round(other["search"]["p50_ms"] / ours["p50_ms"], 1),
                    "p95": round(other["search"]["p95_ms"] / ours["p95_ms"], 1),
                }
            report["sizes"][str(size)] = entry
    return report


def _row(size: str, where: str, latency: dict[str, Any], remember: str = "", load: str = "") -> str:
    times = " | ".join(f"{latency[name]:.2f} ms" for name in ("p50_ms", "p95_ms", "p99_ms"))
    return f"| {int(size):,} | {where} | {times} | {latency['with_hits']:.0%} | {remember} | {load} |"


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"# Akasha benchmark ({report['when']})",
        "",
        f"Python {machine['python']}, SQLite {machine['sqlite']}, {machine['cpus']} CPUs, "
        f"load average {machine.get('load_average_1m', '?')} at the start. "
        f"Memory tools wired into overmind_mcp.server.app: {report['wired_into_overmind_server']}.",
        "",
        "| memories | where | recall p50 | recall p95 | recall p99 | queries with hits | remember/s | bulk load/s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size, entry in report["sizes"].items():
        store = entry["store"]
        lines.append(
            _row(
                size,
                "store, in process",
                store["recall"],
                f"{store['remember_per_s']:,}",
                f"{store['bulk_load_per_s']:,}",
            )
        )
        if "stdio" in entry:
            lines.append(
                _row(size, "MCP over stdio", entry["stdio"]["recall"], f"{entry['stdio']['remember_per_s']:,}")
            )
        if "server_memory" in entry:
            other = entry["server_memory"]
            lines.append(_row(size, "server-memory, MCP over stdio", other["search"], "", f"{other['load_per_s']:,}"))
    for size, entry in report["sizes"].items():
        if "server_memory" in entry:
            other = entry["server_memory"]
            lines += [
                "",
                f"At {int(size):,}: server-memory's search is {entry['ratio']['p50']}× slower at p50 and "
                f"{entry['ratio']['p95']}× at p95 than `recall` over the same client; its results are "
                f"{'ranked' if other['ranked'] else 'not ranked'} ({other['order']}, checked on "
                f"{other['multi_result_queries']} queries with several results), every match is returned "
                f"(mean {other['search']['mean_results']}, max {other['search']['max_results']}), and a query matches "
                "only as one case-insensitive substring.",
            ]
    return "\n".join(lines) + "\n"


async def run_for_runner(config: Config) -> dict[str, Any]:
    """This benchmark as one entry of `python -m tools.bench`: rows for the shared table, the report as details."""
    quick = config.quick
    report = await run(
        [500] if quick else [10_000, 100_000],
        queries=50 if quick else 300,
        writes=100 if quick else 1_000,
        stdio=True,
        # server-memory comes from the npm registry: without npm (and no cached copy), compare with nothing.
        compare_at=None if quick or (shutil.which("npm") is None and not SERVER_MEMORY_ENTRY.exists()) else 10_000,
    )
    rows = []
    for size, entry in report["sizes"].items():
        store, stdio = entry["store"], entry["stdio"]
        rows.append(
            row(
                f"akasha, {int(size):,} memories: recall p50 over MCP stdio",
                ours=stdio["recall"]["p50_ms"],
                baseline=store["recall"]["p50_ms"],
                unit="ms",
                baseline_name="the same recall in process (no MCP)",
                spread_of="",
                note=f"p95 {stdio['recall']['p95_ms']:.2f} ms vs {store['recall']['p95_ms']:.2f} ms; one round",
            )
        )
        if "server_memory" in entry:
            other = entry["server_memory"]["search"]
            rows.append(
                row(
                    f"akasha, {int(size):,} memories: recall p50 vs server-memory search_nodes",
                    ours=stdio["recall"]["p50_ms"],
                    baseline=other["p50_ms"],
                    unit="ms",
                    baseline_name="@modelcontextprotocol/server-memory over the same client",
                    spread_of="",
                    note=f"p95 {stdio['recall']['p95_ms']:.2f} ms vs {other['p95_ms']:.2f} ms; queries with hits: "
                    f"ours {stdio['recall']['with_hits']:.0%}, theirs {other['with_hits']:.0%}",
                )
            )
        rows.append(
            row(
                f"akasha, {int(size):,} memories: remember throughput over MCP stdio",
                ours=stdio["remember_per_s"],
                baseline=store["remember_per_s"],
                unit="/s",
                baseline_name="remember in process",
                spread_of="",
                digits=0,
            )
        )
    return {"rows": rows, "details": report}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.akasha", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no server-memory: checks the harness")
    parser.add_argument("--sizes", type=int, nargs="+", help="numbers of memories (default 10000 100000)")
    parser.add_argument("--queries", type=int, help="recall queries per size (default 300)")
    parser.add_argument("--no-stdio", action="store_true", help="store level only")
    parser.add_argument("--compare-at", type=int, default=10_000, help="size at which to run server-memory too")
    parser.add_argument("--no-server-memory", action="store_true", help="skip the npm server-memory comparison")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([500] if args.quick else [10_000, 100_000])
    report = anyio.run(
        lambda: run(
            sizes,
            queries=args.queries or (50 if args.quick else 300),
            writes=100 if args.quick else 1_000,
            stdio=not args.no_stdio,
            compare_at=None if args.quick or args.no_server_memory else args.compare_at,
        )
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    (RESULTS / "akasha.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "akasha.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
