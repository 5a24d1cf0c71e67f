"""`overmind logs` (one mission's log, `-f` to follow it) and `overmind monitor` (every running mission's).

The log is read straight from the mission's output file, which the child writes itself:
nothing goes through the owning server. Following waits on inotify (the file grew, or the
store changed) and on pidfds (the process or its server ended): no polling.
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import anyio

from overmind_mcp.console import answers, render
from overmind_mcp.console.common import Exit
from overmind_mcp.console.render import Out
from overmind_mcp.console.state import open_state, watching
from overmind_mcp.models import LIVE, LogPage
from overmind_mcp.providers import parser_for
from overmind_mcp.readside import views
from overmind_mcp.runners.local.output import LineReader
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.settings import Settings
from overmind_mcp.storage.changes import relay, relay_commits
from overmind_mcp.storage.missions import MissionRow, Store
from overmind_mcp.supervision.foreign import live_owners, orphan_state, until_ended, watch_process

UNRECORDED = "its process has ended while its server was gone; the next server to start records how it ended"
_NAME_STYLES = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta", "bright_green")


class LogPrinter:
    """Prints one mission's output lines as a person reads them, as raw events, or as JSON."""

    def __init__(self, out: Out, row: MissionRow, *, events: bool, prefix: str = "") -> None:
        self.out = out
        self.row = row
        self.events = events
        self.prefix = prefix  # monitor: the mission's name, so interleaved lines say whose they are
        self._prefix_style = _NAME_STYLES[zlib.crc32(row.name.encode()) % len(_NAME_STYLES)]
        self._parse = parser_for(row.provider).parse_line

    def texts(self, line: bytes) -> list[str]:
        if self.events:
            return [line.decode("utf-8", "replace").rstrip("\r\n")]
        return views.readable(views.parse_output_line(line, self._parse))

    def lines(self, lines: list[bytes], cursor: int, next_cursor: int) -> None:
        """Print output lines read from byte `cursor` to `next_cursor`."""
        if not lines:
            return
        if not self.out.json_mode:
            for line in lines:
                for text in self.texts(line):
                    self.text(text)
        elif self.prefix:
            # monitor --json: one object per output line, naming its mission.
            for line in lines:
                payload = {"event": views.event_dict(line)} if self.events else {"lines": self.texts(line)}
                if payload.get("lines") != []:  # bookkeeping lines have nothing to read
                    self.out.stream.write(_compact({"id": self.row.id, "name": self.row.name, **payload}))
        else:
            # logs -f --json: one LogPage (the MCP `logs` shape) per batch, as a JSON line.
            self.out.stream.write(_compact(answers.dump(self.page(lines, cursor, next_cursor))))
        self.out.stream.flush()

    def page(self, lines: list[bytes], cursor: int, next_cursor: int) -> LogPage:
        page = LogPage(
            id=self.row.id,
            name=self.row.name,
            status=self.row.status,  # type: ignore[arg-type]
            cursor=cursor,
            next_cursor=next_cursor,
            more=False,
        )
        for line in lines:
            if self.events:
                page.events.append(views.event_dict(line))
            else:
                page.lines.extend(self.texts(line))
        return page

    def text(self, text: str) -> None:
        console = self.out.console
        if console is None or self.events:
            self.out.stream.write(f"{self.prefix}{text}\n")
            return
        from rich.text import Text

        console.print(Text.assemble((self.prefix, self._prefix_style), styled(text)), soft_wrap=True)


