from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field, ValidationError

from overmind_mcp.errors import InvalidRequest
from overmind_mcp.rituals.models import CatchUp, Overlap, Ritual, RitualSpec
from overmind_mcp.rituals.service import rituals_of
from overmind_mcp.server.toolset._base import Tool, readable_errors, supervisor, top_level_only


@readable_errors
async def schedule(
    ctx: Context,
    name: Annotated[str, Field(description="Unique name")],
    cron: Annotated[str, Field(description='e.g. "0 9 * * mon-fri", "@daily"; 6 fields: leading seconds')],
    spawn: Annotated[dict[str, Any] | None, Field(description="spawn's arguments for each run")] = None,
    blueprint: Annotated[str | None, Field(description="Instead of spawn: a blueprint's name")] = None,
    tz: Annotated[str | None, Field(description="IANA zone (default: the host's)")] = None,
    catch_up: Annotated[CatchUp, Field(description="Slots missed while no server ran")] = "latest",
    misfire_grace_s: Annotated[float | None, Field(ge=0, description="Skip a slot later than this")] = None,
    overlap: Annotated[Overlap, Field(description="When the previous run still runs")] = "forbid",
    jitter_s: Annotated[float, Field(ge=0, le=3600)] = 0,
    enabled: bool = True,
) -> Ritual:
    """Run a spawn (or blueprint) on a cron schedule; any server on this state directory fires it."""
    try:
        spec = RitualSpec(
            name=name,
            cron=cron,
            spawn=spawn,  # type: ignore[arg-type]
            blueprint=blueprint,
            tz=tz,
            catch_up=catch_up,
            misfire_grace_s=misfire_grace_s,
            overlap=overlap,
            jitter_s=jitter_s,
            enabled=enabled,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors())
        raise InvalidRequest(problems) from None
    top_level_only(ctx)
    return await rituals_of(supervisor(ctx)).schedule(spec)


TOOL = Tool(schedule, ToolAnnotations(title="Schedule a ritual", destructive_hint=False, open_world_hint=True))
