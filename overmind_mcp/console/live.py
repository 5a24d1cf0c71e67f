"""What a running mission is doing, read from its output file by a process that does not own it.

The owning server keeps a running mission's progress (turns, cost, the latest thing it did)
only in memory. Its output file has all of it: this folds the file's lines into the same
`Activity` the server uses (and is a `MissionView` itself), so `doing` reads the same in `ps` and in the MCP tools.

Bounded in time and memory: a file up to `full_scan_bytes` is read whole (exact); past that,
only its last `tail_bytes` are (turns and tool calls then count what the tail shows, and
`partial` says so). Reading continues from where it stopped, so `top` pays for each byte once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overmind_mcp.core.events import Init, Result, ToolResult
from overmind_mcp.models import LIVE
from overmind_mcp.providers import parser_for
from overmind_mcp.readside import views
from overmind_mcp.readside.activity import Activity
from overmind_mcp.readside.live import SessionState
from overmind_mcp.runners.local.output import LineReader
from overmind_mcp.storage.missions import MissionRow

FULL_SCAN_BYTES = 8 * 1024 * 1024
TAIL_BYTES = 1024 * 1024

_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@dataclass(slots=True)
class Tokens:
    input: int = 0
    output: int = 0
    cache_creation: int = 0
    cache_read: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_creation + self.cache_read

    def add(self, usage: dict[str, Any]) -> None:
        values = [usage.get(key) for key in _USAGE_KEYS]
        input_, output, creation, read = (value if isinstance(value, int) else 0 for value in values)
        self.input += input_
        self.output += output
        self.cache_creation += creation
        self.cache_read += read

    @classmethod
    def of(cls, usage: dict[str, Any]) -> Tokens:
        tokens = cls()
        tokens.add(usage)
        return tokens

    def plus(self, usage: dict[str, Any] | None) -> Tokens:
        total = Tokens(self.input, self.output, self.cache_creation, self.cache_read)
        if usage:
            total.add(usage)
        return total


class LiveOutput:
    """A mission's activity so far, folded from its output file; call `update` to read what is new."""

    def __init__(
        self, row: MissionRow, *, full_scan_bytes: int = FULL_SCAN_BYTES, tail_bytes: int = TAIL_BYTES
    ) -> None:
        self.row = row
        self.activity = Activity()
        self.partial = False
        self.size = 0
        self.mtime: float | None = None
        self._full_scan_bytes = full_scan_bytes
        self._tail_bytes = min(tail_bytes, full_scan_bytes)
        self._reader: LineReader | None = None
        provider = parser_for(row.provider)
        self._provider = provider
        self._parse = provider.parse_line
        # A result line's usage is the run's total. Until one comes, the assistant messages are
        # summed: each is printed as several lines repeating its usage (count it once), and
        # their output count is from the message's start, so it is low until the result.
        self._tokens = Tokens()
        self._message: tuple[str | None, dict[str, Any] | None] = (None, None)
        # A live session prints system/init when a turn starts and a result when it ends.
        self._in_turn = False
        # What it waits for an answer to, read from the permission journal by whoever shows it.
        self.awaiting_approval: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.row.output_path)

    @property
    def tokens(self) -> Tokens:
        """Tokens so far: the last result's total, plus the messages since (input counts each turn's prompt)."""
        return self._tokens.plus(self._message[1])

    def session_state(self) -> SessionState | None:
        """A running session's state as its output shows it: only its server knows its queue of turns,
        or whether a person holds it, but the output says whether a turn runs."""
        if not (self.row.spec.session and self.row.status == "running"):
            return None
        return "working" if self._in_turn else "idle"

    def update(self, *, final: bool = False) -> bool:
        """Read what the file holds beyond the last call; True if there was anything."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False
        self.size, self.mtime = stat.st_size, stat.st_mtime
        # `idle_s` counts from the last write, on the monotonic clock the activity keeps.
        self.activity.last_output_at = time.monotonic() - max(time.time() - stat.st_mtime, 0.0)
        if self._reader is None:
            if not self._seek(0 if self.size <= self._full_scan_bytes else None):
                return False
        elif self.size - self._reader.offset > self._full_scan_bytes:
            # Too much written since the last look (a flood): skip to its tail.
            self._seek(None)
        if self._reader is None:
            return False
        read = False
        while (lines := self._reader.read_chunk(final=final)) is not None:
            for _end, line in lines:
                self._fold(line)
                read = True
        return read

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> LiveOutput:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _seek(self, offset: int | None) -> bool:
        """Read from `offset`, or from the first line that starts in the last `tail_bytes` of the file."""
        self.close()
        if offset is None:
            offset = self._next_line_start(max(self.size - self._tail_bytes, 0))
            self.partial = offset > 0
        try:
            self._reader = LineReader(self.path, offset)
        except FileNotFoundError:
            return False
        return True

    def _next_line_start(self, offset: int) -> int:
        if offset == 0:
            return 0
        with self.path.open("rb") as file:
            file.seek(offset - 1)
            # A line longer than the whole tail leaves nothing to read from it: start at the end.
            data = file.read(self._tail_bytes + 1)
        newline = data.find(b"\n")
        return offset - 1 + newline + 1 if newline >= 0 else offset - 1 + len(data)

    def _fold(self, line: bytes) -> None:
        activity = self.activity
        activity.output_lines += 1
        if self._provider.structured_output and line.startswith(b'{"type":"user"'):
            # Tool results are the bulk of a claude log, and all they tell the activity is that
            # the tool has returned: no need to parse them.
            if b'"tool_result"' in line:
                activity.apply(ToolResult(None, False, ""))
            return
        if self._provider.structured_output and line.startswith(b'{"type":"assistant"'):
            self._count_tokens(line)
        for event in views.parse_output_line(line, self._parse):
            activity.apply(event)
            if isinstance(event, Init):
                self._in_turn = True
            elif isinstance(event, Result):
                self._tokens, self._message = Tokens.of(event.usage), (None, None)
                self._in_turn = False

    def _count_tokens(self, line: bytes) -> None:
        try:
            message = json.loads(line).get("message") or {}
        except (ValueError, AttributeError):
            return
        if not isinstance(message, dict):
            return
        message_id, usage = message.get("id"), message.get("usage")
        if message_id != self._message[0] and self._message[1]:
            self._tokens.add(self._message[1])
        self._message = (message_id, usage if isinstance(usage, dict) else None)


def read_live(rows: list[MissionRow]) -> dict[str, LiveOutput]:
    """What each live row has done so far, read once (for one-shot answers such as `ps` and `result`)."""
    found: dict[str, LiveOutput] = {}
    for row in rows:
        if row.status in LIVE:
            with LiveOutput(row) as live:
                live.update()
            found[row.id] = live
    return found
