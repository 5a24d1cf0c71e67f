"""The mailbox: requests from the console to the live servers, in a database of its own.

`control.db` in the state directory holds one row per request. A console inserts it; every
live server is woken by the commit (its WAL grows) and tries to claim it with one UPDATE, so
exactly one server carries it out; that server writes the answer (or a structured error)
into the same row, which wakes the console. Servers that can answer register themselves
here, by pid and kernel start time, so a console can tell at once that nobody would answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiosqlite

from overmind_mcp.storage import sqlite
from overmind_mcp.supervision.foreign import is_running

FILENAME = "control.db"

State = Literal["pending", "claimed", "answered", "failed", "withdrawn"]
_KEEP_ANSWERED_S = 24 * 3600

_MIGRATIONS: list[sqlite.Migration] = [
    sqlite.statements(
        """
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        verb TEXT NOT NULL,
        payload TEXT NOT NULL,
        target TEXT,
        state TEXT NOT NULL DEFAULT 'pending',
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        claimed_by TEXT,
        claimed_at REAL,
        answered_at REAL,
        answer TEXT,
        error_kind TEXT,
        error TEXT
    ) STRICT;
    CREATE INDEX requests_state ON requests(state, id);
    CREATE TABLE dispatchers (
        server_id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        proc_start REAL NOT NULL,
        started_at REAL NOT NULL
    ) STRICT;
    """
    )
]


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    verb: str
    payload: str
    target: str | None
    state: State
    created_at: float
    expires_at: float
    claimed_by: str | None
    answer: str | None
    error_kind: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Dispatcher:
    """A server that answers requests."""

    server_id: str
    pid: int
    proc_start: float
    started_at: float

    @property
    def alive(self) -> bool:
        return is_running(self.pid, self.proc_start)


_REQUEST_COLUMNS = "id, verb, payload, target, state, created_at, expires_at, claimed_by, answer, error_kind, error"


class Mailbox:
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> Mailbox:
        return cls(await sqlite.connect(path, _MIGRATIONS), path)

    async def close(self) -> None:
        await self._db.close()

    # -- the console's side ----------------------------------------------------------------------

    async def submit(self, verb: str, payload: str, *, target: str | None, expires_at: float) -> int:
        cursor = await self._db.execute(
            "INSERT INTO requests (verb, payload, target, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (verb, payload, target, time.time(), expires_at),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def get(self, request_id: int) -> Request:
        [row] = await self._db.execute_fetchall(f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE id = ?", (request_id,))
        return Request(*row)

    async def withdraw(self, request_id: int) -> bool:
        """Take back a request no server has claimed yet; False if one already has."""
        cursor = await self._db.execute(
            "UPDATE requests SET state = 'withdrawn' WHERE id = ? AND state = 'pending'", (request_id,)
        )
        return cursor.rowcount == 1

    # -- the server's side -----------------------------------------------------------------------

    async def register(self, dispatcher: Dispatcher) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO dispatchers (server_id, pid, proc_start, started_at) VALUES (?, ?, ?, ?)",
            (dispatcher.server_id, dispatcher.pid, dispatcher.proc_start, dispatcher.started_at),
        )

    async def unregister(self, server_id: str) -> None:
        await self._db.execute("DELETE FROM dispatchers WHERE server_id = ?", (server_id,))

    async def dispatchers(self) -> list[Dispatcher]:
        rows = await self._db.execute_fetchall(
            "SELECT server_id, pid, proc_start, started_at FROM dispatchers ORDER BY started_at"
        )
        return [Dispatcher(*row) for row in rows]

    async def live_dispatchers(self) -> dict[str, Dispatcher]:
        return {found.server_id: found for found in await self.dispatchers() if found.alive}

    async def claim(self, server_id: str) -> Request | None:
        """The oldest request this server may answer, now claimed by it; None when there is none.

        One UPDATE under SQLite's write lock: when several servers race, exactly one claims it.
        """
        now = time.time()
        rows = await self._db.execute_fetchall(
            f"""
            UPDATE requests SET state = 'claimed', claimed_by = ?, claimed_at = ?
            WHERE id = (
                SELECT id FROM requests
                WHERE state = 'pending' AND expires_at > ? AND (target IS NULL OR target = ?)
                ORDER BY id LIMIT 1
            ) AND state = 'pending'
            RETURNING {_REQUEST_COLUMNS}
            """,
            (server_id, now, now, server_id),
        )
        return Request(*rows[0]) if rows else None

    async def answer(self, request_id: int, answer: str) -> None:
        await self._db.execute(
            "UPDATE requests SET state = 'answered', answer = ?, answered_at = ? WHERE id = ? AND state = 'claimed'",
            (answer, time.time(), request_id),
        )

    async def fail(self, request_id: int, kind: str, message: str, *, states: Iterable[State] = ("claimed",)) -> bool:
        """Record why a request was not carried out (only from one of `states`); False if it had moved on."""
        states = list(states)
        cursor = await self._db.execute(
            f"UPDATE requests SET state = 'failed', error_kind = ?, error = ?, answered_at = ? "
            f"WHERE id = ? AND state IN ({', '.join('?' for _ in states)})",
            (kind, message, time.time(), request_id, *states),
        )
        return cursor.rowcount == 1

    async def fail_orphans(self, live: Iterable[str]) -> None:
        """Fail what no server will ever answer; forget dead servers and old requests.

        A request claimed by a server that has gone, or addressed to one, fails with that
        reason; one whose client gave up (expired) fails as expired.
        """
        live = list(live)
        # SQLite reads `NOT IN ()` as true: with no live server, every claim is an orphan.
        alive = f"({', '.join('?' for _ in live)})"
        now = time.time()
        try:
            await self._db.execute("BEGIN IMMEDIATE")
            await self._db.execute(
                f"UPDATE requests SET state = 'failed', error_kind = 'ServerGone', answered_at = ?, "
                f"error = 'the server that took this request stopped before answering; it may have been partly "
                f"carried out' WHERE state = 'claimed' AND claimed_by NOT IN {alive}",
                (now, *live),
            )
            await self._db.execute(
                f"UPDATE requests SET state = 'failed', error_kind = 'ServerGone', answered_at = ?, "
                f"error = 'the server it was addressed to is not running' "
                f"WHERE state = 'pending' AND target IS NOT NULL AND target NOT IN {alive}",
                (now, *live),
            )
            await self._db.execute(
                "UPDATE requests SET state = 'failed', error_kind = 'Expired', answered_at = ?, "
                "error = 'no server claimed it before its client stopped waiting' "
                "WHERE state = 'pending' AND expires_at <= ?",
                (now, now),
            )
            await self._db.execute(f"DELETE FROM dispatchers WHERE server_id NOT IN {alive}", live)
            await self._db.execute(
                "DELETE FROM requests WHERE state IN ('answered', 'failed', 'withdrawn') AND created_at < ?",
                (now - _KEEP_ANSWERED_S,),
            )
            await self._db.execute("COMMIT")
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
