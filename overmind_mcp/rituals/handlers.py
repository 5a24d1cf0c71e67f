"""The rituals' answers to the console's requests (registered with the control mailbox)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from overmind_mcp.control.registry import handles
from overmind_mcp.models import Spawned
from overmind_mcp.rituals.models import Paused, QuestRequest, Ritual, RitualName, RitualSpec, Unscheduled
from overmind_mcp.rituals.service import rituals_of
from overmind_mcp.rituals.verbs import PAUSE, QUEST, SCHEDULE, UNSCHEDULE

if TYPE_CHECKING:
    from overmind_mcp.supervision.supervisor import Supervisor


@handles(SCHEDULE)
async def schedule(supervisor: Supervisor, spec: RitualSpec) -> Ritual:
    return await rituals_of(supervisor).schedule(spec)


@handles(UNSCHEDULE)
async def unschedule(supervisor: Supervisor, request: RitualName) -> Unscheduled:
    return await rituals_of(supervisor).unschedule(request.name)


@handles(PAUSE)
async def pause(supervisor: Supervisor, request: Paused) -> Ritual:
    return await rituals_of(supervisor).pause(request.name, paused=request.paused)


@handles(QUEST)
async def quest(supervisor: Supervisor, request: QuestRequest) -> Spawned:
    return await rituals_of(supervisor).quest(request, origin="terminal")
