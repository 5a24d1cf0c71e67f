from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.models import MissionResult
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def result(ctx: Context, id: Annotated[str, Field(description="Id or name of the mission")]) -> MissionResult:
    """A mission's outcome: status, final answer, errors, cost, session id; progress if still running."""
    return await supervisor(ctx).result(id, caller=caller(ctx))


TOOL = Tool(result, ToolAnnotations(title="Read a mission's result", read_only_hint=True))
