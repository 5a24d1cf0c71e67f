"""Children on the nodes of a Ray cluster: a detached actor per run, output pulled into the mission's files.

Needs the `ray` extra (pip install 'overmind-mcp[ray]') on the server and on every node,
with the same version of overmind-mcp: the actor's code is imported from it on the node.
"""

from __future__ import annotations

import importlib.util

from overmind_mcp.runners.ray.runner import RayRunner, namespace_for

INSTALL_HINT = "pip install 'overmind-mcp[ray]'"


def ray_installed() -> bool:
    """Whether Ray can be imported here (checked without importing it: that takes a second or two)."""
    return importlib.util.find_spec("ray") is not None


__all__ = ["INSTALL_HINT", "RayRunner", "namespace_for", "ray_installed"]
