"""The README's main job: `overmind-mcp demo` drives a real server over stdio and prints the tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_demo_runs_and_shows_the_tree_and_results() -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-m", "overmind_mcp", "demo"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "connected over stdio" in out
    assert "├─ write-tests [succeeded]" in out
    assert "│  └─ lint [succeeded]" in out
    assert "lint ran as my own child" in out
    assert "flaky         failed" in out
    assert "stuck stopped by SIGINT" in out
