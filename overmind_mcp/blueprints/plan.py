"""The plan: a valid blueprint's nodes in topological layers (each layer depends only on earlier ones)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel

from overmind_mcp.blueprints.spec import Blueprint


class Plan(BaseModel):
    """What `blueprint_validate` and `overmind agents` show."""

    name: str
    nodes: int
    layers: list[list[str]]
    depends_on: dict[str, list[str]]


def layers(depends_on: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Kahn's algorithm, a layer at a time, names sorted within a layer; nodes on a cycle are left out."""
    waiting = {name: set(deps) for name, deps in depends_on.items()}
    dependents: dict[str, list[str]] = {name: [] for name in depends_on}
    for name, deps in waiting.items():
        for dep in deps:
            dependents.setdefault(dep, []).append(name)
    layer = sorted(name for name, deps in waiting.items() if not deps)
    found: list[list[str]] = []
    while layer:
        found.append(layer)
        ready = set()
        for name in layer:
            for dependent in dependents.get(name, []):
                waiting[dependent].discard(name)
                if not waiting[dependent]:
                    ready.add(dependent)
        layer = sorted(ready)
    return found


def ancestors(depends_on: Mapping[str, Sequence[str]], name: str) -> set[str]:
    """Every node `name` depends on, directly or through others."""
    seen: set[str] = set()
    stack = list(depends_on.get(name, ()))
    while stack:
        dep = stack.pop()
        if dep not in seen:
            seen.add(dep)
            stack.extend(depends_on.get(dep, ()))
    return seen


def plan_of(blueprint: Blueprint) -> Plan:
    depends_on = {name: list(node.depends_on) for name, node in blueprint.nodes.items()}
    return Plan(name=blueprint.name, nodes=len(depends_on), layers=layers(depends_on), depends_on=depends_on)
