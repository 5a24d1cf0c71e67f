"""The workspace room's own database (`worktrees.db` in the state directory): leases, tenants, ports, services.

Every server process on the state directory and the `overmind` command share it, so a
port leased by one process is never leased by another, and a worktree made by a server
that died is still known to the next. It is a database of its own (never a migration of
the mission store): this room owns its tables.

- `worktrees`: one row per worktree lease, keyed by the mission that owns it.
- `tenants`: missions that work in another mission's worktree (a child of an isolated
  mission that did not ask for its own); the worktree ends only once they all have.
- `ports`: one row per leased port; the primary key makes a port leased at most once.
- `services`: what was started for a mission (a process group or a container), so that
  whoever ends the mission can end them, whichever process started them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import aiosqlite

from overmind_mcp.core.spec import WorktreeCleanup
from overmind_mcp.errors import NotFound
from overmind_mcp.storage import sqlite

FILENAME = "worktrees.db"

_MIGRATIONS: list[sqlite.Migration] = [
    sqlite.statements(
        """
    CREATE TABLE worktrees (
        mission_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        repo TEXT NOT NULL,
        path TEXT NOT NULL,
        branch TEXT NOT NULL,
        base TEXT NOT NULL,
        target TEXT,
        cleanup TEXT NOT NULL,
        state TEXT NOT NULL,
        note TEXT
    ) STRICT;
    """
    ),
    # 2: children working in their parent's worktree, ports and services, and what a lease gave its mission.
    sqlite.statements(
        """
    ALTER TABLE worktrees ADD COLUMN env TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE worktrees ADD COLUMN created_at REAL NOT NULL DEFAULT 0;
    CREATE INDEX worktrees_name ON worktrees(name);
    CREATE TABLE tenants (
        mission_id TEXT PRIMARY KEY,
        owner_id TEXT NOT NULL
    ) STRICT;
    CREATE INDEX tenants_owner ON tenants(owner_id);
    CREATE TABLE ports (
        port INTEGER PRIMARY KEY,
        mission_id TEXT NOT NULL,
        service TEXT NOT NULL,
        repo TEXT NOT NULL,
        leased_at REAL NOT NULL
    ) STRICT;
    CREATE INDEX ports_mission ON ports(mission_id);
    CREATE TABLE services (
        mission_id TEXT NOT NULL,
        service TEXT NOT NULL,
        kind TEXT NOT NULL,
        port INTEGER NOT NULL,
        pid INTEGER,
        start_time REAL,
        container TEXT,
        PRIMARY KEY (mission_id, service)
    ) STRICT;
    """
    ),
]


class LeaseState(StrEnum):
    PREPARING = "preparing"  # being made: a crash here leaves it for reconcile to undo
    ACTIVE = "active"  # its mission (or a tenant) may be working in it
    WAITING = "waiting"  # its mission has ended; children of it still work in it
    KEPT = "kept"  # ended; directory and branch stay (by policy, or because its state could not be read)
    ARCHIVED = "archived"  # ended; the directory is gone, the branch holds all the work
    REMOVED = "removed"  # ended with nothing that is not elsewhere: directory and branch gone
    DISCARDED = "discarded"  # removed on request, work and all
    MISSING = "missing"  # the directory was removed outside overmind (found at reconcile)

    @property
    def has_directory(self) -> bool:
        return self in (LeaseState.PREPARING, LeaseState.ACTIVE, LeaseState.WAITING, LeaseState.KEPT)


@dataclass(slots=True)
class Lease:
    mission_id: str
    name: str
    repo: Path
    path: Path
    branch: str
    base: str
    target: str | None
    cleanup: WorktreeCleanup
    state: LeaseState
    note: str | None = None
    env: Mapping[str, str] | None = None
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class PortLease:
    port: int
    mission_id: str
    service: str
    repo: str


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    mission_id: str
    service: str
    kind: str  # "command" or "docker"
    port: int
    pid: int | None = None
    start_time: float | None = None
    container: str | None = None


WORKING = (LeaseState.PREPARING, LeaseState.ACTIVE, LeaseState.WAITING)
"""States in which a mission may be working in the worktree: it is not to be merged, discarded or ended."""


class PortsExhausted(Exception):
    """Every port of the range is leased or in use."""


class Records:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, state_dir: Path) -> Records:
        return cls(await sqlite.connect(state_dir / FILENAME, _MIGRATIONS))

    async def close(self) -> None:
        await self._db.close()

    # -- worktree leases ---------------------------------------------------------------------

    async def insert(self, lease: Lease) -> None:
        await self._db.execute(
            "INSERT INTO worktrees (mission_id, name, repo, path, branch, base, target, cleanup, state, note, env,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                lease.mission_id,
                lease.name,
                str(lease.repo),
                str(lease.path),
                lease.branch,
                lease.base,
                lease.target,
                lease.cleanup,
                lease.state,
                lease.note,
                json.dumps(dict(lease.env or {})),
                lease.created_at or time.time(),
            ),
        )

    async def get(self, mission_id: str) -> Lease | None:
        rows = await self._db.execute_fetchall("SELECT * FROM worktrees WHERE mission_id = ?", (mission_id,))
        return _lease(next(iter(rows))) if rows else None

    async def find(self, ref: str) -> Lease:
        """A lease by its mission's id, else by its mission's name (the newest), else by its branch."""
        lease = await self.get(ref)
        if lease is None:
            rows = await self._db.execute_fetchall(
                "SELECT * FROM worktrees WHERE name = ? OR branch = ? ORDER BY created_at DESC LIMIT 1", (ref, ref)
            )
            lease = _lease(next(iter(rows))) if rows else None
        if lease is None:
            raise NotFound(f"no mission {ref!r} has a worktree: spawn it with isolation='worktree'")
        return lease

    async def leases(self, states: Sequence[LeaseState] = ()) -> list[Lease]:
        if states:
            marks = ", ".join("?" for _ in states)
            rows = await self._db.execute_fetchall(
                f"SELECT * FROM worktrees WHERE state IN ({marks}) ORDER BY created_at", tuple(states)
            )
        else:
            rows = await self._db.execute_fetchall("SELECT * FROM worktrees ORDER BY created_at")
        return [_lease(row) for row in rows]

    async def set_state(self, mission_id: str, state: LeaseState, note: str | None) -> None:
        await self._db.execute(
            "UPDATE worktrees SET state = ?, note = ? WHERE mission_id = ?", (state, note, mission_id)
        )

    async def set_env(self, mission_id: str, env: Mapping[str, str]) -> None:
        await self._db.execute("UPDATE worktrees SET env = ? WHERE mission_id = ?", (json.dumps(dict(env)), mission_id))

    async def delete(self, mission_id: str) -> None:
        await self._db.execute("DELETE FROM worktrees WHERE mission_id = ?", (mission_id,))

    # -- tenants -----------------------------------------------------------------------------

    async def add_tenant(self, mission_id: str, owner_id: str) -> None:
        await self._db.execute("INSERT INTO tenants (mission_id, owner_id) VALUES (?, ?)", (mission_id, owner_id))

    async def owner_of(self, mission_id: str) -> str | None:
        rows = await self._db.execute_fetchall("SELECT owner_id FROM tenants WHERE mission_id = ?", (mission_id,))
        return next(iter(rows))[0] if rows else None

    async def remove_tenant(self, mission_id: str) -> None:
        await self._db.execute("DELETE FROM tenants WHERE mission_id = ?", (mission_id,))

    async def tenants(self, owner_id: str | None = None) -> list[tuple[str, str]]:
        """(tenant, owner) pairs, of one owner or of all."""
        if owner_id is None:
            rows = await self._db.execute_fetchall("SELECT mission_id, owner_id FROM tenants")
        else:
            rows = await self._db.execute_fetchall(
                "SELECT mission_id, owner_id FROM tenants WHERE owner_id = ?", (owner_id,)
            )
        return [(row[0], row[1]) for row in rows]

    # -- ports -------------------------------------------------------------------------------

    async def lease_ports(
        self,
        mission_id: str,
        repo: str,
        services: Sequence[str],
        port_range: tuple[int, int],
        is_free: Callable[[int], bool],
    ) -> dict[str, int]:
        """One port per service: the lowest of `port_range` (both ends included) that no process has leased
        and `is_free` says nothing listens on. All or none: an exhausted range leases nothing."""
        low, high = port_range
        given: dict[str, int] = {}
        # IMMEDIATE: the write lock is taken before the ports in use are read, so two
        # processes leasing at once cannot both pick the same lowest port.
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            taken = {
                row[0]
                for row in await self._db.execute_fetchall(
                    "SELECT port FROM ports WHERE port BETWEEN ? AND ?", (low, high)
                )
            }
            candidate = low
            for service in services:
                while candidate <= high and (candidate in taken or not is_free(candidate)):
                    candidate += 1
                if candidate > high:
                    raise PortsExhausted(f"{len(taken)} leased to other missions, the rest in use")
                given[service] = candidate
                await self._db.execute(
                    "INSERT INTO ports (port, mission_id, service, repo, leased_at) VALUES (?, ?, ?, ?, ?)",
                    (candidate, mission_id, service, repo, time.time()),
                )
                candidate += 1
            await self._db.execute("COMMIT")
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        return given

    async def ports(self, mission_id: str | None = None) -> list[PortLease]:
        if mission_id is None:
            rows = await self._db.execute_fetchall("SELECT port, mission_id, service, repo FROM ports ORDER BY port")
        else:
            rows = await self._db.execute_fetchall(
                "SELECT port, mission_id, service, repo FROM ports WHERE mission_id = ? ORDER BY port", (mission_id,)
            )
        return [PortLease(row[0], row[1], row[2], row[3]) for row in rows]

    async def release_ports(self, mission_id: str) -> None:
        await self._db.execute("DELETE FROM ports WHERE mission_id = ?", (mission_id,))

    # -- services ----------------------------------------------------------------------------

    async def add_service(self, record: ServiceRecord) -> None:
        await self._db.execute(
            "INSERT INTO services (mission_id, service, kind, port, pid, start_time, container)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.mission_id,
                record.service,
                record.kind,
                record.port,
                record.pid,
                record.start_time,
                record.container,
            ),
        )

    async def services(self, mission_id: str | None = None) -> list[ServiceRecord]:
        if mission_id is None:
            rows = await self._db.execute_fetchall("SELECT * FROM services")
        else:
            rows = await self._db.execute_fetchall("SELECT * FROM services WHERE mission_id = ?", (mission_id,))
        return [
            ServiceRecord(
                mission_id=row["mission_id"],
                service=row["service"],
                kind=row["kind"],
                port=row["port"],
                pid=row["pid"],
                start_time=row["start_time"],
                container=row["container"],
            )
            for row in rows
        ]

    async def remove_service(self, mission_id: str, service: str) -> None:
        await self._db.execute("DELETE FROM services WHERE mission_id = ? AND service = ?", (mission_id, service))


def _lease(row: sqlite3.Row) -> Lease:
    return Lease(
        mission_id=row["mission_id"],
        name=row["name"],
        repo=Path(row["repo"]),
        path=Path(row["path"]),
        branch=row["branch"],
        base=row["base"],
        target=row["target"],
        cleanup=row["cleanup"],
        state=LeaseState(row["state"]),
        note=row["note"],
        env=json.loads(row["env"]),
        created_at=row["created_at"],
    )
