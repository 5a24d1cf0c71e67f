"""The state directory as the console sees it: the shared database, read without migrating or recovering.

Every server process writes the same SQLite database; the console is one more client of it.
It never opens the store the way a server does: `Store.open` creates and migrates the
database, and a `Supervisor` would run crash recovery and adopt other servers' children
into a process that exits a moment later. The console connects read-only for every verb
but `kill`, whose one write is a mission's `stop_request` (read by the owning server).
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import anyio

from overmind_mcp.console.common import CliError, Exit, NoDatabase
from overmind_mcp.errors import InvalidRequest, NotFound
from overmind_mcp.readside.queries import ReadSide
from overmind_mcp.runners.local.process import same_process
from overmind_mcp.runners.local.watch import FileWatcher
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import SCHEMA_VERSION, MissionRow, Store

# The schema this code reads; the store has no public name for it yet (see the report of issue 9).


@dataclass(frozen=True, slots=True)
class ServerRow:
    """One server process that has used the database."""

    id: str
    pid: int
    proc_start: float
    started_at: float
    stopped_at: float | None

    @property
    def alive(self) -> bool:
        # pid plus kernel start time: a reused pid is not the server.
        return self.stopped_at is None and same_process(self.pid, self.proc_start)


@dataclass(slots=True)
class State:
    settings: Settings
    db: aiosqlite.Connection
    store: Store

    @property
    def database_path(self) -> Path:
        return self.settings.database_path

    async def resolve(self, ref: str) -> MissionRow:
        """A mission by id, else by name (the live one, else the newest), as the MCP tools resolve it."""
        try:
            return await ReadSide(self.store, _NOTHING_IN_MEMORY, text_limit=0).resolve(ref)
        except InvalidRequest as exc:
            raise CliError(str(exc), Exit.USAGE) from None
        except NotFound:
            raise CliError(
                f"no mission has the id or name {ref!r}; `overmind ps --all` lists them", Exit.NOT_FOUND
            ) from None

    async def servers(self) -> list[ServerRow]:
        """Every server that has used the database, oldest first (the store only looks them up by id)."""
        query = "SELECT id, pid, proc_start, started_at, stopped_at FROM servers ORDER BY started_at"
        return [ServerRow(*row) for row in await self.db.execute_fetchall(query)]


class _NothingInMemory:
    """The console supervises nothing: everything it knows is in the store and the output files."""

    def mission(self, mission_id: str) -> None:
        return None

    def recent(self, mission_id: str) -> None:
        return None

    def named(self, name: str) -> None:
        return None

    def queue_position(self, mission_id: str) -> None:
        return None


_NOTHING_IN_MEMORY = _NothingInMemory()


@asynccontextmanager
async def open_state(settings: Settings, *, writable: bool = False) -> AsyncIterator[State]:
    """The shared database, opened read-only (or read-write, never created); raises CliError if absent."""
    path = settings.database_path
    if not path.exists():
        raise NoDatabase(f"no missions yet: {path} does not exist (the first overmind-mcp server creates it)")
    # mode=ro/rw: never create the file, and never migrate it: that is a server's job.
    uri = f"file:{urllib.parse.quote(str(path))}?mode={'rw' if writable else 'ro'}"
    try:
        db = await aiosqlite.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise CliError(f"cannot open {path}: {exc}; `overmind doctor` checks the state directory") from None
    try:
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA busy_timeout = 10000")
        try:
            [(version,)] = await db.execute_fetchall("PRAGMA user_version")
        except sqlite3.DatabaseError as exc:
            raise CliError(f"{path} is not a sound database ({exc}); `overmind doctor` says more") from None
        if version < SCHEMA_VERSION:
            raise CliError(
                f"{path} has schema version {version} and this overmind reads {SCHEMA_VERSION}: "
                "start a server (overmind-mcp) once to upgrade it"
            )
        if version > SCHEMA_VERSION:
            raise CliError(
                f"{path} has schema version {version}, newer than this overmind ({SCHEMA_VERSION}): "
                "upgrade overmind-mcp"
            )
        yield State(settings=settings, db=db, store=Store(db))
    finally:
        with anyio.CancelScope(shield=True):
            await db.close()


@asynccontextmanager
async def watching() -> AsyncIterator[FileWatcher]:
    """An inotify watcher running for the duration of the block."""
    watcher = FileWatcher()
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(watcher.run)
        try:
            yield watcher
        finally:
            task_group.cancel_scope.cancel()
