"""A mission's actor: a detached, named Ray actor that owns one run of a mission's child on its node.

It starts the keeper (keeper.py), which starts the child in a session of its own; the child
writes its output straight to spool files on the node (the kernel keeps every byte even if
the actor dies). The coordinator pulls the output from those files by byte offset and appends
it to the mission's own files, so a coordinator that crashed and came back asks from where
its files end, and nothing is lost or written twice. The exit status stays with the actor
until a coordinator has pulled the last byte; then the coordinator calls `finish` and kills
the actor.

The actor runs in Ray's asyncio loop on the node: everything here is asyncio, and waits on
events (inotify on the spool files, the keeper's report pipe), never on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

import psutil

from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.runners.ray.protocol import (
    CHUNK_BYTES,
    ActorLaunch,
    ActorState,
    Chunk,
    Exit,
    NodeInfo,
    Started,
    StartFailed,
)

KEEPER = Path(__file__).with_name("keeper.py")
# A pull waits this long for output at most, so that a pull from a coordinator that died meanwhile
# does not wait in the actor for ever.
PULL_WAIT_S = 30.0


def spool_root() -> Path:
    return Path(tempfile.gettempdir()) / "overmind-ray"


class MissionActor:
    def __init__(self, launch: ActorLaunch) -> None:
        self._launch = launch
        self._spool = spool_root() / launch.namespace / launch.actor_name.replace("/", "-")
        self._started: Started | None = None
        self._exit: Exit | None = None
        self._control: int | None = None
        self._stdin: int | None = None
        self._stdout: int | None = None
        self._stderr: int | None = None
        self._changed: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._watcher: FileWatcher | None = None
        self._watches = contextlib.ExitStack()

    # -- starting ----------------------------------------------------------------------------

    async def start(self) -> Started | StartFailed:
        import ray

        launch = self._launch
        context = ray.get_runtime_context()
        ip = ray.util.get_node_ip_address()
        node = NodeInfo(node_id=context.get_node_id(), ip=ip, hostname=socket.gethostname())
        if not _is_directory(launch.cwd):
            return StartFailed(
                f"cwd {launch.cwd!r} does not exist on node {node.label} ({node.hostname}): a Ray child runs in "
                "the repository present on its node, at the same path as on the server; check it out there "
                "(or share it), or place the mission on a node that has it"
            )
        if launch.loopback_callback is not None and ip != launch.coordinator_ip:
            return StartFailed(
                f"this child would call overmind's tools at {launch.loopback_callback}, a loopback address that node "
                f"{node.label} cannot reach: serve the MCP endpoint where the nodes reach it "
                "(overmind-mcp serve --http --host <address the nodes reach> --allow-remote; each child "
                "authenticates with a token of its own), or spawn it with delegate=false"
            )
        keeper = self._start_keeper()
        assert keeper.stdout is not None
        # Its first half exits at once (keeper.py says why); the keeper itself talks on the pipe.
        await _reap(keeper)
        reports = _Reports(keeper.stdout)
        first = await reports.next()
        if "pid" not in first:
            reports.close()
            self._close()
            self._remove_spool()
            return StartFailed(str(first.get("error", "the keeper failed to start the child")))
        pid = int(first["pid"])
        try:
            start_time = psutil.Process(pid).create_time()
        except psutil.Error:
            start_time = 0.0  # it has ended already; the keeper reports how
        self._started = Started(node=node, pid=pid, start_time=start_time)
        self._changed = asyncio.Event()
        self._watcher = FileWatcher()
        stdout_changed = self._watches.enter_context(self._watcher.watch(self._spool / "stdout"))
        stderr_changed = self._watches.enter_context(self._watcher.watch(self._spool / "stderr"))
        self._tasks = [
            asyncio.create_task(self._watcher.run()),
            asyncio.create_task(self._relay(stdout_changed)),
            asyncio.create_task(self._relay(stderr_changed)),
            asyncio.create_task(self._await_exit(reports)),
        ]
        return self._started

    def _start_keeper(self) -> subprocess.Popen[bytes]:
        """The keeper, started on the child's spool files, with the pipes the actor keeps the other ends of."""
        launch = self._launch
        self._spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        stdout_path, stderr_path = self._spool / "stdout", self._spool / "stderr"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        out_fd, err_fd = os.open(stdout_path, flags, 0o600), os.open(stderr_path, flags, 0o600)
        self._stdout = os.open(stdout_path, os.O_RDONLY | os.O_CLOEXEC)
        self._stderr = os.open(stderr_path, os.O_RDONLY | os.O_CLOEXEC)
        control_read, self._control = os.pipe()
        stdin_read, self._stdin = os.pipe() if launch.stdin_pipe else (self._stdin_file(), None)
        try:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    str(KEEPER),
                    "--control",
                    str(control_read),
                    "--stdout",
                    str(out_fd),
                    "--spool",
                    str(self._spool),
                    "--env",
                    str(self._write_environment()),
                    "--",
                    *launch.argv,
                ],
                stdin=stdin_read,
                stdout=subprocess.PIPE,
                stderr=err_fd,
                pass_fds=(control_read, out_fd),
                cwd=launch.cwd,
                close_fds=True,
                start_new_session=True,
            )
        finally:
            for fd in (control_read, out_fd, err_fd):
                os.close(fd)
            if stdin_read != subprocess.DEVNULL:
                os.close(stdin_read)

    def _stdin_file(self) -> int:
        """The child's stdin when it has no pipe: the bytes its launch carried, in a private spool file."""
        if self._launch.stdin_data is None:
            return subprocess.DEVNULL
        path = self._spool / "stdin"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(self._launch.stdin_data)
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def _write_environment(self) -> Path:
        """The child's environment, in a file only this user can read, for the keeper to take (and remove)."""
        path = self._spool / "env.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(self._environment(), file)
        return path

    def _environment(self) -> dict[str, str]:
        """The environment the node's Ray runs with (not the one Ray gave this worker), changed as the server
        changed its own for the child."""
        env: dict[str, str] = {}
        with contextlib.suppress(psutil.Error, KeyError, ValueError):
            env = dict(psutil.Process(int(os.environ["RAY_RAYLET_PID"])).environ())
        if not env:
            env = dict(os.environ)
        for name in self._launch.env_unset:
            env.pop(name, None)
        env.update(self._launch.env_set)
        return env

    async def _relay(self, wakeup: Wakeup) -> None:
        while True:
            await wakeup.wait()
            self._announce()

    def _announce(self) -> None:
        """Wake every pull waiting for news (a new event for the next ones)."""
        if self._changed is not None:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    async def _await_exit(self, reports: _Reports) -> None:
        report: dict[str, object] = {}
        while "code" not in report and "signal" not in report:
            report = await reports.next()
            if not report:
                break  # the keeper died without a word: it was killed, and its child with it
        code, number = report.get("code"), report.get("signal")
        reports.close()
        self._exit = Exit(
            code=code if isinstance(code, int) else None,
            signal=number if isinstance(number, int) else None,
            lost=None if report else "its keeper on the node was killed, and the child with it",
        )
        self._close_input()
        self._announce()

    # -- what the coordinator asks -------------------------------------------------------------

    async def pull(self, stdout_offset: int, stderr_offset: int) -> Chunk:
        """Output past these offsets, as soon as there is some (or the child has ended, or PULL_WAIT_S passed)."""
        assert self._stdout is not None and self._stderr is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PULL_WAIT_S
        while True:
            changed = self._changed
            # Read after noting the exit: everything the child wrote is in the files by then.
            ended = self._exit
            out = os.pread(self._stdout, CHUNK_BYTES, stdout_offset)
            err = os.pread(self._stderr, CHUNK_BYTES, stderr_offset)
            if ended is not None and len(out) < CHUNK_BYTES and len(err) < CHUNK_BYTES:
                return Chunk(out, err, ended)
            if out or err or changed is None:
                return Chunk(out, err)
            left = deadline - loop.time()
            if left <= 0:
                return Chunk()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)

    async def signal(self, number: int) -> bool:
        """Send signal `number` to the child's whole process group (through its keeper); False once it has ended."""
        if self._control is None or self._exit is not None:
            return False
        try:
            os.write(self._control, bytes([number]))
        except OSError:
            return False
        return True

    async def write_stdin(self, data: bytes) -> None:
        if self._stdin is None:
            raise BrokenPipeError("the child's input is closed")
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        os.set_blocking(self._stdin, False)
        while view:
            try:
                written = os.write(self._stdin, view)
            except BlockingIOError:
                ready = loop.create_future()
                loop.add_writer(self._stdin, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_writer(self._stdin)
                continue
            view = view[written:]

    async def close_stdin(self) -> None:
        self._close_input()

    async def state(self) -> ActorState:
        return ActorState(
            launch=self._launch, started=self._started, exit=self._exit, accepts_input=self._stdin is not None
        )

    async def finish(self) -> None:
        """The coordinator has everything: end the child if it still runs (its keeper kills the group), clean up."""
        self._close()
        for task in self._tasks:
            task.cancel()
        self._watches.close()
        if self._watcher is not None:
            self._watcher.close()
        self._remove_spool()

    def _remove_spool(self) -> None:
        shutil.rmtree(self._spool, ignore_errors=True)
        with contextlib.suppress(OSError):
            self._spool.parent.rmdir()  # the namespace's folder, once its last mission is gone

    def _close_input(self) -> None:
        if self._stdin is not None:
            with contextlib.suppress(OSError):
                os.close(self._stdin)
            self._stdin = None

    def _close(self) -> None:
        self._close_input()
        for name in ("_control", "_stdout", "_stderr"):
            fd = getattr(self, name)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, None)


class _Reports:
    """The keeper's JSON lines, read from its stdout pipe without blocking the actor's loop."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._pipe = pipe
        self._fd = pipe.fileno()
        self._buffer = b""
        os.set_blocking(self._fd, False)

    def close(self) -> None:
        self._pipe.close()

    async def next(self) -> dict[str, object]:
        """The next report; {} once the keeper has closed its end."""
        while b"\n" not in self._buffer:
            await _readable(self._fd)
            try:
                data = os.read(self._fd, 4096)
            except BlockingIOError:
                continue
            if not data:
                return {}
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        report = json.loads(line)
        return report if isinstance(report, dict) else {}


def _is_directory(path: str) -> bool:
    return Path(path).is_dir()


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, ready.set_result, None)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def _reap(keeper: subprocess.Popen[bytes]) -> None:
    """Wait for the keeper's first half to exit (on its pidfd) and reap it."""
    pidfd = os.pidfd_open(keeper.pid)
    try:
        await _readable(pidfd)
    finally:
        os.close(pidfd)
    keeper.wait()
