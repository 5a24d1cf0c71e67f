"""Waking up on every commit to a SQLite database, by any process, without polling.

Every commit writes the database's WAL file, and inotify reports the write; a watcher (the
local runner's `FileWatcher`) turns that into a wake-up. Everything here takes the watcher by
what it does, so the store's layer needs nothing above it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc

# How long the WAL must stay unwritten before a commit that woke a reader is surely visible (see relay_commits).
COMMIT_SETTLE_S = 0.05


class Signal(Protocol):
    def set(self) -> None: ...

    async def wait(self) -> None: ...


class Watcher(Protocol):
    def watch(self, path: Path) -> AbstractContextManager[Signal]:
        """A signal set whenever `path` is written to, for as long as the context lasts."""
        ...


async def relay(
    watcher: Watcher,
    path: Path,
    target: Signal,
    *,
    task_status: anyio.abc.TaskStatus[anyio.CancelScope] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Set `target` whenever `path` is written to. Started (with a scope that ends it) once the watch is in place."""
    with anyio.CancelScope() as scope, watcher.watch(path) as changes:
        task_status.started(scope)
        while True:
            await changes.wait()
            target.set()


async def relay_commits(
    watcher: Watcher,
    database_path: Path,
    target: Signal,
    *,
    task_status: anyio.abc.TaskStatus[anyio.CancelScope] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Set `target` after every commit to the store, by any process, and again once it is sure to be visible.

    The WAL file is written before a commit can be read: SQLite then marks it committed in the WAL
    index, a memory-mapped file whose writes inotify does not see. A reader woken by the write
    alone sometimes reads the state before it (measured: a stop request written by the console
    was not there at the wake-up, and was a millisecond later). So once the writes stop for
    `COMMIT_SETTLE_S`, `target` is set once more.
    """
    with anyio.CancelScope() as scope, watcher.watch(change_signal(database_path)) as changes:
        task_status.started(scope)
        while True:
            await changes.wait()
            target.set()
            settled = False
            while not settled:
                with anyio.move_on_after(COMMIT_SETTLE_S) as quiet:
                    await changes.wait()
                    target.set()
                settled = quiet.cancelled_caught
            target.set()


def change_signal(database_path: Path) -> Path:
    """The file every commit writes: the WAL, or the database itself if it is not in WAL mode."""
    wal = database_path.with_name(database_path.name + "-wal")
    return wal if wal.exists() else database_path
