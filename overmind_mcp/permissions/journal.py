"""The permission room's own database (`permissions.db` in the state directory): every request and its
answer (who gave it, by which rule, when), and the rules an answer asked to remember.

Several processes share it: each server writes the requests its children make, and the `overmind`
command reads what waits and what was decided.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from overmind_mcp.storage import sqlite

FILENAME = "permissions.db"

Decision = Literal["allow", "deny"]

_MIGRATIONS: list[sqlite.Migration] = [
    sqlite.statements(
        """
    CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        mission_id TEXT NOT NULL,
        server_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        tool_use_id TEXT,
        input TEXT NOT NULL,
        call TEXT NOT NULL,
        why TEXT NOT NULL,
        addressed_to TEXT,
        asked_at REAL NOT NULL,
        deadline REAL,
        decision TEXT,
        by TEXT,
        by_id TEXT,
        by_name TEXT,
        rule TEXT,
        message TEXT,
        updated_input TEXT,
        remembered INTEGER NOT NULL DEFAULT 0,
        decided_at REAL
    ) STRICT;
    CREATE INDEX requests_mission ON requests(mission_id, asked_at);
    CREATE INDEX requests_pending ON requests(asked_at) WHERE decision IS NULL;
    CREATE TABLE remembered (
        mission_id TEXT NOT NULL,
        effect TEXT NOT NULL,
        rule TEXT NOT NULL,
        granted_by TEXT,
        granted_at_depth INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        at REAL NOT NULL
    ) STRICT;
    CREATE INDEX remembered_mission ON remembered(mission_id);
    """
    )
]


@dataclass(slots=True)
class RequestRow:
    id: str
    mission_id: str
    server_id: str
    tool: str
    input: dict[str, Any]
    call: str
    why: str
    addressed_to: str | None
    asked_at: float
    deadline: float | None
    # The CLI's id of the tool call (as its stream-json and permission_denials name it).
    tool_use_id: str | None = None
    decision: Decision | None = None
    by: str | None = None
    by_id: str | None = None
    by_name: str | None = None
    rule: str | None = None
    message: str | None = None
    updated_input: dict[str, Any] | None = None
    remembered: bool = False
    decided_at: float | None = None


@dataclass(frozen=True, slots=True)
class Remembered:
    effect: Decision
    rule: str
    # How far up the grant came from: the rule counts as its grantor's say-so, so the missions
    # between the asker and the grantor need not allow it again (-1: the client or a person).
    granted_at_depth: int


class Journal:
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> Journal:
        return cls(await sqlite.connect(path, _MIGRATIONS), path)

    async def close(self) -> None:
        await self._db.close()

    # -- requests ---------------------------------------------------------------------------------

    async def record(self, row: RequestRow) -> None:
        """A new request, or one decided at once (by the policy): both land as one row."""
        await self._db.execute(
            "INSERT INTO requests (id, mission_id, server_id, tool, tool_use_id, input, call, why, addressed_to, "
            "asked_at, deadline, decision, by, by_id, by_name, rule, message, updated_input, remembered, decided_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.mission_id,
                row.server_id,
                row.tool,
                row.tool_use_id,
                json.dumps(row.input),
                row.call,
                row.why,
                row.addressed_to,
                row.asked_at,
                row.deadline,
                row.decision,
                row.by,
                row.by_id,
                row.by_name,
                row.rule,
                row.message,
                _json_or_none(row.updated_input),
                int(row.remembered),
                row.decided_at,
            ),
        )

    async def readdress(self, request_id: str, addressed_to: str | None) -> None:
        await self._db.execute("UPDATE requests SET addressed_to = ? WHERE id = ?", (addressed_to, request_id))

    async def decide(self, row: RequestRow) -> None:
        await self._db.execute(
            "UPDATE requests SET decision = ?, by = ?, by_id = ?, by_name = ?, rule = ?, message = ?, "
            "updated_input = ?, remembered = ?, decided_at = ? WHERE id = ?",
            (
                row.decision,
                row.by,
                row.by_id,
                row.by_name,
                row.rule,
                row.message,
                _json_or_none(row.updated_input),
                int(row.remembered),
                row.decided_at,
                row.id,
            ),
        )

    async def get(self, request_id: str) -> RequestRow | None:
        rows = await self._db.execute_fetchall("SELECT * FROM requests WHERE id = ?", (request_id,))
        return _request(rows[0]) if rows else None

    async def of_mission(self, mission_id: str) -> list[RequestRow]:
        """A mission's requests, oldest first."""
        rows = await self._db.execute_fetchall(
            "SELECT * FROM requests WHERE mission_id = ? ORDER BY asked_at", (mission_id,)
        )
        return [_request(row) for row in rows]

    async def pending(self) -> list[RequestRow]:
        """Every request that waits for an answer, on any server, oldest first."""
        rows = await self._db.execute_fetchall("SELECT * FROM requests WHERE decision IS NULL ORDER BY asked_at")
        return [_request(row) for row in rows]

    async def abandon(self, server_id: str, reason: str) -> None:
        """Close what a server left pending when it stopped (its children's calls went with it)."""
        await self._db.execute(
            "UPDATE requests SET decision = 'deny', by = 'ended', message = ?, decided_at = ? "
            "WHERE server_id = ? AND decision IS NULL",
            (reason, time.time(), server_id),
        )

    async def prune(self, before: float) -> None:
        await self._db.execute("DELETE FROM requests WHERE asked_at < ? AND decision IS NOT NULL", (before,))
        await self._db.execute("DELETE FROM remembered WHERE at < ?", (before,))

    # -- remembered rules --------------------------------------------------------------------------

    async def remember(
        self, mission_id: str, effect: Decision, rule: str, *, granted_by: str | None, depth: int, request_id: str
    ) -> None:
        await self._db.execute(
            "INSERT INTO remembered (mission_id, effect, rule, granted_by, granted_at_depth, request_id, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (mission_id, effect, rule, granted_by, depth, request_id, time.time()),
        )

    async def remembered(self, mission_id: str) -> list[Remembered]:
        rows = await self._db.execute_fetchall(
            "SELECT effect, rule, granted_at_depth FROM remembered WHERE mission_id = ? ORDER BY at", (mission_id,)
        )
        return [Remembered(row["effect"], row["rule"], row["granted_at_depth"]) for row in rows]


def _request(row: Any) -> RequestRow:
    return RequestRow(
        id=row["id"],
        mission_id=row["mission_id"],
        server_id=row["server_id"],
        tool=row["tool"],
        tool_use_id=row["tool_use_id"],
        input=json.loads(row["input"]),
        call=row["call"],
        why=row["why"],
        addressed_to=row["addressed_to"],
        asked_at=row["asked_at"],
        deadline=row["deadline"],
        decision=row["decision"],
        by=row["by"],
        by_id=row["by_id"],
        by_name=row["by_name"],
        rule=row["rule"],
        message=row["message"],
        updated_input=json.loads(row["updated_input"]) if row["updated_input"] else None,
        remembered=bool(row["remembered"]),
        decided_at=row["decided_at"],
    )


def _json_or_none(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value)
