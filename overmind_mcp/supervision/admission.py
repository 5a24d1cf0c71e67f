"""Admission: how many missions hold a process at once, and who waits in the queue, in order.

A spawn beyond `max_concurrent` is queued; each ended mission frees a slot for the oldest
queued one that is ready. "Ready" is every gate's say: a pipeline can hold a node back
until its inputs exist without a queue of its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from overmind_mcp.core.spec import MissionSpec
from overmind_mcp.core.status import Status
from overmind_mcp.runners.base import Runner
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.capacity import admission_limit
from overmind_mcp.supervision.mission import Mission
from overmind_mcp.supervision.roster import Roster

Gate = Callable[[Mission], bool]
Starter = Callable[[Mission], Awaitable[None]]


class Admission:
    def __init__(self, settings: Settings, roster: Roster, runners: Mapping[str, Runner]) -> None:
        self.limit = admission_limit(settings)
        self._roster = roster
        self._runners = runners
        self._queue: deque[Mission] = deque()
        self._gates: list[Gate] = []
        self.closing = False

    def full(self) -> bool:
        """Whether max_concurrent missions already hold a process (or are between two runs)."""
        holding = sum(mission.row.status != Status.QUEUED and self.takes_slot(mission.spec) for mission in self._roster)
        return holding >= self.limit.max_concurrent

    @property
    def queued(self) -> int:
        return len(self._queue)

    def must_queue(self, spec: MissionSpec) -> bool:
        """Whether a new mission with this spec waits in the queue rather than starting now."""
        return self.takes_slot(spec) and self.full()

    def takes_slot(self, spec: MissionSpec) -> bool:
        runner = self._runners.get(spec.runner)
        return runner is None or runner.takes_slot

    def enqueue(self, mission: Mission) -> None:
        self._queue.append(mission)

    def withdraw(self, mission: Mission) -> bool:
        """Take a mission out of the queue; False if it was not in it."""
        try:
            self._queue.remove(mission)
        except ValueError:
            return False
        return True

    def position(self, mission: Mission) -> int | None:
        """1 for the queued mission that starts next, 2 for the one after…; None if not queued."""
        try:
            return self._queue.index(mission) + 1
        except ValueError:
            return None

    def add_gate(self, gate: Gate) -> Callable[[], None]:
        """Hold queued missions back while `gate` says no; returns how to remove the gate."""
        self._gates.append(gate)
        return lambda: self._gates.remove(gate)

    async def admit(self, start: Starter) -> None:
        """Start ready queued missions, oldest first, while there is room (and the server is not closing)."""
        while not self.closing and not self.full():
            mission = next((m for m in self._queue if all(gate(m) for gate in self._gates)), None)
            if mission is None:
                return
            self._queue.remove(mission)
            # Holds its slot from here: another admit running meanwhile must not count it as free.
            mission.move_to(Status.RUNNING)
            await start(mission)
