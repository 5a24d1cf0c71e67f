"""Akasha: memories in their own SQLite file, searched with FTS5 and ranked by BM25.

`memories` is the table of record; `memories_fts` is an external-content FTS5 index
over its content, key and tags, and `memory_tags` an exact index of the tags. Triggers
keep both in step with `memories`, so every write is one statement, atomic whoever
makes it: another server process, or the `sqlite3` shell.

As in the mission store: WAL so that readers never wait for the writer, `busy_timeout`
so that writers from several processes queue instead of failing, and migrations on
open under `PRAGMA user_version`, counted separately from the mission database's.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiosqlite

from overmind_mcp.akasha import namespaces
from overmind_mcp.akasha.models import Memory, RecallHit, RecallResult, Remembered
from overmind_mcp.akasha.namespaces import Provenance, Scope
from overmind_mcp.akasha.query import compile_query, keywords_query
from overmind_mcp.errors import InvalidRequest, NotFound, Refused
from overmind_mcp.storage import sqlite

if TYPE_CHECKING:
    from overmind_mcp.storage.missions import MissionRow

FILENAME = "akasha.db"
MAX_CONTENT_CHARS = 100_000
MAX_KEY_CHARS = 200
MAX_TAGS = 20
MAX_TAG_CHARS = 64
MAX_LIMIT = 100
MAX_ID = 2**63 - 1
"""The largest id SQLite can hold."""
HIT_CONTENT_CHARS = 2_000
"""A search hit carries at most this much content; an exact key lookup carries all of it."""
RESULT_CHARS = 20_000
"""Most of a mission's final answer that `remember_result` keeps."""
ANONYMOUS = Provenance()
"""The top-level client: no mission, no session."""

# BM25 weights for the indexed columns, in order: a word in the key or the tags says more
# about what a memory is for than the same word somewhere in its text.
_WEIGHTS = (1.0, 3.0, 2.0)
_RANK = f"bm25(memories_fts, {', '.join(map(str, _WEIGHTS))})"
_SNIPPET = "snippet(memories_fts, 0, '**', '**', '…', 24)"

_MIGRATIONS: list[tuple[str, ...]] = [
    # 1: memories, their full-text index and their tags.
    (
        """
        CREATE TABLE memories (
            id INTEGER PRIMARY KEY,
            namespace TEXT NOT NULL,
            key TEXT,
            content TEXT NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]',
            mission_id TEXT,
            mission_name TEXT,
            session_id TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        ) STRICT
        """,
        "CREATE UNIQUE INDEX memories_key ON memories(namespace, key) WHERE key IS NOT NULL",
        "CREATE INDEX memories_recent ON memories(namespace, updated_at)",
        """
        CREATE TABLE memory_tags (
            tag TEXT NOT NULL,
            memory_id INTEGER NOT NULL,
            PRIMARY KEY (tag, memory_id)
        ) STRICT, WITHOUT ROWID
        """,
        "CREATE INDEX memory_tags_memory ON memory_tags(memory_id)",
        """
        CREATE VIRTUAL TABLE memories_fts USING fts5(
            content, key, tags,
            content='memories', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        )
        """,
        """
        CREATE TRIGGER memories_inserted AFTER INSERT ON memories BEGIN
            INSERT INTO memories_fts(rowid, content, key, tags) VALUES (new.id, new.content, new.key, new.tags);
            INSERT INTO memory_tags(tag, memory_id) SELECT value, new.id FROM json_each(new.tags);
        END
        """,
        """
        CREATE TRIGGER memories_deleted AFTER DELETE ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, content, key, tags)
                VALUES ('delete', old.id, old.content, old.key, old.tags);
            DELETE FROM memory_tags WHERE memory_id = old.id;
        END
        """,
        """
        CREATE TRIGGER memories_updated AFTER UPDATE OF content, key, tags ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, content, key, tags)
                VALUES ('delete', old.id, old.content, old.key, old.tags);
            INSERT INTO memories_fts(rowid, content, key, tags) VALUES (new.id, new.content, new.key, new.tags);
            DELETE FROM memory_tags WHERE memory_id = old.id;
            INSERT INTO memory_tags(tag, memory_id) SELECT value, new.id FROM json_each(new.tags);
        END
        """,
    ),
    # 2: the run (mission tree) of whoever wrote a memory: who else may replace or forget it.
    ("ALTER TABLE memories ADD COLUMN run_id TEXT",),
]
SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this code migrates a memory database to."""

_FIELDS = (
    "id",
    "namespace",
    "key",
    "content",
    "tags",
    "mission_id",
    "mission_name",
    "session_id",
    "created_at",
    "updated_at",
)
# run_id is read with every memory (to hide another tree's ids from a mission) but never shown.
_COLUMNS = ", ".join(f"m.{field}" for field in (*_FIELDS, "run_id"))
_RETURNING = ", ".join((*_FIELDS, "run_id"))

_UPSERT = """
    INSERT INTO memories (
        namespace, key, content, tags, mission_id, mission_name, session_id, run_id, created_at, updated_at
    )
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (namespace, key) WHERE key IS NOT NULL DO UPDATE SET
        content = excluded.content,
        tags = excluded.tags,
        mission_id = excluded.mission_id,
        mission_name = excluded.mission_name,
        session_id = excluded.session_id,
        run_id = excluded.run_id,
        updated_at = excluded.updated_at
