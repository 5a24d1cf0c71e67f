"""The missions this server supervises now, and those that ended lately (answered without a query)."""

from __future__ import annotations

from collections.abc import Iterator

from overmind_mcp.supervision.mission import Mission

_RECENT_FINISHED = 1024


class Roster:
    def __init__(self) -> None:
        self._live: dict[str, Mission] = {}
        self._finished: dict[str, Mission] = {}

    def add(self, mission: Mission) -> None:
        self._live[mission.id] = mission

    def live(self, mission_id: str) -> Mission | None:
        return self._live.get(mission_id)

    def recent(self, mission_id: str) -> Mission | None:
        """A mission this server supervises or saw end lately."""
        return self._live.get(mission_id) or self._finished.get(mission_id)

    def named(self, name: str) -> Mission | None:
        return next((mission for mission in self._live.values() if mission.name == name), None)

    def retire(self, mission: Mission) -> None:
        """It has ended: out of the live set, kept a while for answers."""
        self._live.pop(mission.id, None)
        self._finished[mission.id] = mission
        if len(self._finished) > _RECENT_FINISHED:
            del self._finished[next(iter(self._finished))]

    def __iter__(self) -> Iterator[Mission]:
        return iter(list(self._live.values()))

    def __contains__(self, mission_id: str) -> bool:
        return mission_id in self._live
