"""The workspace seam: *in which directory* a mission works.

`prepare` gives a new mission its working directory, and the variables its environment must
carry there (a port leased for it), before anything starts; it fails the spawn, with the
reason, if it cannot: a mission never runs somewhere it did not ask for. `release` runs once
the mission has ended for good, with its final status, so a workspace can keep, archive or
remove what it made; with no status when the spawn failed after `prepare`, before the
mission was stored: then whatever `prepare` made is taken back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a workspace made for a mission: where it works, and what its environment carries for it."""

    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)


class Workspace(Protocol):
    name: str

    async def prepare(self, placement: Placement) -> Prepared: ...

    async def release(self, mission_id: str, cwd: Path, status: Status | None) -> None: ...
