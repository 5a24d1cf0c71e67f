"""Reading a child's output file: complete lines, from a byte offset, in bounded memory.

Byte offsets are the cursors everywhere (`logs`, restart recovery): they stay valid
while the file grows and across server restarts.
"""

from __future__ import annotations

import os
from pathlib import Path

CHUNK_BYTES = 256 * 1024
# A longer line is still kept whole in the file; only its head is parsed, so one
# enormous line cannot grow the server's memory.
MAX_LINE_BYTES = 4 * 1024 * 1024
_OVERLONG_HEAD = 4096


class LineReader:
    """Complete lines of a growing file. `offset` is just past the last line returned."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        os.lseek(self._fd, offset, os.SEEK_SET)
        self.offset = offset
        self._pending = bytearray()
        self._skipping = False  # inside a line longer than MAX_LINE_BYTES

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> LineReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read_chunk(self, final: bool = False) -> list[tuple[int, bytes]] | None:
        """(end offset, line) for each line the next chunk of the file completes; None at the end.

        With `final` (the writer has gone), a last line without a newline is returned too.
        """
        chunk = os.read(self._fd, CHUNK_BYTES)
        if not chunk:
            return self._last_line(final)
        lines: list[tuple[int, bytes]] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            piece = chunk[start : end + 1]
            start = end + 1
            self.offset += len(piece)
            if self._skipping:  # the end of an overlong line, whose head was already returned
                self._skipping = False
                continue
            if self._pending:
                self.offset += len(self._pending)
                piece = bytes(self._pending) + piece
                self._pending.clear()
            lines.append((self.offset, piece))
        if (head := self._keep_rest(chunk[start:])) is not None:
            lines.append((self.offset, head))
        return lines

    def read_lines(self, final: bool = False) -> list[bytes] | None:
        """The lines `read_chunk` would return, without their newlines or offsets; None at the end.

        The chunk is split in one call rather than line by line: for a follower that needs no offset
        per line, a flood of short lines costs little more than reading it.
        """
        chunk = os.read(self._fd, CHUNK_BYTES)
        if not chunk:
            last = self._last_line(final)
            return None if last is None else [line for _end, line in last]
        lines = chunk.split(b"\n")
        rest = lines.pop()  # what follows the last newline
        self.offset += len(chunk) - len(rest)
        if lines:
            if self._skipping:  # the end of an overlong line, whose head was already returned
                del lines[0]
                self._skipping = False
            elif self._pending:
                self.offset += len(self._pending)
                lines[0] = bytes(self._pending) + lines[0]
                self._pending.clear()
        if (head := self._keep_rest(rest)) is not None:
            lines.append(head)
        return lines

    def _last_line(self, final: bool) -> list[tuple[int, bytes]] | None:
        """At the end of the file: a last line without a newline if the writer has gone, else None."""
        if final:
            # The writer has gone: an overlong line being skipped has ended. Until then, the rest
            # of it still to be written is not a line of its own.
            self._skipping = False
        if final and self._pending:
            line = bytes(self._pending)
            self.offset += len(line)
            self._pending.clear()
            return [(self.offset, line)]
        return None

    def _keep_rest(self, rest: bytes) -> bytes | None:
        """Keep the start of a line for the next read; the head of a line grown overlong, to return now."""
        if self._skipping:
            self.offset += len(rest)
        elif rest:
            self._pending += rest
            if len(self._pending) > MAX_LINE_BYTES:
                self.offset += len(self._pending)
                head = bytes(self._pending[:_OVERLONG_HEAD])
                self._pending.clear()
                self._skipping = True
                return head
        return None


def read_page(path: Path, cursor: int, max_lines: int, max_bytes: int) -> tuple[list[bytes], int]:
    """Up to `max_lines` complete lines from `cursor` (about `max_bytes` at most), and the next cursor."""
    lines: list[bytes] = []
    size = 0
    with LineReader(path, cursor) as reader:
        next_cursor = cursor
        while len(lines) < max_lines and size < max_bytes:
            chunk = reader.read_chunk()
            if chunk is None:
                break
            for end, line in chunk:
                if len(lines) >= max_lines or (size and size + len(line) > max_bytes):
                    return lines, next_cursor
                lines.append(line)
                size += len(line)
                next_cursor = end
    return lines, next_cursor


def tail_bytes(path: Path, limit: int) -> str:
    """The last `limit` bytes of a file as text (stderr excerpts for error reports)."""
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - limit))
            return file.read().decode("utf-8", "replace")
    except OSError:
        return ""
