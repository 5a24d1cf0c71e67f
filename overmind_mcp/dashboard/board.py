"""The board: every mission on the state directory as the dashboard shows it, kept fresh while anyone looks.

Read through the shared read side, as `overmind ps` reads it: the store's rows (read-only, see
`console.state`), a live mission's progress folded from its output file (`console.live`), and
the core views (`readside.views`), so the board, `ps` and the MCP tools agree. What a panel knows
about a mission (that it waits for an approval, its worktree's diffstat) comes in as an
`Annotation`.

A refresh is cheap when little changed: the rows are read again only when `PRAGMA data_version`
says another connection committed, and each live output file is read from where it stopped.
Refreshes are coalesced to at most `MIN_INTERVAL_S` apart, and happen only while a page or an
event stream is open (`watching`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import anyio
import anyio.abc

from overmind_mcp.console import answers
from overmind_mcp.console.live import LiveOutput, Tokens
from overmind_mcp.console.state import State
from overmind_mcp.dashboard.changes import Changes
from overmind_mcp.models import LIVE
from overmind_mcp.readside import views
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision.foreign import live_owners, orphan_state

Attention = Literal["approval", "stalled", "failed", "working", "idle", "done"]
ATTENTION_ORDER: tuple[Attention, ...] = ("approval", "stalled", "failed", "working", "idle", "done")
ATTENTION_TITLES: Mapping[Attention, str] = {
    "approval": "Needs approval",
    "stalled": "Stalled",
    "failed": "Failed",
    "working": "Working",
    "idle": "Idle sessions",
    "done": "Done",
}
_FAILED = frozenset({"failed", "lost", "timed_out"})

MIN_INTERVAL_S = 0.25
"""At most four refreshes a second, however fast the missions change."""
STALL_AFTER_S = 120.0
"""A running mission that prints nothing for this long, outside a tool call, is shown as stalled."""
RECENT_S = 24 * 3600.0
"""Ended missions are listed for this long after they end (with their trees' live members, always)."""
LIMIT = 1000
"""Most missions listed: every live one, and the newest of the rest."""
_ENDED_SCAN_BYTES = 64 * 1024
_RETRY_AFTER_FAILURE_S = 5.0

logger = logging.getLogger("overmind_mcp.dashboard")


@dataclass(frozen=True, slots=True)
class Annotation:
    """What a panel adds to a mission's card: that a person must approve something (and what); its diffstat."""

    needs_approval: str | None = None
    diffstat: str | None = None


Annotator = Callable[[], Awaitable[Mapping[str, Annotation]]]


@dataclass(frozen=True, slots=True)
class Card:
    """One mission as its line on the board shows it. Equal cards render the same HTML."""

    id: str
    name: str
    parent_id: str | None
    level: int
    status: str
    attention: Attention
    reason: str | None
    created_at: float
    ended_at: float | None
    quiet_since: float | None
    turns: int
    turns_partial: bool
    tokens: int
    cost_usd: float | None
    tree_tokens: int
    tree_cost_usd: float | None
    children: int
    last_tool: str | None
    last_line: str | None
    diffstat: str | None
    session_state: str | None
    queue_position: int | None


@dataclass(frozen=True, slots=True)
class Group:
    attention: Attention
    ids: tuple[str, ...]

    @property
    def title(self) -> str:
        return ATTENTION_TITLES[self.attention]


@dataclass(frozen=True, slots=True)
class Totals:
    missions: int
    live: int
    cost_usd: float
    tokens: int
    hidden: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    groups: tuple[Group, ...]
    cards: Mapping[str, Card]
    totals: Totals
    taken_at: float

    def same_as(self, other: Snapshot) -> bool:
        return self.groups == other.groups and self.cards == other.cards and self.totals == other.totals


@dataclass(frozen=True, slots=True)
class _EndedFacts:
    """What an ended mission's output says that its row does not; it never changes again."""

    last_tool: str | None
    last_text: str | None
    # Counted from its output, for a mission whose result says nothing of its usage (it was stopped).
    tokens: Tokens


@dataclass
class _Viewers:
    count: int = 0
    present: anyio.Event = field(default_factory=anyio.Event)


class Board:
    def __init__(
        self,
        state: State,
        changes: Changes,
        annotators: Sequence[Annotator] = (),
        *,
        stall_after_s: float = STALL_AFTER_S,
        recent_s: float = RECENT_S,
        limit: int = LIMIT,
    ) -> None:
        self.state = state
        self._changes = changes
        self._annotators = annotators
        self._stall_after_s = stall_after_s
        self._recent_s = recent_s
        self._limit = limit
        self.snapshot = Snapshot(0, (), {}, Totals(0, 0, 0.0, 0, 0), 0.0)
        self._rows: list[MissionRow] = []
        self.rows: list[MissionRow] = []
        """The missions listed, as the last refresh read them."""
        self._data_version: int | None = None
        self._lives: dict[str, LiveOutput] = {}
        self._ended: dict[str, _EndedFacts] = {}
        self._lock = anyio.Lock()
        self._published = anyio.Event()
        self._closed = anyio.Event()
        self._viewers = _Viewers()
        self._stale = True
        self._next_deadline: float | None = None

    # -- for pages and event streams --------------------------------------------------------------

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Keep the board fresh for the duration of the block (a page being made, an open event stream)."""
        viewers = self._viewers
        viewers.count += 1
        viewers.present.set()
        try:
            yield
        finally:
            viewers.count -= 1
            if viewers.count == 0:
                viewers.present = anyio.Event()
                # Nobody follows the changes any more: the next viewer must look again first.
                self._stale = True

    async def fresh(self) -> Snapshot:
        """The snapshot, refreshed first unless the board has been kept fresh."""
        if self._stale:
            await self.refresh()
        return self.snapshot

    async def next(self, after: int) -> Snapshot | None:
        """The first snapshot newer than version `after`; None once the board is closing."""
        while self.snapshot.version <= after:
            if self._closed.is_set():
                return None
            await self._published.wait()
        return self.snapshot

    @property
    def closed(self) -> anyio.Event:
        return self._closed

    def live_output(self, mission_id: str) -> LiveOutput | None:
        """A live mission's progress as the last refresh read it."""
        return self._lives.get(mission_id)

    # -- keeping it fresh ---------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Refresh on every change, at most every `MIN_INTERVAL_S`, while anyone watches; until cancelled."""
        task_status.started()
        try:
            while True:
                await self._viewers.present.wait()
                try:
                    await self.refresh()
                except Exception:
                    # The board is a fault domain of its own: the server and its missions go on.
                    logger.exception("refreshing the dashboard failed")
                    await anyio.sleep(_RETRY_AFTER_FAILURE_S)
                    continue
                refreshed = time.monotonic()
                deadline = self._next_deadline
                with anyio.move_on_after(None if deadline is None else max(deadline - time.time(), 0.0)):
                    await self._changes.wait()
                await anyio.sleep(max(refreshed + MIN_INTERVAL_S - time.monotonic(), 0.0))
        finally:
            self._closed.set()
            # Wakes every `next` waiting for a snapshot, which then sees the board closed.
            self._published.set()
            for live in self._lives.values():
                live.close()
            self._lives.clear()

    async def refresh(self) -> None:
        async with self._lock:
            self._stale = False
            now = time.time()
            [(data_version,)] = await self.state.db.execute_fetchall("PRAGMA data_version")
            if data_version != self._data_version:
                self._rows = await self.state.store.missions()
                self._data_version = data_version
            rows, hidden = self._select(self._rows, now)
            self.rows = rows
            live_rows = [row for row in rows if row.status in LIVE]
            self._follow(live_rows)
            await self._changes.follow_outputs([Path(row.output_path) for row in live_rows])
            owners = await live_owners(self.state.store, live_rows) if live_rows else {}
            annotations: dict[str, Annotation] = {}
            for annotator in self._annotators:
                for mission_id, annotation in (await annotator()).items():
                    annotations[mission_id] = _merge(annotations.get(mission_id), annotation)
            snapshot = self._build(rows, hidden, owners, annotations, now)
            if not snapshot.same_as(self.snapshot):
                self.snapshot = snapshot
                published, self._published = self._published, anyio.Event()
                published.set()

    def _select(self, every: list[MissionRow], now: float) -> tuple[list[MissionRow], int]:
        """Live missions, those ended recently, and the ancestors of each; the newest `limit` of them."""
        by_id = {row.id: row for row in every}
        since = now - self._recent_s
        keep = {row.id for row in every if row.status in LIVE or (row.ended_at or row.created_at) >= since}
        if len(keep) > self._limit:
            newest = sorted((by_id[mission_id] for mission_id in keep), key=lambda row: -row.created_at)
            keep = {row.id for row in newest[: self._limit]} | {row.id for row in newest if row.status in LIVE}
        for mission_id in list(keep):
            parent = by_id[mission_id].parent_id
            while parent is not None and parent not in keep and parent in by_id:
                keep.add(parent)
                parent = by_id[parent].parent_id
        return [row for row in every if row.id in keep], len(every) - len(keep)

    def _follow(self, live_rows: list[MissionRow]) -> None:
        """Read what each live mission wrote since the last look; forget those that ended."""
        wanted = {row.id: row for row in live_rows}
        for mission_id in list(self._lives):
            if mission_id not in wanted:
                self._lives.pop(mission_id).close()
        for mission_id, row in wanted.items():
            live = self._lives.get(mission_id)
            if live is None:
                live = self._lives[mission_id] = LiveOutput(row)
            live.row = row
            live.update()

    def _ended_facts(self, row: MissionRow) -> _EndedFacts:
        facts = self._ended.get(row.id)
        if facts is None:
            with LiveOutput(row, full_scan_bytes=_ENDED_SCAN_BYTES, tail_bytes=_ENDED_SCAN_BYTES) as output:
                output.update(final=True)
                activity = output.activity
            facts = self._ended[row.id] = _EndedFacts(activity.last_tool, activity.last_text, output.tokens)
        return facts

    def _build(
        self,
        rows: list[MissionRow],
        hidden: int,
        owners: Mapping[str, tuple[int, float]],
        annotations: Mapping[str, Annotation],
        now: float,
    ) -> Snapshot:
        ordered = views.depth_first(rows)
        ids = {row.id for row in ordered}
        queued = [row for row in ordered if row.status == "queued"]
        positions = answers.queue_positions(ordered, queued)
        levels: dict[str, int] = {}
        roots: dict[str, str] = {}
        children: dict[str, int] = {}
        for row in ordered:
            parent = row.parent_id if row.parent_id in ids else None
            levels[row.id] = levels[parent] + 1 if parent is not None else 0
            roots[row.id] = roots[parent] if parent is not None else row.id
            if parent is not None:
                children[parent] = children.get(parent, 0) + 1
        self._ended = {mission_id: facts for mission_id, facts in self._ended.items() if mission_id in ids}
        own: dict[str, tuple[int, float]] = {}
        cards: dict[str, Card] = {}
        deadlines: list[float] = []
        for row in ordered:
            live = self._lives.get(row.id)
            summary = answers.summary(row, live, positions.get(row.id))
            facts = self._ended_facts(row) if live is None else None
            if live is not None:
                tokens = live.tokens
            else:
                assert facts is not None
                tokens = Tokens.of((row.result or {}).get("usage") or {})
                tokens = tokens if tokens.total else facts.tokens
            own[row.id] = (tokens.total, summary.cost_usd or 0.0)
            attention, reason, quiet_since, deadline = self._attention(
                row, live, owners, annotations.get(row.id), summary.session_state, now
            )
            if deadline is not None:
                deadlines.append(deadline)
            if facts is None:
                assert live is not None
                last_tool, last_line = live.activity.last_tool, live.activity.last_text
            else:
                last_tool, last_line = facts.last_tool, facts.last_text or _first_line(row)
            annotation = annotations.get(row.id)
            cards[row.id] = Card(
                id=row.id,
                name=row.name,
                parent_id=row.parent_id if row.parent_id in ids else None,
                level=levels[row.id],
                status=row.status,
                attention=attention,
                reason=reason,
                created_at=row.created_at,
                ended_at=row.ended_at,
                quiet_since=quiet_since,
                turns=summary.turns,
                turns_partial=live is not None and live.partial,
                tokens=tokens.total,
                cost_usd=summary.cost_usd,
                tree_tokens=0,
                tree_cost_usd=None,
                children=children.get(row.id, 0),
                last_tool=last_tool,
                last_line=last_line,
                diffstat=annotation.diffstat if annotation else None,
                session_state=summary.session_state,
                queue_position=summary.queue_position,
            )
        # Each mission's badge counts its whole subtree: sub-agents included.
        tree = dict(own)
        for row in reversed(ordered):
            parent = row.parent_id
            if parent in tree:
                parent_tokens, parent_cost = tree[parent]
                child_tokens, child_cost = tree[row.id]
                tree[parent] = (parent_tokens + child_tokens, parent_cost + child_cost)
        for mission_id, (tokens_total, cost) in tree.items():
            card = cards[mission_id]
            cards[mission_id] = _with_tree(card, tokens_total, cost)
        # A tree is listed under its most urgent member's group, newest tree first.
        urgency: dict[str, int] = {}
        for row in ordered:
            rank = ATTENTION_ORDER.index(cards[row.id].attention)
            root = roots[row.id]
            urgency[root] = min(urgency.get(root, rank), rank)
        members: dict[str, list[str]] = {}
        for row in ordered:
            members.setdefault(roots[row.id], []).append(row.id)
        by_group: dict[Attention, list[str]] = {}
        for root in sorted(members, key=lambda root: -cards[root].created_at):
            by_group.setdefault(ATTENTION_ORDER[urgency[root]], []).extend(members[root])
        groups = tuple(
            Group(attention, tuple(by_group[attention])) for attention in ATTENTION_ORDER if attention in by_group
        )
        self._next_deadline = min(deadlines) if deadlines else None
        totals = Totals(
            missions=len(ordered),
            live=sum(row.status in LIVE for row in ordered),
            cost_usd=round(sum(cost for _tokens, cost in own.values()), 6),
            tokens=sum(tokens_total for tokens_total, _cost in own.values()),
            hidden=hidden,
        )
        return Snapshot(self.snapshot.version + 1, groups, cards, totals, now)

    def _attention(
        self,
        row: MissionRow,
        live: LiveOutput | None,
        owners: Mapping[str, tuple[int, float]],
        annotation: Annotation | None,
        session_state: str | None,
        now: float,
    ) -> tuple[Attention, str | None, float | None, float | None]:
        """Its group, why, since when it has been quiet (running ones), and when it would turn stalled."""
        if annotation is not None and annotation.needs_approval:
            return "approval", annotation.needs_approval, None, None
        if row.status not in LIVE:
            if row.status in _FAILED:
                return "failed", row.end_reason, None, None
            return "done", row.end_reason, None, None
        orphan = orphan_state(row, owners)
        if orphan == "unrecorded":
            return "failed", "its process ended while its server was gone; the next server records how", None, None
        if orphan == "orphaned":
            return "stalled", "its server is gone; the next server to start takes it over", None, None
        if row.status != "running" or live is None:
            return "working", row.status if row.status != "running" else None, None, None
        quiet_since = live.mtime or row.started_at or row.created_at
        if session_state == "idle":
            return "idle", "waiting for its next message", quiet_since, None
        if live.activity.in_tool:
            return "working", None, quiet_since, None
        stalls_at = quiet_since + self._stall_after_s
        if now >= stalls_at:
            reason = f"no output for {_duration(self._stall_after_s)} or more, outside a tool call"
            return "stalled", reason, quiet_since, None
        return "working", None, quiet_since, stalls_at


def _merge(old: Annotation | None, new: Annotation) -> Annotation:
    if old is None:
        return new
    return Annotation(
        needs_approval=new.needs_approval or old.needs_approval,
        diffstat=new.diffstat or old.diffstat,
    )


def _with_tree(card: Card, tokens: int, cost: float) -> Card:
    return replace(card, tree_tokens=tokens, tree_cost_usd=round(cost, 6))


def _first_line(row: MissionRow) -> str | None:
    text = ((row.result or {}).get("text") or "").strip()
    return text.splitlines()[0] if text else None


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{math.floor(seconds)}s"
    if seconds < 3600:
        return f"{math.floor(seconds / 60)}m {math.floor(seconds % 60)}s"
    return f"{math.floor(seconds / 3600)}h {math.floor(seconds % 3600 / 60)}m"
