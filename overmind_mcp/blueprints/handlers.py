"""The server's answer to `overmind apply` (registered with the control mailbox)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from overmind_mcp.blueprints.launch import RunStarted, start_run
from overmind_mcp.blueprints.verbs import APPLY, ApplyRequest
from overmind_mcp.control.registry import handles

if TYPE_CHECKING:
    from overmind_mcp.supervision.supervisor import Supervisor


@handles(APPLY)
async def apply(supervisor: Supervisor, request: ApplyRequest) -> RunStarted:
    return await start_run(supervisor, request.toml, source=request.source, run_vars=request.vars)
