"""Akasha at the store level: ranking, filters, upserts, hostile queries, namespaces, and many writers at once."""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import SimpleNamespace

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from overmind_mcp.akasha import Akasha, NewMemory, Provenance, Scope, compile_query
from overmind_mcp.akasha import store as akasha_store
from overmind_mcp.core.spec import ClaudeTask, MissionSpec
from overmind_mcp.core.status import Status
from overmind_mcp.errors import InvalidRequest, NotFound
from overmind_mcp.storage.missions import MissionRow
from tests.conftest import ROOT

pytestmark = pytest.mark.anyio

# Filler makes document frequencies realistic: BM25 gives a word found in more than half
# of the memories (nearly) no weight, so a three-memory corpus cannot show a ranking.
FILLER = [
    "The release notes mention the new dashboard layout.",
    "Lunch orders go through the shared spreadsheet.",
    "The staging cluster restarts every night at two.",
    "Design review for the onboarding flow is on Thursday.",
    "Use the team calendar for holidays and on-call swaps.",
    "Fonts for the marketing site live in the brand folder.",
    "The printer on the third floor needs toner again.",
    "Quarterly planning starts with a survey of open requests.",
]


class Clock:
    """Stands in for the store's `time` module: each reading is one second after the last."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(akasha_store, "time", SimpleNamespace(time=fake.time))
    return fake


@pytest.fixture
async def akasha(tmp_path: Path, clock: Clock) -> AsyncIterator[Akasha]:
    project = tmp_path / "project"
    project.mkdir()
    async with await Akasha.open(tmp_path / "state" / "akasha.db", project_dir=project) as opened:
        yield opened


@pytest.fixture
def scope(akasha: Akasha) -> Scope:
    return akasha.scope()


async def fill(akasha: Akasha, namespace: str) -> None:
    await akasha.remember_many(NewMemory(text, namespace) for text in FILLER)


# -- the query compiler ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "all_terms", "any_term"),
    [
        ("deadlock", '"deadlock"', None),
        ("token refresh", '"token" AND "refresh"', '("token" OR "refresh")'),
        ('"token refresh" retry', '"token refresh" AND "retry"', '("token refresh" OR "retry")'),
        ("migrat*", '"migrat"*', None),
        ('"token ref"*', '"token ref"*', None),
        ("cache -redis", '"cache" NOT "redis"', None),
        ('cache -"redis cluster"', '"cache" NOT "redis cluster"', None),
        ("cache NOT redis", '"cache" NOT "redis"', None),
        ("redis OR memcached cache", '("redis" OR "memcached") AND "cache"', '("redis" OR "memcached" OR "cache")'),
        ("a b -c -d", '"b" NOT ("c" OR "d")', None),
        ("how did we fix the flaky test", '"fix" AND "flaky" AND "test"', '("fix" OR "flaky" OR "test")'),
        ("the who", '"the" AND "who"', '("the" OR "who")'),
        ('the "the who"', '"the who"', None),
        ("cache AND redis", '"cache" AND "redis"', '("cache" OR "redis")'),
        ("cache or redis", '"cache" AND "redis"', '("cache" OR "redis")'),
        ("OR cache OR", '"cache"', None),
        ("cache OR -redis", '"cache" NOT "redis"', None),
        ("x NOT a OR b", '("x" AND "b") NOT "a"', '("x" OR "b") NOT "a"'),
        ('"unclosed phrase', '"unclosed phrase"', None),
        ("NEAR(a b)", '"NEAR(a" AND "b)"', '("NEAR(a" OR "b)")'),
        ("content:secret", '"content:secret"', None),
        ('say "hi"', '"say" AND "hi"', '("say" OR "hi")'),
        ('quote"inside', '"quote" AND "inside"', '("quote" OR "inside")'),
        ("🎉 release", '"release"', None),
        ("tab\tnul\x00byte", '"tab" AND "nul" AND "byte"', '("tab" OR "nul" OR "byte")'),
    ],
)
def test_the_compiler_reads_queries_as_people_mean_them(query: str, all_terms: str, any_term: str | None) -> None:
    compiled = compile_query(query)
    assert (compiled.all_terms, compiled.any_term) == (all_terms, any_term)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("🎉🎉", "nothing to search for"),
        ("( ) * - : ^", "nothing to search for"),
        ("OR AND NOT", "nothing to search for"),
        ("-redis", "only excludes"),
        ("NOT redis", "only excludes"),
        ("word " * 65, "at most 64"),
    ],
)
def test_queries_with_nothing_to_search_for_say_so(query: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        compile_query(query)


HOSTILE = [
    '"',
    '""',
    '"""',
    'a"b"c"',
    "*",
    "**",
    "a*b",
    "*token",
    "token**",
    "-",
    "--token",
    "- token",
    "token -",
    "-token -",
    "OR",
    "AND",
    "NOT",
    "token OR",
    "OR token",
    "token AND",
    "token NOT",
    "NOT NOT token",
    "token OR OR refresh",
    "token AND OR NOT refresh",
    "NEAR(",
    "NEAR(token refresh)",
    "NEAR(token refresh, 2)",
    "token NEAR refresh",
    "(",
    ")",
    "((token",
    "token))",
    "(token OR refresh",
    ":",
    "content:",
    ":token",
    "content:token",
    "{content key}: token",
    "^",
    "^token",
    "token^2",
    "+token",
    "token~",
    "'token'",
    "token's",
    "`rm -rf /`",
    "'; DROP TABLE memories; --",
    '" OR 1=1 --',
    "\\",
    '\\"token\\"',
    "%_%",
    "token\x00refresh",
    "\x00",
    "\x1b[31mred",
    "🎉",
    "🔑 token 🎉",
    "👩‍💻",
    "токен",
    "トークン",
    "tökén",
    "ﬁle",
    "１２３",
    "",
    " ",
    "\t\n\r",
    "token\u200brefresh",
    "a" * 10_000,
    "token " * 64,
    " ".join(f"w{n}" for n in range(200)),
    "(" * 500,
    '"' * 501,
]


