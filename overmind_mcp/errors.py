"""Errors the supervisor raises for a caller to read and act on.

Each message says what was wrong and what to do instead; the MCP layer passes it
through as a tool error, never as a traceback.
"""


class OvermindError(Exception):
    """A request that cannot be carried out as asked."""


class NotFound(OvermindError):
    """No mission has that id or name."""


class InvalidRequest(OvermindError):
    """The arguments do not describe something we can do."""


class Conflict(OvermindError):
    """The request clashes with the current state (a name in use, a mission that has ended)."""


class ShuttingDown(Conflict):
    """The server is closing: it starts nothing new."""


class SpawnError(OvermindError):
    """The child could not be started."""


class AccessDenied(OvermindError):
    """The caller may not act on that mission (it is outside the caller's subtree)."""


class Refused(OvermindError):
    """A limit or a privilege rule forbids it (depth, fan-out, permissions, budgets)."""
