"""The scheduler: one task per server that sleeps exactly until the next slot of any ritual, then fires it.

It never ticks. Each pass reads the enabled rituals, claims every slot that has come due
since the ritual's last recorded fire, and computes the next due instant; then it sleeps
until that instant, or until rituals.db changes (a ritual created, paused or deleted by any
process, a fire claimed by another server), whichever comes first.

A slot is due at its instant plus the ritual's jitter (fixed per slot, so every server
agrees on it). Slots are handled in order, one after another: a slot not yet due stops the
pass for its ritual, so a later slot can never be claimed over an earlier one.

What a due slot becomes:
- later than `misfire_grace_s` (when set): `missed`, with how late it was;
- due while no server was firing (before the oldest live scheduler started): `catch_up`
  decides: `none` records them all `missed`, `latest` runs the newest and records the rest,
  `all` runs each; only the latest CATCH_UP_CAP are looked at, the ones before are summed up
  in one `missed` row;
- otherwise it runs, as the ritual's `overlap` says, when an earlier run is still going:
  `forbid` records it `skipped`, `allow` starts it anyway, `replace` ends the earlier run
  first, `queue` waits (`queued`) until the earlier runs end.

A fire is claimed (its row inserted) before anything starts; the run's mission is named after
the slot, so a server that takes over the open fires of one that died can tell whether the
dead one got as far as starting it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from itertools import islice
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.abc

from overmind_mcp.errors import NotFound, OvermindError, ShuttingDown
from overmind_mcp.models import LIVE, SpawnRequest
from overmind_mcp.rituals.cron import Cron, iso
from overmind_mcp.rituals.store import FireRow, QuestRow, RitualRow, RitualStore, SchedulerRow
from overmind_mcp.rituals.targets import Run, launch, run_name
from overmind_mcp.runners.local.process import process_start_time
from overmind_mcp.runners.local.watch import Wakeup
from overmind_mcp.storage.missions import MissionRow

if TYPE_CHECKING:
    from overmind_mcp.supervision.supervisor import Supervisor

logger = logging.getLogger("overmind_mcp")

CATCH_UP_CAP = 100
"""Most slots missed in one stretch that get a row (and may run) each."""
MAX_QUEUED = 16
"""Most fires of one ritual waiting behind a run (overlap=queue); more are recorded `skipped`."""
_COUNT_LIMIT = 10_000
_QUEUE_RECHECK_S = 300.0


class Broadcast:
    """Wakes every current waiter at once: "rituals.db changed, look again"."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    def watch(self) -> anyio.Event:
        """The event the next `fire` sets. Take it *before* looking, so no change slips in between."""
        return self._event


class Clock(Protocol):
    """Wall-clock time (seconds since the epoch), and sleeping until an instant of it."""

    def now(self) -> float: ...

    async def sleep_until(self, instant: float, wakeup: Wakeup) -> None:
        """Return at `instant`, or earlier when `wakeup` is set."""


class SystemClock:
    # anyio sleeps on the monotonic clock, which does not see the wall clock being set (NTP, a
    # machine waking from suspend): a long sleep is re-aimed at the wall clock now and then.
    REAIM_S = 300.0

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, instant: float, wakeup: Wakeup) -> None:
        delay = instant - time.time()
        if delay <= 0:
            return
        with anyio.move_on_after(min(delay, self.REAIM_S)):
            await wakeup.wait()


@functools.lru_cache(maxsize=256)
def _cron(expression: str, tz: str) -> Cron:
    """Parsed once per expression and zone, not at every pass."""
    return Cron(expression, tz)


def jitter(ritual: RitualRow, slot: int) -> float:
    """The ritual's delay for this slot, in [0, jitter_s): the same in every server."""
    if not ritual.jitter_s:
        return 0.0
    digest = hashlib.sha256(f"{ritual.id}:{slot}".encode()).digest()
    return round(int.from_bytes(digest[:8], "big") / 2**64 * ritual.jitter_s, 3)


