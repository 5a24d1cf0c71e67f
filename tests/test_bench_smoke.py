"""Keeps the benchmarks from rotting: each runs once at tiny size (`--quick`), and its JSON has the expected shape.

Benchmarks are not tests: no figure is checked here, only that every benchmark runs to the end and
reports every figure it promises. The rival needs npm and its registry, so it is left out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = [
    "spawn",
    "wakeup",
    "ingest",
    "scale",
    "cold_start",
    "durability",
    "akasha",
    "tui",
    "blueprints",
    "worktrees",
    "approvals",
    "keeper",
]
ROW_KEYS = {"metric", "ours", "baseline", "baseline_name", "unit", "diff", "ratio", "spread", "target", "met"}
# Figures per benchmark (the list): how many rows each must report, at least.
MIN_ROWS = {
    "spawn": 7,
    "wakeup": 2,
    "ingest": 2,
    "scale": 3,
    "cold_start": 1,
    "durability": 4,
    "akasha": 2,
    "tui": 3,
    "blueprints": 3,
    "worktrees": 4,
    "approvals": 4,
    "keeper": 4,
}


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--quick", "--only", *OFFLINE, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,  # a quick run of every bench; a loaded 2-core machine needs the margin
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["quick"] is True
    assert {"cpus", "python", "platform", "load_average_start", "load_average_end"} <= results["machine"].keys()
    assert list(results["benchmarks"]) == OFFLINE
    for name, outcome in results["benchmarks"].items():
        assert "error" not in outcome, f"{name}: {outcome.get('error')}"
        assert len(outcome["rows"]) >= MIN_ROWS[name], name
        for entry in outcome["rows"]:
            assert entry.keys() >= ROW_KEYS, (name, entry)
            assert isinstance(entry["ours"], int | float), (name, entry)
    table = (tmp_path / "latest.md").read_text()
    assert table.count("\n| ") >= sum(MIN_ROWS.values())
    assert "| spawn | raw:" in table
