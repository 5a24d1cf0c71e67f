"""The tool a child's CLI calls to ask whether it may run a tool call (`--permission-prompt-tool`).

Its result is the JSON text the CLI expects, in a single text block, and no structured content:
the CLI refuses a result that has any (see permissions/protocol.py). It never fails: whatever
goes wrong becomes a denial the child can read.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.core.approvals import PermissionAnswer
from overmind_mcp.errors import OvermindError
from overmind_mcp.permissions.protocol import mcp_answer
from overmind_mcp.server.toolset._base import Tool, caller, supervisor

logger = logging.getLogger("overmind_mcp")


async def permission_prompt(
    ctx: Context,
    tool_name: str,
    input: dict[str, Any],
    tool_use_id: Annotated[str | None, Field()] = None,
) -> str:
    """Asked by a child's Claude Code before it runs a tool its permissions do not cover (not for models)."""
    who = caller(ctx)
    if who.mission_id is None:
        raise ToolError("only a child's Claude Code asks for permissions; answer requests with approve")
    try:
        answer = await supervisor(ctx).ask_permission(who, tool_name, input, tool_use_id=tool_use_id)
    except OvermindError as exc:
        answer = PermissionAnswer(False, message=f"Denied: {exc}")
    except Exception as exc:
        logger.exception("permission_prompt failed")
        answer = PermissionAnswer(False, message=f"Denied: the server failed to decide ({type(exc).__name__})")
    return mcp_answer(answer)


TOOL = Tool(
    permission_prompt,
    ToolAnnotations(title="Permission prompt", read_only_hint=True),
    structured=False,
)