"""
# In a shared namespace a mission replaces only what its own run wrote.
_UPSERT_OWN_RUN = _UPSERT + "    WHERE memories.run_id IS excluded.run_id\n"


@dataclass(frozen=True, slots=True)
class NewMemory:
    """One memory to write with `remember_many`."""

    content: str
    namespace: str = namespaces.GLOBAL
    key: str | None = None
    tags: Sequence[str] = ()


class Akasha:
    """The memory store. Open with `await Akasha.open(path, project_dir=...)`, or `async with` it."""

    def __init__(self, db: aiosqlite.Connection, project_dir: str | Path) -> None:
        self._db = db
        self.project_dir = str(project_dir)

    @classmethod
    async def open(cls, path: Path, *, project_dir: str | Path) -> Akasha:
        """The store in `path` (created and migrated as needed); `project_dir` is what `project` means."""
        # Room for the hot part of the index: the doclists of common words are read on most searches.
        db = await sqlite.connect(path, _MIGRATIONS, pragmas=["cache_size = -32000"])
        return cls(db, project_dir)

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Akasha:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def scope(
        self,
        mission_id: str | None = None,
        root_id: str | None = None,
        *,
        ancestors: Sequence[str] = (),
        confined: bool = False,
    ) -> Scope:
        """Where a caller stands in this server's project: the root client, or (`confined`) a mission in a run."""
        return Scope(
            project_dir=self.project_dir,
            mission_id=mission_id,
            root_id=root_id,
            ancestors=tuple(ancestors),
            confined=confined,
        )

    # -- writing -------------------------------------------------------------------------------

    async def remember(
        self,
        content: str,
        *,
        namespace: str,
        key: str | None = None,
        tags: Sequence[str] = (),
        by: Provenance = ANONYMOUS,
        scope: Scope | None = None,
    ) -> Remembered:
        """Store a memory; with a key, replace the namespace's memory of that key, keeping its created_at.

        With a mission's `scope`, the namespace must be one it may write to, and in a shared
        one (global, project) a key another tree or the top-level client wrote is refused.
        """
        now = time.time()
        params = _upsert_params(NewMemory(content, namespace, key, tags), by, now)
        upsert = _UPSERT
        if scope is not None and scope.confined:
            scope.check_writable(namespace)
            if not scope.owns(namespace):
                upsert = _UPSERT_OWN_RUN
        rows = await self._fetch(f"{upsert} RETURNING {_RETURNING}", params)
        if not rows:
            raise Refused(
                f"key {key!r} in {namespace} was written by the top-level client or another mission tree, and a "
                "mission replaces there only what its own run wrote: remember it under another key"
            )
        return Remembered(**_fields(rows[0], scope), replaced=rows[0]["created_at"] != now)

    async def remember_many(self, memories: Iterable[NewMemory], *, by: Provenance = ANONYMOUS) -> int:
        """Store many memories in one transaction (an import); returns how many were written."""
        now = time.time()
        # Checked before the transaction opens, so that a bad item costs no lock time.
        params = [_upsert_params(memory, by, now) for memory in memories]
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            await self._db.executemany(_UPSERT, params)
            await self._db.execute("COMMIT")
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        return len(params)

    async def forget(
        self,
        *,
        memory_id: int | None = None,
        key: str | None = None,
        namespace: str | None = None,
        scope: Scope | None = None,
    ) -> Memory:
        """Delete one memory, by id or by key within a namespace; returns what it held.

        With a mission's `scope`, only a memory in a namespace it owns, or one its own run
        wrote in global or project; one it cannot even read is reported as not found.
        """
        if (memory_id is None) == (key is None):
            raise InvalidRequest("give the memory's id or its key (with its namespace): exactly one of the two")
        if key is not None and namespace is None:
            raise InvalidRequest(f"key {key!r}: say which namespace it is in")
        if memory_id is not None:
            _check_id(memory_id)
            match, match_params, missing = "id = ?", [memory_id], f"no memory has id {memory_id}"
        else:
            match, match_params = "namespace = ? AND key = ?", [namespace, key]
            missing = f"no memory has key {key!r} in namespace {namespace!r}"
        if scope is None or not scope.confined:
            rows = await self._fetch(f"DELETE FROM memories WHERE {match} RETURNING {_RETURNING}", match_params)
            if not rows:
                raise NotFound(f"{missing}; recall lists memories with their ids, keys and namespaces")
            return _memory(rows[0])
        if namespace is not None:
            scope.check_readable(namespace)
        owned = [space for space in scope.visible() if scope.owns(space)]
        shared = [space for space in scope.visible() if scope.shared(space)]
        mine = (
            f"(namespace IN ({', '.join('?' for _ in owned)})"
            f" OR (namespace IN ({', '.join('?' for _ in shared)}) AND run_id IS ?))"
        )
        rows = await self._fetch(
            f"DELETE FROM memories WHERE {match} AND {mine} RETURNING {_RETURNING}",
            [*match_params, *owned, *shared, scope.root_id],
        )
        if rows:
            return _memory(rows[0], scope)
        kept = await self._fetch(f"SELECT namespace FROM memories WHERE {match}", match_params)
        if kept and kept[0]["namespace"] in scope.visible():
            raise Refused(
                f"memory {memory_id or key!r} in {kept[0]['namespace']} was written by the top-level client, another "
                "mission tree or an ancestor: a mission forgets only what its own run and its own mission hold"
            )
        raise NotFound(f"{missing}; recall lists memories with their ids, keys and namespaces")

    # -- reading -------------------------------------------------------------------------------

    async def get(self, memory_id: int, *, scope: Scope | None = None) -> Memory:
        """One memory by id; with a mission's `scope`, only one it may read (else: not found)."""
        _check_id(memory_id)
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM memories m WHERE m.id = ?", (memory_id,))
        if not rows or (scope is not None and scope.confined and rows[0]["namespace"] not in scope.visible()):
            raise NotFound(f"no memory has id {memory_id}; recall lists memories with their ids")
        return _memory(rows[0], scope)

    async def count(self, namespace: str | None = None) -> int:
        if namespace is None:
            sql, params = "SELECT count(*) FROM memories", ()
        else:
            sql, params = "SELECT count(*) FROM memories WHERE namespace = ?", (namespace,)
        [(count,)] = await self._fetch(sql, params)
        return int(count)

    async def recall(
        self,
        query: str | None = None,
        *,
        namespaces: Sequence[str],
        key: str | None = None,
        tags: Sequence[str] = (),
        limit: int = 10,
        scope: Scope | None = None,
    ) -> RecallResult:
        """Ranked full-text search, an exact key lookup, or (with neither) the newest memories.

        A search first asks for every term; when nothing has them all, it settles for any
        of them, best first, and says so in `mode`. With a mission's `scope`, every
        namespace must be within its reach, and other trees' ids are left out of the hits.
        """
        if not namespaces:
            raise InvalidRequest("no namespace to search")
        if scope is not None:
            for namespace in namespaces:
                scope.check_readable(namespace)
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
        tags = _normalise_tags(tags)
        query = query if query and query.strip() else None
        if key is not None and query is not None:
            raise InvalidRequest("give a query to search, or a key to look up, not both")
        spaces = list(dict.fromkeys(namespaces))
        where, params = _filters(spaces, tags)

        if key is not None:
            sql = f"SELECT {_COLUMNS} FROM memories m WHERE m.key = ? AND {where} ORDER BY m.updated_at DESC LIMIT ?"
            rows = await self._fetch(sql, [_check_key(key), *params, limit])
            hits = [_hit(row, scope, snippet=_opening(row["content"]), score=None, whole=True) for row in rows]
            return RecallResult(hits=hits, mode="key", namespaces=spaces)

        if query is None:
            sql = f"SELECT {_COLUMNS} FROM memories m WHERE {where} ORDER BY m.updated_at DESC, m.id DESC LIMIT ?"
            rows = await self._fetch(sql, [*params, limit])
            hits = [_hit(row, scope, snippet=_opening(row["content"]), score=None) for row in rows]
            return RecallResult(hits=hits, mode="recent", namespaces=spaces)

        compiled = compile_query(query)
        mode, expression = "all_terms", compiled.all_terms
        hits = await self._search(expression, where, params, limit, scope)
        if not hits and compiled.any_term is not None:
            mode, expression = "any_term", compiled.any_term
            hits = await self._search(expression, where, params, limit, scope)
        return RecallResult(hits=hits, mode=mode, expression=expression, namespaces=spaces)

    async def _search(
        self, expression: str, where: str, params: list[Any], limit: int, scope: Scope | None = None
    ) -> list[RecallHit]:
        # Best BM25 first (FTS5's bm25 is lower-is-better), the newest among equals.
        sql = f"""
            SELECT {_COLUMNS}, {_RANK} AS rank, {_SNIPPET} AS snippet
            FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid
            WHERE memories_fts MATCH ? AND {where}
            ORDER BY rank, m.updated_at DESC, m.id DESC
            LIMIT ?
        """
        try:
            rows = await self._fetch(sql, [expression, *params, limit])
        except sqlite3.OperationalError as exc:
            # The compiler only writes valid expressions; should one ever slip through,
            # the caller still gets something to act on rather than an internal error.
            if "locked" in str(exc) or "busy" in str(exc):
                raise
            raise InvalidRequest(
                f'the search engine rejected the query ({exc}); use plain words, "phrases", prefix*, -word or OR'
            ) from None
        # Four significant digits, not four decimals: a word found in most memories has an
        # IDF near zero (FTS5 floors it at 1e-6), and its scores would all print as 0.0.
        return [_hit(row, scope, snippet=row["snippet"], score=float(f"{-row['rank']:.4g}")) for row in rows]

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        # One trip to the connection's thread for the whole statement: each trip is a thread
        # handoff, and with three of them (execute, fetch, close) they cost more than the query.
        return list(await self._db.execute_fetchall(sql, params))

    # -- for spawn: memories into a child's prompt, its result into memory ------------------------

    async def context_for_prompt(
        self,
        prompt: str,
        namespaces: Sequence[str],
        *,
        limit: int = 5,
        max_chars: int = 3_000,
        scope: Scope | None = None,
    ) -> str | None:
        """A short block for a child's system prompt: the memories that best match its task.

        None when nothing matches, so that no empty heading reaches the prompt.
        """
        expression = keywords_query(prompt)
        if expression is None or not namespaces:
            return None
        where, params = _filters(list(dict.fromkeys(namespaces)), [])
        hits = await self._search(expression, where, params, limit, scope)
        if not hits:
            return None
        lines = [
            "# Shared memory (Akasha)",
            "Memories saved by earlier agents that may bear on this task. "
            "Search for more with the recall tool; save what the next agent should know with remember.",
        ]
        budget = max_chars - sum(len(line) + 1 for line in lines)
        for hit in hits:
            origin = ", ".join(
                part
                for part in (
                    hit.namespace,
                    f"key {hit.key}" if hit.key else None,
                    f"by {hit.mission_name}" if hit.mission_name else None,
                    hit.updated_at[:10],
                )
                if part
            )
            entry = f"- [{origin}] {' '.join(hit.content.split())}"
            if len(entry) > budget:
                if budget < 200:
                    break
                entry = entry[: budget - 1] + "…"
            lines.append(entry)
            budget -= len(entry) + 1
        return "\n".join(lines)

    async def remember_result(self, row: MissionRow) -> Memory | None:
        """Keep a finished mission's final answer in its run's namespace; None when it gave none."""
        text = (row.result or {}).get("text")
        if not text or not text.strip():
            return None
        return await self.remember(
            text[:RESULT_CHARS],
            namespace=namespaces.run(row.root_id),
            key=f"result:{row.name}:{row.id}",
            tags=["result", row.status],
            by=Provenance(mission_id=row.id, mission_name=row.name, session_id=row.session_id, run_id=row.root_id),
        )


