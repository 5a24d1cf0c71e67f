"""The plain workspace: the directory the caller names (relative to its parent's), else the parent's."""

from __future__ import annotations

from pathlib import Path

from overmind_mcp.core.status import Status
from overmind_mcp.errors import InvalidRequest
from overmind_mcp.workspaces.base import Placement, Prepared


class PlainWorkspace:
    name = "plain"

    async def prepare(self, placement: Placement) -> Prepared:
        return Prepared(directory(placement.requested_cwd, placement.parent_cwd))

    async def release(self, mission_id: str, cwd: Path, status: Status | None) -> None:
        """Nothing to undo: the directory was the caller's before the mission and stays so."""


def directory(requested: str | None, parent_cwd: Path | None) -> Path:
    """`requested` (relative to the parent's directory), else the parent's, else the server's own."""
    # A stat or two on a local directory: not worth a thread.
    base = parent_cwd or Path.cwd()
    if requested is None:
        return base
    try:
        cwd = Path(requested).expanduser()
        if not cwd.is_absolute():
            cwd = base / cwd
        if not cwd.is_dir():
            raise InvalidRequest(f"cwd {requested[:300]!r} is not an existing directory")
        return cwd.resolve()
    except (OSError, RuntimeError) as exc:  # a name too long, ~user with no such user
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidRequest(f"cwd {requested[:300]!r} cannot be used: {reason}") from None
