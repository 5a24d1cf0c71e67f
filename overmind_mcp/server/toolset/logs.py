from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.models import LogPage
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def logs(
    ctx: Context,
    id: Annotated[str, Field(description="Id or name of the mission")],
    cursor: Annotated[int, Field(ge=0, description="0, or next_cursor from the previous page")] = 0,
    limit: Annotated[int, Field(ge=1, le=2000, description="Most output lines in this page")] = 200,
    format: Annotated[
        Literal["text", "events"], Field(description="text: readable lines; events: the raw stream-json objects")
    ] = "text",
) -> LogPage:
    """Read a mission's output one page at a time (use it to see why a child failed)."""
    return await supervisor(ctx).logs(id, cursor=cursor, limit=limit, format=format, caller=caller(ctx))


TOOL = Tool(logs, ToolAnnotations(title="Read a mission's output", read_only_hint=True))
