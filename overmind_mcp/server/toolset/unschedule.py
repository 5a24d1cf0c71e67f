from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.rituals.models import Ritual, Unscheduled
from overmind_mcp.rituals.service import rituals_of
from overmind_mcp.server.toolset._base import Tool, readable_errors, supervisor, top_level_only


@readable_errors
async def unschedule(ctx: Context, name: Annotated[str, Field(description="The ritual's name")]) -> Unscheduled:
    """Delete a ritual; runs already started go on."""
    top_level_only(ctx)
    return await rituals_of(supervisor(ctx)).unschedule(name)


@readable_errors
async def pause_schedule(
    ctx: Context,
    name: Annotated[str, Field(description="The ritual's name")],
    resume: Annotated[bool, Field(description="Resume it instead")] = False,
) -> Ritual:
    """Pause a ritual (no fires, none owed), or resume it."""
    top_level_only(ctx)
    return await rituals_of(supervisor(ctx)).pause(name, paused=not resume)


TOOL = Tool(unschedule, ToolAnnotations(title="Delete a ritual", destructive_hint=True, idempotent_hint=False))
PAUSE_TOOL = Tool(pause_schedule, ToolAnnotations(title="Pause or resume a ritual", destructive_hint=False))
