"""What tells the dashboard to look again: one small subscription interface.

Three signals stand behind it: the host server's event bus (what its own missions do:
spawned, started, output, progress, turns, ends), the store's change signal (every commit,
by any process on the state directory, writes the WAL file), and the output files of live
missions (what missions of other servers print, which no bus of ours carries). When the bus
carries the other servers' news too, `Changes` is implemented over it alone.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc

from overmind_mcp.bus import EventBus
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.storage.changes import COMMIT_SETTLE_S, change_signal, relay


class Changes(Protocol):
    """Something on the state directory may have changed."""

    async def follow_outputs(self, paths: Collection[Path]) -> None:
        """The output files whose growth matters now (those of live missions); replaces the last set."""

    async def wait(self) -> None:
        """Return once anything changed since the last call returned."""


class StateChanges:
    """`Changes` from a server's bus, the store's change signal and the output files. Start `run` first."""

    def __init__(self, watcher: FileWatcher, database_path: Path, bus: EventBus | None) -> None:
        self._watcher = watcher
        self._database_path = database_path
        self._bus = bus
        self._wakeup = Wakeup()
        self._outputs: dict[Path, anyio.CancelScope] = {}
        self._tasks: anyio.abc.TaskGroup | None = None

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            commits = Wakeup()
            await tasks.start(relay, self._watcher, change_signal(self._database_path), commits)
            tasks.start_soon(self._settle, commits)
            if self._bus is not None:
                tasks.start_soon(self._relay_bus, self._bus)
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                self._tasks = None
                self._outputs.clear()

    async def follow_outputs(self, paths: Collection[Path]) -> None:
        assert self._tasks is not None, "StateChanges.run is not running"
        wanted = set(paths)
        for path in list(self._outputs):
            if path not in wanted:
                self._outputs.pop(path).cancel()
        for path in wanted - self._outputs.keys():
            try:
                self._outputs[path] = await self._tasks.start(relay, self._watcher, path, self._wakeup)
            except FileNotFoundError:
                continue  # a queued mission has no output yet: asked again at the next look

    async def wait(self) -> None:
        await self._wakeup.wait()

    async def _settle(self, commits: Wakeup) -> None:
        while True:
            await commits.wait()
            self._wakeup.set()
            settled = False
            while not settled:
                with anyio.move_on_after(COMMIT_SETTLE_S) as quiet:
                    await commits.wait()
                    self._wakeup.set()
                settled = quiet.cancelled_caught
            self._wakeup.set()

    async def _relay_bus(self, bus: EventBus) -> None:
        # Any event is a reason to look again; a subscriber that lags has missed some: same thing.
        with bus.subscribe(buffer=16) as events:
            async for _event in events:
                self._wakeup.set()
