"""Installing pinned packages from the npm registry into a git-ignored folder of the project.

Stdlib only, so the test command can run it before anything else is installed. Every call
is an argv list (`npm install --prefix DIR PACKAGE`), never a shell string, and idempotent:
callers check what is installed first and call this only when it is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
_INSTALL_TIMEOUT_S = 600


class InstallError(RuntimeError):
    """A package could not be installed; ``str(exc)`` says why and what to do."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def npm_install(install_dir: Path, package: str, *, hint: str = "") -> None:
    """`npm install --prefix install_dir package`; raises InstallError (exit code 2 without npm)."""
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError(
            f"npm was not found on PATH. Install Node.js (version 20 or newer) together with npm{hint}.",
            exit_code=2,
        )
    install_dir.mkdir(parents=True, exist_ok=True)
    argv = [npm, "install", "--prefix", str(install_dir), "--no-audit", "--no-fund", package]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"`{' '.join(argv)}` did not finish within {_INSTALL_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        raise InstallError(
            f"`{' '.join(argv)}` failed with exit code {proc.returncode}:\n{proc.stdout}{proc.stderr}".rstrip()
        )


def run_installer(name: str, install: Callable[[], Path]) -> int:
    """An installer's command line: print what it installed, or why not (exit 2 without npm)."""
    try:
        path = install()
    except InstallError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return exc.exit_code
    print(path)
    return 0
