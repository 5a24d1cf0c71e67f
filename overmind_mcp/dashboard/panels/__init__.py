"""Panels: sections of a dashboard page that features add by registering them, not by editing pages.

A panel names a template, a `load` that gives the template its data, and optionally actions
(POST /panels/<name>/<action>, with the page's anti-CSRF token, for approve/deny or
merge/discard) and an `annotate` that marks missions on the board (that one needs an approval,
its worktree's diffstat). Board panels are drawn under the mission tree and re-drawn live;
mission panels on each mission's page.

To add one: a module in this package with a `PANEL` (its templates under `templates/panels/`),
and its name in `FEATURES`; a feature whose own modules are absent leaves its name out.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from overmind_mcp.dashboard.board import Annotation, Board
from overmind_mcp.errors import Conflict
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import MissionRow

if TYPE_CHECKING:
    from overmind_mcp.supervision.supervisor import Supervisor

FEATURES: tuple[str, ...] = ("servers", "events")
"""The panel modules of this package, in the order their panels are drawn."""


@dataclass(frozen=True, slots=True)
class PanelContext:
    """What a panel may read and act through: the board (the read side) and the host server's supervisor."""

    settings: Settings
    board: Board
    supervisor: Supervisor
    mission: MissionRow | None = None


Loader = Callable[[PanelContext], Awaitable[Mapping[str, Any]]]
PanelAction = Callable[[PanelContext, Mapping[str, str]], Awaitable[str]]
"""Carries out one action with the submitted form; returns what to tell the person (raises OvermindError)."""


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    page: Literal["board", "mission"]
    template: str
    load: Loader
    actions: Mapping[str, PanelAction] = field(default_factory=dict)
    annotate: Callable[[PanelContext], Awaitable[Mapping[str, Annotation]]] | None = None


class Panels:
    """The panels of one dashboard, in the order they are drawn."""

    def __init__(self, panels: list[Panel] | None = None) -> None:
        self._panels: dict[str, Panel] = {}
        for panel in panels or []:
            self.register(panel)

    @classmethod
    def default(cls) -> Panels:
        return cls([importlib.import_module(f"{__name__}.{name}").PANEL for name in FEATURES])

    def register(self, panel: Panel) -> None:
        if panel.name in self._panels:
            raise Conflict(f"a dashboard panel named {panel.name!r} is already registered")
        self._panels[panel.name] = panel

    def on(self, page: Literal["board", "mission"]) -> list[Panel]:
        return [panel for panel in self._panels.values() if panel.page == page]

    def get(self, name: str) -> Panel | None:
        return self._panels.get(name)

    def __iter__(self) -> Iterator[Panel]:
        return iter(self._panels.values())
