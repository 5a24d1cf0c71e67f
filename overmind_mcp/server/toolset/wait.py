from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.models import WaitResult
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def wait(
    ctx: Context,
    ids: Annotated[list[str], Field(description="Ids or names of the missions to wait for")],
    mode: Annotated[Literal["all", "any"], Field(description="Return when all have ended, or when any has")] = "all",
    timeout_s: Annotated[
        float, Field(ge=0, le=3600, description="Give up waiting after this long (not an error)")
    ] = 45,
) -> WaitResult:
    """Wait until the missions end (all, or any), or until the timeout; never ends a mission.

    Returns finished results and what the pending ones are doing. On timed_out, call wait again.
    """
    return await supervisor(ctx).wait(
        ids, mode=mode, timeout_s=timeout_s, on_progress=ctx.report_progress, caller=caller(ctx)
    )


TOOL = Tool(wait, ToolAnnotations(title="Wait for missions", read_only_hint=True))
