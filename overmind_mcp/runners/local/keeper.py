"""The keeper: the parent of every local mission's process, one per state directory, outliving its servers.

A child's exit status goes to its parent only. When the server was the parent, a server
killed mid-mission took every exit status with it: a re-adopted child, and one that ended
while no server ran, could only be reported `lost`. The keeper is that parent instead, and
it writes each child's exit status to `exit.json` in the mission's directory, beside its
output, the moment the child ends, whoever is watching. It also holds a live session's
stdin (the write end of its pipe), so a session survives its server: the next server asks
for that end again and goes on with the conversation.

Why one keeper per state directory, not a monitor per mission (as conmon runs per
container, and as the Ray runner's keeper runs per mission on a node): the budget is 1 ms
and 1 MB a child. A monitor process per mission costs a Python start (15-25 ms, ~9 MB
RSS; `python -m tools.bench --only keeper` measures it) on every spawn. One daemon,
started once and asked over a Unix socket (the child's files travel as descriptors,
SCM_RIGHTS), adds a round trip and a fork from a small process to a spawn, and a pidfd and
a few hundred bytes to its memory per child. A monitor per mission would isolate missions
from each other's keeper faults; this one is small, single-threaded and does little, and
its death is handled (below).

It is started by the first server that needs it, as `python -I -S keeper.py --state DIR
--ready FD` (standard library only, nothing from the environment), forks away from that
server (so no server reaps it, and it outlives a crash), and listens on an abstract Unix
socket named after the state directory; only processes of its own user may connect
(SO_PEERCRED). A second keeper for the same directory finds the name taken and leaves. It
exits when it has no children and no server is connected. Everything it does is driven by
events (epoll over the listening socket, the connections and each child's pidfd).

Each child is started as the leader of a new session and process group, with stdout and
stderr the server's open files. When a child ends, the keeper (its parent: the child stays
an unreaped zombie, so its group id cannot be reused) kills what it left in its group and
what left the group (below), writes `exit.json`, and only then reaps it.

A process may leave its group (`setsid`, a double fork) and so escape a signal to the group.
The keeper is a subreaper (PR_SET_CHILD_SUBREAPER): whatever a child starts is reparented
to the keeper, not to init, however it detaches, so everything a mission left is in the
keeper's subtree, below its children that lead no mission; the mission's id in each
process's environment (inherited by all) says whose it is. Those are killed and reaped
before the exit status is written, so a mission reported ended has nothing left running.

If the keeper is killed, nobody can learn how its children end any more: a server that
watches them sees the keeper's pidfd turn readable, ends each child's group and reports
it `lost` with that reason; a child whose keeper died while no server ran is ended the
same way by the next server's recovery. Not PR_SET_PDEATHSIG, which would end them even
with no server running: it can only be set in the forked child before exec, which forbids
vfork and runs Python between fork and exec, and that alone costs a spawn over a
millisecond (`python -m tools.bench --only keeper`), the whole budget.

Protocol: a frame is a 4-byte big-endian length and a JSON object; descriptors ride with
a frame as SCM_RIGHTS. Requests carry `op`:

- `spawn` {id, argv, cwd, env, exit_path, stdin: "pipe" | "fd" | "null"} with descriptors
  [stdout, stderr(, stdin)] -> {pid} (with the stdin pipe's write end) or {error, reason};
- `adopt` {id} -> {state: "running", pid, exit_path} (with the stdin write end, if held),
  {state: "ended", code, signal} or {state: "unknown"};
- `wait` {id}: as `adopt`, asked once the child's pidfd says it has ended;
- `signal` {id, sig} and `close_stdin` {id}: no answer.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import ctypes
import hashlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

_HEADER = struct.Struct(">I")
MAX_FRAME = 16 * 1024 * 1024
MAX_FDS = 4
EXIT_FILE = "exit.json"


def address(state_dir: str) -> bytes:
    """The keeper's abstract socket name for a state directory (no path: a state directory's path may be
    longer than a socket path may be)."""
    digest = hashlib.sha256(os.path.realpath(state_dir).encode()).hexdigest()[:40]
    return b"\0overmind-keeper-" + digest.encode()


def encode(message: dict[str, object]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return _HEADER.pack(len(body)) + body


def send_frame(sock: socket.socket, message: dict[str, object], fds: list[int] | tuple[int, ...] = ()) -> None:
    data = encode(message)
    sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else [])
    if sent < len(data):
        sock.sendall(data[sent:])


class Frames:
    """Frames (and the descriptors that came with them) from a stream of received bytes."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.fds: list[int] = []

    def feed(self, sock: socket.socket) -> bool:
        """Read what is there; False at end of stream."""
        data, ancillary, _flags, _addr = sock.recvmsg(256 * 1024, socket.CMSG_SPACE(MAX_FDS * 4))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                self.fds.extend(fds)
        self.buffer += data
        return bool(data)

    def next(self) -> tuple[dict[str, object], list[int]] | None:
        """The next whole frame and every descriptor received with it so far; None until one is whole."""
        if len(self.buffer) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self.buffer)
        if size > MAX_FRAME:
            raise ValueError(f"a frame of {size} bytes is too big")
        if len(self.buffer) < _HEADER.size + size:
            return None
        body = bytes(self.buffer[_HEADER.size : _HEADER.size + size])
        del self.buffer[: _HEADER.size + size]
        fds, self.fds = self.fds, []
        return json.loads(body), fds

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []


