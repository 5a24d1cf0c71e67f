"""The event bus: what happens to missions, as typed events, for whoever subscribes.

Waiters, `wait`'s progress notifications, the console, the dashboard and pipelines
subscribe; the supervisor publishes. Publishing never blocks the publisher: each
subscriber has a bounded buffer of its own, and one that falls behind is not slowed
down for — it is told, by a `Lagged` marker before its next event, that it missed some,
and reads the state it cares about afresh. Subscribe *before* looking at the state, and
no change can slip in between.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from overmind_mcp.core.status import Status


@dataclass(frozen=True, slots=True)
class MissionSpawned:
    mission_id: str
    name: str
    parent_id: str | None
    status: Status


@dataclass(frozen=True, slots=True)
class MissionStarted:
    """A run of the mission's process has started (the first, or a restart)."""

    mission_id: str
    run: int


@dataclass(frozen=True, slots=True)
class OutputArrived:
    """New output was read (one event per chunk, not per line)."""

    mission_id: str
    lines: int


@dataclass(frozen=True, slots=True)
class ProgressMade:
    """Something a watcher would report changed: a turn, a tool call, the cost."""

    mission_id: str


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """A result line: a task's last turn, or one turn of a live session."""

    mission_id: str
    is_error: bool
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class MissionRestarting:
    mission_id: str
    number: int
    delay_s: float
    why: str


@dataclass(frozen=True, slots=True)
class MissionEnded:
    mission_id: str
    status: Status
    reason: str | None


@dataclass(frozen=True, slots=True)
class ApprovalAsked:
    """A mission's tool call waits for an answer from `addressed_to` (a mission id; None: the client)."""

    mission_id: str
    request_id: str
    addressed_to: str | None


@dataclass(frozen=True, slots=True)
class ApprovalAnswered:
    mission_id: str
    request_id: str
    allow: bool


@dataclass(frozen=True, slots=True)
class StoreChanged:
    """Another process committed to the store (its missions may have changed)."""


@dataclass(frozen=True, slots=True)
class Lagged:
    """This subscriber missed events: read the state afresh."""

    missed: int


BusEvent = (
    MissionSpawned
    | MissionStarted
    | OutputArrived
    | ProgressMade
    | TurnEnded
    | MissionRestarting
    | MissionEnded
    | ApprovalAsked
    | ApprovalAnswered
    | StoreChanged
)


class Subscription:
    def __init__(self, receive: MemoryObjectReceiveStream[BusEvent], accepts: Callable[[BusEvent], bool]) -> None:
        self._receive = receive
        self.accepts = accepts
        self.missed = 0

    async def next(self) -> BusEvent | Lagged:
        if self.missed:
            missed, self.missed = self.missed, 0
            return Lagged(missed)
        return await self._receive.receive()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> BusEvent | Lagged:
        return await self.next()

    async def changed(self, timeout_s: float | None) -> bool:
        """Wait for the next event (or a lag) for at most `timeout_s`; False if none came."""
        with anyio.move_on_after(timeout_s):
            await self.next()
            return True
        return False


class EventBus:
    def __init__(self, buffer: int = 1024) -> None:
        self._buffer = buffer
        self._subscribers: dict[Subscription, MemoryObjectSendStream[BusEvent]] = {}

    def publish(self, event: BusEvent) -> None:
        for subscription, send in self._subscribers.items():
            if not subscription.accepts(event):
                continue
            try:
                send.send_nowait(event)
            except anyio.WouldBlock:
                subscription.missed += 1

    @contextmanager
    def subscribe(
        self, accepts: Callable[[BusEvent], bool] = lambda _event: True, *, buffer: int | None = None
    ) -> Iterator[Subscription]:
        """Events from now on that `accepts` lets through, while the block lasts."""
        size = self._buffer if buffer is None else buffer
        send, receive = anyio.create_memory_object_stream[BusEvent](math.inf if size < 0 else size)
        subscription = Subscription(receive, accepts)
        self._subscribers[subscription] = send
        try:
            yield subscription
        finally:
            del self._subscribers[subscription]
            send.close()
            receive.close()


def about(mission_ids: set[str] | frozenset[str]) -> Callable[[BusEvent], bool]:
    """A filter for the events of these missions (and store changes, which may concern any of them)."""

    def accepts(event: BusEvent) -> bool:
        return isinstance(event, StoreChanged) or getattr(event, "mission_id", None) in mission_ids

    return accepts
