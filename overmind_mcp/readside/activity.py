"""What a mission is doing, folded from its output events: the same for the server and the console.

The supervising server folds each event as it parses it; the console folds a mission's output
file; both then read `progress` and `doing` from here, so they always agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from overmind_mcp.core.events import (
    ApiRetry,
    AssistantText,
    Event,
    Init,
    PermissionDenied,
    PermissionRequest,
    PlainText,
    Result,
    ToolResult,
    ToolUse,
)
from overmind_mcp.models import Progress

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