def write_exit(path: str, pid: int, code: int | None, signal_number: int | None) -> None:
    """The exit status, on disk beside the output: whole or not at all (written aside, then renamed)."""
    record = {"pid": pid, "code": code, "signal": signal_number, "ended_at": time.time()}
    temporary = f"{path}.{pid}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(record).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    Path(temporary).replace(path)


@dataclass(eq=False)
class Child:
    mission_id: str
    pid: int
    pidfd: int
    exit_path: str
    stdin: int | None = None


@dataclass
class Keeper:
    listener: socket.socket
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    children: dict[str, Child] = field(default_factory=dict)
    ended: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    connections: dict[int, tuple[socket.socket, Frames]] = field(default_factory=dict)

    def run(self) -> None:
        self.selector.register(self.listener, selectors.EVENT_READ, "listener")
        while True:
            for key, _mask in self.selector.select():
                try:
                    if key.data == "listener":
                        self._accept()
                    elif isinstance(key.data, Child):
                        if self.children.get(key.data.mission_id) is key.data:  # not finished by a `wait` just now
                            self._finish(key.data)
                    elif key.fd in self.connections:
                        self._serve(key.fd)
                except Exception:
                    # A keeper that dies takes every child with it: one fault must not end the others.
                    traceback.print_exc()
            if not self.children and not self.connections:
                return  # nobody left to keep or to answer; a server that needs one starts another

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", credentials)
        if uid != os.getuid():
            sock.close()  # another user's process: it may not start anything as us
            return
        sock.setblocking(False)
        self.connections[sock.fileno()] = (sock, Frames())
        self.selector.register(sock, selectors.EVENT_READ, "connection")

    def _drop(self, fd: int) -> None:
        sock, frames = self.connections.pop(fd)
        self.selector.unregister(sock)
        frames.close()
        sock.close()

    def _serve(self, fd: int) -> None:
        sock, frames = self.connections[fd]
        try:
            if not frames.feed(sock):
                self._drop(fd)
                return
        except BlockingIOError:
            return
        except OSError:
            self._drop(fd)
            return
        try:
            while (frame := frames.next()) is not None:
                message, fds = frame
                try:
                    self._handle(sock, message, fds)
                finally:
                    for descriptor in fds:
                        with contextlib.suppress(OSError):
                            os.close(descriptor)
        except (OSError, ValueError, KeyError, TypeError):
            self._drop(fd)  # a server that breaks the protocol, or went mid-answer

    def _handle(self, sock: socket.socket, message: dict[str, object], fds: list[int]) -> None:
        op, mission_id = message["op"], str(message["id"])
        if op == "spawn":
            self._spawn(sock, mission_id, message, fds)
        elif op in ("adopt", "wait"):
            child = self.children.get(mission_id)
            if child is not None and _has_ended(child.pidfd):
                self._finish(child)
            self._answer_state(sock, mission_id)
        elif op == "signal":
            child = self.children.get(mission_id)
            if child is not None:  # still unreaped: its group id is its own
                with contextlib.suppress(OSError):
                    os.killpg(child.pid, int(message["sig"]))  # type: ignore[call-overload]
        elif op == "close_stdin":
            child = self.children.get(mission_id)
            if child is not None and child.stdin is not None:
                os.close(child.stdin)
                child.stdin = None

    def _answer_state(self, sock: socket.socket, mission_id: str) -> None:
        child = self.children.get(mission_id)
        if child is not None:
            self._answer(
                sock,
                {"state": "running", "pid": child.pid, "exit_path": child.exit_path},
                [child.stdin] if child.stdin is not None else [],
            )
        elif mission_id in self.ended:
            code, number = self.ended[mission_id]
            self._answer(sock, {"state": "ended", "code": code, "signal": number})
        else:
            self._answer(sock, {"state": "unknown"})

    def _answer(self, sock: socket.socket, message: dict[str, object], fds: list[int] | None = None) -> None:
        # Answers are small and the server reads them at once: a blocking send is over in microseconds.
        sock.setblocking(True)
        try:
            send_frame(sock, message, fds or [])
        finally:
            sock.setblocking(False)

    def _spawn(self, sock: socket.socket, mission_id: str, message: dict[str, object], fds: list[int]) -> None:
        argv = [str(arg) for arg in message["argv"]]  # type: ignore[attr-defined]
        env = {str(key): str(value) for key, value in message["env"].items()}  # type: ignore[attr-defined]
        exit_path = str(message["exit_path"])
        stdin_mode = message.get("stdin", "null")
        stdout, stderr = fds[0], fds[1]
        stdin_read: int = subprocess.DEVNULL
        stdin_write: int | None = None
        if stdin_mode == "pipe":
            stdin_read, stdin_write = os.pipe()
        elif stdin_mode == "fd":
            stdin_read = fds[2]
        with contextlib.suppress(FileNotFoundError):
            Path(exit_path).unlink()  # a previous run's: from now on the file speaks of this one
        try:
            child = subprocess.Popen(
                argv,
                cwd=str(message["cwd"]),
                env=env,
                stdin=stdin_read,
                stdout=stdout,
                stderr=stderr,
                close_fds=True,
                start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            if stdin_write is not None:
                os.close(stdin_write)
            kind = "missing" if isinstance(exc, FileNotFoundError) else "refused"
            self._answer(sock, {"error": kind, "reason": getattr(exc, "strerror", None) or str(exc)})
            return
        finally:
            if stdin_mode == "pipe":
                os.close(stdin_read)
        child.returncode = 0  # reaped by hand in _finish, after its group's leftovers
        if stdin_write is not None:
            os.set_blocking(stdin_write, False)
        kept = Child(mission_id, child.pid, os.pidfd_open(child.pid), exit_path, stdin_write)
        self.ended.pop(mission_id, None)
        self.children[mission_id] = kept
        self.selector.register(kept.pidfd, selectors.EVENT_READ, kept)
        self._answer(sock, {"pid": child.pid}, [stdin_write] if stdin_write is not None else [])

    def _finish(self, child: Child) -> None:
        info = os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        if info is None:
            return
        if info.si_code == os.CLD_EXITED:
            code, number = info.si_status, None
        else:
            code, number = None, info.si_status
        # The leader is a zombie: its group id is still its own, so this reaches only what it left behind.
        with contextlib.suppress(OSError):
            os.killpg(child.pid, signal.SIGKILL)
        self._end_strays(child.mission_id)
        with contextlib.suppress(OSError):  # its directory was removed: the answer still tells
            write_exit(child.exit_path, child.pid, code, number)
        os.waitpid(child.pid, 0)
        self.selector.unregister(child.pidfd)
        os.close(child.pidfd)
        if child.stdin is not None:
            os.close(child.stdin)
        del self.children[child.mission_id]
        self.ended[child.mission_id] = (code, number)

    def _end_strays(self, mission_id: str) -> None:
        """Kill and reap the processes of `mission_id` that left its group; reap any other orphan that ended."""
        marker = f"OVERMIND_MISSION_ID={mission_id}".encode() + b"\0"
        for _round in range(_STRAY_ROUNDS):
            leaders = {kept.pid for kept in self.children.values()}
            orphans = [pid for pid in _children(os.getpid()) if pid not in leaders]
            strays = [pid for pid in _subtrees(orphans) if _environment_has(pid, marker)]
            for pid in strays:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            _await_ends(strays)
            # Each that ended handed its own children to the keeper: the next round sees them.
            for pid in orphans:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            if not strays:
                return


_STRAY_ROUNDS = 64
"""A bound on the rounds of `_end_strays`: each reaches one level deeper of what detached; none lasts long."""


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_bytes().split()]
    return found


