"""What the memory tools and resources share: the Akasha service, and where the caller stands."""

from __future__ import annotations

from mcp.server.mcpserver import Context

from overmind_mcp.akasha import Akasha, Provenance, Scope
from overmind_mcp.server.toolset._base import caller, supervisor


def akasha(ctx: Context) -> Akasha:
    return supervisor(ctx).akasha


async def standing(ctx: Context) -> tuple[Scope, Provenance]:
    """What `project`, `run` and `mission` mean for this caller, and what its memories are signed with."""
    store = akasha(ctx)
    mission_id = caller(ctx).mission_id
    if mission_id is None:
        return store.scope(), Provenance()
    row = await supervisor(ctx).mission(mission_id)
    return store.scope(row.id, row.root_id), Provenance(row.id, row.name, row.session_id)
