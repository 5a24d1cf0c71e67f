"""The MCP tools' answers, built by the console: the core views over stored rows and the output files.

`--json` prints exactly what the tools' `structuredContent` holds, because it is made by the
same functions (`overmind_mcp.readside.views`). Those read a running mission's progress from a
`MissionView`: its server has the `Mission` itself; here a `LiveOutput` folds its output file.
What the owner alone knows, its admission queue, is read from the
store: queued missions start in the order they were created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from overmind_mcp.console.live import LiveOutput
from overmind_mcp.models import MissionResult, MissionSummary, PsResult
from overmind_mcp.readside import views
from overmind_mcp.storage.missions import MissionRow


def dump(model: BaseModel) -> dict[str, Any]:
    """A model as the MCP SDK puts it in `structuredContent`."""
    return model.model_dump(mode="json", by_alias=True)


def cost_of(row: MissionRow, live: LiveOutput | None) -> float | None:
    """A running mission's cost so far, else the stored one (as the supervisor's `_cost`)."""
    return live.activity.cost_usd if live is not None else row.cost_usd


def queue_positions(rows: list[MissionRow], queued: list[MissionRow]) -> dict[str, int]:
    """1 for the queued mission its server starts next, 2 for the one after…, for those among `rows`."""
    positions: dict[str, int] = {}
    by_server: dict[str | None, int] = {}
    for row in sorted(queued, key=lambda row: (row.created_at, row.id)):
        by_server[row.server_id] = by_server.get(row.server_id, 0) + 1
        positions[row.id] = by_server[row.server_id]
    wanted = {row.id for row in rows}
    return {mission_id: position for mission_id, position in positions.items() if mission_id in wanted}


def summary(row: MissionRow, live: LiveOutput | None, queue_position: int | None = None) -> MissionSummary:
    return views.summary_of(row, live, queue_position=queue_position)


def result(row: MissionRow, live: LiveOutput | None, *, text_limit: int) -> MissionResult:
    return views.result_of(row, live, text_limit=text_limit)


def ps_result(
    rows: list[MissionRow],
    lives: dict[str, LiveOutput],
    positions: dict[str, int],
    *,
    limit: int,
    tree: bool,
) -> tuple[PsResult, list[MissionRow]]:
    """The `ps` answer for rows already selected and ordered (depth first with `tree`), and the rows kept."""
    return views.ps_result(
        rows,
        lambda row: summary(row, lives.get(row.id), positions.get(row.id)),
        lambda row: cost_of(row, lives.get(row.id)),
        limit=limit,
        tree=tree,
    )


def file_size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except FileNotFoundError:
        return 0