@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_queries_search_or_explain_never_crash(akasha: Akasha, scope: Scope, query: str) -> None:
    await fill(akasha, scope.project)
    await akasha.remember("Token refresh happens in the auth service (see NEAR docs).", namespace=scope.project)
    try:
        result = await akasha.recall(query, namespaces=scope.visible())
    except InvalidRequest as refusal:
        message = str(refusal)
        assert "fts5" not in message and "syntax" not in message, message
        assert any(hint in message for hint in ("leave it out", "add a word", "at most")), message
    else:
        assert result.mode in ("all_terms", "any_term", "recent")


async def test_punctuation_is_text_and_finds_what_it_looks_like(akasha: Akasha, scope: Scope) -> None:
    await fill(akasha, scope.project)
    node = await akasha.remember(
        "Upgrade node.js before building the C++ addon (see NEAR(x) docs).", namespace="global"
    )
    for query in ("node.js", "C++ addon", "NEAR(x)", "(see", "addon)"):
        result = await akasha.recall(query, namespaces=scope.visible())
        assert [hit.id for hit in result.hits] == [node.id], query


# -- ranking ---------------------------------------------------------------------------------------


async def test_a_better_match_ranks_first(akasha: Akasha, scope: Scope) -> None:
    await fill(akasha, scope.project)
    passing = await akasha.remember(
        "Notes from the week: the build was slow, the linter complained, and once there was a deadlock in "
        "the test runner that nobody could reproduce; also the coffee machine broke.",
        namespace=scope.project,
    )
    focused = await akasha.remember(
        "Deadlock: the payment worker deadlocks when two refunds lock the same ledger rows.",
        namespace=scope.project,
    )
    keyed = await akasha.remember(
        "Always take the ledger lock before the account lock.", namespace=scope.project, key="deadlock-rule"
    )
    result = await akasha.recall("deadlock", namespaces=scope.visible())
    # A memory about deadlocks (the word in its key, or all over its text) beats a passing mention.
    assert {hit.id for hit in result.hits[:2]} == {focused.id, keyed.id}
    assert result.hits[2].id == passing.id
    scores = [hit.score for hit in result.hits]
    assert all(score is not None and score > 0 for score in scores)
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert "**Deadlock**" in next(hit.snippet for hit in result.hits if hit.id == focused.id)


