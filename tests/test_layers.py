"""The architecture, checked: packages import only downward, and only the MCP layer imports `mcp`."""

from __future__ import annotations

import ast
from pathlib import Path

import overmind_mcp

PACKAGE = Path(overmind_mcp.__file__).parent

LAYERS: list[set[str]] = [
    {"core", "errors", "names"},
    {"models", "settings", "storage", "bus", "identity"},
    {"providers", "runners", "workspaces", "akasha", "permissions"},
    {"readside"},
    {"supervision"},
    {"control", "rituals", "blueprints"},
    {"server", "console", "tui", "dashboard", "attach", "cli", "demo", "__main__", "__init__"},
]
"""From the bottom up. A module may import its own package and those of its layer or below."""

MCP_USERS = {"server", "demo"}
"""The MCP layer, and the demo (an MCP client)."""


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules() -> list[tuple[str, Path]]:
    return [(path.relative_to(PACKAGE).parts[0].removesuffix(".py"), path) for path in sorted(PACKAGE.rglob("*.py"))]


def _layer(package: str) -> int:
    return next(index for index, members in enumerate(LAYERS) if package in members)


def test_every_package_has_a_layer() -> None:
    unplaced = {package for package, _path in _modules() if not any(package in layer for layer in LAYERS)}
    assert not unplaced, f"place these packages in LAYERS: {sorted(unplaced)}"


def test_packages_import_only_downward() -> None:
    upward = []
    for package, path in _modules():
        for name in _imports(path):
            if not name.startswith("overmind_mcp."):
                continue
            target = name.split(".")[1]
            if target != package and _layer(target) > _layer(package):
                upward.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not upward, "\n".join(upward)


def test_only_the_mcp_layer_imports_mcp() -> None:
    found = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for package, path in _modules()
        if package not in MCP_USERS
        for name in _imports(path)
        if name.split(".")[0] in ("mcp", "mcp_types")
    ]
    assert not found, "\n".join(found)
