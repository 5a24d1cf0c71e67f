"""A real Ray cluster on this machine, on 127.0.0.1 only, for the tests and the benchmarks.

A head and two worker nodes, each with a custom resource of its own (`head`, `alpha`,
`beta`; the two workers also share `worker`), one logical CPU each, the smallest object
store Ray allows, no dashboard, no autoscaler monitor and no log monitor.

Two things Ray does not do from its command line had to be done here:

- Ray turns 127.0.0.1 into the machine's outward address and then listens on every
  interface, unless clustering is switched off for the process
  (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0); then it listens on loopback only. The `ray start`
  command refuses to add a worker node in that mode, so the nodes are started through
  Ray's own mini-cluster for tests (`ray.cluster_utils.Cluster`), in a host process of their
  own. Every process that talks to this cluster (a server, a test, the console) needs the
  same variable: `LocalCluster.environment()` has it.
- Ray keeps its files under /tmp/ray by default (shared by every Ray on the machine):
  RAY_TMPDIR and the temp dir point it at a directory of this cluster's own.

`python -m tools.ray_cluster DIR` is the host: it prints one JSON line with the cluster's
address and its nodes once they are up, then obeys `kill NAME` (the node's Ray processes
die at once, as when its machine fails) and `add NAME` (a node with NAME's resources joins
again) on stdin, and shuts the whole cluster down at end of input. `LocalCluster` drives
it, and makes sure that nothing of the cluster outlives it.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
NODES: dict[str, dict[str, float]] = {
    "head": {"head": 100},
    "alpha": {"alpha": 100, "worker": 100},
    "beta": {"beta": 100, "worker": 100},
}
# Ray's floor for a node's object store (ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES); nothing here uses it.
OBJECT_STORE_BYTES = 75 * 1024 * 1024
# How soon the head declares a silent node dead: 3 missed checks, 300 ms apart.
HEALTH_CHECKS = {"health_check_period_ms": 300, "health_check_failure_threshold": 3, "health_check_initial_delay_ms": 0}
START_TIMEOUT_S = 240.0


def environment(directory: Path) -> dict[str, str]:
    """What every process that starts or talks to the cluster needs in its environment."""
    return {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_TMPDIR": str(directory),
        "RAY_USAGE_STATS_ENABLED": "0",
    }


# -- the host process ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def host(directory: Path) -> None:
    os.environ.update(environment(directory))
    (directory / "ray").mkdir(exist_ok=True)  # where Ray writes the address of "the current cluster"
    from ray.cluster_utils import Cluster

    common: dict[str, Any] = {
        "num_cpus": 1,
        "object_store_memory": OBJECT_STORE_BYTES,
        "temp_dir": str(directory),
        "include_log_monitor": False,
        "min_worker_port": 0,
        "max_worker_port": 0,
    }
    started = time.monotonic()
    cluster = Cluster(shutdown_at_exit=True)
    nodes = {
        "head": cluster.add_node(
            resources=NODES["head"],
            include_dashboard=False,
            dashboard_port=_free_port(),
            no_monitor=True,
            _system_config=HEALTH_CHECKS,
            **common,
        )
    }
    for name in ("alpha", "beta"):
        nodes[name] = cluster.add_node(resources=NODES[name], **common)
    ready = {
        "address": cluster.address,
        "nodes": {name: node.node_id for name, node in nodes.items()},
        "started_s": round(time.monotonic() - started, 2),
    }
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        verb, _, name = line.strip().partition(" ")
        if verb == "kill" and name in nodes:
            cluster.remove_node(nodes.pop(name), allow_graceful=False)
            print(json.dumps({"killed": name}), flush=True)
        elif verb == "add" and name in NODES and name not in nodes:
            nodes[name] = cluster.add_node(resources=NODES[name], **common)
            print(json.dumps({"added": name, "node_id": nodes[name].node_id}), flush=True)
        else:
            print(json.dumps({"error": f"cannot {line.strip()!r}"}), flush=True)
    cluster.shutdown()


# -- the controller ---------------------------------------------------------------------------


@dataclass
class LocalCluster:
    """A running local cluster: its address, its nodes' ids by name, and the host that runs it."""

    directory: Path
    address: str
    node_ids: dict[str, str]
    started_s: float
    _host: subprocess.Popen[bytes] = field(repr=False)

    def environment(self) -> dict[str, str]:
        return environment(self.directory)

    def _say(self, command: str) -> dict[str, Any]:
        assert self._host.stdin is not None
        self._host.stdin.write(command.encode() + b"\n")
        self._host.stdin.flush()
        return _read_line(self._host, START_TIMEOUT_S)

    def kill_node(self, name: str) -> None:
        """End every Ray process of a node at once (SIGKILL), as when its machine fails."""
        answer = self._say(f"kill {name}")
        if answer.get("killed") != name:
            raise RuntimeError(f"could not kill node {name}: {answer}")
        del self.node_ids[name]

    def add_node(self, name: str) -> None:
        answer = self._say(f"add {name}")
        if answer.get("added") != name:
            raise RuntimeError(f"could not add node {name}: {answer}")
        self.node_ids[name] = answer["node_id"]

    def processes(self) -> list[psutil.Process]:
        """Every process of the cluster: the host's session (Ray's own) and Ray's workers and actors."""
        found = []
        session = self._host.pid
        for process in psutil.process_iter():
            try:
                if os.getsid(process.pid) == session or str(self.directory) in " ".join(process.cmdline()):
                    found.append(process)
            except (psutil.Error, ProcessLookupError):
                continue
        return found

    def rss_bytes(self) -> int:
        total = 0
        for process in self.processes():
            try:
                total += process.memory_info().rss
            except psutil.Error:
                continue
        return total


