"""The supervision tree: who may act on whom, what a subtree has cost, the order a kill ends it in."""

from __future__ import annotations

from collections.abc import Sequence

from overmind_mcp.errors import AccessDenied
from overmind_mcp.identity import Caller
from overmind_mcp.storage.missions import MissionRow, Store
from overmind_mcp.supervision.roster import Roster


class Tree:
    def __init__(self, store: Store, roster: Roster) -> None:
        self._store = store
        self._roster = roster

    async def check_visible(self, caller: Caller, row: MissionRow, *, strictly_below: bool = False) -> None:
        """A mission may act only on its own subtree (for a kill: strictly below itself); the top-level
        client, on everything."""
        if caller.mission_id is None:
            return
        if strictly_below and row.id == caller.mission_id:
            raise AccessDenied(
                f"{row.name!r} is you: a mission cannot end itself this way; finish your work and answer instead"
            )
        ancestor: MissionRow | None = row
        if strictly_below:
            ancestor = await self._store.get(row.parent_id) if row.parent_id else None
        while ancestor is not None:
            if ancestor.id == caller.mission_id:
                return
            ancestor = await self._store.get(ancestor.parent_id) if ancestor.parent_id else None
        raise AccessDenied(f"mission {row.name!r} is not in your subtree: you may act only on missions you started")

    async def subtree_cost(self, row: MissionRow) -> float:
        """What a mission and everything under it have cost so far (live missions included)."""
        total = 0.0
        for member in [row, *await self._store.descendants(row.id)]:
            mission = self._roster.live(member.id)
            total += (mission.activity.cost_usd if mission else member.cost_usd) or 0.0
        return total

    async def ancestors(self, row: MissionRow) -> list[MissionRow]:
        """Its parent, its parent's parent… up to the root."""
        found = []
        parent_id = row.parent_id
        while parent_id is not None:
            parent = self._roster.recent(parent_id)
            parent_row = parent.row if parent is not None else await self._store.get(parent_id)
            if parent_row is None:
                break
            found.append(parent_row)
            parent_id = parent_row.parent_id
        return found

    async def kill_order(self, targets: Sequence[MissionRow], *, cascade: bool) -> list[list[MissionRow]]:
        """The missions a kill ends, in groups of one depth, deepest first: children end before parents."""
        return await kill_order(self._store, targets, cascade=cascade)


async def kill_order(store: Store, targets: Sequence[MissionRow], *, cascade: bool) -> list[list[MissionRow]]:
    doomed: dict[str, MissionRow] = {}
    for target in targets:
        if cascade:
            for row in await store.descendants(target.id):
                doomed.setdefault(row.id, row)
        doomed.setdefault(target.id, target)
    depths = sorted({row.depth for row in doomed.values()}, reverse=True)
    return [[row for row in doomed.values() if row.depth == depth] for depth in depths]
