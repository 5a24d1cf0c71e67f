"""A program on a pseudo-terminal of its own, for tests and benchmarks: type keys, read what it drew.

What it drew is kept as the raw bytes it wrote and as `text`: those bytes with every escape
sequence and all whitespace taken out. A full-screen program moves the cursor instead of writing
spaces, so "the word is apple" may arrive as "thewordisapple"; `wait_for` compares the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# CSI (colours, cursor moves), OSC (titles), DCS, and two-byte escapes.
_ESCAPES = re.compile(
    rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\|[@-Z\\-_()*+][0-9A-Za-z]?)"
)
_SPACE = re.compile(rb"\s+")


def flatten(data: bytes) -> str:
    """Terminal output as comparable text: no escape sequences, no whitespace."""
    return _SPACE.sub(b"", _ESCAPES.sub(b"", data)).decode("utf-8", "replace")


class Terminal:
    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, rows: int = 24, columns: int = 80
    ) -> None:
        self.argv = list(argv)
        self._cond = threading.Condition()
        self._output = bytearray()
        self._closed = False
        self.returncode: int | None = None
        self.started = time.perf_counter()
        self.first_output_at: float | None = None
        pid, fd = pty.fork()
        if pid == 0:  # the child: only exec (this process may have threads)
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
                os.chdir(cwd)
                os.execvpe(self.argv[0], self.argv, dict(env))
            finally:
                os._exit(127)
        self.pid, self._fd = pid, fd
        self._reader = threading.Thread(target=self._read, name=f"terminal-{pid}", daemon=True)
        self._reader.start()

    @property
    def output(self) -> bytes:
        with self._cond:
            return bytes(self._output)

    @property
    def text(self) -> str:
        return flatten(self.output)

    def type(self, keys: str) -> None:
        os.write(self._fd, keys.encode())

    def wait_for(self, text: str, *, timeout: float = 30.0, start: int = 0) -> float:
        """Wait until the output from byte `start` on shows `text` (compared flattened); when it did."""
        wanted = flatten(text.encode())
        deadline = time.monotonic() + timeout
        with self._cond:
            while wanted not in flatten(bytes(self._output[start:])):
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    why = "the program ended" if self._closed else f"{timeout} s passed"
                    raise TimeoutError(f"{why} before it showed {text!r}; it showed:\n{self.text[-3000:]}")
                self._cond.wait(remaining)
            return time.perf_counter()

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the program to exit; its exit code (128+N for signal N)."""
        if self.returncode is None:
            pidfd = os.pidfd_open(self.pid)
            try:
                if not select.select([pidfd], [], [], timeout)[0]:
                    raise TimeoutError(f"{self.argv[0]} still runs after {timeout} s; it showed:\n{self.text[-3000:]}")
            finally:
                os.close(pidfd)
            code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            self.returncode = code if code >= 0 else 128 - code
        self._reader.join(timeout=5)
        return self.returncode

    def kill(self) -> None:
        """End the program (its whole session) if it still runs, and reap it."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.wait()
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 65536)
            except OSError:  # EIO: the program and everything that held the terminal have gone
                data = b""
            with self._cond:
                if not data:
                    self._closed = True
                    self._cond.notify_all()
                    return
                if self.first_output_at is None:
                    self.first_output_at = time.perf_counter()
                self._output += data
                self._cond.notify_all()
