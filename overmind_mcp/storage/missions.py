"""The mission table and its events, in one SQLite database shared by every server process.

Every transaction is a single short statement or two, so writers from several processes
queue briefly rather than contend (see sqlite.py for how the file is opened).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import aiosqlite

from overmind_mcp.core.spec import MissionSpec
from overmind_mcp.core.status import LIVE, Status
from overmind_mcp.errors import Conflict
from overmind_mcp.storage import sqlite

_LIVE_SQL = f"({', '.join(repr(str(status)) for status in sorted(LIVE))})"

_MIGRATIONS: list[sqlite.Migration] = [
    sqlite.statements(script)
    for script in (
        # 1: missions and their supervision events.
        """
    CREATE TABLE missions (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        parent_id TEXT REFERENCES missions(id) ON DELETE CASCADE,
        root_id TEXT NOT NULL,
        depth INTEGER NOT NULL,
        provider TEXT NOT NULL,
        options TEXT NOT NULL,
        cwd TEXT NOT NULL,
        status TEXT NOT NULL,
        server_id TEXT,
        pid INTEGER,
        pgid INTEGER,
        proc_start REAL,
        session_id TEXT,
        output_path TEXT NOT NULL,
        stderr_path TEXT NOT NULL,
        created_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL,
        exit_code INTEGER,
        end_reason TEXT,
        result TEXT,
        cost_usd REAL,
        num_turns INTEGER NOT NULL DEFAULT 0,
        restarts INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE UNIQUE INDEX missions_live_name ON missions(name) WHERE status IN ('queued', 'running');
    CREATE INDEX missions_parent ON missions(parent_id);
    CREATE INDEX missions_status ON missions(status);
    CREATE INDEX missions_name ON missions(name, created_at);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        mission_id TEXT NOT NULL REFERENCES missions(id) ON DELETE CASCADE,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    ) STRICT;
    CREATE INDEX events_mission ON events(mission_id, id);
    """,
        # 2: server processes sharing the database, and stop requests between them.
        """
    CREATE TABLE servers (
        id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        proc_start REAL NOT NULL,
        started_at REAL NOT NULL,
        stopped_at REAL
    ) STRICT;
    ALTER TABLE missions ADD COLUMN stop_request TEXT;
    """,
        # 3: a mission between two runs (restarting) keeps its name.
        """
    DROP INDEX missions_live_name;
    CREATE UNIQUE INDEX missions_live_name ON missions(name) WHERE status IN ('queued', 'running', 'restarting');
    """,
        # 4: providers have names of their own ("raw" became "command"); runners keep what finds a child again.
        """
    UPDATE missions SET provider = 'command' WHERE provider = 'raw';
    ALTER TABLE missions ADD COLUMN runner_state TEXT;
    """,
        # 5: a live mission's bearer token, as its SHA-256 only, so that a later server can still let it in.
        """
    ALTER TABLE missions ADD COLUMN credential TEXT;
    """,
    )
]


SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this code migrates a database to."""


@dataclass(slots=True)
class MissionRow:
    """One mission as stored. `result` is the JSON-compatible record `result` shows once it has ended."""

    id: str
    name: str
    parent_id: str | None
    root_id: str
    depth: int
    provider: str
    spec: MissionSpec
    cwd: str
    status: Status
    output_path: str
    stderr_path: str
    created_at: float
    server_id: str | None = None
    pid: int | None = None
    pgid: int | None = None
    proc_start: float | None = None
    session_id: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    end_reason: str | None = None
    result: dict[str, Any] | None = None
    cost_usd: float | None = None
    num_turns: int = 0
    restarts: int = 0
    # Set by a process that ends a mission another server supervises, so the owner records why.
    stop_request: str | None = None
    # What a runner other than the local one needs to find the child again (JSON).
    runner_state: dict[str, Any] | None = None
    # While it runs: {"sha256": hex digest of its token, "tools": whether it may use the tools}.
    credential: dict[str, Any] | None = None


_FIELDS = tuple(f.name for f in fields(MissionRow))
# The spec is stored in the `options` column (its name from before specs had a shape).
_COLUMN_OF = {name: "options" if name == "spec" else name for name in _FIELDS}
_COLUMNS = tuple(_COLUMN_OF.values())
_JSON_FIELDS = frozenset({"result", "runner_state", "credential"})


def _to_sql(name: str, value: Any) -> Any:
    if name == "spec":
        return value.model_dump_json(exclude_none=True)
    if name in _JSON_FIELDS and value is not None:
        return json.dumps(value, separators=(",", ":"))
    return value


def _from_sql(row: sqlite3.Row) -> MissionRow:
    values = {name: row[_COLUMN_OF[name]] for name in _FIELDS}
    values["spec"] = MissionSpec.model_validate_json(values["spec"])
    values["status"] = Status(values["status"])
    for name in _JSON_FIELDS:
        if values[name] is not None:
            values[name] = json.loads(values[name])
    return MissionRow(**values)


