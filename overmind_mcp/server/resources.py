"""MCP resources: memories for clients that browse resources rather than call tools.

`ALL` lists them; the server registers each with `server.resource(...)`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.resources import ResourceSecurity

from overmind_mcp.errors import InvalidRequest, NotFound, OvermindError
from overmind_mcp.server.toolset._memory import akasha, standing

RECENT = 100


@dataclass(frozen=True)
class Resource:
    uri: str
    fn: Callable[..., Awaitable[str]]
    name: str
    description: str
    mime_type: str = "application/json"
    security: ResourceSecurity | None = None
    """None: the server's policy (no path traversal, no absolute paths)."""


async def memories(namespace: str, ctx: Context) -> str:
    """The newest memories of one namespace."""
    try:
        scope, _ = await standing(ctx)
        found = await akasha(ctx).recall(namespaces=[scope.resolve(namespace)], limit=RECENT, scope=scope)
    except OvermindError as exc:
        raise ResourceError(str(exc)) from None
    return _json({"namespace": found.namespaces[0], "memories": [hit.model_dump() for hit in found.hits]})


async def memory(id: str, ctx: Context) -> str:
    """One memory, in full."""
    if not (id.isascii() and id.isdigit()):
        raise ResourceNotFoundError(f"overmind://akasha/memory/{id[:100]}: a memory id is a number")
    try:
        scope, _ = await standing(ctx)
        found = await akasha(ctx).get(int(id), scope=scope)
    except (NotFound, InvalidRequest) as exc:
        raise ResourceNotFoundError(str(exc)) from None
    except OvermindError as exc:
        raise ResourceError(str(exc)) from None
    return _json(found.model_dump())


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


ALL: list[Resource] = [
    Resource(
        "overmind://akasha/memory/{id}",
        memory,
        name="memory",
        description="One Akasha memory, in full, by id",
    ),
    Resource(
        "overmind://akasha/{namespace}",
        memories,
        name="memories",
        description=f"The {RECENT} newest memories of a namespace: global, project, run, mission, "
        "or a full kind:value (percent-encoded)",
        # A namespace is a name, not a path: `project:/src/app` must reach us as it is.
        security=ResourceSecurity(exempt_params={"namespace"}),
    ),
]
