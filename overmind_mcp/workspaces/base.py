"""The workspace seam: *in which directory* a mission works.

`prepare` gives a new mission its working directory before anything starts (and fails
the spawn, with the reason, if it cannot: a mission never runs somewhere it did not ask
for); `release` runs once the mission has ended for good, with its final status, so a
workspace can keep, archive or remove what it made.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from overmind_mcp.core.spec import MissionSpec
from overmind_mcp.core.status import Status


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a new mission is asked to work: what it asked for, and its parent's directory."""

    mission_id: str
    name: str
    requested_cwd: str | None
    parent_cwd: Path | None
    spec: MissionSpec


class Workspace(Protocol):
    name: str

    async def prepare(self, placement: Placement) -> Path: ...

    async def release(self, mission_id: str, cwd: Path, status: Status) -> None: ...
