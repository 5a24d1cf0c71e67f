from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.models import TurnResult
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def interrupt(ctx: Context, id: Annotated[str, Field(description="Id or name of a live session")]) -> TurnResult:
    """Stop a live session's current turn and keep the session for the next message."""
    return await supervisor(ctx).interrupt(id, caller=caller(ctx))


TOOL = Tool(interrupt, ToolAnnotations(title="Interrupt a session's turn", destructive_hint=True))
