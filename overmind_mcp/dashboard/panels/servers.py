"""The servers sharing the state directory: which are up, since when, what each runs, where its dashboard is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from overmind_mcp.dashboard.access import live_servers
from overmind_mcp.dashboard.panels import Panel, PanelContext
from overmind_mcp.models import LIVE


async def load(context: PanelContext) -> Mapping[str, Any]:
    dashboards = {record.server_id: record.url for record in live_servers(context.settings.home)}
    running: dict[str | None, int] = {}
    for row in context.board.rows:
        if row.status in LIVE:
            running[row.server_id] = running.get(row.server_id, 0) + 1
    servers = [
        {
            "id": server.id,
            "pid": server.pid,
            "started_at": server.started_at,
            "running": running.get(server.id, 0),
            "dashboard": dashboards.get(server.id),
            "here": server.id == context.supervisor.server_id,
        }
        for server in await context.board.state.servers()
        if server.alive
    ]
    return {"servers": servers}


PANEL = Panel(name="servers", title="Servers", page="board", template="panels/servers.html", load=load)