def _read_line(process: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    line = process.stdout.readline() if ready else b""
    if not line:
        raise RuntimeError("the Ray cluster's host did not answer (its log is in its directory's host.log)")
    answer: dict[str, Any] = json.loads(line)
    return answer


@contextmanager
def local_cluster() -> Iterator[LocalCluster]:
    """A cluster for the duration of the block; afterwards no process of it is left, nor its directory."""
    # Short: Ray's Unix sockets live under it, and their paths are limited to 107 bytes.
    directory = Path(tempfile.mkdtemp(prefix="omray-", dir="/tmp"))
    log = (directory / "host.log").open("wb")
    host_process = subprocess.Popen(
        [sys.executable, "-m", "tools.ray_cluster", str(directory)],
        cwd=ROOT,
        # The nodes' python3 is this one (with overmind-mcp installed), as on a node provisioned for it.
        env={
            **os.environ,
            **environment(directory),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        # A session of its own: every Ray process it starts stays in it, so none can be missed at the end.
        start_new_session=True,
    )
    cluster: LocalCluster | None = None
    try:
        ready = _read_line(host_process, START_TIMEOUT_S)
        cluster = LocalCluster(directory, ready["address"], ready["nodes"], ready["started_s"], host_process)
        yield cluster
    finally:
        _stop(host_process, cluster, directory)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def _stop(host_process: subprocess.Popen[bytes], cluster: LocalCluster | None, directory: Path) -> None:
    if host_process.stdin is not None:
        host_process.stdin.close()
    try:
        host_process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        host_process.kill()
        host_process.wait()
    # Whatever Ray left behind (a worker that outlived its raylet) goes too, and is named.
    leftovers = (
        cluster.processes()
        if cluster is not None
        else [p for p in psutil.process_iter() if _in_session(p, host_process.pid)]
    )
    for process in leftovers:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.Error:
            continue
    psutil.wait_procs(leftovers, timeout=10)
    if leftovers:
        print(f"ray_cluster: killed {len(leftovers)} leftover Ray processes of {directory}", file=sys.stderr)


def _in_session(process: psutil.Process, session: int) -> bool:
    try:
        return os.getsid(process.pid) == session
    except (ProcessLookupError, PermissionError):
        return False


if __name__ == "__main__":
    host(Path(sys.argv[1]))
