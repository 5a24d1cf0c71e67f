"""What every tool shares: finding the supervisor and turning failures into readable tool errors."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from overmind_mcp.errors import AccessDenied, OvermindError
from overmind_mcp.identity import ROOT, Caller, bearer
from overmind_mcp.supervision.supervisor import Supervisor

logger = logging.getLogger("overmind_mcp")

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Tool:
    fn: Callable[..., Awaitable[Any]]
    annotations: ToolAnnotations
    # Answers with structuredContent and an outputSchema (all but the permission prompt, whose caller refuses it).
    structured: bool = True


def supervisor(ctx: Context) -> Supervisor:
    # The lifespan yields the supervisor (server.py); the SDK types the context as a dict.
    return cast(Supervisor, ctx.request_context.lifespan_context)


def caller(ctx: Context) -> Caller:
    """Who is calling: a mission (by the bearer token it was given), else the top-level client.

    Over HTTP every request has passed the bearer check already; stdio and in-memory
    clients are the top-level client that started the server.
    """
    headers = ctx.headers
    if not headers:
        return ROOT
    identity = supervisor(ctx).credentials.identify(bearer(headers.get("authorization")))
    if identity is None:
        raise ToolError("unknown bearer token: this mission has ended or the token is wrong")
    return identity


def top_level_only(ctx: Context) -> None:
    """Refuse a mission: what it would set up (a ritual) runs outside its subtree, beyond its privileges."""
    if caller(ctx).mission_id is not None:
        raise AccessDenied("only the top-level client may change rituals: their runs are not in your subtree")


def readable_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Refusals become tool errors that say what to fix; a bug becomes a short note, never a traceback."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except OvermindError as exc:
            raise ToolError(str(exc)) from None
        except ToolError:
            raise
        except Exception as exc:
            logger.exception("%s failed", fn.__name__)
            raise ToolError(
                f"internal error ({type(exc).__name__}: {exc}); no mission was changed by this failure. "
                "The server log has the details."
            ) from None

    return wrapper
