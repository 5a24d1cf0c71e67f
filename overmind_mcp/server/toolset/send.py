from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.models import TurnResult
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor
from overmind_mcp.supervision.inputs import check_message


@readable_errors
async def send(
    ctx: Context,
    id: Annotated[str, Field(description="Id or name of a live session (spawned with session=true)")],
    message: Annotated[str, Field(description="The session's next turn")],
    wait: Annotated[bool, Field(description="Wait for this turn's answer; false returns at once")] = True,
    timeout_s: Annotated[float, Field(gt=0, le=3600, description="Longest wait; the turn goes on after it")] = 120,
) -> TurnResult:
    """Send a live session its next message; returns that turn's answer. Messages queue in order."""
    check_message("`message`", message)
    return await supervisor(ctx).send(id, message, wait=wait, timeout_s=timeout_s, caller=caller(ctx))


TOOL = Tool(send, ToolAnnotations(title="Send a session its next turn", destructive_hint=False))
