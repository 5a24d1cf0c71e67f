"""The MCP server: the tools over a supervisor that lives as long as the server does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from mcp.server.mcpserver import MCPServer

from overmind_mcp import __version__, resources, tools
from overmind_mcp.settings import Settings
from overmind_mcp.supervisor import Supervisor

INSTRUCTIONS = """\
overmind runs child agents for you. spawn starts a child (a `claude -p` task or a command) and returns its id
at once; wait blocks until children end or a timeout passes (a timeout is a normal answer: wait again);
result gives a child's final answer, errors and cost; kill ends children and their subtrees; ps lists missions
(tree=true for the whole tree); logs pages through a child's output. Ids and names are interchangeable.
remember, recall and forget are a memory shared with your children and later sessions: recall before
starting work, remember decisions and findings.
"""


def create_server(
    settings: Settings | None = None, *, on_closed: Callable[[], None] | None = None
) -> MCPServer[Supervisor]:
    """The server; `on_closed` runs once its supervisor has ended every child and closed the store."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Supervisor]) -> AsyncIterator[Supervisor]:
        try:
            async with Supervisor.running(settings) as supervisor:
                yield supervisor
        finally:
            if on_closed is not None:
                on_closed()

    server: MCPServer[Supervisor] = MCPServer(
        "overmind", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan
    )
    for tool in tools.ALL:
        server.add_tool(tool.fn, annotations=tool.annotations, structured_output=True)
    for resource in resources.ALL:
        server.resource(
            resource.uri,
            name=resource.name,
            description=resource.description,
            mime_type=resource.mime_type,
            security=resource.security,
        )(resource.fn)
    return server
