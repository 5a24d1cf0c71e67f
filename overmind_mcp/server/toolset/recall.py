from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.akasha import RecallResult
from overmind_mcp.akasha.store import MAX_LIMIT
from overmind_mcp.server.toolset._base import Tool, readable_errors
from overmind_mcp.server.toolset._memory import akasha, standing


@readable_errors
async def recall(
    ctx: Context,
    query: Annotated[
        str | None,
        Field(description='Words (all must match), "exact phrase", prefix*, -exclude, a OR b; omit to list recent'),
    ] = None,
    key: Annotated[str | None, Field(description="Instead of a query: the exact key of a memory")] = None,
    tags: Annotated[list[str] | None, Field(description="Only memories carrying every one of these tags")] = None,
    namespace: Annotated[
        str | None,
        Field(description="Only this one: global, project, run, mission or kind:value; default: all yours"),
    ] = None,
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 10,
) -> RecallResult:
    """Search shared memory before you start work: ranked full-text search, a key lookup, or recent memories.

    Hits are best first, with a snippet, score, tags, namespace, who wrote each and when. A child
    agent reads global, project, its run, its mission and its ancestors'.
    """
    scope, _ = await standing(ctx)
    spaces = [scope.resolve(namespace)] if namespace else scope.visible()
    return await akasha(ctx).recall(query, namespaces=spaces, key=key, tags=tags or [], limit=limit, scope=scope)


TOOL = Tool(recall, ToolAnnotations(title="Recall memories", read_only_hint=True, open_world_hint=False))