async def test_more_of_the_words_rank_higher_when_none_has_all(akasha: Akasha, scope: Scope) -> None:
    await fill(akasha, scope.project)
    one = await akasha.remember("Redis is the cache in front of the search index.", namespace=scope.project)
    two = await akasha.remember("The redis eviction policy is allkeys-lru.", namespace=scope.project)
    result = await akasha.recall("redis eviction postgres", namespaces=scope.visible())
    assert result.mode == "any_term"
    assert [hit.id for hit in result.hits] == [two.id, one.id]


async def test_recency_breaks_ties(akasha: Akasha, scope: Scope) -> None:
    await fill(akasha, scope.project)
    older = await akasha.remember("Rotate the signing key every quarter.", namespace=scope.project)
    newer = await akasha.remember("Rotate the signing key every quarter.", namespace="global")
    result = await akasha.recall("signing key", namespaces=scope.visible())
    assert [hit.id for hit in result.hits] == [newer.id, older.id]
    assert result.hits[0].score == result.hits[1].score
    recent = await akasha.recall(namespaces=scope.visible(), limit=2)
    assert (recent.mode, [hit.id for hit in recent.hits]) == ("recent", [newer.id, older.id])


async def test_phrases_prefixes_exclusions_and_stemming(akasha: Akasha, scope: Scope) -> None:
    await fill(akasha, scope.project)
    a = await akasha.remember("The token refresh runs every five minutes.", namespace=scope.project)
    b = await akasha.remember("Refresh the page, then copy the token.", namespace=scope.project)
    c = await akasha.remember("Migrating the users table took four hours.", namespace=scope.project)
    d = await akasha.remember("The migration of the billing tables is blocked.", namespace=scope.project)

    async def ids(query: str) -> set[int]:
        return {hit.id for hit in (await akasha.recall(query, namespaces=scope.visible())).hits}

    assert await ids("token refresh") == {a.id, b.id}
    assert await ids('"token refresh"') == {a.id}
    assert await ids("refresh -page") == {a.id}
    assert await ids('token -"token refresh"') == {b.id}
    assert await ids("migration") == {c.id, d.id}  # porter: migrating, migration → migrat
    assert await ids("tabl*") == {c.id, d.id}
    assert await ids("bill* OR user*") == {c.id, d.id}
    assert await ids("billing NOT blocked") == set()


# -- filters and namespaces ------------------------------------------------------------------------


async def test_tags_and_namespaces_filter(akasha: Akasha, scope: Scope) -> None:
    await fill(akasha, scope.project)
    decision = await akasha.remember(
        "Cache sessions in redis.", namespace=scope.project, tags=["Decision", "cache layer"]
    )
    gotcha = await akasha.remember("The redis cache drops keys on failover.", namespace="global", tags=["gotcha"])
    mine = await akasha.remember("Redis cache warmed for the load test.", namespace="mission:00000000000000aa")
    assert decision.tags == ["decision", "cache-layer"]

    async def ids(query: str | None = None, **filters: object) -> list[int]:
        filters.setdefault("namespaces", scope.visible())
        result = await akasha.recall(query, **filters)  # type: ignore[arg-type]
        return sorted(hit.id for hit in result.hits)

    assert await ids("redis cache") == sorted([decision.id, gotcha.id])  # the root sees no mission's own
    assert await ids("redis", tags=["decision"]) == [decision.id]
    assert await ids("redis", tags=["DECISION", "cache layer"]) == [decision.id]
    assert await ids("redis", tags=["decision", "gotcha"]) == []
    assert await ids(tags=["gotcha"]) == [gotcha.id]
    assert await ids("redis", namespaces=["global"]) == [gotcha.id]
    child = Scope(project_dir=scope.project_dir, mission_id="00000000000000aa", root_id="00000000000000aa")
    assert await ids("redis", namespaces=child.visible()) == sorted([decision.id, gotcha.id, mine.id])
    assert await ids("cache*", namespaces=[child.resolve("mission")]) == [mine.id]


