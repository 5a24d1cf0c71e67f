"""A mission's supervision events: started, adopted, restarts, stalls, stop requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from overmind_mcp.dashboard.panels import Panel, PanelContext


async def load(context: PanelContext) -> Mapping[str, Any]:
    assert context.mission is not None
    events = await context.board.state.store.events(context.mission.id)
    return {"events": [{"at": at, "kind": kind, "text": data.get("text") or ""} for at, kind, data in events]}


PANEL = Panel(name="events", title="Events", page="mission", template="panels/events.html", load=load)
