from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.blueprints.launch import BlueprintCheck, checked
from overmind_mcp.blueprints.validate import read_source
from overmind_mcp.server.toolset._base import Tool, readable_errors, supervisor


@readable_errors
async def blueprint_validate(
    ctx: Context,
    path: Annotated[str | None, Field(description="A blueprint file (TOML), relative to the project")] = None,
    toml: Annotated[str | None, Field(description="Instead of path: the blueprint's text")] = None,
) -> BlueprintCheck:
    """Check a blueprint without running it: its agents in topological layers, or every problem at once."""
    text, source = read_source(path, toml, base=supervisor(ctx).settings.project)
    return checked(text, source)


TOOL = Tool(blueprint_validate, ToolAnnotations(title="Check a blueprint", read_only_hint=True))