def test_a_scope_resolves_namespace_names(tmp_path: Path) -> None:
    root = Scope(project_dir=str(tmp_path))
    child = Scope(project_dir=str(tmp_path), mission_id="00000000000000bb", root_id="00000000000000aa")
    project = f"project:{tmp_path.resolve()}"
    assert root.visible() == [project, "global"]
    assert child.visible() == ["mission:00000000000000bb", "run:00000000000000aa", project, "global"]
    assert [child.resolve(name) for name in ("global", "project", "run", "mission")] == [
        "global",
        project,
        "run:00000000000000aa",
        "mission:00000000000000bb",
    ]
    assert root.resolve(f"project:{tmp_path}/sub/..") == project
    assert root.resolve("run:00000000000000cc") == "run:00000000000000cc"
    for name, message in [
        ("run", "not a mission"),
        ("mission", "not a mission"),
        ("run:fix-auth", "16 hex digits"),
        ("project:relative/dir", "absolute"),
        ("projcet", "unknown namespace"),
        ("", "unknown namespace"),
    ]:
        with pytest.raises(InvalidRequest, match=message):
            root.resolve(name)


# -- writing, reading, forgetting ------------------------------------------------------------------


async def test_an_upsert_keeps_created_at_and_replaces_the_rest(akasha: Akasha, scope: Scope) -> None:
    first = await akasha.remember(
        "Auth uses sessions.", namespace=scope.project, key="auth-design", tags=["design", "auth"]
    )
    by = Provenance(mission_id="00000000000000aa", mission_name="fix-auth", session_id="session-1")
    second = await akasha.remember("Auth uses JWTs now.", namespace=scope.project, key="auth-design", by=by)
    assert (first.replaced, second.replaced) == (False, True)
    assert second.id == first.id
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert (second.content, second.tags, second.mission_name, second.session_id) == (
        "Auth uses JWTs now.",
        [],
        "fix-auth",
        "session-1",
    )
    # The index follows the upsert: the old words are gone, the new ones found.
    assert not (await akasha.recall("sessions", namespaces=[scope.project])).hits
    assert [hit.id for hit in (await akasha.recall("JWTs", namespaces=[scope.project])).hits] == [first.id]
    assert not (await akasha.recall(namespaces=[scope.project], tags=["design"])).hits
    # The same key elsewhere is another memory.
    other = await akasha.remember("Global auth notes.", namespace="global", key="auth-design")
    assert other.id != first.id and not other.replaced
    assert await akasha.count() == 2


async def test_key_lookup_returns_the_whole_memory(akasha: Akasha, scope: Scope) -> None:
    long_text = "Runbook. " + "Step: check the queue depth and restart the worker. " * 100
    stored = await akasha.remember(long_text, namespace=scope.project, key="runbook")
    found = await akasha.recall(key="runbook", namespaces=scope.visible())
    assert found.mode == "key"
    assert [(hit.id, hit.content, hit.content_truncated) for hit in found.hits] == [(stored.id, long_text, False)]
    searched = await akasha.recall("runbook", namespaces=scope.visible())
    assert searched.hits[0].content_truncated and len(searched.hits[0].content) <= 2_001
    assert not (await akasha.recall(key="runbook", namespaces=["global"])).hits
    with pytest.raises(InvalidRequest, match="not both"):
        await akasha.recall("runbook", key="runbook", namespaces=scope.visible())


