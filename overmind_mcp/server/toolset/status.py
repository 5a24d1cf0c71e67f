from __future__ import annotations

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations

from overmind_mcp.models import ServerStatus
from overmind_mcp.server.toolset._base import Tool, readable_errors, supervisor


@readable_errors
async def status(ctx: Context) -> ServerStatus:
    """The server's version, uptime, missions by status, children running and total cost."""
    return await supervisor(ctx).status()


TOOL = Tool(status, ToolAnnotations(title="Server status", read_only_hint=True))
