"""The supervisor every way of serving runs (stdio, HTTP, an in-memory `create_server`), with its rooms.

A room that needs to be among the supervisor's seams before it starts (recovery adopts what
crashed servers left, blueprint runs included) is made here and bound to it once it runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from overmind_mcp.blueprints.runner import BlueprintRunner
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor


@asynccontextmanager
async def supervising(settings: Settings) -> AsyncIterator[Supervisor]:
    """A running supervisor whose missions may be blueprint runs; its children are ended when it closes."""
    runs = BlueprintRunner(settings.home)
    async with Supervisor.running(settings, runners=[runs]) as supervisor:
        runs.bind(supervisor)
        yield supervisor
