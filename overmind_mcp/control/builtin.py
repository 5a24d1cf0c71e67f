"""The verbs every server answers: start a mission, talk to a live session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from overmind_mcp.control.registry import handles
from overmind_mcp.control.verbs import SEND, SPAWN, SendRequest
from overmind_mcp.models import Spawned, SpawnRequest, TurnResult

if TYPE_CHECKING:
    from overmind_mcp.supervision.supervisor import Supervisor


@handles(SPAWN)
async def spawn(supervisor: Supervisor, request: SpawnRequest) -> Spawned:
    return await supervisor.spawn(request)


@handles(SEND)
async def send(supervisor: Supervisor, request: SendRequest) -> TurnResult:
    return await supervisor.send(request.id, request.message, wait=request.wait, timeout_s=request.timeout_s)
