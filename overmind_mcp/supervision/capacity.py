"""How many children the machine holds: the default `max_concurrent`, from available memory.

A Claude child is a Node process tree whose resident memory users report at about 335 MB on
average (over 1 GB at peak); a one-turn child against a mock API already holds about 180 MB.
Admitting more than memory holds makes the machine swap or the OOM killer pick a child, so the
default is what fits in the memory available at start-up, less a reserve for the server, the
parent session and everything else on the machine. `OVERMIND_MAX_CONCURRENT` overrides it.
"""

from __future__ import annotations

import psutil

from overmind_mcp.models import AdmissionLimit
from overmind_mcp.settings import Settings

MIB = 1024 * 1024
RESERVE_FRACTION = 0.2
"""Share of the available memory that children are not counted into."""


def admission_limit(settings: Settings, available_bytes: int | None = None) -> AdmissionLimit:
    """The limit on missions holding a process at once, and where it comes from."""
    available = psutil.virtual_memory().available if available_bytes is None else available_bytes
    estimate = settings.child_rss_estimate_mb * MIB
    if settings.max_concurrent is not None:
        limit, source = settings.max_concurrent, "setting"
    else:
        limit, source = max(1, int(available * (1 - RESERVE_FRACTION)) // estimate), "memory"
    return AdmissionLimit(
        max_concurrent=limit,
        source=source,
        memory_available_mb=available // MIB,
        child_rss_estimate_mb=settings.child_rss_estimate_mb,
    )
