"""The local runner: each child a process-group leader on this machine (see process.py)."""

from __future__ import annotations

import signal

import anyio.to_thread
import psutil

from overmind_mcp.runners.base import Handle, Launch, RunRecord
from overmind_mcp.runners.local.process import ChildProcess, find_leader, kill_leftovers, same_process, spawn


class LocalRunner:
    name = "local"
    takes_slot = True

    async def start(self, launch: Launch) -> Handle:
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
        if record.pid is None or not _alive(record.pid, record.start_time):
            return None
        return ChildProcess.adopt(record.pid, record.start_time or 0.0, mission_id)

    async def find(self, mission_id: str) -> RunRecord | None:
        # A scan of every process's environment: off the event loop.
        found = await anyio.to_thread.run_sync(find_leader, mission_id)
        if found is None:
            return None
        pid, start_time = found
        return RunRecord(pid=pid, pgid=pid, start_time=start_time)

    async def sweep(self, mission_id: str, record: RunRecord) -> int:
        if record.pgid is None:
            return 0
        return await anyio.to_thread.run_sync(kill_leftovers, record.pgid, mission_id, signal.SIGKILL)


def _alive(pid: int, start_time: float | None) -> bool:
    """Whether the process still runs: a zombie has ended (its server died before reaping it, and
    init may be slow to), and adopting it would only report its end a moment later."""
    if not same_process(pid, start_time):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
