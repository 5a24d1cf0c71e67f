from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.models import MergeResult
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def merge(
    ctx: Context,
    id: Annotated[str, Field(description="Id or name of a mission spawned with isolation='worktree'")],
    strategy: Literal["merge", "squash", "rebase"] = "merge",
    into: Annotated[str | None, Field(description="Target branch (default: the branch it started from)")] = None,
    check_only: Annotated[bool, Field(description="Only say whether it merges cleanly")] = False,
) -> MergeResult:
    """Merge an isolated mission's branch back. Preflighted: on conflict nothing changes and the paths are listed."""
    return await supervisor(ctx).merge(id, strategy=strategy, into=into, check_only=check_only, caller=caller(ctx))


TOOL = Tool(merge, ToolAnnotations(title="Merge a mission's branch", destructive_hint=False))
