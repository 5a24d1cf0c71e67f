"""Child processes: started in their own process group, awaited without threads, ended whole.

Each child is the leader of a new session and process group, so one signal reaches
everything it started. Its stdout and stderr go straight to files, never through the
server: the kernel writes every byte to durable storage even if the server dies, and a
child never blocks on a full pipe nobody reads.

Exit is awaited on a pidfd (readable when the process ends), not with a thread per
child. When the leader ends, it is left unreaped for a moment: a zombie keeps its pid,
so its process-group id cannot be reused, and killing the group then reaches exactly
the leftovers of this child (grandchildren that ignored SIGTERM, stray background
jobs) and nothing else. Only then is the leader reaped. A mission's process group
never outlives its leader.

A child adopted from an earlier server (after a crash) is not our child: its exit is
still awaited on a pidfd, but its exit status is gone with the server that reaped it,
and every signal first checks that the pid still names the process we started (pid
plus kernel start time); leftovers of its group are found by their mission id.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread
import psutil

from overmind_mcp.core.exits import ExitStatus
from overmind_mcp.errors import SpawnError
from overmind_mcp.runners.base import RunRecord
from overmind_mcp.storage import files


@dataclass(eq=False)
class ChildProcess:
    pid: int
    # None until `identify` reads it (for our own child; an adopted one comes with it).
    start_time: float | None
    stdin: int | None = None
    exit_status: ExitStatus | None = None
    # None for our own child; the mission id for a process adopted from an earlier server.
    adopted_for: str | None = None
    _exited: anyio.Event = field(default_factory=anyio.Event)
    _reaped: bool = False

    @classmethod
    def adopt(cls, pid: int, start_time: float, mission_id: str) -> ChildProcess:
        return cls(pid=pid, start_time=start_time, adopted_for=mission_id)

    @property
    def pgid(self) -> int:
        return self.pid

    @property
    def running(self) -> bool:
        return not self._exited.is_set()

    @property
    def accepts_input(self) -> bool:
        return self.stdin is not None

    def record(self) -> RunRecord:
        return RunRecord(pid=self.pid, pgid=self.pgid, start_time=self.start_time)

    async def identify(self) -> RunRecord:
        if self.start_time is None:
            # In a worker thread: the kernel makes a read of a child's stat wait while the child still execs
            # (a Python or Node child: about 2 ms). Unreaped until `wait`, so the pid is still this child's.
            self.start_time = await anyio.to_thread.run_sync(process_start_time, self.pid) or 0.0
        return self.record()

    def signal_group(self, sig: signal.Signals) -> bool:
        """Send `sig` to the child's whole process group. False if it has already ended.

        Safe against pid reuse: our own child's group is only signalled while its leader
        is unreaped (an unreaped pid cannot be given to another process); an adopted one
        only while its pid still has the start time we recorded.
        """
        if self._reaped or self.pid <= 0:  # killpg(0) would signal our own group
            return False
        if self.adopted_for is not None and not same_process(self.pid, self.start_time):
            return bool(kill_leftovers(self.pgid, self.adopted_for, sig))
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            return False
        return True

    async def wait(self) -> ExitStatus:
        """Wait for the child to end, kill whatever it left in its group, and reap it.

        Must be called by exactly one task: the mission's supervisor.
        """
        if self.adopted_for is not None:
            return await self._wait_adopted(self.adopted_for)
        pidfd = os.pidfd_open(self.pid)
        try:
            await anyio.wait_readable(pidfd)
        finally:
            os.close(pidfd)
        # The pidfd said it has exited, so neither call below blocks.
        info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)  # noqa: ASYNC222
        if info is None:
            raise RuntimeError(f"pid {self.pid} was reported ended but has no exit status")
        if info.si_code == os.CLD_EXITED:
            self.exit_status = ExitStatus(code=info.si_status, signal=None)
        else:
            self.exit_status = ExitStatus(code=None, signal=info.si_status)
        # The leader is a zombie now: its pgid is still ours, so this reaches only its leftovers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        os.waitpid(self.pid, 0)  # noqa: ASYNC222
        return self._ended()

    async def _wait_adopted(self, mission_id: str) -> ExitStatus:
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            pidfd = None
        if pidfd is not None:
            try:
                if same_process(self.pid, self.start_time):
                    await anyio.wait_readable(pidfd)
            finally:
                os.close(pidfd)
        # Whoever reaped it kept its exit status; what we know comes from its output.
        self.exit_status = ExitStatus(code=None, signal=None)
        kill_leftovers(self.pgid, mission_id, signal.SIGKILL)
        return self._ended()

    def _ended(self) -> ExitStatus:
        self._reaped = True
        self.close_stdin()
        self._exited.set()
        assert self.exit_status is not None
        return self.exit_status

    def close_stdin(self) -> None:
        if self.stdin is not None:
            with contextlib.suppress(OSError):
                os.close(self.stdin)
            self.stdin = None

    async def write_stdin(self, data: bytes) -> None:
        """Write to the child's stdin pipe (live sessions). Raises BrokenPipeError once it has gone."""
        if self.stdin is None:
            raise BrokenPipeError("stdin is closed")
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.stdin, view)
            except BlockingIOError:
                await anyio.wait_writable(self.stdin)
                continue
            view = view[written:]


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdout_path: Path,
    stderr_path: Path,
    stdin_pipe: bool = False,
    stdin_path: Path | None = None,
) -> ChildProcess:
    """Start `argv` (never through a shell) as the leader of a new process group.

    stdin is /dev/null unless `stdin_pipe` (a pipe we write) or `stdin_path` (a file the
    child reads, e.g. its prompt): a child must never inherit the server's stdin, which on
    stdio is the MCP connection itself.
    """
    stdout_fd = files.open_private(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    stderr_fd = files.open_private(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    stdin_read: int
    stdin_write: int | None = None
    if stdin_pipe:
        stdin_read, stdin_write = os.pipe()
    elif stdin_path is not None:
        stdin_read = files.open_private(stdin_path, os.O_RDONLY)
    else:
        stdin_read = subprocess.DEVNULL
    try:
        popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=stdin_read,
            stdout=stdout_fd,
            stderr=stderr_fd,
            close_fds=True,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if stdin_write is not None:
            os.close(stdin_write)
        raise SpawnError(f"cannot start {argv[0]!r}: no such program ({exc.strerror})") from None
    except PermissionError as exc:
        if stdin_write is not None:
            os.close(stdin_write)
        raise SpawnError(f"cannot start {argv[0]!r}: {exc.strerror}") from None
    finally:
        os.close(stdout_fd)
        os.close(stderr_fd)
        if stdin_read >= 0:
            os.close(stdin_read)
    # We reap the child ourselves (see ChildProcess.wait); keep Popen from trying again later.
    popen.returncode = 0
    if stdin_write is not None:
        os.set_blocking(stdin_write, False)
    return ChildProcess(pid=popen.pid, start_time=None, stdin=stdin_write)


def process_start_time(pid: int) -> float | None:
    """The kernel's start time of `pid`: with the pid, it names one process for good."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def same_process(pid: int, start_time: float | None) -> bool:
    """Whether `pid` still names the process that started at `start_time` (never trust a bare pid)."""
    current = process_start_time(pid)
    return current is not None and start_time is not None and abs(current - start_time) < 0.01


def kill_leftovers(pgid: int, mission_id: str, sig: signal.Signals) -> int:
    """Signal the processes of a group whose leader is gone and was not ours to reap.

    The group id alone could in principle have been reused, so each process must also
    carry the mission's id in its environment (children inherit it). Returns how many.
    """
    if pgid <= 0:
        return 0
    signalled = 0
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) != pgid or process.environ().get("OVERMIND_MISSION_ID") != mission_id:
                continue
            process.send_signal(sig)
            signalled += 1
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return signalled


def find_leader(mission_id: str) -> tuple[int, float] | None:
    """The pid and start time of the process started for a mission whose pid was never recorded.

    The server writes the pid just after starting the child; a server killed in between
    leaves a row without one. The child carries its mission id in its environment and
    leads its own process group, which identifies it.
    """
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) != process.pid:
                continue
            if process.environ().get("OVERMIND_MISSION_ID") == mission_id:
                return process.pid, process.create_time()
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return None
