"""Install the pinned Claude Code CLI into ``.cache/claude-code/`` for the end-to-end tests.

Usage: ``python -m tools.install_claude_cli`` (prints the path of the ``claude`` binary).

The version is pinned on purpose: on Node 20 an unpinned ``npm install @anthropic-ai/claude-code``
silently resolves to an older release (newer ones declare ``engines.node >=22``), while the explicit
version installs with a harmless EBADENGINE warning. The package's postinstall only copies a native
binary out of an optional dependency, so Node's version does not matter at run time.

Stdlib only, so that it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.npm import CACHE, InstallError, npm_install, run_installer

__all__ = ["CLAUDE_CODE_VERSION", "InstallError", "claude_bin_path", "ensure_claude_cli"]

CLAUDE_CODE_VERSION = "2.1.332"
PACKAGE = f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"

INSTALL_DIR = CACHE / "claude-code"

# The native binary answers `--version` in well under a second; the margin is for cold disks.
_VERSION_TIMEOUT_S = 30


def claude_bin_path(install_dir: Path = INSTALL_DIR) -> Path:
    """Where ``npm install --prefix`` puts the ``claude`` launcher (it may not exist yet)."""
    return install_dir / "node_modules" / ".bin" / "claude"


def installed_version(binary: Path) -> str | None:
    """The version reported by ``binary --version``, or None if it is missing or broken."""
    if not binary.exists():
        return None
    try:
        proc = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=_VERSION_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    # Prints e.g. "2.1.332 (Claude Code)".
    words = proc.stdout.split()
    return words[0] if words else None


def ensure_claude_cli(install_dir: Path = INSTALL_DIR) -> Path:
    """Return the path of the pinned CLI, installing it with npm first if needed.

    Raises InstallError (exit_code 2 when npm itself is missing) if that is impossible.
    """
    binary = claude_bin_path(install_dir)
    if installed_version(binary) == CLAUDE_CODE_VERSION:
        return binary

    npm_install(install_dir, PACKAGE, hint=f", then run `python -m tools.install_claude_cli` to install {PACKAGE}")

    version = installed_version(binary)
    if version != CLAUDE_CODE_VERSION:
        raise InstallError(
            f"npm install succeeded but {binary} --version reports {version!r}, expected {CLAUDE_CODE_VERSION!r}."
        )
    return binary


if __name__ == "__main__":
    sys.exit(run_installer("install_claude_cli", ensure_claude_cli))
