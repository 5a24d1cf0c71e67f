"""Install the pinned MCP TypeScript SDK into ``.cache/e2e-node/`` for the end-to-end tests.

Usage: ``python -m tools.install_mcp_sdk`` (prints the SDK's package directory).

The end-to-end suite drives overmind-mcp with a client no one on the team wrote: the official
TypeScript SDK's ``Client`` over ``StdioClientTransport`` (``tests/e2e/mcp_client.mjs``). 1.32.2 is
pinned: it runs on Node 20. Installed with an argv-list ``npm install --prefix`` (no shell, no npx),
into a git-ignored folder, once; later calls only read its ``package.json``.

Stdlib only, like ``install_claude_cli.py``; both install through ``tools/npm.py``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from tools.npm import CACHE, InstallError, npm_install, run_installer

MCP_SDK_VERSION = "1.32.2"
PACKAGE_NAME = "@modelcontextprotocol/sdk"
PACKAGE = f"{PACKAGE_NAME}@{MCP_SDK_VERSION}"

INSTALL_DIR = CACHE / "e2e-node"


def sdk_dir(install_dir: Path = INSTALL_DIR) -> Path:
    """Where ``npm install --prefix`` puts the package (it may not exist yet)."""
    return install_dir / "node_modules" / PACKAGE_NAME


def installed_version(package_dir: Path) -> str | None:
    try:
        version = json.loads((package_dir / "package.json").read_text()).get("version")
    except (OSError, ValueError):
        return None
    return version if isinstance(version, str) else None


def node_bin() -> str:
    """The ``node`` that runs the client script; raises InstallError (exit code 2) when there is none."""
    node = shutil.which("node")
    if node is None:
        raise InstallError("node was not found on PATH. Install Node.js 20 or newer together with npm.", exit_code=2)
    return node


def ensure_mcp_sdk(install_dir: Path = INSTALL_DIR) -> Path:
    """The pinned SDK's package directory, installing it with npm first if needed.

    Raises InstallError (exit_code 2 when node or npm is missing) if that is impossible.
    """
    node_bin()
    package_dir = sdk_dir(install_dir)
    if installed_version(package_dir) == MCP_SDK_VERSION:
        return package_dir

    npm_install(install_dir, PACKAGE, hint=f", then run `python -m tools.install_mcp_sdk` to install {PACKAGE}")
    version = installed_version(package_dir)
    if version != MCP_SDK_VERSION:
        raise InstallError(f"npm install succeeded but {package_dir} holds version {version!r}, not {MCP_SDK_VERSION}")
    return package_dir


if __name__ == "__main__":
    sys.exit(run_installer("install_mcp_sdk", ensure_mcp_sdk))
