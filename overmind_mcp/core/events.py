"""Typed events parsed from a child's output, one line at a time.

Providers turn raw output lines into these; the supervisor folds them into a
mission's progress and result. Nothing here knows about processes or MCP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Init:
    """`system/init`: the CLI is ready. Re-emitted at every turn of a live session."""

    session_id: str | None
    model: str | None
    cwd: str | None
    mcp_servers: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class AssistantText:
    text: str
    message_id: str | None


@dataclass(slots=True)
class ToolUse:
    tool_use_id: str
    name: str
    input: dict[str, Any]
    message_id: str | None


@dataclass(slots=True)
class ToolResult:
    tool_use_id: str | None
    is_error: bool
    content: str


@dataclass(slots=True)
class ApiRetry:
    attempt: int
    max_retries: int | None
    retry_delay_ms: int | None
    error_status: int | None
    error: str | None


@dataclass(slots=True)
class PermissionDenied:
    tool_name: str
    tool_use_id: str | None
    message: str


@dataclass(slots=True)
class PermissionRequest:
    """A live session asks whether it may run a tool call (`control_request` `can_use_tool`); it waits for
    the answer on its stdin."""

    request_id: str
    tool_name: str
    input: dict[str, Any]
    tool_use_id: str | None
    # The path the CLI says the call would touch, when it knows one.
    blocked_path: str | None


@dataclass(slots=True)
class ApiError:
    """A synthetic assistant message the CLI emits when the API call failed."""

    error: str
    text: str


@dataclass(slots=True)
class Result:
    """The `result` line that closes a run (or one turn of a session).

    `is_error` is the authority on failure: the CLI can print `subtype: "success"`
    together with `is_error: true` (for example when it is not logged in).
    """

    subtype: str
    is_error: bool
    text: str | None
    errors: list[str]
    session_id: str | None
    cost_usd: float | None
    duration_ms: int | None
    num_turns: int | None
    usage: dict[str, Any]
    permission_denials: list[dict[str, Any]]
    terminal_reason: str | None
    result_index: int | None
    # The answer as JSON, when the run was asked for one (--json-schema).
    structured_output: Any = None


@dataclass(slots=True)
class Unknown:
    """A JSON line of a type we do not interpret: kept, never fatal."""

    type: str
    subtype: str | None
    data: dict[str, Any]


@dataclass(slots=True)
class Note:
    """A line the supervisor itself wrote into a mission's output, between two runs of its process."""

    kind: str
    text: str


@dataclass(slots=True)
class PlainText:
    """A line that is not JSON (raw commands, stray prints, truncated lines)."""

    text: str


Event = (
    Init
    | AssistantText
    | ToolUse
    | ToolResult
    | ApiRetry
    | PermissionDenied
    | PermissionRequest
    | ApiError
    | Result
    | Unknown
    | PlainText
    | Note
)

_NOTE_PREFIX = b'{"type":"overmind",'


def note_line(kind: str, text: str) -> bytes:
    """A note for a mission's output file; written only while no process of the mission runs."""
    return json.dumps({"type": "overmind", "kind": kind, "text": text}, separators=(",", ":")).encode() + b"\n"


def may_hold_note(lines: list[bytes]) -> bool:
    """Whether a note may be among `lines` (searched at once; a false alarm costs only speed)."""
    return _NOTE_PREFIX in b"\n".join(lines)


def parse_note(line: bytes) -> Note | None:
    if not line.startswith(_NOTE_PREFIX):
        return None
    try:
        data = json.loads(line)
        return Note(str(data["kind"]), str(data["text"]))
    except (ValueError, KeyError, TypeError):
        return None


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split()) if "\n" in text[:limit] else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_text(event: Event) -> str | None:
    """One readable log line for an event, or None for events a person does not need to see."""
    match event:
        case AssistantText(text=text):
            return text
        case PlainText(text=text):
            return text
        case ToolUse(name=name, input=tool_input):
            return f"→ {name} {_clip(json.dumps(tool_input, ensure_ascii=False), 200)}"
        case ToolResult(is_error=is_error, content=content):
            return f"← {'error' if is_error else 'ok'}: {_clip(content, 200)}"
        case Init(session_id=session_id, model=model):
            return f"[init] session {session_id} model {model}"
        case ApiRetry(attempt=attempt, max_retries=max_retries, retry_delay_ms=delay, error=error):
            return f"[api retry {attempt}/{max_retries} in {(delay or 0) / 1000:.1f}s: {error}]"
        case PermissionDenied(tool_name=tool_name, message=message):
            return f"[permission denied] {tool_name}: {message}"
        case PermissionRequest(tool_name=tool_name, input=tool_input):
            return f"[asks permission] {tool_name} {_clip(json.dumps(tool_input, ensure_ascii=False), 200)}"
        case Note(text=text):
            return f"--- {text} ---"
        case ApiError(error=error, text=text):
            return f"[api error {error}] {text}"
        case Result(subtype=subtype, is_error=is_error, cost_usd=cost, num_turns=turns, errors=errors):
            outcome = "error" if is_error else "ok"
            detail = f": {'; '.join(errors)}" if errors else ""
            return f"[result {outcome} ({subtype}), {turns} turns, ${cost or 0:.4f}{detail}]"
        case _:
            return None
