"""What runs beside the supervisor for as long as a server does: the control mailbox and the rituals.

Every way of serving (stdio, HTTP, headless, an in-memory `create_server`) enters `rooms` right
inside `Supervisor.running`, so these stop before the supervisor shuts its missions down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from overmind_mcp.control import dispatcher
from overmind_mcp.rituals import service
from overmind_mcp.supervision.supervisor import Supervisor


@asynccontextmanager
async def rooms(supervisor: Supervisor) -> AsyncIterator[None]:
    """The console's requests answered (overmind run, send…), and rituals kept and fired, for the block."""
    async with anyio.create_task_group() as task_group:
        await task_group.start(dispatcher.serve, supervisor, supervisor.ctx.watcher)
        await task_group.start(service.serve, supervisor, supervisor.ctx.watcher)
        try:
            yield
        finally:
            task_group.cancel_scope.cancel()
