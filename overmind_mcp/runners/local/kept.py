"""Children held by the keeper (keeper.py): the server's side of it.

`KeeperClient` is a server's one connection to its state directory's keeper, started on
first need; `KeptChild` is the handle of a child the keeper parents. Requests are answered
at once (the keeper never makes an answer wait), so one request at a time, under a lock;
notices (a signal, the end of a session's input) need no answer and are sent whole, as
every send is, from the event loop's thread: they never interleave with a request.

A child's end is seen on its pidfd (any process may open one), then asked of the keeper,
which has its exit status and has written it to `exit.json` by the time it answers. The
keeper's own pidfd is watched beside it: if the keeper dies first, nobody can learn how
the child ends any more, so its whole group is ended here (found by its mission id) and
it is reported `lost`, with that reason (keeper.py says why not PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from overmind_mcp.core.exits import ExitStatus
from overmind_mcp.errors import SpawnError
from overmind_mcp.runners.base import RunRecord
from overmind_mcp.runners.local import keeper as protocol
from overmind_mcp.runners.local.process import kill_leftovers, process_start_time, same_process
from overmind_mcp.storage import files

KEEPER_SCRIPT = Path(protocol.__file__)
KEPT = "keeper"
"""The runner-state key that says a child was started by the keeper (recovery asks it first)."""


class KeeperGone(Exception):
    """The keeper could not be reached, or went away mid-request."""


def exit_on_disk(mission_dir: Path, pid: int | None) -> ExitStatus | None:
    """The exit status the keeper wrote for the run whose leader was `pid`; None if there is none."""
    try:
        record = json.loads((mission_dir / protocol.EXIT_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or (pid is not None and record.get("pid") != pid):
        return None  # an earlier run's
    code, number = record.get("code"), record.get("signal")
    return ExitStatus(code=code if isinstance(code, int) else None, signal=number if isinstance(number, int) else None)


class KeeperClient:
    """This server's connection to the keeper of its state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._sock: socket.socket | None = None
        self._frames = protocol.Frames()
        self._lock = anyio.Lock()
        self.keeper_pid: int | None = None

    async def aclose(self) -> None:
        """Let go of the keeper (it leaves once it has no children and no server)."""
        self._disconnect()

    def _disconnect(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._frames.close()
        self._frames = protocol.Frames()

    def _connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(protocol.address(str(self.state_dir)))
        except OSError:
            sock.close()
            return None
        credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", credentials)
        if uid != os.getuid():
            sock.close()  # not ours: never hand our children's files to another user's process
            return None
        self.keeper_pid = pid
        return sock

    async def _connection(self, *, start: bool) -> socket.socket:
        if self._sock is not None:
            return self._sock
        sock = self._connect()
        if sock is None and start:
            await self._start_keeper()
            sock = self._connect()
        if sock is None:
            raise KeeperGone("no keeper runs for this state directory")
        self._sock = sock
        return sock

    async def _start_keeper(self) -> None:
        """Start a keeper and wait until it listens (or says another one already does)."""
        files.private_directory(self.state_dir)
        log = files.open_private(self.state_dir / "keeper.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        ready_read, ready_write = os.pipe()
        argv = [sys.executable, "-I", "-S", str(KEEPER_SCRIPT), "--state", str(self.state_dir)]
        try:
            # Started once per state directory, not per spawn: blocking for its fork is fine.
            first_half = subprocess.Popen(  # noqa: ASYNC220
                [*argv, "--ready", str(ready_write)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=(ready_write,),
                start_new_session=True,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            )
        finally:
            os.close(ready_write)
            os.close(log)
        try:
            while True:  # until both halves have closed the pipe: listening, or another keeper is
                await anyio.wait_readable(ready_read)
                if not os.read(ready_read, 64):
                    break
        finally:
            os.close(ready_read)
        # Its first half exits as soon as it has forked (keeper.py says why); this does not block.
        first_half.wait()

    async def request(
        self, message: dict[str, object], fds: Sequence[int] = (), *, start: bool = True
    ) -> tuple[dict[str, object], list[int]]:
        """Send a request and take its answer (and the descriptors that came with it)."""
        async with self._lock:
            sock = await self._connection(start=start)
            try:
                protocol.send_frame(sock, message, list(fds))
                while (frame := self._frames.next()) is None:
                    await anyio.wait_readable(sock)
                    if not self._frames.feed(sock):
                        raise KeeperGone("the keeper closed the connection")
            except (OSError, ValueError) as exc:
                self._disconnect()
                raise KeeperGone(str(exc)) from None
            except KeeperGone:
                self._disconnect()
                raise
            return frame

    def notify(self, message: dict[str, object]) -> bool:
        """Send a notice; False if the keeper could not be told."""
        if self._sock is None:
            return False
        try:
            protocol.send_frame(self._sock, message)
        except OSError:
            self._disconnect()
            return False
        return True

    async def spawn(
        self,
        mission_id: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        stdout_path: Path,
        stderr_path: Path,
        stdin_pipe: bool,
        stdin_path: Path | None,
    ) -> KeptChild:
        exit_path = stdout_path.parent / protocol.EXIT_FILE
        fds = [
            files.open_private(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND),
            files.open_private(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND),
        ]
        stdin_mode = "pipe" if stdin_pipe else "null"
        try:
            if not stdin_pipe and stdin_path is not None:
                fds.append(files.open_private(stdin_path, os.O_RDONLY))
                stdin_mode = "fd"
            message: dict[str, object] = {
                "op": "spawn",
                "id": mission_id,
                "argv": list(argv),
                "cwd": str(cwd),
                "env": dict(env),
                "exit_path": str(exit_path),
                "stdin": stdin_mode,
            }
            try:
                answer, received = await self.request(message, fds)
            except KeeperGone as exc:
                raise SpawnError(f"cannot start {argv[0]!r}: the process keeper is unreachable ({exc})") from None
        finally:
            for fd in fds:
                os.close(fd)
        if "error" in answer:
            for fd in received:
                os.close(fd)
            if answer["error"] == "missing":
                raise SpawnError(f"cannot start {argv[0]!r}: no such program ({answer['reason']})")
            raise SpawnError(f"cannot start {argv[0]!r}: {answer['reason']}")
        pid = int(answer["pid"])  # type: ignore[call-overload]
        stdin = received[0] if received else None
        if stdin is not None:
            os.set_blocking(stdin, False)
        return KeptChild(
            mission_id=mission_id,
            pid=pid,
            start_time=None,  # read by `identify`, off the event loop
            keeper=self,
            mission_dir=stdout_path.parent,
            stdin=stdin,
            keeper_pid=self.keeper_pid,
        )

    async def adopt(self, mission_id: str) -> KeptChild | ExitStatus | None:
        """The kept child of a mission an earlier server started; its exit status if it has ended; None if
        no keeper knows it (no keeper runs, or this one started after it)."""
        try:
            answer, received = await self.request({"op": "adopt", "id": mission_id}, start=False)
        except KeeperGone:
            return None
        if answer.get("state") == "running":
            pid = int(answer["pid"])  # type: ignore[call-overload]
            stdin = received[0] if received else None
            if stdin is not None:
                os.set_blocking(stdin, False)
            return KeptChild(
                mission_id=mission_id,
                pid=pid,
                start_time=process_start_time(pid) or 0.0,
                keeper=self,
                mission_dir=Path(str(answer["exit_path"])).parent,
                stdin=stdin,
                keeper_pid=self.keeper_pid,
            )
        for fd in received:
            os.close(fd)
        if answer.get("state") == "ended":
            return _status_of(answer)
        return None


async def _until_ended(pid: int, start_time: float | None) -> None:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if same_process(pid, start_time):
            await anyio.wait_readable(pidfd)
    finally:
        os.close(pidfd)


def _status_of(answer: Mapping[str, object]) -> ExitStatus:
    code, number = answer.get("code"), answer.get("signal")
    return ExitStatus(code=code if isinstance(code, int) else None, signal=number if isinstance(number, int) else None)


@dataclass(eq=False)
class KeptChild:
    """A child the keeper parents: its pid, its stdin's write end (sessions), its exit status at the end."""

    mission_id: str
    pid: int
    # None until `identify` reads it (a child just started); an adopted one comes with it.
    start_time: float | None
    keeper: KeeperClient
    mission_dir: Path
    stdin: int | None = None
    keeper_pid: int | None = None
    exit_status: ExitStatus | None = None
    _exited: anyio.Event = field(default_factory=anyio.Event)

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
        return RunRecord(pid=self.pid, pgid=self.pgid, start_time=self.start_time, extra={KEPT: True})

    async def identify(self) -> RunRecord:
        if self.start_time is None:
            # In a worker thread: the kernel makes a read of a process's stat wait while it still execs
            # (a Python or Node child: about 2 ms), which would stall every other mission's answers.
            self.start_time = await anyio.to_thread.run_sync(process_start_time, self.pid) or 0.0
        return self.record()

    def signal_group(self, sig: signal.Signals) -> bool:
        """Send `sig` to the child's whole group, through the keeper: it alone knows the leader is unreaped,
        so that the group id is still the child's."""
        if self._exited.is_set():
            return False
        if not self.keeper.notify({"op": "signal", "id": self.mission_id, "sig": int(sig)}):
            # The keeper is gone, and its children with it: only leftovers of the group may remain.
            return bool(kill_leftovers(self.pgid, self.mission_id, sig))
        return True

    async def wait(self) -> ExitStatus:
        if await self._keeper_died_first():
            # Nobody can see how it ends now: end its group (the leader with it), found by its mission id.
            kill_leftovers(self.pgid, self.mission_id, signal.SIGKILL)
            await _until_ended(self.pid, self.start_time)
        try:
            answer, received = await self.keeper.request({"op": "wait", "id": self.mission_id}, start=False)
            for fd in received:
                os.close(fd)
        except KeeperGone:
            answer = {}
        if answer.get("state") == "ended":
            self.exit_status = _status_of(answer)
        else:
            self.exit_status = exit_on_disk(self.mission_dir, self.pid) or ExitStatus(
                code=None,
                signal=None,
                lost=f"its keeper (pid {self.keeper_pid}) was killed, so nobody could see how it would end:"
                " it was ended",
            )
            # Nobody reaped it with its group: end what the group left, found by its mission id.
            kill_leftovers(self.pgid, self.mission_id, signal.SIGKILL)
        self.close_stdin()
        self._exited.set()
        return self.exit_status

    async def _keeper_died_first(self) -> bool:
        """Wait until the child ends (False), or its keeper does (True)."""
        try:
            keeper_fd = os.pidfd_open(self.keeper_pid) if self.keeper_pid else None
        except ProcessLookupError:
            return True
        died = False

        async def watch_keeper(scope: anyio.CancelScope) -> None:
            nonlocal died
            assert keeper_fd is not None
            await anyio.wait_readable(keeper_fd)
            died = True
            scope.cancel()

        try:
            async with anyio.create_task_group() as watching:
                if keeper_fd is not None:
                    watching.start_soon(watch_keeper, watching.cancel_scope)
                await _until_ended(self.pid, self.start_time)
                watching.cancel_scope.cancel()
        finally:
            if keeper_fd is not None:
                os.close(keeper_fd)
        return died

    def close_stdin(self) -> None:
        """End the child's input: ours and the keeper's write ends both, or it would never see the end."""
        if self.stdin is not None:
            with contextlib.suppress(OSError):
                os.close(self.stdin)
            self.stdin = None
            if self.running:
                self.keeper.notify({"op": "close_stdin", "id": self.mission_id})

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
