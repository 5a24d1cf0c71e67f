"""Rituals, their runs and quests as answers, made the same way for the MCP tools and the console.

A run's status is its mission's own (succeeded needs a result, see the supervisor's rules);
a slot that started nothing says what became of it instead, with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from itertools import islice

from overmind_mcp.readside.views import iso as utc
from overmind_mcp.rituals.cron import Cron, iso
from overmind_mcp.rituals.models import FireStatus, Quest, Ritual, RitualRun
from overmind_mcp.rituals.store import FireRow, QuestRow, RitualRow
from overmind_mcp.storage.missions import MissionRow

Lookup = Callable[[str], Awaitable[MissionRow | None]]
"""A mission's row by id; None once it has been pruned."""

NEXT_FIRES = 3
LAST_RUNS = 3

_NOT_STARTED: dict[str, FireStatus] = {
    "claimed": "starting",
    "queued": "waiting",
    "skipped": "skipped",
    "missed": "missed",
    "failed": "not_started",
}


async def run_of(fire: FireRow, tz: str, lookup: Lookup, now: float) -> RitualRun:
    run = RitualRun(slot=iso(fire.slot, tz), status=_NOT_STARTED.get(fire.state, "unknown"), reason=fire.reason)
    if fire.state != "started" or fire.mission_id is None:
        return run
    run.mission, run.name = fire.mission_id, fire.mission_name
    run.late_s = round(fire.started_at - fire.due, 3) if fire.started_at is not None else None
    row = await lookup(fire.mission_id)
    if row is None:
        run.status, run.reason = "unknown", "its mission's record has been pruned"
        return run
    run.status = row.status  # type: ignore[assignment]
    run.exit_code, run.cost_usd, run.reason = row.exit_code, row.cost_usd, row.end_reason
    run.duration_s = duration(row, now)
    return run


def duration(row: MissionRow, now: float) -> float | None:
    if row.started_at is None:
        return None
    return round((row.ended_at or now) - row.started_at, 3)


async def ritual_of(row: RitualRow, fires: list[FireRow], lookup: Lookup, now: float) -> Ritual:
    next_fires = []
    if row.enabled:
        next_fires = [
            iso(slot, row.tz) for slot in islice(Cron(row.cron, row.tz).slots(max(now, row.anchor)), NEXT_FIRES)
        ]
    return Ritual(
        name=row.name,
        cron=row.cron,
        tz=row.tz,
        spawn=row.spawn,
        blueprint=row.blueprint,
        catch_up=row.catch_up,  # type: ignore[arg-type]
        misfire_grace_s=row.misfire_grace_s,
        overlap=row.overlap,  # type: ignore[arg-type]
        jitter_s=row.jitter_s,
        enabled=row.enabled,
        created_at=iso(row.created_at, row.tz),
        next_fires=next_fires,
        last_runs=[await run_of(fire, row.tz, lookup, now) for fire in fires],
    )


async def quest_of(row: QuestRow, lookup: Lookup, now: float) -> Quest:
    mission = await lookup(row.mission_id)
    return Quest(
        mission=row.mission_id,
        name=row.mission_name,
        origin=row.origin,  # type: ignore[arg-type]
        ritual=row.ritual,
        slot=utc(row.slot),
        status=mission.status if mission is not None else "unknown",  # type: ignore[arg-type]
        exit_code=mission.exit_code if mission is not None else None,
        cost_usd=mission.cost_usd if mission is not None else None,
        duration_s=duration(mission, now) if mission is not None else None,
        created_at=utc(row.created_at) or "",
    )
