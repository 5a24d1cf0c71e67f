"""The MCP floor: a bare `MCPServer` over stdio with trivial tools (benchmarks 1, 2 and 5).

`ping` is the cheapest tool call there is (the cold-start limit, and the transport floor of a
tool call); `run` starts a process, awaits its exit on a pidfd and reaps it, with nothing
else: the least an MCP server built on this SDK can take to answer when a child exits.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile

import anyio
from mcp.server.mcpserver import MCPServer

server: MCPServer = MCPServer("trivial")


@server.tool()
def ping() -> str:
    """Answer pong."""
    return "pong"


@server.tool()
async def run(argv: list[str], stdin: str = "") -> str:
    """Run argv to its end (reading `stdin` from a file, as overmind gives a prompt; output to /dev/null)."""
    # Popen returns once the child is started, as in overmind's own process.spawn; only the wait could block.
    with tempfile.TemporaryFile() if stdin else contextlib.nullcontext() as input_file:
        if input_file is not None:
            input_file.write(stdin.encode())
            input_file.seek(0)
        process = subprocess.Popen(  # noqa: ASYNC220
            argv,
            stdin=input_file if input_file is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    pidfd = os.pidfd_open(process.pid)
    try:
        await anyio.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    return f"exit {process.wait()}"  # the pidfd said it has exited: this reaps at once


if __name__ == "__main__":
    server.run()
