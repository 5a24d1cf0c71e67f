"""Namespaces, and who is writing.

A namespace is a plain string, `kind` or `kind:value`:

    global                  every agent, every project
    project:<abs path>      one project directory (the default: the directory the server serves)
    run:<root mission id>   one mission tree
    mission:<mission id>    one mission

Callers may also name their own namespaces by kind alone (`project`, `run`, `mission`);
a `Scope` says what those mean for the caller at hand, and what it may touch.

The top-level client may read and write every namespace. A mission is confined by its
identity: it reads global, its project, its own run, and its own and its ancestors'
mission namespaces; it writes and forgets freely in its own run and its own mission;
in global and project it may add memories, and replace or forget only those its own run
wrote, so that no tree can rewrite or erase what the person or another tree recorded.
Hits written by another tree are shown without that tree's mission and session ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from overmind_mcp.errors import AccessDenied, InvalidRequest
from overmind_mcp.names import looks_like_id

GLOBAL = "global"
KINDS = ("global", "project", "run", "mission")


def project(path: str | Path) -> str:
    # Resolved, so that a symlink and its target, or `a/../b` and `b`, share one namespace.
    return f"project:{Path(path).resolve()}"


def run(root_id: str) -> str:
    return f"run:{root_id}"


def mission(mission_id: str) -> str:
    return f"mission:{mission_id}"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who writes a memory: the mission (when a child calls) and its Claude session."""

    mission_id: str | None = None
    mission_name: str | None = None
    session_id: str | None = None
    run_id: str | None = None
    """The root of that mission's tree: a memory's run decides who else may replace or forget it."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a caller stands: what `project`, `run` and `mission` mean for it, and what it may touch."""

    project_dir: str
    mission_id: str | None = None
    root_id: str | None = None
    ancestors: tuple[str, ...] = ()
    """The mission's ancestors' ids, its parent first."""
    confined: bool = False
    """A mission's scope (its identity limits it); the top-level client's is not confined."""

    @property
    def project(self) -> str:
        return project(self.project_dir)

    def visible(self) -> list[str]:
        """The namespaces a search covers when the caller names none: its own, then the shared ones."""
        names = []
        if self.mission_id is not None:
            names.append(mission(self.mission_id))
        names.extend(mission(ancestor) for ancestor in self.ancestors)
        if self.root_id is not None:
            names.append(run(self.root_id))
        names.extend([self.project, GLOBAL])
        return names

    def shared(self, namespace: str) -> bool:
        """Global and the project: every tree reads them, and no tree owns them."""
        return namespace in (GLOBAL, self.project)

    def owns(self, namespace: str) -> bool:
        """Whether the caller may write and forget anything in the namespace."""
        if not self.confined:
            return True
        own = {mission(self.mission_id) if self.mission_id else None, run(self.root_id) if self.root_id else None}
        return namespace in own

    def check_readable(self, namespace: str) -> None:
        """Raises AccessDenied when a mission names a namespace outside its reach."""
        if self.confined and namespace not in self.visible():
            raise AccessDenied(
                f"namespace {namespace!r} is outside your reach: a mission reads global, project, run (its own "
                "tree), mission (its own) and its ancestors' mission:<id>"
            )

    def check_writable(self, namespace: str) -> None:
        """Raises AccessDenied when a mission may neither write the namespace nor add to it."""
        self.check_readable(namespace)
        if not (self.owns(namespace) or self.shared(namespace)):
            raise AccessDenied(
                f"namespace {namespace!r} is an ancestor's: read it, but write to run, mission, project or global"
            )

    def resolve(self, name: str) -> str:
        """A namespace as given by a caller, in full; raises InvalidRequest with the accepted forms."""
        name = name.strip()
        if name == GLOBAL:
            return GLOBAL
        if name == "project":
            return self.project
        if name == "run":
            if self.root_id is None:
                raise InvalidRequest(_no_mission("run"))
            return run(self.root_id)
        if name == "mission":
            if self.mission_id is None:
                raise InvalidRequest(_no_mission("mission"))
            return mission(self.mission_id)
        kind, _, value = name.partition(":")
        if kind == "project" and value:
            if not Path(value).is_absolute():
                raise InvalidRequest(
                    f"namespace {name!r}: a project is an absolute directory path, e.g. project:/src/app"
                )
            return project(value)
        if kind in ("run", "mission") and value:
            if not looks_like_id(value):
                raise InvalidRequest(
                    f"namespace {name!r}: {kind}:<id> takes a mission id (16 hex digits); "
                    f"use {kind!r} alone for your own"
                )
            return f"{kind}:{value}"
        raise InvalidRequest(
            f"unknown namespace {name!r}: use global, project, run, mission, "
            "or a full project:<abs path>, run:<root mission id> or mission:<mission id>"
        )


def _no_mission(kind: str) -> str:
    return (
        f"namespace {kind!r} means the calling mission's own, and this caller is not a mission; "
        f"use project or global, or a full {kind}:<mission id>"
    )
