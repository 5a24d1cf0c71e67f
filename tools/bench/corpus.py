"""Deterministic pseudo-English notes, the kind agents leave each other, and queries over them.

Sentences come from templates whose slots draw words with Zipf-like frequencies, from
real engineering vocabulary and a long tail of invented names (services, people,
codenames), so the index sees what a real one does: a few very common words, many
rare ones, inflected forms that stemming must join, identifiers and numbers.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from overmind_mcp.akasha import NewMemory
from overmind_mcp.akasha.query import STOPWORDS

NOUNS = (
    "service database migration token cache request queue worker schema index deployment cluster endpoint timeout "
    "retry session user account payment invoice report test build pipeline release branch commit config secret "
    "certificate proxy gateway router handler parser renderer template widget component module package dependency "
    "version lockfile container image volume network socket connection pool thread process signal log metric alert "
    "dashboard trace span error exception crash leak bug fix patch feature flag experiment rollout rollback backup "
    "snapshot replica shard partition table column row query transaction lock deadlock latency throughput budget "
    "quota limit rate batch job schedule task mission agent prompt model embedding vector search ranking document "
    "file directory path permission role policy audit encryption key hash checksum header payload response status "
    "client server browser terminal shell script compiler linter formatter benchmark profile memory disk heap stack "
    "callback promise event listener hook middleware plugin adapter driver codec stream buffer chunk offset cursor "
    "page fixture mock assertion coverage regression changelog ticket review reviewer owner team customer tenant "
    "region zone bucket object blob webhook cron scheduler consumer producer topic subscription notification email"
).split()
VERBS = [
    ("fail", "fails", "failed", "failing"),
    ("retry", "retries", "retried", "retrying"),
    ("time out", "times out", "timed out", "timing out"),
    ("crash", "crashes", "crashed", "crashing"),
    ("block", "blocks", "blocked", "blocking"),
    ("drop", "drops", "dropped", "dropping"),
    ("leak", "leaks", "leaked", "leaking"),
    ("rotate", "rotates", "rotated", "rotating"),
    ("migrate", "migrates", "migrated", "migrating"),
    ("cache", "caches", "cached", "caching"),
    ("index", "indexes", "indexed", "indexing"),
    ("deploy", "deploys", "deployed", "deploying"),
    ("parse", "parses", "parsed", "parsing"),
    ("validate", "validates", "validated", "validating"),
    ("serialize", "serializes", "serialized", "serializing"),
    ("flush", "flushes", "flushed", "flushing"),
    ("compact", "compacts", "compacted", "compacting"),
    ("throttle", "throttles", "throttled", "throttling"),
    ("reject", "rejects", "rejected", "rejecting"),
    ("accept", "accepts", "accepted", "accepting"),
    ("refresh", "refreshes", "refreshed", "refreshing"),
    ("expire", "expires", "expired", "expiring"),
    ("restart", "restarts", "restarted", "restarting"),
    ("lock", "locks", "locked", "locking"),
    ("merge", "merges", "merged", "merging"),
    ("split", "splits", "split", "splitting"),
    ("read", "reads", "read", "reading"),
    ("write", "writes", "wrote", "writing"),
    ("load", "loads", "loaded", "loading"),
    ("store", "stores", "stored", "storing"),
    ("skip", "skips", "skipped", "skipping"),
    ("ignore", "ignores", "ignored", "ignoring"),
    ("handle", "handles", "handled", "handling"),
    ("emit", "emits", "emitted", "emitting"),
    ("schedule", "schedules", "scheduled", "scheduling"),
    ("resolve", "resolves", "resolved", "resolving"),
    ("build", "builds", "built", "building"),
    ("run", "runs", "ran", "running"),
    ("break", "breaks", "broke", "breaking"),
    ("slow down", "slows down", "slowed down", "slowing down"),
]
ADJECTIVES = (
    "flaky slow stale broken missing duplicate expired invalid empty large small concurrent nested legacy new old "
    "primary secondary remote local global internal external public private async blocking idle hot cold partial "
    "full optional required deprecated unstable stable noisy silent intermittent critical minor cached signed "
    "encrypted compressed corrupted orphaned pending stuck retried throttled sharded replicated versioned"
).split()
PREPOSITIONS = "in on for after before during under behind through across".split()
UNITS = "ms seconds minutes requests rows MB connections retries workers".split()
REASONS = [
    "the old one could not keep up under load",
    "it keeps the hot path free of locks",
    "nobody owns the legacy code any more",
    "the vendor deprecated the previous API",
    "it halves the cost of a cold start",
    "tests were flaky with the other approach",
    "the audit asked for it",
    "it is what the team already knows",
]
TEMPLATES = [
    "The {adj} {noun} in {name} {verb_past} because the {noun2} was {adj2}.",
    "{Name} {verb_pres} the {noun} {prep} the {noun2} when the {noun3} is {adj}.",
    "Fixed the {adj} {noun} in {ident}: the {noun2} {verb_past} {prep} {number} {unit}.",
    "Decision: use {noun} instead of {noun2} for {name}, because {reason}.",
    "Remember that {name} {verb_pres} every {noun} after {number} {unit}.",
    "The {noun} of {name} {verb_past} after {number} {unit}; the fix was to {verb_base} the {noun2}.",
    "TODO: {verb_base} the {adj} {noun} before the {noun2} {verb_pres} again.",
    "See {ident} for how {name} {verb_pres} {noun} {prep} {name2}.",
    "{Person} found that the {noun} {verb_pres} whenever {name} is {verb_ing} the {noun2}.",
    "Gotcha: {name} needs the {noun} {verb_past} before the {adj} {noun2} starts.",
    "Ticket {ticket}: {adj} {noun} {prep} {name}, owned by {person}.",
    "Benchmark: {name} {noun} at {number} {unit}, {adj} compared with {name2}.",
    "Do not {verb_base} the {noun} in {ident} directly; {name} {verb_pres} it.",
    "The {noun2} for {name} lives in {ident} and is {adj}.",
    "After the {noun} {verb_past}, {person} {verb_past2} the {adj} {noun2} by hand.",
    "{Name} and {name2} share one {noun}; {verb_ing} it in one {verb_pres2} the other.",
]


class _Zipf:
    """Draws from a list with probability ∝ 1 / (rank + q)^s, as word frequencies go (Zipf-Mandelbrot).

    The offset `q` stands for the words more frequent than any in the list: the content
    words of a text start well down the ranking, below "the", "of" and "and".
    """

    def __init__(self, items: Sequence[str], rng: random.Random, s: float = 1.0, q: float = 10.0) -> None:
        self._items = list(items)
        rng.shuffle(self._items)
        weights = (1 / (rank + q) ** s for rank in range(1, len(self._items) + 1))
        self._cumulative = list(itertools.accumulate(weights))
        self._rng = rng

    def __call__(self) -> str:
        return self._rng.choices(self._items, cum_weights=self._cumulative)[0]


def _invented_words(rng: random.Random, count: int) -> list[str]:
    onsets = "b bl br c ch cl cr d dr f fl fr g gl gr h j k l m n p pl pr qu r s sh sk sl sp st t th tr v w z".split()
    vowels = "a e i o u ai ea ee io ou oa y".split()
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "nt", "rk", "x", "ng"]
    words: set[str] = set()
    while len(words) < count:
        syllables = rng.choice((2, 2, 3))
        words.add("".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syllables)))
    return sorted(words)


@dataclass
class Corpus:
    memories: list[NewMemory]
    queries: list[str]


def generate(count: int, *, project: str, runs: Sequence[str] = (), seed: int = 2026, queries: int = 300) -> Corpus:
    """`count` memories (70% in `project`, 20% global, 10% in the `runs`) and `queries` searches over them."""
    rng = random.Random(seed)
    invented = _invented_words(rng, 6_000)
    names = _Zipf(invented[:3_000], rng, q=30)
    people = _Zipf([word.capitalize() for word in invented[3_000:3_400]], rng)
    nouns, adjectives = _Zipf(NOUNS, rng), _Zipf(ADJECTIVES, rng)
    verbs = _Zipf([str(i) for i in range(len(VERBS))], rng)
    tags = _Zipf(
        "decision gotcha bug todo perf security api db ops ci test infra frontend backend auth billing search "
        "release incident design docs onboarding flaky migration cache deps config review cost oncall".split(),
        rng,
    )

    def verb(form: int) -> str:
        return VERBS[int(verbs())][form]

    def sentence() -> str:
        name = names()
        slots = {
            "noun": nouns(),
            "noun2": nouns(),
            "noun3": nouns(),
            "adj": adjectives(),
            "adj2": adjectives(),
            "name": name,
            "Name": name.capitalize(),
            "name2": names(),
            "person": people(),
            "Person": people(),
            "verb_base": verb(0),
            "verb_pres": verb(1),
            "verb_pres2": verb(1),
            "verb_past": verb(2),
            "verb_past2": verb(2),
            "verb_ing": verb(3),
            "prep": rng.choice(PREPOSITIONS),
            "number": str(rng.choice((2, 3, 5, 10, 30, 50, 100, 250, 500, 1000, 4096))),
            "unit": rng.choice(UNITS),
            "reason": rng.choice(REASONS),
            "ticket": f"{rng.choice(('OPS', 'BUG', 'SEC', 'PERF'))}-{rng.randint(100, 9999)}",
            "ident": rng.choice(
                (
                    f"{names()}/{nouns()}.py",
                    f"{nouns()}_{nouns()}()",
                    f"src/{names()}/{nouns()}s.ts",
                    f"{names()}.{nouns()}.{adjectives()}",
                )
            ),
        }
        return rng.choice(TEMPLATES).format(**slots)

    memories = []
    for number in range(count):
        content = " ".join(sentence() for _ in range(rng.choice((1, 1, 2, 2, 2, 3, 4))))
        draw = rng.random()
        namespace = project if draw < 0.7 else "global" if draw < 0.9 or not runs else rng.choice(runs)
        key = f"{nouns()}-{names()}-{number}" if rng.random() < 0.3 else None
        memory_tags = sorted({tags() for _ in range(rng.choice((0, 1, 1, 2, 3)))})
        memories.append(NewMemory(content, namespace, key, memory_tags))
    return Corpus(memories, _queries(memories, rng, queries))


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+")


def _queries(memories: Sequence[NewMemory], rng: random.Random, count: int) -> list[str]:
    """What an agent would type: words it remembers from a note, a phrase, a prefix; a few find nothing."""
    queries = []
    while len(queries) < count:
        words = [word for word in _WORD.findall(rng.choice(memories).content) if word.lower() not in STOPWORDS]
        if len(words) < 3:
            continue
        kind = rng.random()
        if kind < 0.30:
            query = rng.choice(words)
        elif kind < 0.60:
            query = " ".join(rng.sample(words, 2))
        elif kind < 0.75:
            start = rng.randrange(len(words) - 1)
            query = f'"{words[start]} {words[start + 1]}"'
        elif kind < 0.85:
            word = max(words, key=len)
            query = word[: max(3, len(word) - 3)] + "*"
        elif kind < 0.95:
            query = " ".join(rng.sample(words, 3))
        else:
            query = f"{rng.choice(words)} zyxqu{rng.randint(0, 999)}"
        queries.append(query.lower() if rng.random() < 0.5 else query)
    return queries
