"""What each caller sees of the server: every Claude child reaches it, not every child may use it.

Each Claude child is given the server (and a token) so that its CLI can ask for permissions
through the permission prompt tool; only a child that delegates may use the rest. So:

- a mission that does not delegate sees the permission prompt tool alone (its CLI hides that one
  from the model), and no resources or prompts; any other call is refused;
- the top-level client sees every tool but the permission prompt (nothing of its own asks through it);
- a mission that delegates sees everything.
"""

from __future__ import annotations

from typing import Any, cast

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    TextContent,
)

from overmind_mcp.identity import ROOT, Caller, bearer
from overmind_mcp.permissions.protocol import PROMPT_TOOL
from overmind_mcp.supervision.supervisor import Supervisor

_EMPTY_LISTS: dict[str, HandlerResult] = {
    "resources/list": ListResourcesResult(resources=[]),
    "resources/templates/list": ListResourceTemplatesResult(resource_templates=[]),
    "prompts/list": ListPromptsResult(prompts=[]),
}
_REFUSED = ("resources/read", "prompts/get")


async def visibility(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    method = ctx.method
    if method != "tools/list" and method != "tools/call" and method not in _EMPTY_LISTS and method not in _REFUSED:
        return await call_next(ctx)
    who = _caller(ctx)
    if who is None:
        return await call_next(ctx)  # an unknown token: the tool itself says so
    tools_only = who.mission_id is not None and not who.tools
    if method == "tools/call":
        name = (ctx.params or {}).get("name")
        if tools_only and name != PROMPT_TOOL:
            return CallToolResult(
                content=[TextContent(type="text", text="this mission does not delegate: overmind's tools are not its")],
                is_error=True,
            )
        return await call_next(ctx)
    if tools_only and method in _EMPTY_LISTS:
        return _EMPTY_LISTS[method]
    if tools_only and method in _REFUSED:
        raise MCPError(code=INVALID_PARAMS, message="this mission does not delegate: overmind's resources are not its")
    result = await call_next(ctx)
    if method != "tools/list" or (not tools_only and who.mission_id is not None):
        return result

    def shown(name: object) -> bool:
        return name == PROMPT_TOOL if tools_only else name != PROMPT_TOOL

    # The handler's answer comes back serialized (a dict) or as the model, depending on the transport.
    if isinstance(result, ListToolsResult):
        return result.model_copy(update={"tools": [tool for tool in result.tools if shown(tool.name)]})
    if isinstance(result, dict) and isinstance(result.get("tools"), list):
        return {**result, "tools": [tool for tool in result["tools"] if shown(tool.get("name"))]}
    return result


def _caller(ctx: ServerRequestContext[Any, Any]) -> Caller | None:
    """Who calls (as toolset/_base.py reads it): a mission by its token over HTTP, else the client."""
    headers = getattr(ctx.request, "headers", None)
    if not headers:
        return ROOT
    supervisor = cast(Supervisor, ctx.lifespan_context)
    return supervisor.credentials.identify(bearer(headers.get("authorization")))
