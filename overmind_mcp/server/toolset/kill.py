from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.models import KillResult
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def kill(
    ctx: Context,
    ids: Annotated[list[str], Field(description="Ids or names of the missions to end")],
    cascade: Annotated[bool, Field(description="Also end their children, grandchildren, … (children first)")] = True,
    force: Annotated[bool, Field(description="SIGKILL at once instead of SIGINT, SIGTERM, then SIGKILL")] = False,
) -> KillResult:
    """End missions and everything they started. Their output and partial results are kept."""
    return await supervisor(ctx).kill(ids, cascade=cascade, force=force, caller=caller(ctx))


TOOL = Tool(kill, ToolAnnotations(title="End missions", destructive_hint=True, idempotent_hint=True))
