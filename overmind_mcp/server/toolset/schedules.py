from __future__ import annotations

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations

from overmind_mcp.rituals.models import RitualList
from overmind_mcp.rituals.service import rituals_of
from overmind_mcp.server.toolset._base import Tool, readable_errors, supervisor


@readable_errors
async def schedules(ctx: Context) -> RitualList:
    """Rituals, each with its next fire times and last runs."""
    return await rituals_of(supervisor(ctx)).list()


TOOL = Tool(schedules, ToolAnnotations(title="List rituals", read_only_hint=True))
