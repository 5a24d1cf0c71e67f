"""The plain workspace: the directory the caller names (relative to its parent's), else the parent's."""

from __future__ import annotations

from pathlib import Path

from overmind_mcp.core.status import Status
from overmind_mcp.errors import InvalidRequest
from overmind_mcp.workspaces.base import Placement


class PlainWorkspace:
    name = "plain"

    async def prepare(self, placement: Placement) -> Path:
        return _directory(placement)

    async def release(self, mission_id: str, cwd: Path, status: Status) -> None:
        """Nothing to undo: the directory was the caller's before the mission and stays so."""


def _directory(placement: Placement) -> Path:
    # A stat or two on a local directory: not worth a thread.
    base = placement.parent_cwd or Path.cwd()
    if placement.requested_cwd is None:
        return base
    cwd = Path(placement.requested_cwd).expanduser()
    if not cwd.is_absolute():
        cwd = base / cwd
    if not cwd.is_dir():
        raise InvalidRequest(f"cwd {placement.requested_cwd!r} is not an existing directory")
    return cwd.resolve()
