"""The state directory's files are the user's alone: 0700 directories, 0600 files, no symlinks.

Everything under `OVERMIND_HOME` (the databases and their WAL and shared-memory files,
each mission's output, prompts and system prompts, the HTTP token) can hold secrets:
prompts, code, answers, a bearer token. So directories are made 0700 and files 0600,
and what already exists is tightened to that, not trusted: an older version, a restored
backup or another tool may have left it readable. A state file is never opened through
a symbolic link (O_NOFOLLOW), so nobody who could place a link in the directory can
make the server write a secret elsewhere or read one from elsewhere.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from overmind_mcp.errors import OvermindError

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeStateFile(OvermindError):
    """A state file or directory that the server will not use as it is: it says why and what to do."""


def private_directory(path: Path) -> Path:
    """`path` as a directory of ours with mode 0700: created if missing, tightened if looser.

    The directory itself may be reached through a symlink (a state directory kept on
    another disk); what matters is that the directory is ours and closed to others.
    """
    path.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeStateFile(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise UnsafeStateFile(f"{path} belongs to another user (uid {info.st_uid}); use a state directory of your own")
    if stat.S_IMODE(info.st_mode) != DIRECTORY_MODE:
        path.chmod(DIRECTORY_MODE)
    return path


def private_file(path: Path) -> None:
    """Make sure `path` is a regular file of ours with mode 0600, creating it empty if missing."""
    fd = _open(path, os.O_RDWR | os.O_CREAT)
    os.close(fd)


def tighten(path: Path) -> None:
    """Give an existing state file mode 0600 (a missing one is left missing); refuse a symlink."""
    try:
        fd = _open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Replace the contents of `path` (mode 0600, never through a symlink) with `data`."""
    _write_all(_open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), data)


def append_private(path: Path, data: bytes) -> int:
    """Append `data` to `path` (mode 0600, never through a symlink) in one open; how many bytes."""
    if data:
        _write_all(_open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND), data)
    return len(data)


def _write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def open_private(path: Path, flags: int, *, refuse_loose: bool = False) -> int:
    """An fd for `path` opened with `flags` (add O_CREAT to create it), mode 0600, never through a symlink.

    With `refuse_loose`, an existing file that others could read is refused rather than
    tightened: for a secret, which may have been read already.
    """
    return _open(path, flags, refuse_loose=refuse_loose)


def _open(path: Path, flags: int, *, refuse_loose: bool = False) -> int:
    try:
        fd = os.open(path, flags | _NOFOLLOW, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeStateFile(
                f"{path} is a symbolic link; state files are never followed through links: remove it"
            ) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeStateFile(f"{path} is not a regular file; remove it")
        if info.st_uid != os.getuid():
            raise UnsafeStateFile(f"{path} belongs to another user (uid {info.st_uid}); remove it")
        mode = stat.S_IMODE(info.st_mode)
        if refuse_loose and mode & 0o077:
            raise UnsafeStateFile(
                f"{path} is readable by other users (mode {mode:04o}), so the secret in it may have leaked: "
                "delete it, and a new one is made"
            )
        if mode != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd
