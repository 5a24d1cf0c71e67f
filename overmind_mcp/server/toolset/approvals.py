from __future__ import annotations

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations

from overmind_mcp.models import Approvals
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def approvals(ctx: Context) -> Approvals:
    """Your children's tool calls that wait for your answer (wait shows them too); answer with approve."""
    return supervisor(ctx).approvals(caller=caller(ctx))


TOOL = Tool(approvals, ToolAnnotations(title="List permission requests", read_only_hint=True))