def _subtrees(roots: list[int]) -> list[int]:
    found, pending = [], list(roots)
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending += _children(pid)
    return found


def _environment_has(pid: int, entry: bytes) -> bool:
    """Whether the process's environment holds `entry` (a zombie's, or a vanished process's, holds nothing)."""
    try:
        return (b"\0" + Path(f"/proc/{pid}/environ").read_bytes()).find(b"\0" + entry) != -1
    except OSError:
        return False


def _await_ends(pids: list[int]) -> None:
    """Wait until each process has ended (SIGKILL is not instant); a second at most in all."""
    poller = selectors.DefaultSelector()
    try:
        for pid in pids:
            with contextlib.suppress(OSError):
                poller.register(os.pidfd_open(pid), selectors.EVENT_READ)
        deadline = time.monotonic() + 1.0
        while poller.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _mask in poller.select(left):
                poller.unregister(key.fd)
                os.close(key.fd)
    finally:
        for key in list(poller.get_map().values()):
            os.close(key.fd)
        poller.close()


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


_PR_SET_CHILD_SUBREAPER = 36


def _has_ended(pidfd: int) -> bool:
    poller = selectors.DefaultSelector()
    try:
        poller.register(pidfd, selectors.EVENT_READ)
        return bool(poller.select(0))
    finally:
        poller.close()


