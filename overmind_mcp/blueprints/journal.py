"""A run's progress in SQLite (`blueprints.db`, a database of its own), written before each step is acted on.

One row per step: a node, or one item of a node's foreach (item ≥ 0; the node's own row,
its join, has item -1). A step is written as *starting* (with the name its mission will
have) before the mission is spawned, as *running* (with the mission's id) once it has been,
and as *finished* (with its outcome) before anything that depends on it is told. A server
that takes over a run after a crash therefore never runs a finished step again, follows a
running one's mission, finds a starting one's mission by its name if it was spawned, and
starts what never started.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiosqlite
from pydantic import BaseModel

from overmind_mcp.storage import sqlite

FILENAME = "blueprints.db"
JOIN = -1
"""The item of a node's own step (for a foreach node: its join)."""

_MIGRATIONS: list[sqlite.Migration] = [
    sqlite.statements(
        """
    CREATE TABLE steps (
        run_id TEXT NOT NULL,
        node TEXT NOT NULL,
        item INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        mission_id TEXT,
        mission_name TEXT,
        outcome TEXT,
        updated_at REAL NOT NULL,
        PRIMARY KEY (run_id, node, item)
    ) STRICT;
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        started_at REAL NOT NULL,
        verdict TEXT,
        ended_at REAL
    ) STRICT;
    """
    )
]


class StepState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    FINISHED = "finished"


class Outcome(BaseModel):
    """How a step ended: what dependents read as `nodes.<name>.…`, and what the run's result lists."""

    status: str
    """succeeded, failed or skipped."""
    result: Any = None
    output: Any = None
    error: str | None = None
    mission: str | None = None
    mission_name: str | None = None
    attempts: int = 0
    cost_usd: float = 0.0
    turns: int = 0
    failure: str | None = None
    """What went wrong (a FailureKind: failed, timed_out, invalid_output…), for retries and the run's verdict."""

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def view(self) -> dict[str, Any]:
        """What templates and `when` see of it."""
        return {
            "result": self.result,
            "output": self.output,
            "status": self.status,
            "error": self.error,
            "cost_usd": self.cost_usd,
            "mission": self.mission,
        }


class Verdict(BaseModel):
    ok: bool
    text: str
    errors: list[str]


@dataclass(frozen=True, slots=True)
class Step:
    node: str
    item: int
    state: StepState
    attempt: int
    mission_id: str | None
    mission_name: str | None
    outcome: Outcome | None
    updated_at: float


class Journal:
    def __init__(self, db: aiosqlite.Connection, run_id: str) -> None:
        self._db = db
        self.run_id = run_id

    @classmethod
    async def open(cls, home: Path, run_id: str) -> Journal:
        journal = cls(await sqlite.connect(home / FILENAME, _MIGRATIONS), run_id)
        await journal._db.execute(
            "INSERT OR IGNORE INTO runs (run_id, started_at) VALUES (?, ?)", (run_id, time.time())
        )
        return journal

    async def close(self) -> None:
        await self._db.close()

    async def steps(self) -> dict[tuple[str, int], Step]:
        rows = await self._db.execute_fetchall(
            "SELECT node, item, state, attempt, mission_id, mission_name, outcome, updated_at "
            "FROM steps WHERE run_id = ?",
            (self.run_id,),
        )
        return {
            (row[0], row[1]): Step(
                node=row[0],
                item=row[1],
                state=StepState(row[2]),
                attempt=row[3],
                mission_id=row[4],
                mission_name=row[5],
                outcome=Outcome.model_validate_json(row[6]) if row[6] else None,
                updated_at=row[7],
            )
            for row in rows
        }

    async def verdict(self) -> Verdict | None:
        """How the run ended, if its executor got to the end (the server may have died before the mission knew)."""
        rows = list(await self._db.execute_fetchall("SELECT verdict FROM runs WHERE run_id = ?", (self.run_id,)))
        return Verdict.model_validate_json(rows[0][0]) if rows and rows[0][0] else None

    async def starting(self, node: str, item: int, attempt: int, mission_name: str) -> float:
        """Before the spawn: the attempt, and the name its mission will have. Returns when (for finding it)."""
        now = time.time()
        await self._write(node, item, StepState.STARTING, attempt, None, mission_name, None, now)
        return now

    async def running(self, node: str, item: int, attempt: int, mission_id: str, mission_name: str) -> None:
        await self._write(node, item, StepState.RUNNING, attempt, mission_id, mission_name, None, time.time())

    async def finished(self, node: str, item: int, outcome: Outcome) -> None:
        mission, name = outcome.mission, outcome.mission_name
        await self._write(node, item, StepState.FINISHED, outcome.attempts, mission, name, outcome, time.time())

    async def ended(self, verdict: Verdict) -> None:
        await self._db.execute(
            "UPDATE runs SET verdict = ?, ended_at = ? WHERE run_id = ?",
            (verdict.model_dump_json(), time.time(), self.run_id),
        )

    async def _write(
        self,
        node: str,
        item: int,
        state: StepState,
        attempt: int,
        mission_id: str | None,
        mission_name: str | None,
        outcome: Outcome | None,
        at: float,
    ) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO steps "
            "(run_id, node, item, state, attempt, mission_id, mission_name, outcome, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.run_id,
                node,
                item,
                str(state),
                attempt,
                mission_id,
                mission_name,
                outcome.model_dump_json() if outcome is not None else None,
                at,
            ),
        )
