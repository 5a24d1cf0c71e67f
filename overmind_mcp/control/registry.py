"""Which coroutine answers each verb. Registering one is a line in the module that owns the verb:

    @handles(APPLY)
    async def apply(supervisor: Supervisor, request: ApplyRequest) -> Applied: ...

and its module's name in `HANDLER_MODULES`, which a server imports before it answers anything.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic

from overmind_mcp.control.verbs import A, P, Verb

if TYPE_CHECKING:
    from overmind_mcp.supervision.supervisor import Supervisor

Handler = Callable[["Supervisor", P], Awaitable[A]]

HANDLER_MODULES: tuple[str, ...] = (
    "overmind_mcp.control.builtin",
    "overmind_mcp.rituals.handlers",
    "overmind_mcp.blueprints.handlers",
    "overmind_mcp.control.approvals",
)
"""Modules that register handlers when imported."""


@dataclass(frozen=True, slots=True)
class Registered(Generic[P, A]):
    verb: Verb[P, A]
    handler: Handler[P, A]


_HANDLERS: dict[str, Registered[Any, Any]] = {}


def handles(verb: Verb[P, A]) -> Callable[[Handler[P, A]], Handler[P, A]]:
    """Make the decorated coroutine the server's answer to `verb` (one handler per verb)."""

    def register(handler: Handler[P, A]) -> Handler[P, A]:
        known = _HANDLERS.get(verb.name)
        if known is not None and known.handler is not handler:
            raise RuntimeError(f"the control verb {verb.name!r} already has a handler: {known.handler.__qualname__}")
        _HANDLERS[verb.name] = Registered(verb, handler)
        return handler

    return register


def handler_for(name: str) -> Registered[Any, Any] | None:
    return _HANDLERS.get(name)


def load_handlers() -> list[str]:
    """Import every module in HANDLER_MODULES; the verbs this server answers, sorted."""
    for module in HANDLER_MODULES:
        importlib.import_module(module)
    return sorted(_HANDLERS)
