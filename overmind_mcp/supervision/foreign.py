"""Ending and awaiting missions another process supervises, safely, from any process.

The console owns no mission, so every kill and every wait goes through the store and the kernel:

- a process is named by its pid plus its kernel start time, never a bare pid (and
  `ChildProcess.adopt` checks that again before each signal);
- `stop_request` is stored before the first signal, so the owning server records that the
  mission was stopped on request, not that it crashed;
- the whole process group gets SIGINT, then SIGTERM, then SIGKILL, each after a grace period;
- waiting is on events, not a polling loop: a pidfd turns readable when a process ends,
  and every commit to the store, by any process, writes the WAL file, which inotify reports.

Everything here takes the public pieces (a `Store`, a `FileWatcher`, rows), not the
console's own state, so a server ends another server's missions with the same calls,
and the signal ladder is the one every mission is ended with (termination.py).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
import anyio.abc
import psutil

from overmind_mcp.core.status import LIVE
from overmind_mcp.models import KillOutcome, KillResult
from overmind_mcp.runners.local.process import ChildProcess, same_process
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.storage.changes import relay, relay_commits
from overmind_mcp.storage.missions import MissionRow, Store
from overmind_mcp.supervision import termination
from overmind_mcp.supervision.tree import kill_order

Orphan = Literal["orphaned", "unrecorded"]


async def live_owners(store: Store, rows: Iterable[MissionRow]) -> dict[str, tuple[int, float]]:
    """pid and start time of each still-running server among those owning these rows, by id."""
    found = await store.servers({row.server_id for row in rows if row.server_id})
    return {
        server_id: (pid, start)
        for server_id, (pid, start, stopped_at) in found.items()
        if stopped_at is None and same_process(pid, start)
    }


def orphan_state(row: MissionRow, owners: Iterable[str]) -> Orphan | None:
    """Whether a live mission has lost its server (None while one supervises it, or once it has ended).

    "orphaned": its process still runs (or it waits in the queue), and the next server to start
    takes it over; "unrecorded": its process has ended, and the next server to start records how.
    """
    if row.status not in LIVE or (row.server_id is not None and row.server_id in owners):
        return None
    if row.status == "queued" or (row.pid is not None and is_running(row.pid, row.proc_start)):
        return "orphaned"
    return "unrecorded"


def is_running(pid: int, start_time: float | None) -> bool:
    """Whether the process that is `pid` since `start_time` still runs.

    A zombie has ended: with its server gone, its parent is init, which may be slow to reap
    it (or, in a container, never does), and its pid still carries the same start time.
    """
    if not same_process(pid, start_time):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def watch_process(pid: int, start_time: float | None, wakeup: Wakeup) -> None:
    """Set `wakeup` when the process that is `pid` since `start_time` ends (at once if it has)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        wakeup.set()
        return
    try:
        # Checked after the pidfd is open: from here on the pid cannot name another process.
        if same_process(pid, start_time):
            await anyio.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    wakeup.set()


@dataclass(slots=True)
class Waited:
    """Where a wait left the missions it watched."""

    rows: dict[str, MissionRow | None]
    done: list[str] = field(default_factory=list)  # ended, and recorded (or deleted)
    unrecorded: list[str] = field(default_factory=list)  # ended while no server watched them
    timed_out: bool = False


