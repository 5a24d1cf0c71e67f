"""rituals.db: the rituals, every fire of every slot, the quests' provenance, and the servers that fire.

A fire is claimed by inserting its row: (ritual, slot) is UNIQUE, so whichever server inserts
first owns the slot and every other insert of it is a no-op. The row is written before anything
is started, and it records every slot the scheduler passes over (missed, skipped) as well, so
no slot is fired twice and none is dropped without a row that says why.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import aiosqlite

from overmind_mcp.errors import Conflict
from overmind_mcp.storage import sqlite
from overmind_mcp.supervision.foreign import is_running

FILENAME = "rituals.db"

_MIGRATIONS: list[sqlite.Migration] = [
    sqlite.statements(
        """
    CREATE TABLE rituals (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        cron TEXT NOT NULL,
        tz TEXT NOT NULL,
        spawn TEXT,
        blueprint TEXT,
        catch_up TEXT NOT NULL,
        misfire_grace_s REAL,
        overlap TEXT NOT NULL,
        jitter_s REAL NOT NULL,
        enabled INTEGER NOT NULL,
        created_at REAL NOT NULL,
        anchor REAL NOT NULL
    ) STRICT;
    CREATE TABLE fires (
        id INTEGER PRIMARY KEY,
        ritual_id TEXT NOT NULL REFERENCES rituals(id) ON DELETE CASCADE,
        slot INTEGER NOT NULL,
        due REAL NOT NULL,
        state TEXT NOT NULL,
        claimed_by TEXT NOT NULL,
        claimed_at REAL NOT NULL,
        mission_id TEXT,
        mission_name TEXT,
        started_at REAL,
        ended INTEGER NOT NULL DEFAULT 0,
        reason TEXT,
        UNIQUE (ritual_id, slot)
    ) STRICT;
    CREATE INDEX fires_open ON fires(state) WHERE state IN ('claimed', 'queued');
    CREATE INDEX fires_running ON fires(ritual_id) WHERE state = 'started' AND ended = 0;
    CREATE TABLE quests (
        mission_id TEXT PRIMARY KEY,
        mission_name TEXT NOT NULL,
        origin TEXT NOT NULL,
        ritual TEXT,
        slot INTEGER,
        created_at REAL NOT NULL
    ) STRICT;
    CREATE INDEX quests_created ON quests(created_at);
    CREATE TABLE schedulers (
        server_id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        proc_start REAL NOT NULL,
        started_at REAL NOT NULL
    ) STRICT;
    """
    )
]
SCHEMA_VERSION = len(_MIGRATIONS)


@dataclass(slots=True)
class RitualRow:
    id: str
    name: str
    cron: str
    tz: str
    spawn: dict[str, Any] | None
    blueprint: str | None
    catch_up: str
    misfire_grace_s: float | None
    overlap: str
    jitter_s: float
    enabled: bool
    created_at: float
    # Slots at or before this instant are not owed: the ritual was created (or resumed) then.
    anchor: float


@dataclass(slots=True)
class FireRow:
    id: int
    ritual_id: str
    slot: int
    due: float
    state: str
    claimed_by: str
    claimed_at: float
    mission_id: str | None = None
    mission_name: str | None = None
    started_at: float | None = None
    ended: bool = False
    reason: str | None = None


@dataclass(slots=True)
class QuestRow:
    mission_id: str
    mission_name: str
    origin: str
    ritual: str | None
    slot: int | None
    created_at: float


@dataclass(frozen=True, slots=True)
class SchedulerRow:
    server_id: str
    pid: int
    proc_start: float
    started_at: float

    @property
    def alive(self) -> bool:
        return is_running(self.pid, self.proc_start)


_RITUAL_COLUMNS = ", ".join(field.name for field in fields(RitualRow))
_FIRE_COLUMNS = ", ".join(field.name for field in fields(FireRow))
_QUEST_COLUMNS = ", ".join(field.name for field in fields(QuestRow))


def _ritual(row: sqlite3.Row) -> RitualRow:
    found = RitualRow(*row)
    found.spawn = json.loads(row["spawn"]) if row["spawn"] is not None else None
    found.enabled = bool(found.enabled)
    return found


def _fire(row: sqlite3.Row) -> FireRow:
    found = FireRow(*row)
    found.ended = bool(found.ended)
    return found


class RitualStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, home: Path) -> RitualStore:
        return cls(await sqlite.connect(home / FILENAME, _MIGRATIONS, pragmas=["foreign_keys = ON"]))

    @classmethod
    async def open_readonly(cls, home: Path) -> RitualStore | None:
        """For the console: None when no server has created the file yet; never migrates it."""
        path = home / FILENAME
        if not path.exists():
            return None
        uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
        db = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA busy_timeout = 10000")
        [(version,)] = await db.execute_fetchall("PRAGMA user_version")
        if version != SCHEMA_VERSION:
            await db.close()
            raise RuntimeError(f"{path} has schema version {version}; this overmind reads {SCHEMA_VERSION}")
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    # -- rituals -----------------------------------------------------------------------------------

    async def insert(self, row: RitualRow) -> None:
        values = [getattr(row, field.name) for field in fields(RitualRow)]
        values[4] = json.dumps(row.spawn, separators=(",", ":")) if row.spawn is not None else None
        try:
            await self._db.execute(
                f"INSERT INTO rituals ({_RITUAL_COLUMNS}) VALUES ({', '.join('?' for _ in values)})", values
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"a ritual named {row.name!r} exists; unschedule it first, or choose another name") from None

    async def delete(self, ritual_id: str) -> None:
        await self._db.execute("DELETE FROM rituals WHERE id = ?", (ritual_id,))

    async def set_enabled(self, ritual_id: str, enabled: bool, anchor: float) -> None:
        await self._db.execute(
            "UPDATE rituals SET enabled = ?, anchor = ? WHERE id = ?", (int(enabled), anchor, ritual_id)
        )

    async def ritual(self, name: str) -> RitualRow | None:
        rows = await self._fetch(f"SELECT {_RITUAL_COLUMNS} FROM rituals WHERE name = ?", (name,))
        return _ritual(rows[0]) if rows else None

    async def ritual_by_id(self, ritual_id: str) -> RitualRow | None:
        rows = await self._fetch(f"SELECT {_RITUAL_COLUMNS} FROM rituals WHERE id = ?", (ritual_id,))
        return _ritual(rows[0]) if rows else None

    async def rituals(self, *, enabled_only: bool = False) -> list[RitualRow]:
        where = "WHERE enabled = 1 " if enabled_only else ""
        rows = await self._fetch(f"SELECT {_RITUAL_COLUMNS} FROM rituals {where}ORDER BY name")
        return [_ritual(row) for row in rows]

    # -- fires -------------------------------------------------------------------------------------

    async def last_slot(self, ritual_id: str) -> int | None:
        [(slot,)] = await self._fetch("SELECT max(slot) FROM fires WHERE ritual_id = ?", (ritual_id,))
        return slot

    async def claim(
        self, ritual_id: str, slot: int, due: float, *, state: str, server_id: str, at: float, reason: str | None = None
    ) -> FireRow | None:
        """The new fire of (ritual, slot), owned by `server_id`; None if any server recorded that slot first
        (or the ritual was deleted or paused meanwhile)."""
        rows = await self._fetch(
            f"""
            INSERT INTO fires (ritual_id, slot, due, state, claimed_by, claimed_at, reason)
            SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM rituals WHERE id = ? AND enabled = 1)
            ON CONFLICT (ritual_id, slot) DO NOTHING
            RETURNING {_FIRE_COLUMNS}
            """,
            (ritual_id, slot, due, state, server_id, at, reason, ritual_id),
        )
        return _fire(rows[0]) if rows else None

    async def update_fire(self, fire_id: int, *, owner: str, **values: Any) -> bool:
        """Change a fire this server owns; False when it is no longer its own (or was deleted)."""
        assignments = ", ".join(f"{column} = ?" for column in values)
        cursor = await self._db.execute(
            f"UPDATE fires SET {assignments} WHERE id = ? AND claimed_by = ?", [*values.values(), fire_id, owner]
        )
        return cursor.rowcount == 1

    async def mark_ended(self, fire_id: int) -> None:
        await self._db.execute("UPDATE fires SET ended = 1 WHERE id = ?", (fire_id,))

    async def take_over(self, fire_id: int, previous_owner: str, new_owner: str) -> bool:
        """Own an open fire whose server has gone; False if another server was quicker."""
        cursor = await self._db.execute(
            "UPDATE fires SET claimed_by = ? WHERE id = ? AND claimed_by = ? AND state IN ('claimed', 'queued')",
            (new_owner, fire_id, previous_owner),
        )
        return cursor.rowcount == 1

    async def open_fires(self, ritual_id: str | None = None) -> list[FireRow]:
        """Fires claimed and not yet started (or queued behind a run), oldest slot first."""
        clause, params = ("AND ritual_id = ? ", (ritual_id,)) if ritual_id else ("", ())
        rows = await self._fetch(
            f"SELECT {_FIRE_COLUMNS} FROM fires WHERE state IN ('claimed', 'queued') {clause}ORDER BY slot, id", params
        )
        return [_fire(row) for row in rows]

    async def running_fires(self, ritual_id: str) -> list[FireRow]:
        """Started fires whose mission was not yet seen to end."""
        rows = await self._fetch(
            f"SELECT {_FIRE_COLUMNS} FROM fires WHERE ritual_id = ? AND state = 'started' AND ended = 0 ORDER BY slot",
            (ritual_id,),
        )
        return [_fire(row) for row in rows]

    async def fires(self, ritual_id: str, *, limit: int) -> list[FireRow]:
        """The latest fires, newest first."""
        rows = await self._fetch(
            f"SELECT {_FIRE_COLUMNS} FROM fires WHERE ritual_id = ? ORDER BY slot DESC LIMIT ?", (ritual_id, limit)
        )
        return [_fire(row) for row in rows]

    async def count_fires(self, ritual_id: str, states: Iterable[str]) -> int:
        states = list(states)
        [(count,)] = await self._fetch(
            f"SELECT count(*) FROM fires WHERE ritual_id = ? AND state IN ({', '.join('?' for _ in states)})",
            (ritual_id, *states),
        )
        return int(count)

    # -- quests ------------------------------------------------------------------------------------

    async def add_quest(self, row: QuestRow) -> None:
        values = [getattr(row, field.name) for field in fields(QuestRow)]
        await self._db.execute(
            f"INSERT OR REPLACE INTO quests ({_QUEST_COLUMNS}) VALUES ({', '.join('?' for _ in values)})", values
        )

    async def quests(self, *, limit: int) -> list[QuestRow]:
        rows = await self._fetch(f"SELECT {_QUEST_COLUMNS} FROM quests ORDER BY created_at DESC LIMIT ?", (limit,))
        return [QuestRow(*row) for row in rows]

    # -- the servers that fire ---------------------------------------------------------------------

    async def register(self, row: SchedulerRow) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO schedulers (server_id, pid, proc_start, started_at) VALUES (?, ?, ?, ?)",
            (row.server_id, row.pid, row.proc_start, row.started_at),
        )

    async def unregister(self, server_id: str) -> None:
        await self._db.execute("DELETE FROM schedulers WHERE server_id = ?", (server_id,))

    async def schedulers(self) -> list[SchedulerRow]:
        rows = await self._fetch("SELECT server_id, pid, proc_start, started_at FROM schedulers ORDER BY started_at")
        return [SchedulerRow(*row) for row in rows]

    async def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        # One job on the connection's thread (see Store._fetch).
        return list(await self._db.execute_fetchall(sql, tuple(params)))
