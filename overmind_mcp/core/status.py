"""A mission's status, and the only ways it may change.

Every status a mission is given goes through `Status.check_move`, so a status that
skips a step (a queued mission that "succeeds" without ever running, an ended one
that comes back) is a bug found where it happens, not a puzzle in the store later.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    # Shown, never stored: a running mission whose process waits for a permission answer (the store
    # keeps it `running`, so the live-name index and other servers need not know the difference).
    NEEDS_APPROVAL = "needs_approval"
    RESTARTING = "restarting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    KILLED = "killed"
    TIMED_OUT = "timed_out"
    LOST = "lost"

    @property
    def live(self) -> bool:
        return self in LIVE

    def check_move(self, new: Status) -> Status:
        """`new`, if a mission in this status may move to it; raises ValueError otherwise."""
        if new != self and new not in _MOVES[self]:
            raise ValueError(f"a mission cannot go from {self} to {new}")
        return new


LIVE: frozenset[Status] = frozenset({Status.QUEUED, Status.RUNNING, Status.NEEDS_APPROVAL, Status.RESTARTING})
ENDED: frozenset[Status] = frozenset(Status) - LIVE

_MOVES: dict[Status, frozenset[Status]] = {
    # A queued mission may end without running: killed in the queue, or refused at launch.
    Status.QUEUED: frozenset({Status.RUNNING, *ENDED}),
    Status.RUNNING: frozenset({Status.RESTARTING, *ENDED}),
    Status.RESTARTING: frozenset({Status.RUNNING, *ENDED}),
    # Never a mission's own status: only answers show it.
    Status.NEEDS_APPROVAL: frozenset(),
    **{ended: frozenset() for ended in ENDED},
}


class StopReason(StrEnum):
    """Why the server itself ends a mission. A mission with a stop reason is never restarted, except a stall."""

    STOPPED = "stopped"
    TIMED_OUT = "timed_out"
    STALLED = "stalled"
    BUDGET = "budget"
    MAX_TURNS = "max_turns"
    SHUTDOWN = "shutdown"
    FAULT = "fault"

    @property
    def restartable(self) -> bool:
        return self is StopReason.STALLED

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    StopReason.STOPPED: "ended on request",
    StopReason.TIMED_OUT: "timeout_s passed",
    StopReason.STALLED: "stalled",
    StopReason.BUDGET: "its tree's budget is spent",
    StopReason.MAX_TURNS: "it went past max_turns",
    StopReason.SHUTDOWN: "the server shut down",
    StopReason.FAULT: "the server failed while supervising it",
}