class Store:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> Store:
        return cls(await sqlite.connect(path, _MIGRATIONS, pragmas=["foreign_keys = ON"]))

    async def close(self) -> None:
        await self._db.close()

    async def insert(self, row: MissionRow) -> None:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        values = [_to_sql(name, getattr(row, name)) for name in _FIELDS]
        try:
            await self._db.execute(f"INSERT INTO missions ({', '.join(_COLUMNS)}) VALUES ({placeholders})", values)
        except sqlite3.IntegrityError as exc:
            if "missions.name" in str(exc):
                raise Conflict(
                    f"the name {row.name!r} is already used by a running mission; choose another or leave it out"
                ) from None
            raise

    async def update(self, mission_id: str, **values: Any) -> None:
        assignments = ", ".join(f"{_COLUMN_OF[name]} = ?" for name in values)
        params = [_to_sql(name, value) for name, value in values.items()]
        await self._db.execute(f"UPDATE missions SET {assignments} WHERE id = ?", [*params, mission_id])

    async def get(self, mission_id: str) -> MissionRow | None:
        rows = await self._select("WHERE id = ?", (mission_id,))
        return rows[0] if rows else None

    async def find_by_name(self, name: str) -> MissionRow | None:
        """The live mission with that name, else the newest one that had it."""
        rows = await self._select(
            f"WHERE name = ? ORDER BY status IN {_LIVE_SQL} DESC, created_at DESC LIMIT 1", (name,)
        )
        return rows[0] if rows else None

    async def missions(
        self, *, parent_id: str | None = None, statuses: Sequence[str] | None = None, root_id: str | None = None
    ) -> list[MissionRow]:
        clauses, params = [], []
        if parent_id is not None:
            clauses.append("parent_id = ?")
            params.append(parent_id)
        if root_id is not None:
            clauses.append("root_id = ?")
            params.append(root_id)
        if statuses:
            clauses.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        return await self._select(where + "ORDER BY created_at, id", params)

    async def descendants(self, mission_id: str) -> list[MissionRow]:
        """Every mission below `mission_id` in the tree, at any depth."""
        columns = ", ".join(f"m.{column}" for column in _COLUMNS)
        query = f"""
            WITH RECURSIVE subtree(id) AS (
                SELECT id FROM missions WHERE parent_id = ?
                UNION ALL
                SELECT m.id FROM missions m JOIN subtree s ON m.parent_id = s.id
            )
            SELECT {columns} FROM missions m JOIN subtree USING (id) ORDER BY m.created_at, m.id
        """
        return [_from_sql(row) for row in await self._fetch(query, (mission_id,))]

    async def counts_by_status(self) -> dict[str, int]:
        rows = await self._fetch("SELECT status, count(*) FROM missions GROUP BY status")
        return {status: count for status, count in rows}

    async def total_cost(self) -> float:
        [(total,)] = await self._fetch("SELECT coalesce(sum(cost_usd), 0) FROM missions")
        return float(total)

    async def register_server(self, server_id: str, pid: int, proc_start: float, started_at: float) -> None:
        await self._db.execute(
            "INSERT INTO servers (id, pid, proc_start, started_at) VALUES (?, ?, ?, ?)",
            (server_id, pid, proc_start, started_at),
        )

    async def server_stopped(self, server_id: str, at: float) -> None:
        await self._db.execute("UPDATE servers SET stopped_at = ? WHERE id = ?", (at, server_id))

    async def servers(self, ids: Iterable[str]) -> dict[str, tuple[int, float, float | None]]:
        """pid, process start time and stop time of each server, by id."""
        ids = list(ids)
        if not ids:
            return {}
        query = f"SELECT id, pid, proc_start, stopped_at FROM servers WHERE id IN ({', '.join('?' for _ in ids)})"
        return {row[0]: (row[1], row[2], row[3]) for row in await self._fetch(query, ids)}

    async def claim(self, mission_id: str, previous_owner: str | None, new_owner: str) -> bool:
        """Take over a live mission from a server that has gone; False if another server was quicker."""
        cursor = await self._db.execute(
            f"UPDATE missions SET server_id = ? WHERE id = ? AND server_id IS ? AND status IN {_LIVE_SQL}",
            (new_owner, mission_id, previous_owner),
        )
        return cursor.rowcount == 1

    async def prune(self, ended_before: float) -> list[MissionRow]:
        """Delete whole trees whose every mission ended before `ended_before`; returns what was deleted."""
        columns = ", ".join(_COLUMNS)
        query = f"""
            SELECT {columns} FROM missions WHERE root_id IN (
                SELECT root_id FROM missions GROUP BY root_id
                HAVING sum(status IN {_LIVE_SQL}) = 0 AND max(ended_at) < ?
            )
        """
        doomed = [_from_sql(row) for row in await self._fetch(query, (ended_before,))]
        if doomed:
            # Children first, so no foreign key points at a deleted row mid-statement.
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                for row in sorted(doomed, key=lambda row: -row.depth):
                    await self._db.execute("DELETE FROM missions WHERE id = ?", (row.id,))
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
        return doomed

    async def add_event(self, mission_id: str, at: float, kind: str, data: dict[str, Any]) -> None:
        await self._db.execute(
            "INSERT INTO events (mission_id, at, kind, data) VALUES (?, ?, ?, ?)",
            (mission_id, at, kind, json.dumps(data, separators=(",", ":"))),
        )

    async def events(self, mission_id: str) -> list[tuple[float, str, dict[str, Any]]]:
        rows = await self._fetch("SELECT at, kind, data FROM events WHERE mission_id = ? ORDER BY id", (mission_id,))
        return [(at, kind, json.loads(data)) for at, kind, data in rows]

    async def _select(self, tail: str, params: Iterable[Any]) -> list[MissionRow]:
        return [
            _from_sql(row) for row in await self._fetch(f"SELECT {', '.join(_COLUMNS)} FROM missions {tail}", params)
        ]

    async def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        # One job on the connection's thread: a read split into execute and fetch could see
        # another task's write land in between, in the middle of its scan, and return garbage.
        return list(await self._db.execute_fetchall(sql, tuple(params)))
