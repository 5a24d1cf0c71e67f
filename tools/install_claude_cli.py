"""Install the pinned Claude Code CLI into ``.cache/claude-code/`` for the end-to-end tests.

Usage: ``python tools/install_claude_cli.py`` (prints the path of the ``claude`` binary).

The version is pinned on purpose: on Node 20 an unpinned ``npm install @anthropic-ai/claude-code``
silently resolves to an older release (newer ones declare ``engines.node >=22``), while the explicit
version installs with a harmless EBADENGINE warning. The package's postinstall only copies a native
binary out of an optional dependency, so Node's version does not matter at run time.

Stdlib only, so that it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CLAUDE_CODE_VERSION = "2.1.332"
PACKAGE = f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"

ROOT = Path(__file__).resolve().parent.parent
INSTALL_DIR = ROOT / ".cache" / "claude-code"

# The native binary answers `--version` in well under a second; the margin is for cold disks.
_VERSION_TIMEOUT_S = 30
_INSTALL_TIMEOUT_S = 600


class InstallError(RuntimeError):
    """The CLI could not be installed; ``str(exc)`` says why and what to do."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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

    npm = shutil.which("npm")
    if npm is None:
        raise InstallError(
            "npm was not found on PATH. Install Node.js (version 20 or newer) together with npm, "
            f"then run `python tools/install_claude_cli.py` to install {PACKAGE} into {install_dir}.",
            exit_code=2,
        )

    install_dir.mkdir(parents=True, exist_ok=True)
    argv = [npm, "install", "--prefix", str(install_dir), "--no-audit", "--no-fund", PACKAGE]
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=_INSTALL_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"`{' '.join(argv)}` did not finish within {_INSTALL_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        raise InstallError(
            f"`{' '.join(argv)}` failed with exit code {proc.returncode}:\n{proc.stdout}{proc.stderr}".rstrip()
        )

    version = installed_version(binary)
    if version != CLAUDE_CODE_VERSION:
        raise InstallError(
            f"npm install succeeded but {binary} --version reports {version!r}, expected {CLAUDE_CODE_VERSION!r}.\n"
            f"npm output:\n{proc.stdout}{proc.stderr}".rstrip()
        )
    return binary


def main() -> int:
    try:
        binary = ensure_claude_cli()
    except InstallError as exc:
        print(f"install_claude_cli: {exc}", file=sys.stderr)
        return exc.exit_code
    print(binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
