"""A live mission as the read side sees it: whoever holds it, the supervising server or the console."""

from __future__ import annotations

from typing import Literal, Protocol

import anyio

from overmind_mcp.readside.activity import Activity
from overmind_mcp.storage.missions import MissionRow

SessionState = Literal["idle", "working", "attached"]


class MissionView(Protocol):
    """What the views ask of a mission that runs: the supervisor's own, or the console's reading of its output."""

    @property
    def row(self) -> MissionRow: ...

    @property
    def activity(self) -> Activity: ...

    @property
    def awaiting_approval(self) -> str | None:
        """The id of the permission request it waits on, if any."""
        ...

    def session_state(self) -> SessionState | None:
        """A live session's state (None for a task)."""
        ...


class LiveMission(MissionView, Protocol):
    """A mission in the memory of the server that supervises it, as the read side and its waits see it."""

    @property
    def name(self) -> str: ...

    @property
    def ended(self) -> anyio.Event: ...
