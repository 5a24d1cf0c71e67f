"""Run every benchmark (or some) and write tools/bench/results/latest.{md,json}.

    python -m tools.bench                      # every benchmark at full size (minutes)
    python -m tools.bench --quick              # every benchmark at tiny size (seconds), rival skipped
    python -m tools.bench --only spawn wakeup  # some of them
    python -m tools.bench --quick --only rival # the rival at tiny size (needs npm)

Each benchmark runs the same work through overmind-mcp and through its baseline, interleaved,
in several rounds, and reports medians, ratios and the spread between rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from tools.bench import (
    akasha,
    approvals,
    blueprints,
    cold_start,
    dashboard,
    durability,
    ingest,
    keeper,
    ray_runner,
    rituals,
    rival,
    scale,
    spawn_overhead,
    tui,
    wakeup,
    worktrees,
)
from tools.bench.common import RESULTS_DIR, ROOT, Config
from tools.bench.report import table

Benchmark = Callable[[Config], Awaitable[dict[str, Any]]]

# In the order the issue lists them; the names are what --only takes.
BENCHMARKS: dict[str, Benchmark] = {
    "spawn": spawn_overhead.run,
    "wakeup": wakeup.run,
    "ingest": ingest.run,
    "scale": scale.run,
    "cold_start": cold_start.run,
    "rival": rival.run,
    "durability": durability.run,
    "akasha": akasha.run_for_runner,
    "dashboard": dashboard.run,
    "tui": tui.run,
    "rituals": rituals.run,
    "blueprints": blueprints.run,
    "worktrees": worktrees.run,
    "approvals": approvals.run,
    "ray": ray_runner.run,
    "keeper": keeper.run,
}
# These need npm and packages from its registry; quick mode runs them only when named in --only.
NEEDS_NPM = frozenset({"rival"})


def commit() -> str | None:
    """The commit the measured code was checked out at (read only; None outside a git checkout)."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    return {
        "commit": commit(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Figures from a busy machine are not comparable with those from an idle one.
        "load_average_start": round(os.getloadavg()[0], 2),
    }


async def run_all(names: list[str], *, quick: bool, explicit: bool) -> dict[str, Any]:
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": quick,
        "machine": machine(),
        "benchmarks": {},
    }
    for name in names:
        if name in NEEDS_NPM and quick and not explicit:
            results["benchmarks"][name] = {"skipped": "needs npm; quick mode runs it only with --only " + name}
            continue
        if name in NEEDS_NPM and shutil.which("npm") is None:
            results["benchmarks"][name] = {"skipped": "npm is not on PATH"}
            continue
        print(f"[bench] {name}…", file=sys.stderr, flush=True)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"overmind-bench-{name}-") as scratch:
            try:
                outcome = await BENCHMARKS[name](Config(quick=quick, scratch=Path(scratch), explicit=explicit))
            except Exception as exc:
                traceback.print_exc()
                outcome = {"error": f"{type(exc).__name__}: {exc}"}
        outcome["seconds"] = round(time.perf_counter() - started, 1)
        results["benchmarks"][name] = outcome
    results["machine"]["load_average_end"] = round(os.getloadavg()[0], 2)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the harness works, in seconds")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where latest.md and latest.json go")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    results = anyio.run(lambda: run_all(names, quick=args.quick, explicit=bool(args.only)))
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(results)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "latest.md").write_text(text)
    print(text)
    failed = [name for name, outcome in results["benchmarks"].items() if "error" in outcome]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
