"""The permission bridge in supervision: the tree its broker asks about, what a mission waits for, and
a live session's permission requests, answered on the session's stdin."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from overmind_mcp.bus import EventBus, ProgressMade
from overmind_mcp.core.approvals import PermissionAnswer
from overmind_mcp.core.events import PermissionRequest
from overmind_mcp.errors import NotFound
from overmind_mcp.permissions.broker import Broker
from overmind_mcp.permissions.rules import ToolCall
from overmind_mcp.storage.missions import MissionRow, Store
from overmind_mcp.supervision.mission import Mission
from overmind_mcp.supervision.roster import Roster
from overmind_mcp.supervision.tree import Tree

logger = logging.getLogger("overmind_mcp")


class TreeMissions:
    """The supervision tree, as the broker asks about it."""

    def __init__(self, store: Store, roster: Roster) -> None:
        self._store = store
        self._roster = roster
        self._tree = Tree(store, roster)

    async def row(self, mission_id: str) -> MissionRow:
        mission = self._roster.recent(mission_id)
        row = mission.row if mission is not None else await self._store.get(mission_id)
        if row is None:
            raise NotFound(f"mission {mission_id} has been removed")
        return row

    async def ancestors(self, row: MissionRow) -> list[MissionRow]:
        return await self._tree.ancestors(row)

    def is_live(self, mission_id: str) -> bool:
        return self._roster.live(mission_id) is not None


def show_waiting(roster: Roster, bus: EventBus) -> Callable[[str, str | None], None]:
    """How the broker tells a live mission what it waits for (ps shows it as needs_approval)."""

    def note(mission_id: str, what: str | None) -> None:
        mission = roster.live(mission_id)
        if mission is not None:
            mission.awaiting_approval = what
            bus.publish(ProgressMade(mission_id))

    return note


async def answer_session(broker: Broker, mission: Mission, request: PermissionRequest) -> None:
    """Ask the broker about a session's request, then write the answer to the session's stdin.

    Runs in the server's task group: nothing may escape it.
    """
    call = ToolCall(request.tool_name, request.input, request.blocked_path)
    try:
        answer = await broker.ask(mission.id, call, tool_use_id=request.tool_use_id)
    except Exception as exc:
        logger.exception("deciding a permission request of %s failed", mission.id)
        answer = PermissionAnswer(False, message=f"Denied: the server failed to decide ({type(exc).__name__})")
    codec, handle = mission.provider.sessions, mission.handle
    if codec is None or handle is None or not handle.running:
        return
    with contextlib.suppress(OSError):  # the process is going: nobody reads the answer
        await handle.write_stdin(codec.permission_answer(request.request_id, answer))
