"""Opening the project's SQLite databases one way: WAL, a busy timeout, migrations on open.

WAL lets readers (other servers, the `overmind` command) run beside the writer;
`busy_timeout` makes writers from several processes queue instead of failing; the schema
is versioned with `PRAGMA user_version` and migrated under the write lock, so two
processes opening a new file at once cannot both run the same migration.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import anyio
import anyio.to_thread

from overmind_mcp.storage import files

Migration = Sequence[str]
"""The statements that take a schema from one version to the next."""


async def connect(path: Path, migrations: Sequence[Migration], *, pragmas: Sequence[str] = ()) -> aiosqlite.Connection:
    # Missing directories are made private; an existing one is the caller's to vouch for
    # (the supervisor tightens the state directory itself).
    path.parent.mkdir(parents=True, exist_ok=True, mode=files.DIRECTORY_MODE)
    # Made 0600 before SQLite opens it: SQLite gives the WAL and shared-memory files the
    # database file's mode, and an older file (or its WAL) is tightened, never followed.
    files.private_file(path)
    for companion in ("-wal", "-shm"):
        files.tighten(path.with_name(path.name + companion))
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA busy_timeout = 10000")
        # Switching a new file to WAL can fail at once with "database is locked", busy
        # timeout or not, when another process is doing the same: the opening is serialized.
        async with _opening(path):
            for pragma in ("journal_mode = WAL", "synchronous = NORMAL", *pragmas):
                await db.execute(f"PRAGMA {pragma}")
            await _migrate(db, migrations)
    except BaseException:
        await db.close()
        raise
    return db


@asynccontextmanager
async def _opening(path: Path) -> AsyncIterator[None]:
    """An exclusive lock, across processes, on opening the database at `path`."""
    fd = files.open_private(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT)
    try:
        # flock blocks; it waits in a worker thread (only while another process opens the file).
        await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


async def _migrate(db: aiosqlite.Connection, migrations: Sequence[Migration]) -> None:
    await db.execute("BEGIN IMMEDIATE")
    try:
        [(version,)] = await db.execute_fetchall("PRAGMA user_version")
        for number, statements in enumerate(migrations[version:], start=version + 1):
            for statement in statements:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {number}")
        await db.execute("COMMIT")
    except BaseException:
        await db.execute("ROLLBACK")
        raise


def statements(script: str) -> list[str]:
    """A script of `;`-separated statements (with no `;` inside them) as a migration."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]
