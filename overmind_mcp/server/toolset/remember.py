from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.akasha import Remembered
from overmind_mcp.server.toolset._base import Tool, readable_errors
from overmind_mcp.server.toolset._memory import akasha, standing


@readable_errors
async def remember(
    ctx: Context,
    content: Annotated[
        str, Field(description="What to keep, self-contained: a decision and why, a finding, a gotcha, where X is")
    ],
    key: Annotated[
        str | None, Field(description="A stable name, e.g. auth-design; remembering a key again replaces it")
    ] = None,
    tags: Annotated[list[str] | None, Field(description='Labels to filter by, e.g. ["decision", "auth"]')] = None,
    namespace: Annotated[
        str | None,
        Field(description="project (default), global, run (your mission tree), mission, or a full kind:value"),
    ] = None,
) -> Remembered:
    """Save a memory that you, your children and later agents can recall: decisions, findings, gotchas.

    A key replaces that key's memory in the namespace. A child agent may replace keys in
    project and global only if its own run wrote them.
    """
    scope, by = await standing(ctx)
    return await akasha(ctx).remember(
        content, namespace=scope.resolve(namespace or "project"), key=key, tags=tags or [], by=by, scope=scope
    )


TOOL = Tool(remember, ToolAnnotations(title="Remember", destructive_hint=False, open_world_hint=False))