def _upsert_params(memory: NewMemory, by: Provenance, now: float) -> tuple[Any, ...]:
    content = memory.content
    if not content.strip():
        raise InvalidRequest("content is empty: say what should be remembered")
    if len(content) > MAX_CONTENT_CHARS:
        raise InvalidRequest(
            f"content is {len(content):,} characters; a memory holds at most {MAX_CONTENT_CHARS:,}. "
            "Remember a summary and where the full text is"
        )
    key = _check_key(memory.key) if memory.key is not None else None
    tags = json.dumps(_normalise_tags(memory.tags), ensure_ascii=False)
    return (memory.namespace, key, content, tags, by.mission_id, by.mission_name, by.session_id, by.run_id, now, now)


def _check_key(key: str) -> str:
    key = key.strip()
    if not key:
        raise InvalidRequest("key is empty: give a short name (e.g. auth-design) or leave it out")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidRequest(f"key is {len(key)} characters; use at most {MAX_KEY_CHARS}")
    return key


def _normalise_tags(tags: Iterable[str]) -> list[str]:
    """Lower case, inner spaces as hyphens, duplicates dropped, order kept."""
    normalised: dict[str, None] = {}
    for tag in tags:
        clean = "-".join(tag.lower().split())
        if not clean:
            raise InvalidRequest("a tag is empty; tags are short labels such as auth or decision")
        if len(clean) > MAX_TAG_CHARS:
            raise InvalidRequest(f"tag {clean[:20]!r}… is {len(clean)} characters; use at most {MAX_TAG_CHARS}")
        normalised[clean] = None
    if len(normalised) > MAX_TAGS:
        raise InvalidRequest(f"{len(normalised)} tags; use at most {MAX_TAGS}")
    return list(normalised)


