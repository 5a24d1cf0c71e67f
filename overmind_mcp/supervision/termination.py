"""The one way a mission's processes are ended, for the missions of this server and of any other.

SIGINT first (a CLI saves its state on it), then SIGTERM, then SIGKILL, each to the
whole process group and each after a grace period; `force` goes straight to SIGKILL.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable

import anyio

from overmind_mcp.runners.base import Handle

Step = Callable[[str], Awaitable[None]]


async def _nothing(_signal_name: str) -> None:
    return None


async def ladder(
    handle: Handle,
    ended: Callable[[], Awaitable[object]],
    *,
    force: bool,
    grace_s: float,
    before: Step = _nothing,
) -> str:
    """Signal `handle`'s group up the ladder until `ended()` returns; the name of the signal that ended it.

    `before(name)` runs before each signal is sent (to record who is ending it, and how).
    """
    last = "SIGKILL"
    for sig in [] if force else [signal.SIGINT, signal.SIGTERM]:
        last = sig.name
        await before(last)
        if not handle.signal_group(sig):
            break  # it has ended already
        with anyio.move_on_after(grace_s):
            await ended()
            return last
    if handle.running:
        last = "SIGKILL"
        await before(last)
        handle.signal_group(signal.SIGKILL)
    await ended()
    return last
