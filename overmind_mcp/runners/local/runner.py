"""The local runner: each child a process-group leader on this machine (see process.py), parented by the
state directory's keeper (see keeper.py) when it has one, so that its exit status and its input outlive
the server."""

from __future__ import annotations

import signal
from pathlib import Path

import anyio.to_thread
import psutil

from overmind_mcp.core.exits import UNKNOWN_EXIT, ExitStatus
from overmind_mcp.runners.base import Handle, Launch, RunRecord
from overmind_mcp.runners.local.kept import KEPT, KeeperClient, KeptChild, exit_on_disk
from overmind_mcp.runners.local.process import ChildProcess, find_leader, kill_leftovers, same_process, spawn


class LocalRunner:
    name = "local"
    takes_slot = True

    def __init__(self, keeper: KeeperClient | None = None) -> None:
        # None: the server parents its children itself (their exit status dies with it).
        self.keeper = keeper

    async def aclose(self) -> None:
        if self.keeper is not None:
            await self.keeper.aclose()

    async def start(self, launch: Launch) -> Handle:
        if self.keeper is not None:
            return await self.keeper.spawn(
                launch.mission_id,
                launch.argv,
                cwd=launch.cwd,
                env=launch.env,
                stdout_path=launch.stdout_path,
                stderr_path=launch.stderr_path,
                stdin_pipe=launch.stdin_pipe,
                stdin_path=launch.stdin_path,
            )
        return spawn(
            launch.argv,
            cwd=launch.cwd,
            env=launch.env,
            stdout_path=launch.stdout_path,
            stderr_path=launch.stderr_path,
            stdin_pipe=launch.stdin_pipe,
            stdin_path=launch.stdin_path,
        )

    async def adopt(self, mission_id: str, record: RunRecord) -> Handle | None:
        if self.keeper is not None:
            kept = await self.keeper.adopt(mission_id)
            if isinstance(kept, KeptChild):
                return kept
            if kept is not None:
                return None  # it ended meanwhile; its exit status is in its directory
        if record.pid is None or not _alive(record.pid, record.start_time):
            return None
        if record.extra.get(KEPT):
            # Its keeper died while no server ran: nobody can see how it ends any more, so it is ended
            # (recovery reports it lost, with the reason), as a server that saw the keeper die does.
            await self._sweep(mission_id, record)
            return None
        # Started before there was a keeper, or by a server that had none: not our child, status unknown.
        return ChildProcess.adopt(record.pid, record.start_time or 0.0, mission_id)

    async def find(self, mission_id: str) -> RunRecord | None:
        # A scan of every process's environment: off the event loop.
        found = await anyio.to_thread.run_sync(find_leader, mission_id)
        if found is None:
            return None
        pid, start_time = found
        return RunRecord(pid=pid, pgid=pid, start_time=start_time)

    async def settle(self, mission_id: str, record: RunRecord, mission_dir: Path) -> ExitStatus:
        await self._sweep(mission_id, record)
        # Its keeper wrote how it ended beside its output, if it had one and saw it end.
        exit_status = exit_on_disk(mission_dir, record.pid)
        if exit_status is None and record.extra.get(KEPT):
            lost = "its keeper died before it did, so nobody could see how it would end: it was ended"
            return ExitStatus(code=None, signal=None, lost=lost)
        return exit_status or UNKNOWN_EXIT

    async def _sweep(self, mission_id: str, record: RunRecord) -> None:
        if record.pgid is not None:
            await anyio.to_thread.run_sync(kill_leftovers, record.pgid, mission_id, signal.SIGKILL)


def _alive(pid: int, start_time: float | None) -> bool:
    """Whether the process still runs: a zombie has ended (its server died before reaping it, and
    init may be slow to), and adopting it would only report its end a moment later."""
    if not same_process(pid, start_time):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
