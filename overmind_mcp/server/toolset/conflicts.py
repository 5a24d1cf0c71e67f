from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.models import ConflictsResult
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def conflicts(
    ctx: Context,
    ids: Annotated[list[str], Field(description="Ids or names of isolated missions")],
) -> ConflictsResult:
    """Which isolated missions' branches conflict with each other or with their target, before anything lands."""
    return await supervisor(ctx).conflicts(ids, caller=caller(ctx))


TOOL = Tool(conflicts, ToolAnnotations(title="Find conflicts between missions", read_only_hint=True))
