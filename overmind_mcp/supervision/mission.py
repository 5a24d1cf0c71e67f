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
    ApiRetry,
    AssistantText,
    Event,
    Init,
    Note,
    PermissionDenied,
    PermissionRequest,
    PlainText,
    Result,
    ToolResult,
    ToolUse,
    to_text,
)
from overmind_mcp.core.spec import MissionSpec
from overmind_mcp.core.status import Status, StopReason
from overmind_mcp.models import Progress
from overmind_mcp.providers.base import Provider
from overmind_mcp.runners.base import Handle
from overmind_mcp.runners.local.output import LineReader
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision.restarts import RestartHistory
from overmind_mcp.supervision.session import SessionChannel

if TYPE_CHECKING:
    from overmind_mcp.supervision.holds import Hold

_LAST_TEXT_CHARS = 200
_MAX_DENIALS = 50


@dataclass(slots=True)
class Activity:
    """Progress folded from a mission's events."""

    turns: int = 0
    tool_calls: int = 0
    last_tool: str | None = None
    last_text: str | None = None
    api_retries: int = 0
    output_lines: int = 0
    in_tool: bool = False
    last_output_at: float = field(default_factory=time.monotonic)
    session_id: str | None = None
    result: Result | None = None
    results: int = 0
    cost_usd: float | None = None
    denials: list[PermissionDenied] = field(default_factory=list)
    # A session's permission requests not yet handed to the broker.
    permission_requests: list[PermissionRequest] = field(default_factory=list)
    _message_id: str | None = None

    def apply(self, event: Event) -> bool:
        """Fold one event in; True when it changed what a watcher would report."""
        match event:
            case AssistantText(text=text, message_id=message_id):
                changed = self._count_turn(message_id)
                self.last_text = text[:_LAST_TEXT_CHARS]
                return changed
            case ToolUse(name=name, message_id=message_id):
                self._count_turn(message_id)
                self.tool_calls += 1
                self.last_tool = name
                self.in_tool = True
                return True
            case ToolResult():
                self.in_tool = False
                return False
            case Init(session_id=session_id):
                changed = session_id != self.session_id
                self.session_id = session_id or self.session_id
                return changed
            case ApiRetry():
                self.api_retries += 1
                return True
            case PermissionDenied():
                if len(self.denials) < _MAX_DENIALS:
                    self.denials.append(event)
                return True
            case PermissionRequest():
                self.permission_requests.append(event)
                return True
            case PlainText(text=text):
                # A command's output is its only sign of progress.
                self.last_text = text[:_LAST_TEXT_CHARS]
                return True
            case Result(cost_usd=cost, num_turns=num_turns, session_id=session_id):
                self.result = event
                self.results += 1
                self.in_tool = False
                if cost is not None:
                    self.cost_usd = cost
                if num_turns is not None:
                    self.turns = max(self.turns, num_turns)
                self.session_id = session_id or self.session_id
                return True
        return False

    def _count_turn(self, message_id: str | None) -> bool:
        # The CLI prints one assistant line per content block; lines of one turn share the message id.
        if message_id is not None and message_id == self._message_id:
            return False
        self._message_id = message_id
        self.turns += 1
        return True

    def progress(self) -> Progress:
        return Progress(
            turns=self.turns,
            tool_calls=self.tool_calls,
            last_tool=self.last_tool,
            last_text=self.last_text,
            cost_usd=self.cost_usd,
            api_retries=self.api_retries,
            output_lines=self.output_lines,
            idle_s=round(time.monotonic() - self.last_output_at, 1),
        )

    def doing(self) -> str | None:
        if self.in_tool and self.last_tool:
            return f"turn {self.turns}: running {self.last_tool}"
        if self.last_text:
            return f"turn {self.turns}: {self.last_text[:80]}" if self.turns else self.last_text[:80]
        if self.api_retries:
            return f"retrying the API ({self.api_retries} retries)"
        if self.session_id:
            return "waiting for the model"
        return None


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

    def ingest(self, events: list[Event]) -> bool:
        changed = False
        self.activity.output_lines += 1
        self.activity.last_output_at = time.monotonic()
        for event in events:
            changed |= self.activity.apply(event)
            # The tail is what the mission said (a command's result is its end); our notes are in the log.
            text = None if isinstance(event, Note) else to_text(event)
            if text is not None:
                self.tail.append(text)
        return changed
