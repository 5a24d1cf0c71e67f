"""The read side: every question about missions, answered in one place.

The MCP tools, the `overmind` console and the dashboard ask the same `ReadSide`; what
differs is only where a live mission's in-memory state comes from (`LiveState`): the
server that supervises it has the mission itself; the console folds its output file.
Nothing here changes a mission.
"""

from __future__ import annotations

from typing import Literal, Protocol

from overmind_mcp.core.status import LIVE, Status
from overmind_mcp.errors import InvalidRequest, NotFound
from overmind_mcp.models import LogPage, MissionResult, MissionSummary, PsResult
from overmind_mcp.readside import views
from overmind_mcp.readside.live import LiveMission
from overmind_mcp.storage.missions import MissionRow, Store


class LiveState(Protocol):
    def mission(self, mission_id: str) -> LiveMission | None:
        """What memory knows of a mission that runs now (None for one that does not, or is not known here)."""
        ...

    def recent(self, mission_id: str) -> LiveMission | None:
        """A mission this process supervises or saw end lately: its row is fresher than the store's."""
        ...

    def named(self, name: str) -> LiveMission | None:
        """The live mission with that name, if known here."""
        ...

    def queue_position(self, mission_id: str) -> int | None: ...


class ReadSide:
    def __init__(self, store: Store, live: LiveState, *, text_limit: int) -> None:
        self.store = store
        self.live = live
        self.text_limit = text_limit

    async def resolve(self, ref: str) -> MissionRow:
        """A mission by id, else by name (the live one, else the newest); raises NotFound."""
        if not ref:
            raise InvalidRequest("a mission id or name is required")
        mission = self.live.recent(ref) or self.live.named(ref)
        if mission is not None:
            return mission.row
        row = await self.store.get(ref) or await self.store.find_by_name(ref)
        if row is None:
            raise NotFound(f"no mission has the id or name {ref!r}; call ps to list missions")
        return row

    async def row(self, mission_id: str) -> MissionRow:
        mission = self.live.recent(mission_id)
        if mission is not None:
            return mission.row
        row = await self.store.get(mission_id)
        if row is None:
            raise NotFound(f"mission {mission_id} has been removed")
        return row

    async def select(
        self, *, root: MissionRow | None = None, tree: bool = False, status: Status | None = None
    ) -> list[MissionRow]:
        """The rows `ps` lists: everything, or `root`'s children (with `tree`, its whole subtree, depth first)."""
        if root is None:
            rows = await self.store.missions()
        elif tree:
            rows = [root, *await self.store.descendants(root.id)]
        else:
            rows = await self.store.missions(parent_id=root.id)
        if tree:
            rows = views.depth_first(rows)
        if status is not None:
            rows = [row for row in rows if views.shown_status(row, self.live.mission(row.id)) == status]
        return rows

    def ps(self, rows: list[MissionRow], *, limit: int = 100, tree: bool = False) -> tuple[PsResult, list[MissionRow]]:
        """The `ps` answer for rows from `select`, and the rows it kept."""
        return views.ps_result(rows, self.summary, self.cost, limit=limit, tree=tree)

    def result(self, row: MissionRow) -> MissionResult:
        return views.result_of(row, self.live.mission(row.id), text_limit=self.text_limit)

    def logs(
        self, row: MissionRow, *, cursor: int = 0, limit: int = 200, format: Literal["text", "events"] = "text"
    ) -> LogPage:
        if cursor < 0:
            raise InvalidRequest("cursor must be 0 or a next_cursor from an earlier page")
        if limit < 1:
            raise InvalidRequest("limit must be at least 1")
        return views.log_page(row, cursor=cursor, limit=limit, format=format)

    def summary(self, row: MissionRow) -> MissionSummary:
        return views.summary_of(row, self.live.mission(row.id), queue_position=self.live.queue_position(row.id))

    def cost(self, row: MissionRow) -> float | None:
        mission = self.live.mission(row.id)
        return mission.activity.cost_usd if mission is not None else row.cost_usd

    def is_live(self, row: MissionRow) -> bool:
        return row.status in LIVE