async def test_forget_by_key_and_by_id(akasha: Akasha, scope: Scope) -> None:
    keyed = await akasha.remember("Deploys freeze on Fridays.", namespace=scope.project, key="freeze", tags=["ops"])
    plain = await akasha.remember("The VPN drops after 8 hours.", namespace="global")
    forgotten = await akasha.forget(key="freeze", namespace=scope.project)
    assert (forgotten.id, forgotten.content) == (keyed.id, "Deploys freeze on Fridays.")
    assert (await akasha.forget(memory_id=plain.id)).id == plain.id
    assert await akasha.count() == 0
    assert not (await akasha.recall("freeze OR vpn", namespaces=scope.visible())).hits
    assert not (await akasha.recall(namespaces=scope.visible(), tags=["ops"])).hits
    with pytest.raises(NotFound, match="no memory has key 'freeze'"):
        await akasha.forget(key="freeze", namespace=scope.project)
    with pytest.raises(NotFound, match=f"no memory has id {plain.id}"):
        await akasha.forget(memory_id=plain.id)
    with pytest.raises(NotFound):
        await akasha.get(plain.id)
    with pytest.raises(InvalidRequest, match="exactly one"):
        await akasha.forget(memory_id=1, key="freeze", namespace="global")


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ("", {}, "content is empty"),
        ("   \n", {}, "content is empty"),
        ("x" * 100_001, {}, "at most 100,000"),
        ("ok", {"key": "  "}, "key is empty"),
        ("ok", {"key": "k" * 201}, "at most 200"),
        ("ok", {"tags": [""]}, "a tag is empty"),
        ("ok", {"tags": ["t" * 65]}, "at most 64"),
        ("ok", {"tags": [f"t{n}" for n in range(21)]}, "at most 20"),
    ],
)
async def test_bad_memories_are_refused_with_what_to_fix(
    akasha: Akasha, content: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await akasha.remember(content, namespace="global", **options)  # type: ignore[arg-type]
    assert await akasha.count() == 0


async def test_the_index_stays_consistent_through_updates_and_deletes(akasha: Akasha, tmp_path: Path) -> None:
    for round_ in range(3):
        for number in range(30):
            await akasha.remember(
                f"note {number} round {round_}", namespace="global", key=f"k{number % 10}", tags=["t"]
            )
    for number in range(0, 10, 2):
        await akasha.forget(key=f"k{number}", namespace="global")
    await akasha.close()
    db = sqlite3.connect(tmp_path / "state" / "akasha.db")
    db.execute("INSERT INTO memories_fts(memories_fts, rank) VALUES ('integrity-check', 1)")
    assert db.execute("SELECT count(*) FROM memories").fetchone() == (5,)
    assert db.execute("SELECT count(*) FROM memory_tags").fetchone() == (5,)
    assert db.execute("PRAGMA user_version").fetchone() == (akasha_store.SCHEMA_VERSION,)
    db.close()
    # Opening it again migrates nothing and loses nothing.
    reopened = await Akasha.open(tmp_path / "state" / "akasha.db", project_dir=tmp_path)
    assert await reopened.count() == 5
    await reopened.close()


# -- for spawn -------------------------------------------------------------------------------------


def mission_row(**values: object) -> MissionRow:
    defaults: dict[str, object] = {
        "id": "00000000000000bb",
        "name": "fix-auth",
        "parent_id": "00000000000000aa",
        "root_id": "00000000000000aa",
        "depth": 1,
        "provider": "claude",
        "spec": MissionSpec(task=ClaudeTask(prompt="fix the auth tests")),
        "cwd": "/tmp",
        "status": Status.SUCCEEDED,
        "output_path": "/tmp/out",
        "stderr_path": "/tmp/err",
        "created_at": 0.0,
        "session_id": "session-9",
        "result": {"text": "The flaky auth test was a clock skew; fixed by freezing time."},
    }
    return MissionRow(**(defaults | values))  # type: ignore[arg-type]


async def test_a_result_is_remembered_in_its_run(akasha: Akasha) -> None:
    stored = await akasha.remember_result(mission_row())
    assert stored is not None
    assert (stored.namespace, stored.key, stored.tags) == (
        "run:00000000000000aa",
        "result:fix-auth:00000000000000bb",
        ["result", "succeeded"],
    )
    assert (stored.mission_id, stored.mission_name, stored.session_id) == ("00000000000000bb", "fix-auth", "session-9")
    assert await akasha.remember_result(mission_row(id="00000000000000cc", result={"text": "  "})) is None
    assert await akasha.remember_result(mission_row(id="00000000000000dd", result=None)) is None


async def test_context_for_a_prompt_lists_the_best_memories(akasha: Akasha, scope: Scope) -> None:
    await fill(akasha, scope.project)
    assert await akasha.context_for_prompt("Fix the flaky auth test", scope.visible()) is None
    await akasha.remember(
        "The auth test is flaky because of clock skew; freeze time.", namespace=scope.project, key="auth-flaky"
    )
    await akasha.remember("Payments retry three times.", namespace="global")
    block = await akasha.context_for_prompt(
        "Please fix the flaky auth test in tests/test_auth.py and make CI green.", scope.visible()
    )
    assert block is not None
    assert block.startswith("# Shared memory (Akasha)")
    assert "key auth-flaky" in block and "clock skew" in block
    assert "Payments" not in block
    assert await akasha.context_for_prompt("the and of", scope.visible()) is None
    many = [NewMemory(f"auth test note {number}: " + "detail " * 200, scope.project) for number in range(10)]
    await akasha.remember_many(many)
    assert len(await akasha.context_for_prompt("auth test", scope.visible(), max_chars=1_500) or "") <= 1_500


# -- many processes, one database ------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import anyio

    from overmind_mcp.akasha import Akasha

    async def main(path: str, worker: int, count: int) -> None:
        async with await Akasha.open(Path(path), project_dir=Path(path).parent) as akasha:
            print("ready", flush=True)
            sys.stdin.readline()
            for number in range(count):
                await akasha.remember(
                    f"worker{worker} wrote memory {number} about shard{number % 7}",
                    namespace="global",
                    key=f"w{worker}-{number}" if number % 2 else None,
                    tags=[f"worker{worker}"],
                )
                if number % 50 == 0:
                    await akasha.remember(f"last writer {worker}", namespace="run:00000000000000aa", key="shared")
            print("done", flush=True)

    anyio.run(main, sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    """
)


async def test_four_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "akasha.db"
    command = [sys.executable, "-c", WRITER, str(path)]
    async with AsyncExitStack() as stack:
        workers = [
            await stack.enter_async_context(await anyio.open_process([*command, str(worker), "1000"], cwd=ROOT))
            for worker in range(4)
        ]
        outputs = [BufferedByteReceiveStream(worker.stdout) for worker in workers]  # type: ignore[arg-type]
        with anyio.fail_after(60):
            # All four open (and race to create) the database first, then start writing together.
            for output in outputs:
                assert await output.receive_until(b"\n", 100) == b"ready"
            for worker in workers:
                await worker.stdin.send(b"go\n")  # type: ignore[union-attr]
            for worker, output in zip(workers, outputs, strict=True):
                assert await output.receive_until(b"\n", 100) == b"done"
                assert await worker.wait() == 0

    async with await Akasha.open(path, project_dir=tmp_path) as akasha:
        assert await akasha.count("global") == 4_000
        assert await akasha.count("run:00000000000000aa") == 1
        for worker in range(4):
            found = await akasha.recall(f"worker{worker}", namespaces=["global"], tags=[f"worker{worker}"], limit=100)
            assert len(found.hits) == 100
    db = sqlite3.connect(path)
    db.execute("INSERT INTO memories_fts(memories_fts, rank) VALUES ('integrity-check', 1)")
    assert db.execute("SELECT count(*) FROM memory_tags").fetchone() == (4_000,)
    assert db.execute("SELECT count(DISTINCT content) FROM memories WHERE namespace = 'global'").fetchone() == (4_000,)
    db.close()


# -- the benchmark still runs ----------------------------------------------------------------------


async def test_the_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    from tools.bench.akasha import corpus_for, markdown, store_benchmark

    corpus = corpus_for(300, tmp_path, queries=40)
    store = await store_benchmark(corpus, tmp_path, tmp_path, writes=20)
    assert store["memories"] == 300
    assert store["recall"]["n"] == 40 and store["recall"]["with_hits"] > 0.5
    assert store["remember_per_s"] > 0
    report = {"when": "now", "machine": {"python": "3", "sqlite": "3", "cpus": 1}, "wired_into_overmind_server": False}
    assert "| 300 | store, in process |" in markdown(report | {"sizes": {"300": {"store": store}}})
    json.dumps(store)
