"""A mission while this server supervises it: its stored row plus what lives only in memory.

Memory per mission is bounded: counters, the last few readable lines, the last result.
The complete output stays in the mission's file.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import anyio

from overmind_mcp.core.events import (
    Event,
    Note,
    to_text,
)
from overmind_mcp.core.spec import MissionSpec
from overmind_mcp.core.status import Status, StopReason
from overmind_mcp.providers.base import Provider
from overmind_mcp.readside.activity import Activity
from overmind_mcp.runners.base import Handle
from overmind_mcp.runners.local.output import LineReader
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision.restarts import RestartHistory
from overmind_mcp.supervision.session import SessionChannel

if TYPE_CHECKING:
    from overmind_mcp.supervision.holds import Hold


@dataclass(eq=False)
class Mission:
    row: MissionRow
    provider: Provider
    tail: deque[str]
    activity: Activity = field(default_factory=Activity)
    handle: Handle | None = None
    # Follows the output file across every run of the process, so nothing is read twice.
    reader: LineReader | None = None
    session: SessionChannel | None = None
    restarts: RestartHistory = field(default_factory=RestartHistory)
    run_started: float = field(default_factory=time.monotonic)
    ended: anyio.Event = field(default_factory=anyio.Event)
    # Why the server is ending it; None while it runs (or ends) by itself.
    stop_reason: StopReason | None = None
    stopping: anyio.Event = field(default_factory=anyio.Event)
    ended_by: str | None = None
    # Why it failed before or between its runs (a launch that failed, a fault in its supervision).
    failure: str | None = None
    # Result lines already acted on (a session's turn completed, budgets checked).
    results_seen: int = 0
    # A person's hold on a live session (overmind attach): agents' messages are refused meanwhile.
    hold: Hold | None = None
    # What its process waits for an answer to (a permission request), as `ps` shows it; None: nothing.
    awaiting_approval: str | None = None
    # The scope its supervising task runs in, made with the mission so that it can be cancelled
    # even before that task has started; cancelled only to leave a detached mission running.
    scope: anyio.CancelScope = field(default_factory=lambda: anyio.CancelScope(shield=True))

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def spec(self) -> MissionSpec:
        return self.row.spec

    @property
    def running(self) -> bool:
        """Whether a process of the mission is running now."""
        return self.handle is not None and self.handle.running

    def move_to(self, status: Status) -> None:
        """Change its status, along the one table of allowed moves."""
        self.row.status = self.row.status.check_move(status)

    def request_stop(self, reason: StopReason) -> bool:
        """Mark it as being ended by the server; False if something already is ending it."""
        if self.stop_reason is not None:
            return False
        self.stop_reason = reason
        self.stopping.set()
        return True

    def resume_after_restart(self) -> None:
        """Forget the last run's outcome (a stall) before the next run starts."""
        self.stop_reason = None
        self.stopping = anyio.Event()
        self.ended_by = None
        self.activity.result = None

    def session_state(self) -> Literal["idle", "working", "attached"] | None:
        if self.session is None:
            return None
        if self.hold is not None:
            return "attached"
        return "idle" if self.session.idle else "working"

    def ingest(self, events: list[Event], lines: int = 1) -> bool:
        """Fold in the events of `lines` lines of output; True when a watcher would see a change."""
        changed = False
        self.activity.output_lines += lines
        self.activity.last_output_at = time.monotonic()
        for event in events:
            changed |= self.activity.apply(event)
            # The tail is what the mission said (a command's result is its end); our notes are in the log.
            text = None if isinstance(event, Note) else to_text(event)
            if text is not None:
                self.tail.append(text)
        return changed