def _filters(spaces: Sequence[str], tags: Sequence[str]) -> tuple[str, list[Any]]:
    """A WHERE fragment (placeholders only) for the namespaces and the tags every hit must carry."""
    clauses = [f"m.namespace IN ({', '.join('?' for _ in spaces)})"]
    clauses += ["EXISTS (SELECT 1 FROM memory_tags t WHERE t.tag = ? AND t.memory_id = m.id)"] * len(tags)
    return " AND ".join(clauses), [*spaces, *tags]


def _fields(row: sqlite3.Row, scope: Scope | None = None) -> dict[str, Any]:
    # A mission sees who wrote a memory only within its own tree: another tree's mission and
    # session ids are handles on that tree (a session id can be resumed).
    foreign = scope is not None and scope.confined and row["run_id"] != scope.root_id
    return {
        "id": row["id"],
        "namespace": row["namespace"],
        "key": row["key"],
        "content": row["content"],
        "tags": json.loads(row["tags"]),
        "mission_id": None if foreign else row["mission_id"],
        "mission_name": None if foreign else row["mission_name"],
        "session_id": None if foreign else row["session_id"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


def _memory(row: sqlite3.Row, scope: Scope | None = None) -> Memory:
    return Memory(**_fields(row, scope))


def _check_id(memory_id: int) -> None:
    if not 1 <= memory_id <= MAX_ID:
        raise InvalidRequest(f"no memory has id {memory_id}: ids are whole numbers from 1 to {MAX_ID}")


def _hit(row: sqlite3.Row, scope: Scope | None, *, snippet: str, score: float | None, whole: bool = False) -> RecallHit:
    fields = _fields(row, scope)
    truncated = not whole and len(fields["content"]) > HIT_CONTENT_CHARS
    if truncated:
        fields["content"] = fields["content"][:HIT_CONTENT_CHARS] + "…"
    return RecallHit(**fields, snippet=snippet, score=score, content_truncated=truncated)


def _opening(content: str, limit: int = 160) -> str:
    text = " ".join(content.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
