"""What the parts of a supervisor share: the server's settings, its stores, its seams and its live state."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio.abc

from overmind_mcp.akasha import Akasha
from overmind_mcp.bus import EventBus
from overmind_mcp.errors import InvalidRequest
from overmind_mcp.identity import Credentials
from overmind_mcp.permissions.broker import Broker
from overmind_mcp.permissions.journal import Journal
from overmind_mcp.providers import Providers
from overmind_mcp.runners.base import Runner
from overmind_mcp.runners.local.watch import FileWatcher
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import Store
from overmind_mcp.supervision.admission import Admission
from overmind_mcp.supervision.approvals import TreeMissions, show_waiting
from overmind_mcp.supervision.roster import Roster
from overmind_mcp.workspaces.base import Workspace


@dataclass(eq=False)
class Context:
    settings: Settings
    server_id: str
    store: Store
    akasha: Akasha
    watcher: FileWatcher
    tasks: anyio.abc.TaskGroup
    providers: Providers
    runners: dict[str, Runner]
    workspaces: dict[str, Workspace]
    # The permission room's journal (its own database file).
    journal: Journal
    bus: EventBus = field(default_factory=EventBus)
    credentials: Credentials = field(default_factory=Credentials)
    roster: Roster = field(default_factory=Roster)
    admission: Admission = field(init=False)
    broker: Broker = field(init=False)
    # Where delegating children call back in; set by whoever serves the HTTP endpoint.
    delegation_url: str | None = None

    def __post_init__(self) -> None:
        self.admission = Admission(self.settings, self.roster, self.runners)
        self.broker = Broker(
            self.journal,
            TreeMissions(self.store, self.roster),
            self.bus,
            server_id=self.server_id,
            timeout_s=self.settings.approval_timeout_s,
            on_waiting=show_waiting(self.roster, self.bus),
        )

    def runner(self, name: str) -> Runner:
        try:
            return self.runners[name]
        except KeyError:
            hint = " (Ray is not installed there: pip install 'overmind-mcp[ray]')" if name == "ray" else ""
            raise InvalidRequest(
                f"runner {name!r} is not available on this server (it has: {', '.join(sorted(self.runners))}){hint}"
            ) from None

    def workspace(self, name: str) -> Workspace:
        try:
            return self.workspaces[name]
        except KeyError:
            raise InvalidRequest(
                f"workspace {name!r} is not available on this server (it has: {', '.join(sorted(self.workspaces))})"
            ) from None
