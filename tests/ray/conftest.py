"""A real Ray cluster for the session: a head and two worker nodes on 127.0.0.1 (tools/ray_cluster.py).

Started once (its start is the most expensive part of these tests) and torn down completely at
the end of the session. Without Ray installed the tests are skipped with the reason locally,
and fail with it in CI (`CI=true`), as the end-to-end tests do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from overmind_mcp.runners.ray import INSTALL_HINT, ray_installed
from overmind_mcp.settings import Settings
from tools.ray_cluster import LocalCluster, local_cluster

#: Measurements the tests report, printed after the run.
FIGURES: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("ray cluster")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


def missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalCluster]:
    if not ray_installed():
        missing(f"Ray is not installed ({INSTALL_HINT}; tools/test installs it)")
    with local_cluster() as cluster, pytest.MonkeyPatch.context() as patch:
        FIGURES["cluster start (head and two workers)"] = f"{cluster.started_s:.1f} s"
        FIGURES["cluster memory at start"] = f"{cluster.rss_bytes() / 2**20:.0f} MiB"
        # The tests' own process is a Ray driver too (its supervisors are).
        for name, value in cluster.environment().items():
            patch.setenv(name, value)
        yield cluster
        FIGURES["cluster memory at the end"] = f"{cluster.rss_bytes() / 2**20:.0f} MiB"
    assert not cluster.processes(), "Ray processes outlived the cluster"


@pytest.fixture
def ray_settings(settings: Settings, ray_cluster: LocalCluster) -> Settings:
    return settings.model_copy(update={"ray_address": ray_cluster.address, "max_concurrent": 32})