_DEFAULT_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
    signal.SIGCHLD,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
)


def _plain_signals() -> None:
    """Unblock every signal and set the usual ones to their defaults, for the keeper and so for its children.

    A process inherits its parent's signal mask and the signals it ignores, across exec. A server
    started with SIGINT ignored (a background job of a non-interactive shell) or from a thread
    that blocks signals would hand that to the keeper, and the keeper to every child: such a
    child sleeps through the SIGINT that kill starts with. A shell gives a job it starts a clean
    slate; so does the keeper.
    """
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    for number in _DEFAULT_SIGNALS:
        signal.signal(number, signal.SIG_DFL)


def main(argv: list[str]) -> int:
    _plain_signals()
    parser = argparse.ArgumentParser(prog="keeper")
    parser.add_argument("--state", required=True)
    parser.add_argument("--ready", type=int, required=True)
    args = parser.parse_args(argv)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        listener.bind(address(args.state))
    except OSError:
        os.write(args.ready, b"busy\n")  # another keeper holds this state directory: use that one
        return 0
    # Away from the server that started it: no server reaps it, and it outlives a server's crash.
    if os.fork() != 0:
        os._exit(0)
    # Listening here, not before the fork: a client's SO_PEERCRED names the process that called listen().
    listener.listen(64)
    listener.setblocking(False)
    _become_subreaper()
    os.write(args.ready, f"ready {os.getpid()}\n".encode())
    os.close(args.ready)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    Keeper(listener).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
