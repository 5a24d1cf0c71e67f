from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.akasha import ForgetResult
from overmind_mcp.akasha.store import MAX_ID
from overmind_mcp.errors import InvalidRequest
from overmind_mcp.server.toolset._base import Tool, readable_errors
from overmind_mcp.server.toolset._memory import akasha, standing


@readable_errors
async def forget(
    ctx: Context,
    id: Annotated[int | None, Field(ge=1, le=MAX_ID, description="The memory's id, as recall shows it")] = None,
    key: Annotated[str | None, Field(description="Or its key")] = None,
    namespace: Annotated[
        str | None, Field(description="With key: where it is (default project); global, run, mission or kind:value")
    ] = None,
) -> ForgetResult:
    """Delete a memory that is wrong or obsolete, by id or by key; returns what it held.

    To correct a keyed memory, remember the key again. A child agent forgets only in its run and
    mission, and in project or global what its own run wrote.
    """
    if id is not None and namespace is not None:
        raise InvalidRequest("an id names one memory in whatever namespace: give namespace only with key")
    scope, _ = await standing(ctx)
    where = scope.resolve(namespace or "project") if key is not None else None
    return ForgetResult(forgotten=await akasha(ctx).forget(memory_id=id, key=key, namespace=where, scope=scope))


TOOL = Tool(forget, ToolAnnotations(title="Forget a memory", destructive_hint=True, open_world_hint=False))
