"""`wait`: until missions end (all of them, or any), a timeout passes, or the caller goes away.

Woken by the event bus for the missions this server supervises, and by the store's change
signal (every commit by any process writes the WAL) for those another server runs, so it
never polls. A live session counts as done once it is idle: it has answered what it was sent.
It also returns, early, when a permission request comes up for the caller to answer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import anyio

from overmind_mcp.bus import BusEvent, EventBus, StoreChanged, about
from overmind_mcp.core.status import LIVE
from overmind_mcp.models import WaitResult
from overmind_mcp.permissions.broker import Inbox
from overmind_mcp.readside.queries import ReadSide
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.storage.changes import relay_commits
from overmind_mcp.storage.missions import MissionRow

ProgressCallback = Callable[[float, float | None, str], Awaitable[None]]

_REPORT_INTERVAL_S = 1.0


class WaitEngine:
    def __init__(
        self, read: ReadSide, bus: EventBus, watcher: FileWatcher, database_path: Path, *, heartbeat_s: float
    ) -> None:
        self._read = read
        self._bus = bus
        self._watcher = watcher
        self._database_path = database_path
        self._heartbeat_s = heartbeat_s

    async def wait(
        self,
        rows: list[MissionRow],
        *,
        mode: Literal["all", "any"],
        timeout_s: float,
        on_progress: ProgressCallback | None = None,
        inbox: Inbox | None = None,
    ) -> WaitResult:
        ids = list(dict.fromkeys(row.id for row in rows))
        concerns = about(frozenset(ids))

        def accepts(event: BusEvent) -> bool:
            return concerns(event) or (inbox is not None and inbox.accepts(event))

        # Subscribed before anything is looked at: an end that happens while we look still wakes us.
        with self._bus.subscribe(accepts) as changes:
            foreign = {row.id for row in rows if self._read.live.mission(row.id) is None and row.status in LIVE}
            async with anyio.create_task_group() as relay:
                if foreign:
                    relay.start_soon(self._relay_store_changes)
                answer = await self._loop(ids, foreign, mode, timeout_s, on_progress, changes.changed, inbox)
                relay.cancel_scope.cancel()
        if inbox is not None:
            answer.needs_approval = inbox.take()
        return answer

    async def _relay_store_changes(self) -> None:
        """Wake waiters whenever any process commits to the store (for missions other servers run)."""
        commits = Wakeup()
        async with anyio.create_task_group() as task_group:
            await task_group.start(relay_commits, self._watcher, self._database_path, commits)
            while True:
                await commits.wait()
                self._bus.publish(StoreChanged())

    async def _loop(
        self,
        ids: list[str],
        foreign: set[str],
        mode: Literal["all", "any"],
        timeout_s: float,
        on_progress: ProgressCallback | None,
        changed: Callable[[float | None], Awaitable[bool]],
        inbox: Inbox | None,
    ) -> WaitResult:
        started = time.monotonic()
        deadline = started + timeout_s
        last_report, reported_done, last_elapsed = started, -1, -1.0
        while True:
            for mission_id in list(foreign):
                row = await self._read.store.get(mission_id)
                if row is None or row.status not in LIVE:
                    foreign.discard(mission_id)
            done = [mission_id for mission_id in ids if mission_id not in foreign and self._is_done(mission_id)]
            satisfied = len(done) == len(ids) if mode == "all" else bool(done)
            now = time.monotonic()
            asked = inbox is not None and inbox.unseen()
            if satisfied or now >= deadline or asked:
                break
            # Report each completion at once, other news at most once a second, and a
            # heartbeat when nothing happens, so the caller always sees the wait is alive.
            if on_progress is not None and (len(done) != reported_done or now - last_report >= _REPORT_INTERVAL_S):
                # Progress must grow with every notification, even two in the same millisecond.
                elapsed = max(round(now - started, 3), round(last_elapsed + 0.001, 3))
                last_report, reported_done, last_elapsed = now, len(done), elapsed
                await on_progress(elapsed, timeout_s, self._describe(ids, len(done)))
            await changed(min(deadline - now, self._heartbeat_s))
        return WaitResult(
            done=[self._read.result(await self._read.row(mission_id)) for mission_id in done],
            pending=[
                self._read.summary(await self._read.row(mission_id)) for mission_id in ids if mission_id not in done
            ],
            timed_out=not satisfied and not asked,
        )

    def _is_done(self, mission_id: str) -> bool:
        mission = self._read.live.recent(mission_id)
        # A mission not live here has ended (those other servers run are checked in the store).
        return mission is None or mission.ended.is_set() or mission.session_state() == "idle"

    def _describe(self, ids: list[str], done: int) -> str:
        parts = [f"{done}/{len(ids)} done"]
        for mission_id in ids:
            mission = self._read.live.mission(mission_id)
            if mission is not None and not mission.ended.is_set():
                activity = mission.activity
                cost = f", ${activity.cost_usd:.4f}" if activity.cost_usd else ""
                doing = activity.doing() or "starting"
                position = self._read.live.queue_position(mission_id)
                if position is not None:
                    doing = f"queued (#{position})"
                parts.append(f"{mission.name}: {doing}{cost}")
        return " · ".join(parts)
