"""Missions as the tools show them: stored rows (and, for live ones, what memory adds) → answers.

Shared by the supervisor and by the `overmind` command, so that both give the same shapes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from overmind_mcp.core.events import Event, Result, parse_note, to_text
from overmind_mcp.models import LIVE, LogPage, MissionResult, MissionSummary, PsResult, Status, Totals, Usage
from overmind_mcp.providers import parser_for
from overmind_mcp.readside.live import MissionView
from overmind_mcp.runners.base import node_of
from overmind_mcp.runners.local.output import read_page
from overmind_mcp.storage.missions import MissionRow

PAGE_BYTES = 64 * 1024


def result_of(row: MissionRow, mission: MissionView | None, *, text_limit: int) -> MissionResult:
    """A mission's outcome; while it runs, its latest result (a session's last turn) and progress."""
    latest = mission.activity.result if mission is not None else None
    # A live mission's latest result line says as much as a finished one's stored record.
    record = record_of(latest) if latest is not None else row.result or {}
    text = record.get("text")
    truncated = text is not None and len(text) > text_limit
    if text is not None and truncated:
        # A command's output ends with what matters; an answer starts with it.
        text = text[-text_limit:] if parser_for(row.provider).result_is_output_end else text[:text_limit]
    usage = record.get("usage")
    return MissionResult(
        id=row.id,
        name=row.name,
        status=shown_status(row, mission),
        exit_code=row.exit_code,
        end_reason=row.end_reason,
        is_error=record.get("is_error"),
        text=text,
        text_truncated=truncated,
        errors=record.get("errors", []),
        session_id=row.session_id or (mission.activity.session_id if mission else None),
        cwd=row.cwd,
        cost_usd=mission.activity.cost_usd if mission is not None else row.cost_usd,
        duration_ms=record.get("duration_ms"),
        num_turns=record.get("num_turns"),
        usage=Usage.model_validate(usage) if isinstance(usage, dict) else None,
        permission_denials=record.get("permission_denials", []),
        output=record.get("structured_output"),
        started_at=iso(row.started_at),
        ended_at=iso(row.ended_at),
        restarts=row.restarts,
        node=node_of(row.runner_state),
        session_state=mission.session_state() if mission is not None else None,
        progress=mission.activity.progress() if mission is not None else None,
    )


def record_of(result: Result) -> dict[str, Any]:
    """What a result line says, as `result` shows it and the store keeps it."""
    return {
        "is_error": result.is_error,
        "text": result.text,
        "subtype": result.subtype,
        "errors": errors_of(result),
        "duration_ms": result.duration_ms,
        "num_turns": result.num_turns,
        "usage": result.usage,
        "permission_denials": result.permission_denials,
        "terminal_reason": result.terminal_reason,
        "structured_output": result.structured_output,
    }


def errors_of(result: Result) -> list[str]:
    """A result's errors; an error reported as `subtype: success` has its reason in the text alone."""
    if result.errors or not result.is_error or not result.text:
        return list(result.errors)
    return [result.text]


def shown_status(row: MissionRow, mission: MissionView | None) -> Status:
    """Its status as answers show it: a running mission that waits for a permission answer needs approval."""
    if row.status == Status.RUNNING and mission is not None and mission.awaiting_approval is not None:
        return Status.NEEDS_APPROVAL
    return row.status


def summary_of(row: MissionRow, mission: MissionView | None, *, queue_position: int | None = None) -> MissionSummary:
    end = row.ended_at or time.time()
    return MissionSummary(
        id=row.id,
        name=row.name,
        status=shown_status(row, mission),
        parent=row.parent_id,
        depth=row.depth,
        age_s=round(end - row.created_at, 1),
        turns=mission.activity.turns if mission else row.num_turns,
        cost_usd=mission.activity.cost_usd if mission else row.cost_usd,
        doing=(mission.awaiting_approval or mission.activity.doing()) if mission else None,
        queue_position=queue_position,
        node=node_of(row.runner_state),
        session_state=mission.session_state() if mission else None,
    )


def log_page(row: MissionRow, *, cursor: int, limit: int, format: Literal["text", "events"]) -> LogPage:
    path = Path(row.output_path)
    size = _file_size(path)
    lines, next_cursor = read_page(path, min(cursor, size), limit, PAGE_BYTES) if size else ([], cursor)
    page = LogPage(
        id=row.id,
        name=row.name,
        status=row.status,
        cursor=cursor,
        next_cursor=next_cursor,
        more=next_cursor < size,
    )
    parse = parser_for(row.provider).parse_line
    for line in lines:
        if format == "events":
            page.events.append(event_dict(line))
        else:
            page.lines.extend(readable(parse_output_line(line, parse)))
    return page


def parse_output_line(line: bytes, parse: Any) -> list[Event]:
    """A line of a mission's output file: the supervisor's own notes first, then the provider's."""
    note = parse_note(line)
    return [note] if note is not None else parse(line)


def readable(events: list[Event]) -> list[str]:
    return [text for event in events if (text := to_text(event)) is not None]


def event_dict(line: bytes) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data
    return {"type": "plain", "text": line.decode("utf-8", "replace").rstrip("\r\n")}


def ps_result(
    rows: list[MissionRow],
    summarize: Callable[[MissionRow], MissionSummary],
    cost_of: Callable[[MissionRow], float | None],
    *,
    limit: int,
    tree: bool,
) -> tuple[PsResult, list[MissionRow]]:
    """The `ps` answer for rows already selected and ordered (depth first with `tree`), and the rows kept."""
    live_count = sum(row.status in LIVE for row in rows)
    cost = sum(cost_of(row) or 0.0 for row in rows)
    if len(rows) > limit:
        # Keep every live mission and the newest of the rest.
        keep = {row.id for row in rows if row.status in LIVE}
        keep |= {row.id for row in sorted(rows, key=lambda row: row.created_at)[-limit:]}
        rows = [row for row in rows if row.id in keep]
    summaries = [summarize(row) for row in rows]
    if tree:
        roll_up_costs(summaries)
    answer = PsResult(
        missions=summaries, totals=Totals(missions=len(rows), running=live_count, cost_usd=round(cost, 6))
    )
    return answer, rows


def roll_up_costs(summaries: list[MissionSummary]) -> None:
    """Give each mission of a depth-first listing the cost of its whole subtree."""
    totals = {summary.id: summary.cost_usd or 0.0 for summary in summaries}
    for summary in reversed(summaries):
        if summary.parent in totals:
            totals[summary.parent] += totals[summary.id]
    for summary in summaries:
        summary.tree_cost_usd = round(totals[summary.id], 6)


def depth_first(rows: list[MissionRow]) -> list[MissionRow]:
    """Rows in tree order: each mission followed by its subtree, oldest first."""
    by_parent: dict[str | None, list[MissionRow]] = {}
    ids = {row.id for row in rows}
    for row in sorted(rows, key=lambda row: row.created_at):
        parent = row.parent_id if row.parent_id in ids else None
        by_parent.setdefault(parent, []).append(row)
    ordered: list[MissionRow] = []
    stack = list(reversed(by_parent.get(None, [])))
    while stack:
        row = stack.pop()
        ordered.append(row)
        stack.extend(reversed(by_parent.get(row.id, [])))
    return ordered


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
