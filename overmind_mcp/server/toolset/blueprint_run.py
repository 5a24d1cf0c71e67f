from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.blueprints.launch import RunStarted, start_run
from overmind_mcp.blueprints.validate import read_source
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def blueprint_run(
    ctx: Context,
    path: Annotated[str | None, Field(description="A blueprint file (TOML), relative to the project")] = None,
    toml: Annotated[str | None, Field(description="Instead of path: the blueprint's text")] = None,
    vars: Annotated[dict[str, Any] | None, Field(description="Values for the blueprint's [vars]")] = None,
) -> RunStarted:
    """Run a blueprint (agents as a TOML DAG) as a mission whose children are its agents; returns its id at once.

    wait/result on the run give each agent's outcome and output; kill ends them all.
    """
    server = supervisor(ctx)
    text, source = read_source(path, toml, base=server.settings.project)
    return await start_run(server, text, source=source, run_vars=vars, caller=caller(ctx))


TOOL = Tool(blueprint_run, ToolAnnotations(title="Run a blueprint", destructive_hint=False, open_world_hint=True))
