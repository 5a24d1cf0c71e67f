from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.models import ApprovalOutcome
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def approve(
    ctx: Context,
    request_id: Annotated[str, Field(description="The id from needs_approval or approvals()")],
    decision: Literal["allow", "deny"],
    updated_input: Annotated[
        dict[str, Any] | None, Field(description="On allow: run the tool with this input instead")
    ] = None,
    message: Annotated[str | None, Field(description="On deny: what the child is told")] = None,
    remember: Annotated[bool, Field(description="Answer the same call the same way for the rest of its run")] = False,
) -> ApprovalOutcome:
    """Answer a child's permission request. You may allow only what your own permissions allow."""
    return await supervisor(ctx).approve(
        request_id,
        decision,
        updated_input=updated_input,
        message=message,
        remember=remember,
        caller=caller(ctx),
    )


TOOL = Tool(approve, ToolAnnotations(title="Answer a permission request", destructive_hint=False))
