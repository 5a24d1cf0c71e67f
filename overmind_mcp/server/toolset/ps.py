from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.models import PsResult, Status
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def ps(
    ctx: Context,
    parent: Annotated[
        str | None, Field(description="Only this mission's children (its whole subtree with tree)")
    ] = None,
    status: Status | None = None,
    tree: Annotated[bool, Field(description="Order as a tree (each mission followed by its subtree)")] = False,
    limit: Annotated[int, Field(ge=1, le=1000, description="Most missions to list; live ones always are")] = 100,
) -> PsResult:
    """List missions with status, parent, depth, age, turns, cost and what each is doing; with totals."""
    return await supervisor(ctx).ps(parent=parent, status=status, tree=tree, limit=limit, caller=caller(ctx))


TOOL = Tool(ps, ToolAnnotations(title="List missions", read_only_hint=True))
