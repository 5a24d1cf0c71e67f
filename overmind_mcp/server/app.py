"""The MCP server: the tools, the orchestrator prompt and the memory resources, over a supervisor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from overmind_mcp import __version__, prompts
from overmind_mcp.server import resources
from overmind_mcp.server import toolset as tools
from overmind_mcp.server.hosting import supervising
from overmind_mcp.server.lifetime import rooms
from overmind_mcp.server.strict import strict_tool
from overmind_mcp.server.visibility import visibility
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor

INSTRUCTIONS = """\
overmind runs child agents for you. spawn starts a child (a `claude -p` task or a command) and returns its id
at once; wait blocks until children end or a timeout passes (a timeout is a normal answer: wait again);
result gives a child's final answer, errors and cost; kill ends children and their subtrees; ps lists missions
(tree=true for the whole tree); logs pages through a child's output. Ids and names are interchangeable.
A child's tool call that its permissions do not cover waits for you: wait returns it in needs_approval;
answer with approve (approvals lists them).
remember, recall and forget are a memory shared with your children and later sessions: recall before
starting work, remember decisions and findings. blueprint_run runs a pipeline of agents from a TOML file
(blueprint_validate checks one). The orchestrate prompt teaches the whole loop.
"""


def create_server(settings: Settings | None = None, *, supervisor: Supervisor | None = None) -> MCPServer[Supervisor]:
    """The MCP server over `supervisor`, or over one of its own that lives as long as its lifespan.

    Pass a supervisor to serve one tree over several transports at once (stdio for the
    session that started us, HTTP for the children that call back in).
    """
    settings = settings or (supervisor.settings if supervisor else Settings.from_env())

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Supervisor]) -> AsyncIterator[Supervisor]:
        if supervisor is not None:
            yield supervisor
            return
        async with supervising(settings) as own, rooms(own):
            yield own

    server: MCPServer[Supervisor] = MCPServer(
        "overmind",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level="WARNING",
        tools=[strict_tool(tool.fn, annotations=tool.annotations, structured=tool.structured) for tool in tools.ALL],
        middleware=[visibility],
    )
    for resource in resources.ALL:
        server.resource(
            resource.uri,
            name=resource.name,
            description=resource.description,
            mime_type=resource.mime_type,
            security=resource.security,
        )(resource.fn)
    server.prompt(name="orchestrate", description="Decompose a task, delegate it to child agents, converge.")(
        _orchestrate_for(settings)
    )
    return server


def _orchestrate_for(settings: Settings) -> Callable[..., str]:
    # One argument only: Claude Code fills a slash command's arguments word by word, so a
    # second one would swallow the task's second word. The limits come from the settings.
    def orchestrate(
        task: Annotated[str, Field(description="What to get done: an issue's text or a free-form task")],
    ) -> str:
        """The orchestrator's loop: decompose → spawn → wait → evaluate → decide, with limits."""
        return prompts.template("orchestrate").safe_substitute(
            task=task.strip(),
            project_root=str(settings.project),
            max_children=str(settings.orchestrate_max_children),
            max_retries=str(settings.orchestrate_max_retries),
        )

    return orchestrate