def _compact(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"


def styled(text: str) -> tuple[str, str]:
    """A readable log line and its rich style (shared with `overmind tui`)."""
    # The readable log marks tool calls (→), tool results (←) and bookkeeping ([…]) by their first character.
    if text.startswith("→"):
        return text, "cyan"
    if text.startswith("← error"):
        return text, "red"
    if text.startswith("←"):
        return text, "dim"
    if text.startswith("["):
        return text, "red" if "error" in text else "yellow"
    return text, ""


def drain(reader: LineReader, printer: LogPrinter, *, final: bool) -> None:
    """Print every complete line the file holds beyond the reader (and a last partial one if `final`)."""
    while True:
        cursor = reader.offset
        chunk = reader.read_chunk(final=final)
        if chunk is None:
            return
        printer.lines([line for _end, line in chunk], cursor, reader.offset)


def open_reader(row: MissionRow, offset: int | None) -> LineReader | None:
    """A reader of the mission's output from `offset` (None: from its current end); None if it has none."""
    path = Path(row.output_path)
    try:
        return LineReader(path, path.stat().st_size if offset is None else offset)
    except FileNotFoundError:
        return None


# -- logs ----------------------------------------------------------------------------------------


def logs(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_logs, settings, args)


async def _logs(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    async with open_state(settings) as state:
        row = await state.resolve(args.id)
        if args.json and not args.follow:
            page = views.log_page(row, cursor=args.cursor, limit=args.limit, format="events" if args.events else "text")
            out.json(answers.dump(page))
            return Exit.OK
        printer = LogPrinter(out, row, events=args.events)
        reader = open_reader(row, args.cursor)
        if reader is None:
            render.note(f"{row.name} has no output file ({row.output_path})")
            return Exit.OK
        with reader:
            # A running mission's last line may be half written: it waits for its newline.
            _print_start(reader, printer, None if args.json else args.tail, final=row.status not in LIVE)
            if not args.follow:
                return Exit.OK
            async with watching() as watcher:
                last, unrecorded = await _follow(state.store, watcher, state.database_path, reader, printer)
    if args.json:
        # The pages so far said "running": the last one says how it ended.
        printer.row = last
        out.stream.write(_compact(answers.dump(printer.page([], reader.offset, reader.offset))))
    elif unrecorded:
        render.note(f"── {row.name}: {UNRECORDED}")
    else:
        exit_code = f", exit code {last.exit_code}" if last.exit_code is not None else ""
        render.note(f"── {row.name} {last.status}{exit_code}" + (f": {last.end_reason}" if last.end_reason else ""))
    return Exit.OK


def _print_start(reader: LineReader, printer: LogPrinter, tail: int | None, *, final: bool) -> None:
    """What the file holds now; with `tail`, only its last that many lines (kept in bounded memory)."""
    if tail is None:
        drain(reader, printer, final=final)
        return
    kept: deque[str] = deque(maxlen=tail)
    while (chunk := reader.read_chunk(final=final)) is not None:
        for _end, line in chunk:
            kept.extend(printer.texts(line))
    for text in kept:
        printer.text(text)
    printer.out.stream.flush()


async def _follow(
    store: Store, watcher: FileWatcher, database_path: Path, reader: LineReader, printer: LogPrinter
) -> tuple[MissionRow, bool]:
    """Print what the mission writes until it ends; its last row, and whether no server recorded the end."""
    row = printer.row

    async def on_wake(finished: bool) -> None:
        # Called after the store was read: once it says the mission ended, its file is complete.
        drain(reader, printer, final=finished)

    waited = await until_ended(
        store, watcher, database_path, [row.id], also_watch=[Path(row.output_path)], on_wake=on_wake
    )
    return waited.rows.get(row.id) or row, bool(waited.unrecorded)


# -- monitor -------------------------------------------------------------------------------------


@dataclass
class _Followed:
    printer: LogPrinter
    reader: LineReader
    scope: anyio.CancelScope


def monitor(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_monitor, settings, args)


async def _monitor(settings: Settings, args: argparse.Namespace) -> int:
    """Every running mission's log, interleaved line by line, until Ctrl-C (or until none runs)."""
    out = Out(json_mode=args.json)
    async with open_state(settings) as state, watching() as watcher, anyio.create_task_group() as task_group:
        wakeup = Wakeup()
        await task_group.start(relay_commits, watcher, state.database_path, wakeup)
        followed: dict[str, _Followed] = {}
        watched: set[tuple[int, float | None]] = set()
        first = True
        try:
            while True:
                live = await state.store.missions(statuses=tuple(LIVE))
                for row in live:
                    if row.id not in followed:
                        # What already ran before monitor started is in `overmind logs`; from here on, all of it.
                        reader = open_reader(row, None if first else 0)
                        if reader is not None:
                            printer = LogPrinter(out, row, events=False, prefix=row.name)
                            scope = await task_group.start(relay, watcher, Path(row.output_path), wakeup)
                            followed[row.id] = _Followed(printer, reader, scope)
                            if not first:
                                _announce(out, row, "started")
                width = max([len(item.printer.row.name) for item in followed.values()] + [4])
                owners = await live_owners(state.store, live)
                for mission_id, item in list(followed.items()):
                    item.printer.prefix = f"{item.printer.row.name.ljust(width)} │ "
                    current = await state.store.get(mission_id)
                    orphan = orphan_state(current, owners) if current is not None else None
                    ended = current is None or current.status not in LIVE or orphan == "unrecorded"
                    drain(item.reader, item.printer, final=ended)
                    if ended:
                        item.reader.close()
                        item.scope.cancel()
                        del followed[mission_id]
                        _announce(out, current or item.printer.row, "unrecorded" if orphan else "ended")
                    elif current is not None and current.pid and (current.pid, current.proc_start) not in watched:
                        # A process whose server has gone ends without a commit: its pidfd says so.
                        watched.add((current.pid, current.proc_start))
                        task_group.start_soon(watch_process, current.pid, current.proc_start, wakeup)
                if first:
                    render.note(f"following {len(followed)} running missions (Ctrl-C stops)")
                first = False
                if args.exit_when_idle and not followed:
                    return Exit.OK
                await wakeup.wait()
        finally:
            for item in followed.values():
                item.reader.close()
            task_group.cancel_scope.cancel()


def _announce(out: Out, row: MissionRow, event: str) -> None:
    if out.json_mode:
        out.stream.write(_compact({"id": row.id, "name": row.name, "status": row.status, "event": event}))
        out.stream.flush()
        return
    if event == "started":
        out.line(f"── {row.name} started", "dim")
    elif event == "unrecorded":
        out.line(f"── {row.name}: {UNRECORDED}", "yellow")
    else:
        out.line(f"── {row.name} {row.status}" + (f": {row.end_reason}" if row.end_reason else ""), "bold")