async def until_ended(
    store: Store,
    watcher: FileWatcher,
    database_path: Path,
    ids: Sequence[str],
    *,
    mode: Literal["all", "any"] = "all",
    timeout_s: float | None = None,
    also_watch: Sequence[Path] = (),
    on_wake: Callable[[bool], Awaitable[None]] | None = None,
) -> Waited:
    """Wait until the store shows these missions ended (all of them, or any), or the timeout passes.

    A mission whose server has gone is done once its process has ended too: no one records it
    until a server starts (`unrecorded`). Wakes on every commit to the store, on writes to the
    files in `also_watch`, and on the end of each watched mission's process and of its server,
    so a crash is noticed at once. `on_wake(finished)` runs at each wake-up, after the store was
    read, so whatever it reads then is complete when `finished` is true.
    """
    wakeup = Wakeup()
    waited = Waited(rows={})
    async with anyio.create_task_group() as task_group:
        await task_group.start(relay_commits, watcher, database_path, wakeup)
        for path in also_watch:
            await task_group.start(relay, watcher, path, wakeup)
        watched: set[tuple[int, float | None]] = set()
        with anyio.move_on_after(timeout_s) as scope:
            while True:
                waited = Waited(rows={mission_id: await store.get(mission_id) for mission_id in ids})
                live = [row for row in waited.rows.values() if row is not None and row.status in LIVE]
                owners = await live_owners(store, live)
                for mission_id, row in waited.rows.items():
                    if row is None or row.status not in LIVE:
                        waited.done.append(mission_id)
                    elif orphan_state(row, owners) == "unrecorded":
                        waited.unrecorded.append(mission_id)
                finished = len(waited.done) + len(waited.unrecorded)
                satisfied = finished == len(ids) or (mode == "any" and finished > 0)
                if on_wake is not None:
                    await on_wake(satisfied)
                if satisfied:
                    break
                processes = [(row.pid, row.proc_start) for row in live if row.pid is not None]
                for process in processes + list(owners.values()):
                    if process not in watched:
                        watched.add(process)
                        task_group.start_soon(watch_process, process[0], process[1], wakeup)
                await wakeup.wait()
        waited.timed_out = scope.cancelled_caught
        task_group.cancel_scope.cancel()
    return waited


async def terminate_foreign(
    store: Store, watcher: FileWatcher, database_path: Path, row: MissionRow, *, force: bool, grace_s: float
) -> str:
    """End a mission another process supervises; returns the signal that ended it, or why none was sent.

    Returns once the owning server has recorded the end (or `grace_s + 2` seconds later); at
    once when the owner has gone, since nobody will record it before the next server starts.
    """
    if row.status not in LIVE:
        return f"already {row.status}"
    if row.status in ("queued", "restarting"):
        # No process to signal: it waits for a free slot or for its next run. The request asks
        # its server not to start it (again); see the report of issue 9 for where it looks.
        await store.update(row.id, stop_request="SIGKILL" if force else "SIGINT")
        ended_by = f"it was {row.status}: its server is asked not to start it"
    elif row.pid is None:
        # The server stores the pid a moment after the mission row; nothing to signal yet.
        return "its process had not started yet"
    elif same_process(row.pid, row.proc_start):
        try:
            ended_by = await _signal_until_ended(store, row, force=force, grace_s=grace_s)
        except PermissionError:
            return "not allowed to signal it: it belongs to another user"
    else:
        ended_by = "its process had already ended"
        if await live_owners(store, [row]):
            # Its server may be about to run it again (a restart, a session a person held): this stops that.
            await store.update(row.id, stop_request="SIGKILL" if force else "SIGINT")
    if await live_owners(store, [row]):
        # Its server records the end (a moment after the process ends): answer with that record.
        await until_ended(store, watcher, database_path, [row.id], timeout_s=grace_s + 2)
    return ended_by


async def _signal_until_ended(store: Store, row: MissionRow, *, force: bool, grace_s: float) -> str:
    assert row.pid is not None
    process = ChildProcess.adopt(row.pid, row.proc_start or 0.0, row.id)

    async def record(signal_name: str) -> None:
        # Recorded before each signal, so the owner reports a stop on request, not a crash.
        await store.update(row.id, stop_request="SIGKILL" if force else signal_name)

    # An adopted process's wait is its pidfd; it also kills what the leader left in its group.
    return await termination.ladder(process, process.wait, force=force, grace_s=grace_s, before=record)


async def kill_missions(
    store: Store,
    watcher: FileWatcher,
    database_path: Path,
    targets: Sequence[MissionRow],
    *,
    cascade: bool = True,
    force: bool = False,
    grace_s: float = 3.0,
) -> KillResult:
    """What the MCP `kill` does, for missions that are all supervised by other processes."""
    how: dict[str, str] = {}

    async def end(row: MissionRow) -> None:
        # Read again: it may have ended while its children were being ended.
        current = await store.get(row.id) or row
        how[row.id] = await terminate_foreign(store, watcher, database_path, current, force=force, grace_s=grace_s)

    levels = await kill_order(store, targets, cascade=cascade)
    for level in levels:
        async with anyio.create_task_group() as task_group:
            for row in level:
                task_group.start_soon(end, row)
    outcomes = []
    for level in levels:
        for row in level:
            current = await store.get(row.id) or row
            outcomes.append(KillOutcome(id=row.id, name=row.name, status=current.status, how=how[row.id]))  # type: ignore[arg-type]
    return KillResult(ended=outcomes)
