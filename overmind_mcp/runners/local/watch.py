"""Wake a task when a file grows, without polling: one inotify instance for every file.

Children write their output straight to files (see process.py); the server follows
those files. inotify tells us the moment a child writes, so following costs nothing
while a child is quiet. The ctypes binding is a dozen lines; where inotify is missing
(not Linux) a short timer stands in for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import anyio

_IN_MODIFY = 0x00000002
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len
_FALLBACK_POLL_S = 0.05


class Wakeup:
    """A flag one task waits on and any number of others set; waiting clears it."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = anyio.Event()


class FileWatcher:
    """Dispatches inotify events to the `Wakeup` of each watched file. Run `run()` in a task group."""

    def __init__(self) -> None:
        # inotify gives one watch descriptor per file: a file watched twice has two wakeups on one.
        self._wakeups: dict[int, list[Wakeup]] = {}
        self._fd: int | None = None
        self._libc: ctypes.CDLL | None = None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        except (OSError, AttributeError):
            return
        if fd >= 0:
            self._fd, self._libc = fd, libc

    async def run(self) -> None:
        fd = self._fd
        if fd is None:
            await anyio.sleep_forever()
            return
        try:
            while True:
                await anyio.wait_readable(fd)
                try:
                    data = os.read(fd, 64 * 1024)
                except BlockingIOError:
                    continue
                for wd in _watch_descriptors(data):
                    for wakeup in self._wakeups.get(wd, ()):
                        wakeup.set()
        finally:
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def watch(self, path: Path) -> Iterator[Wakeup]:
        """A `Wakeup` set whenever `path` is written to (or every few ms without inotify)."""
        wakeup = Wakeup()
        if self._fd is None or self._libc is None:
            yield _PollingWakeup()
            return
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), _IN_MODIFY)
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_add_watch: {os.strerror(code)}", str(path))
        self._wakeups.setdefault(wd, []).append(wakeup)
        try:
            yield wakeup
        finally:
            sharing = self._wakeups[wd]
            sharing.remove(wakeup)
            if not sharing:
                del self._wakeups[wd]
            if not sharing and self._fd is not None:
                # Fails harmlessly (EINVAL) when the file is gone: its watch went with it.
                self._libc.inotify_rm_watch(self._fd, wd)


class _PollingWakeup(Wakeup):
    async def wait(self) -> None:
        with anyio.move_on_after(_FALLBACK_POLL_S):
            await super().wait()


def _watch_descriptors(data: bytes) -> set[int]:
    found = set()
    offset = 0
    while offset + _EVENT_HEADER.size <= len(data):
        wd, _mask, _cookie, name_len = _EVENT_HEADER.unpack_from(data, offset)
        found.add(wd)
        offset += _EVENT_HEADER.size + name_len
    return found
