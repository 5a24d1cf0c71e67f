"""Who may see the dashboard, and where each server serves it: shared by the servers and the console.

The console and the servers share the state directory (mode 0700), and with it:

- `dashboard.db`, the dashboard's own SQLite file (never `overmind.db`): one-time login codes and
  sessions, both kept as SHA-256 digests only, so the file holds nothing a reader could replay.
  A code is redeemed by one atomic DELETE, so it works once, at whichever server gets it first;
  a session made at one server is good at every server on the state directory (a browser sends
  one host's cookies to all its ports).
- `dashboard/<server id>.json`: each live server's dashboard URL, written when it starts serving
  and removed when it stops; a record whose process has gone (a crash) is skipped and removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import aiosqlite

from overmind_mcp.identity import new_token
from overmind_mcp.runners.local.process import same_process
from overmind_mcp.storage import sqlite

FILENAME = "dashboard.db"
RECORDS_DIR = "dashboard"
CODE_TTL_S = 600.0
"""How long a login code printed by `overmind dashboard` may be used (once)."""
SESSION_TTL_S = 24 * 3600.0
"""How long a browser stays logged in."""

_MIGRATIONS: list[sqlite.Migration] = [
    sqlite.statements(
        """
    CREATE TABLE login_codes (digest BLOB PRIMARY KEY, expires_at REAL NOT NULL) STRICT;
    CREATE TABLE sessions (digest BLOB PRIMARY KEY, created_at REAL NOT NULL, expires_at REAL NOT NULL) STRICT
    """
    )
]
_CSRF_CONTEXT = b"overmind dashboard: the anti-CSRF token of this session"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def cookie_name(home: Path) -> str:
    """The session cookie's name: one per state directory, since browsers share cookies across ports."""
    return "overmind_" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


def csrf_token(session: str) -> str:
    """The anti-CSRF token pages carry: derived from the session, so it needs no storage of its own."""
    return hmac.new(session.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()[:40]


class Access:
    """Login codes and sessions in `dashboard.db`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, home: Path) -> Access:
        path = home / FILENAME
        # Created readable by its owner alone (SQLite would follow the umask).
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        return cls(await sqlite.connect(path, _MIGRATIONS))

    async def close(self) -> None:
        await self._db.close()

    async def issue_code(self, *, ttl_s: float = CODE_TTL_S) -> str:
        """A new one-time login code; expired codes and sessions are swept at the same time."""
        now = time.time()
        code = new_token()
        await self._db.execute("DELETE FROM login_codes WHERE expires_at <= ?", (now,))
        await self._db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        await self._db.execute(
            "INSERT INTO login_codes (digest, expires_at) VALUES (?, ?)", (_digest(code), now + ttl_s)
        )
        return code

    async def redeem(self, code: str) -> str | None:
        """A new session for a valid code, which is used up; None for a wrong, used or expired one."""
        now = time.time()
        cursor = await self._db.execute(
            "DELETE FROM login_codes WHERE digest = ? AND expires_at > ?", (_digest(code), now)
        )
        if cursor.rowcount != 1:
            return None
        session = new_token()
        await self._db.execute(
            "INSERT INTO sessions (digest, created_at, expires_at) VALUES (?, ?, ?)",
            (_digest(session), now, now + SESSION_TTL_S),
        )
        return session

    async def is_session(self, session: str | None) -> bool:
        if not session:
            return False
        rows = await self._db.execute_fetchall(
            "SELECT 1 FROM sessions WHERE digest = ? AND expires_at > ?", (_digest(session), time.time())
        )
        return bool(list(rows))

    async def end_session(self, session: str) -> None:
        await self._db.execute("DELETE FROM sessions WHERE digest = ?", (_digest(session),))


# -- where each server serves its dashboard -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """A server that serves the dashboard, as it recorded itself."""

    server_id: str
    url: str
    pid: int
    proc_start: float
    started_at: float

    @property
    def alive(self) -> bool:
        return same_process(self.pid, self.proc_start)


def records_dir(home: Path) -> Path:
    return home / RECORDS_DIR


@contextlib.contextmanager
def published(home: Path, record: ServerRecord) -> Iterator[Path]:
    """The record on disk (mode 0600) for the duration of the block."""
    directory = records_dir(home)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{record.server_id}.json"
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(asdict(record), file)
    # Renamed into place: a reader never sees half a record.
    temporary.replace(path)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def live_servers(home: Path) -> list[ServerRecord]:
    """The servers serving a dashboard on this state directory now, newest first; stale records go."""
    found = []
    directory = records_dir(home)
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            record = ServerRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # being written, or not ours: left alone
        if record.alive:
            found.append(record)
        else:
            # Its server died without removing it.
            path.unlink(missing_ok=True)
    return sorted(found, key=lambda record: -record.started_at)