class Scheduler:
    def __init__(
        self, supervisor: Supervisor, store: RitualStore, clock: Clock, *, server_id: str, changed: Broadcast
    ) -> None:
        self.supervisor = supervisor
        self.store = store
        self.clock = clock
        self.server_id = server_id
        # Fired on every commit to rituals.db, by any process.
        self.changed = changed
        self._tasks: anyio.abc.TaskGroup | None = None
        self._draining: set[str] = set()

    async def run(self, wakeup: Wakeup, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Fire rituals until cancelled; `wakeup` is set whenever rituals.db changes."""
        async with self.firing():
            task_status.started()
            while True:
                upcoming = await self.fire_due()
                await self.clock.sleep_until(math.inf if upcoming is None else upcoming, wakeup)

    @asynccontextmanager
    async def firing(self) -> AsyncIterator[None]:
        """This server counted among those firing, and its runs started, for the block (`fire_due` inside it)."""
        me = os.getpid()
        await self.store.register(SchedulerRow(self.server_id, me, process_start_time(me) or 0.0, self.clock.now()))
        try:
            async with anyio.create_task_group() as task_group:
                self._tasks = task_group
                try:
                    yield
                finally:
                    task_group.cancel_scope.cancel()
        finally:
            self._tasks = None
            with anyio.CancelScope(shield=True):
                await self.store.unregister(self.server_id)

    async def fire_due(self) -> float | None:
        """Handle every slot due now; the instant the next one is due (None: no ritual has one)."""
        now = self.clock.now()
        schedulers = [row for row in await self.store.schedulers() if row.alive or row.server_id == self.server_id]
        await self._adopt_orphans(now, {row.server_id for row in schedulers})
        # Slots due before this instant came due while no server was firing.
        firing_since = min((row.started_at for row in schedulers), default=now)
        upcoming: float | None = None
        for ritual in await self.store.rituals(enabled_only=True):
            try:
                due = await self._fire_ritual(ritual, now, firing_since)
            except Exception:
                # One broken ritual must not keep the others from firing.
                logger.exception("ritual %s could not be fired", ritual.name)
                continue
            if due is not None and (upcoming is None or due < upcoming):
                upcoming = due
        return upcoming

    async def _fire_ritual(self, ritual: RitualRow, now: float, firing_since: float) -> float | None:
        cron = _cron(ritual.cron, ritual.tz)
        last = await self.store.last_slot(ritual.id)
        cursor = max(ritual.anchor, last if last is not None else -math.inf)
        pending: list[int] = []
        upcoming: float | None = None
        for slot in islice(cron.slots(cursor), CATCH_UP_CAP + 1):
            due = slot + jitter(ritual, slot)
            if due > now:
                upcoming = due
                break
            pending.append(slot)
        if len(pending) > CATCH_UP_CAP:
            pending = await self._sum_up_older(ritual, cron, cursor, now)
            following = cron.after(pending[-1] if pending else now)
            upcoming = None if following is None else following + jitter(ritual, following)
        claimed = False
        outage = [slot for slot in pending if slot + jitter(ritual, slot) < firing_since]
        for slot in pending:
            due = slot + jitter(ritual, slot)
            verdict = _verdict(ritual, slot, due, now, firing_since, outage)
            fire = await self.store.claim(
                ritual.id,
                slot,
                due,
                state="claimed" if verdict is None else "missed",
                server_id=self.server_id,
                at=self.clock.now(),
                reason=verdict,
            )
            claimed |= fire is not None and verdict is None
        if claimed:
            self._drain_soon(ritual.id)
        return upcoming

    async def _sum_up_older(self, ritual: RitualRow, cron: Cron, cursor: float, now: float) -> list[int]:
        """More than CATCH_UP_CAP slots are owed: one `missed` row for all but the latest, which are returned."""
        recent = [slot for slot in cron.before(now, CATCH_UP_CAP + 1) if slot > cursor]
        recent = [slot for slot in recent if slot + jitter(ritual, slot) <= now]
        older, recent = recent[:-CATCH_UP_CAP], recent[-CATCH_UP_CAP:]
        if not older:
            return recent
        newest_older = older[-1]
        count = sum(1 for _slot in islice(cron.slots(cursor), _COUNT_LIMIT) if _slot <= newest_older)
        counted = f"{count}" if count < _COUNT_LIMIT else f"more than {_COUNT_LIMIT}"
        reason = (
            f"{counted} slots from {iso(cron.after(cursor) or newest_older, ritual.tz)} to this one came due "
            f"while no server was firing; only the latest {CATCH_UP_CAP} slots were looked at"
        )
        await self.store.claim(
            ritual.id,
            newest_older,
            newest_older + jitter(ritual, newest_older),
            state="missed",
            server_id=self.server_id,
            at=self.clock.now(),
            reason=reason,
        )
        return recent

    # -- starting runs, one ritual at a time, slot by slot -------------------------------------------

    def _drain_soon(self, ritual_id: str) -> None:
        if ritual_id not in self._draining and self._tasks is not None:
            self._draining.add(ritual_id)
            self._tasks.start_soon(self._drain, ritual_id)

    async def _drain(self, ritual_id: str) -> None:
        """Start (or skip, or queue) this server's open fires of one ritual, in slot order."""
        try:
            while True:
                changed = self.changed.watch()
                ritual = await self.store.ritual_by_id(ritual_id)
                open_fires = await self.store.open_fires(ritual_id)
                mine = [fire for fire in open_fires if fire.claimed_by == self.server_id]
                if ritual is None or not mine:
                    return
                fire = mine[0]
                if open_fires[0].id != fire.id:
                    # An earlier slot belongs to another server: it goes first.
                    with anyio.move_on_after(_QUEUE_RECHECK_S):
                        await changed.wait()
                    continue
                await self._start_in_turn(ritual, fire, mine, changed)
        except ShuttingDown:
            pass  # what is left stays claimed: the next server to fire takes it over
        finally:
            self._draining.discard(ritual_id)

    async def _start_in_turn(
        self, ritual: RitualRow, fire: FireRow, mine: Sequence[FireRow], changed: anyio.Event
    ) -> None:
        """Apply the overlap policy to the oldest open fire: start it, skip it, or wait (queue)."""
        running = await self.live_runs(ritual)
        if running and ritual.overlap == "forbid":
            reason = f"{_runs(running)} was still running (overlap=forbid)"
            await self._record(fire, state="skipped", reason=reason, ritual=ritual)
        elif running and ritual.overlap == "queue":
            # Every fire behind the run says so, in slot order, up to the cap.
            waiting = sum(1 for other in mine if other.state == "queued")
            for other in mine:
                if other.state != "claimed":
                    continue
                if waiting >= MAX_QUEUED:
                    reason = f"{waiting} fires already wait for {_runs(running)} to end (overlap=queue)"
                    await self._record(other, state="skipped", reason=reason, ritual=ritual)
                else:
                    reason = f"waits for {_runs(running)} to end"
                    await self._record(other, state="queued", reason=reason, ritual=ritual)
                    waiting += 1
            await self._until_ended_or_changed([run.mission_id for run in running if run.mission_id], changed)
        else:
            if running and ritual.overlap == "replace":
                await self.supervisor.kill([run.mission_id for run in running if run.mission_id])
            await self._start(ritual, fire)

    async def _until_ended_or_changed(self, mission_ids: list[str], changed: anyio.Event) -> None:
        """Until one of the runs ends, or rituals.db changes (a new fire to queue behind them)."""
        async with anyio.create_task_group() as race:

            async def ended() -> None:
                await self.supervisor.wait(mission_ids, mode="any", timeout_s=_QUEUE_RECHECK_S)
                race.cancel_scope.cancel()

            race.start_soon(ended)
            await changed.wait()
            race.cancel_scope.cancel()

    async def live_runs(self, ritual: RitualRow) -> list[FireRow]:
        """The ritual's started fires whose missions have not ended."""
        live = []
        for fire in await self.store.running_fires(ritual.id):
            try:
                row = await self.supervisor.mission(fire.mission_id or "")
            except NotFound:
                row = None
            if row is not None and row.status in LIVE:
                live.append(fire)
            else:
                await self.store.mark_ended(fire.id)
        return live

    async def _start(self, ritual: RitualRow, fire: FireRow) -> None:
        run = Run(ritual=ritual.name, slot=fire.slot, name=run_name(ritual.name, fire.slot))
        spawn = SpawnRequest.model_validate(ritual.spawn) if ritual.spawn is not None else None
        try:
            spawned = await launch(self.supervisor, spawn, ritual.blueprint, run)
        except ShuttingDown:
            raise  # left claimed: the next server to fire takes it over (and starts it, within the grace)
        except OvermindError as exc:
            await self._record(fire, state="failed", reason=f"could not start: {exc}", ritual=ritual)
            return
        except Exception as exc:
            logger.exception("ritual %s: the run of %s could not start", ritual.name, fire.slot)
            await self._record(fire, state="failed", reason=f"could not start: internal error ({exc})", ritual=ritual)
            return
        await self._started(ritual, fire, spawned.id, spawned.name)

    async def _started(self, ritual: RitualRow, fire: FireRow, mission_id: str, mission_name: str) -> None:
        at = self.clock.now()
        await self.store.update_fire(
            fire.id,
            owner=self.server_id,
            state="started",
            mission_id=mission_id,
            mission_name=mission_name,
            started_at=at,
            reason=None,
        )
        await self.store.add_quest(QuestRow(mission_id, mission_name, "ritual", ritual.name, fire.slot, at))

    async def _record(self, fire: FireRow, *, state: str, reason: str, ritual: RitualRow) -> None:
        await self.store.update_fire(fire.id, owner=self.server_id, state=state, reason=reason)
        if state != "queued":
            logger.info("ritual %s, slot %s: %s (%s)", ritual.name, iso(fire.slot, ritual.tz), state, reason)

    # -- fires whose server died ---------------------------------------------------------------------

    async def _adopt_orphans(self, now: float, live: set[str]) -> None:
        """Take over the open fires of servers that have gone: start them, or say why not."""
        for fire in await self.store.open_fires():
            if fire.claimed_by in live or not await self.store.take_over(fire.id, fire.claimed_by, self.server_id):
                continue
            ritual = await self.store.ritual_by_id(fire.ritual_id)
            if ritual is None:
                continue
            fire.claimed_by = self.server_id
            started = await self._run_of(ritual, fire)
            if started is not None:
                await self._started(ritual, fire, started.id, started.name)
                continue
            late = now - fire.due
            if ritual.misfire_grace_s is not None and late > ritual.misfire_grace_s:
                reason = (
                    f"its server stopped before starting it, and {late:.0f}s late it is beyond "
                    f"misfire_grace_s={ritual.misfire_grace_s:g}"
                )
                await self._record(fire, state="missed", reason=reason, ritual=ritual)
                continue
            self._drain_soon(ritual.id)

    async def _run_of(self, ritual: RitualRow, fire: FireRow) -> MissionRow | None:
        """The run a dead server started for this fire before it could record it, if any."""
        name = run_name(ritual.name, fire.slot)
        try:
            row = await self.supervisor.mission(name)
        except NotFound:
            return None
        # The same name on an older mission is a person's, not this fire's.
        return row if row.name == name and row.created_at >= fire.claimed_at - 1 else None


def _verdict(
    ritual: RitualRow, slot: int, due: float, now: float, firing_since: float, outage: list[int]
) -> str | None:
    """Why a due slot does not run (None: it runs)."""
    late = now - due
    if ritual.misfire_grace_s is not None and late > ritual.misfire_grace_s:
        return f"{late:.0f}s late, beyond misfire_grace_s={ritual.misfire_grace_s:g}"
    if due >= firing_since:
        return None
    if ritual.catch_up == "none":
        return "came due while no server was firing (catch_up=none)"
    if ritual.catch_up == "latest" and slot != outage[-1]:
        return f"came due while no server was firing; catch_up=latest runs only {iso(outage[-1], ritual.tz)}"
    return None


def _runs(fires: Sequence[FireRow]) -> str:
    names = ", ".join(fire.mission_name or fire.mission_id or "?" for fire in fires)
    return f"the earlier run {names}" if len(fires) == 1 else f"the earlier runs {names}"
