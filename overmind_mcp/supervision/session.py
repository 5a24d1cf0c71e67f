"""The turns of a live session: one at a time on the child's stdin, the rest queued in order.

The CLI merges messages that arrive while a turn runs into one next turn, so each message
is written only when the turn before it has produced its result; that keeps one result
per message, and `send(wait=true)` gets the answer to its own message.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import anyio

from overmind_mcp.core.events import Result


@dataclass(eq=False)
class Turn:
    message: str
    number: int
    done: anyio.Event = field(default_factory=anyio.Event)
    result: Result | None = None
    interrupted: bool = False
    # Set when the session ended before this turn could finish.
    abandoned: str | None = None


@dataclass
class SessionChannel:
    queue: deque[Turn] = field(default_factory=deque)
    current: Turn | None = None
    submitted: int = 0
    last: Turn | None = None

    @property
    def idle(self) -> bool:
        return self.current is None and not self.queue

    def submit(self, message: str) -> Turn:
        turn = Turn(message, number=self.submitted)
        self.submitted += 1
        self.queue.append(turn)
        return turn

    def position(self, turn: Turn) -> int | None:
        """1 for the next turn to run, 2 for the one after it…; None once it is running or done."""
        try:
            return self.queue.index(turn) + 1
        except ValueError:
            return None

    def take_next(self) -> Turn | None:
        """The turn to write to stdin now, if the session is ready for one."""
        if self.current is not None or not self.queue:
            return None
        self.current = self.queue.popleft()
        return self.current

    def complete(self, result: Result) -> Turn | None:
        turn, self.current = self.current, None
        if turn is not None:
            turn.result = result
            turn.done.set()
            self.last = turn
        return turn

    def abandon(self, reason: str) -> None:
        """The session has ended: wake everyone still waiting for a turn."""
        pending = [self.current, *self.queue] if self.current else list(self.queue)
        self.current = None
        self.queue.clear()
        for turn in pending:
            turn.abandoned = reason
            turn.done.set()
