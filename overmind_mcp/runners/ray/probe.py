"""`python -m overmind_mcp.runners.ray.probe ADDRESS TIMEOUT_S`: what `overmind doctor` learns of a Ray cluster.

Run in a process of its own, so that the doctor can bound it with a timeout (connecting to an
address where no cluster answers blocks for a long time) and never becomes a Ray driver
itself. Prints one JSON object: the nodes, each with what a task placed on it found there
(its overmind-mcp version, or why it could not import it), and this machine's node address.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from pydantic import BaseModel

# Each node's answer is awaited this long at most (a node may first have to start a worker).
NODE_TIMEOUT_S = 60.0


class NodeReport(BaseModel):
    node_id: str
    ip: str
    hostname: str
    alive: bool
    resources: dict[str, float]
    # What a task on the node found (a live node only): overmind-mcp's version there, or why not.
    version: str | None = None
    python: str | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.ip} {self.node_id[:8]}"


class ClusterReport(BaseModel):
    address: str
    coordinator_ip: str
    nodes: list[NodeReport]


def _installed_here() -> dict[str, str]:
    try:
        import overmind_mcp
    except ImportError as exc:
        return {"error": f"overmind-mcp is not installed on this node ({exc})"}
    return {"version": overmind_mcp.__version__, "python": sys.version.split()[0]}


class Unreachable(Exception):
    pass


def _connect(address: str, timeout_s: float) -> None:
    """ray.init, bounded: where no cluster answers, Ray keeps trying for a long while."""
    import ray

    failure: list[BaseException] = []

    def connect() -> None:
        try:
            ray.init(address=address, namespace="overmind-doctor", log_to_driver=False, logging_level=logging.ERROR)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise Unreachable(f"no Ray cluster answered at {address} within {timeout_s:g}s")
    if failure:
        raise Unreachable(str(failure[0]).strip().splitlines()[0] if str(failure[0]).strip() else repr(failure[0]))


def probe(address: str, timeout_s: float) -> ClusterReport:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    _connect(address, timeout_s)
    try:
        installed = ray.remote(num_cpus=0)(_installed_here)
        nodes = ray.nodes()
        asked = {
            node["NodeID"]: installed.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            ).remote()
            for node in nodes
            if node["Alive"]
        }
        report = []
        for node in nodes:
            entry: dict[str, Any] = {
                "node_id": node["NodeID"],
                "ip": node["NodeManagerAddress"],
                "hostname": node.get("NodeManagerHostname", ""),
                "alive": bool(node["Alive"]),
                "resources": {key: value for key, value in node["Resources"].items() if not key.startswith("node:")},
            }
            if node["NodeID"] in asked:
                try:
                    entry.update(ray.get(asked[node["NodeID"]], timeout=NODE_TIMEOUT_S))
                except Exception as exc:
                    entry["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
            report.append(entry)
        return ClusterReport(
            address=address,
            coordinator_ip=ray.util.get_node_ip_address(),
            nodes=[NodeReport.model_validate(entry) for entry in report],
        )
    finally:
        ray.shutdown()


if __name__ == "__main__":
    try:
        print(probe(sys.argv[1], float(sys.argv[2])).model_dump_json(), flush=True)
    except Unreachable as exc:
        print(exc, file=sys.stderr, flush=True)
        # Not a normal exit: the thread still inside ray.init must not hold the process up.
        os._exit(2)
