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
    missions = supervisor(ctx)
    row = await missions.mission(mission_id)
    ancestors: list[str] = []
    parent_id = row.parent_id
    while parent_id is not None:
        ancestors.append(parent_id)
        parent_id = (await missions.mission(parent_id)).parent_id
    scope = store.scope(row.id, row.root_id, ancestors=ancestors, confined=True)
    return scope, Provenance(row.id, row.name, row.session_id, run_id=row.root_id)
