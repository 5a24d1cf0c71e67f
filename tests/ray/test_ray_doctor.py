"""`overmind doctor` checks the configured Ray cluster: reachable, its nodes, their overmind-mcp."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

from overmind_mcp import __version__
from overmind_mcp.settings import Settings
from tools.ray_cluster import LocalCluster


def doctor(settings: Settings, **env: str) -> tuple[int, dict[str, dict[str, Any]]]:
    done = subprocess.run(
        [sys.executable, "-m", "overmind_mcp.console", "doctor", "--port", "0", "--json"],
        env={**os.environ, "OVERMIND_HOME": str(settings.home), "OVERMIND_CLAUDE_BIN": settings.claude_bin, **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    report = json.loads(done.stdout)
    return done.returncode, {check["name"]: check for check in report["checks"]}


def test_doctor_checks_the_configured_cluster(settings: Settings, ray_cluster: LocalCluster) -> None:
    _code, checks = doctor(settings, OVERMIND_RAY_ADDRESS=ray_cluster.address)
    assert checks["ray"]["status"] == "ok"
    assert checks["ray"]["detail"] == f"{ray_cluster.address}: 3 nodes alive"
    assert (checks["ray nodes"]["status"], checks["ray nodes"]["detail"]) == (
        "ok",
        f"overmind-mcp {__version__} on every live node",
    )
    # Every node is on this host: its children reach the loopback endpoint.
    assert "ray callback" not in checks


def test_doctor_says_what_to_do_when_no_cluster_answers(settings: Settings, ray_cluster: LocalCluster) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{sock.getsockname()[1]}"
        code, checks = doctor(settings, OVERMIND_RAY_ADDRESS=nobody, OVERMIND_RAY_START_TIMEOUT_S="5")
    assert code == 1
    assert checks["ray"]["status"] == "fail"
    assert nobody in checks["ray"]["detail"]
    assert "OVERMIND_RAY_ADDRESS" in checks["ray"]["fix"]


def test_doctor_leaves_ray_alone_when_none_is_configured(settings: Settings) -> None:
    _code, checks = doctor(settings)
    assert not {name for name in checks if name.startswith("ray")}
