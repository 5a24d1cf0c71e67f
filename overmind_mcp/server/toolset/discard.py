from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.models import DiscardResult
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def discard(
    ctx: Context,
    id: Annotated[str, Field(description="Id or name of an ended mission spawned with isolation='worktree'")],
) -> DiscardResult:
    """Delete an ended isolated mission's worktree and branch, with any work in them."""
    return await supervisor(ctx).discard(id, caller=caller(ctx))


TOOL = Tool(discard, ToolAnnotations(title="Discard a mission's worktree", destructive_hint=True))
