"""The `overmind tui` application: the mission tree, a live log, CPU and memory, and keys to act.

Three panels in the tree view: the missions (tree connectors, status colours, cost with the
subtree's), the running ones' process trees (CPU, RSS, output rate: `overmind top`'s sampling),
and the log of the selected mission, followed as it grows. Enter or l gives the log the whole
screen; t brings the tree back. Every action goes through what the other verbs use: a kill
through foreign.py, a message through the owning server's request path, and an attach hands
the terminal over to `overmind attach` (the app exits with `Attach`, and is started again after).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import anyio
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.events import Key
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, RichLog, Static

from overmind_mcp.attach import wire
from overmind_mcp.attach.models import SendRequest
from overmind_mcp.console import ps, render
from overmind_mcp.console.common import CliError
from overmind_mcp.console.logs import open_reader, styled
from overmind_mcp.console.state import State, open_state
from overmind_mcp.console.top import TopEntry
from overmind_mcp.errors import OvermindError
from overmind_mcp.models import LIVE, TurnResult
from overmind_mcp.providers import parser_for
from overmind_mcp.readside import views
from overmind_mcp.runners.local.output import LineReader
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.settings import Settings
from overmind_mcp.storage.changes import relay
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision.foreign import kill_missions
from overmind_mcp.tui.feed import Feed, Snapshot

# How much of a log the panel starts with: its last lines, not a 200 MB file read whole.
LOG_TAIL_BYTES = 64 * 1024
LOG_LINES = 2000
_NAME_WIDTH = 28
_TREE_COLUMNS = ("name", "status", "started", "cost", "doing")
_TOP_COLUMNS = ("name", "pid", "procs", "cpu", "rss", "out/s", "tokens")

HELP = """\
[b]overmind tui[/b]: every mission on this state directory, live

  [b]j k ↑ ↓[/b]   move (in the log view: scroll)
  [b]Enter l[/b]   the selected mission's log, full screen
  [b]t[/b]         back to the tree
  [b]/[/b]         filter by name, id, status or activity (Esc clears)
  [b]x[/b]         kill the selected mission and its subtree (asks first)
  [b]s[/b]         send a live session its next message
  [b]a[/b]         take a live session over here (claude --resume); it
            goes back to its server when you leave claude
  [b]?[/b]         this help
  [b]q[/b]         quit

COST is the mission's own plus its subtree's. A * after a status:
its server is gone. The tree is read again when the store or a live
mission's output changes; CPU and memory are sampled every few
seconds while something runs.

Any key closes this help."""


@dataclass(frozen=True, slots=True)
class Attach:
    """What the app exits with when the person asked to take a session over."""

    mission_id: str
    name: str


class HelpScreen(ModalScreen[None]):
    def __init__(self) -> None:
        super().__init__()
        self.closing = False

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help")

    def on_key(self, event: Key) -> None:
        # The key that closes the help does nothing else; keys typed right behind it find it closing.
        event.stop()
        if not self.closing:
            self.closing = True
            self.dismiss()


class ConfirmKill(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(self.question, id="question")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class SendMessage(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.session_name = name

    def compose(self) -> ComposeResult:
        with Vertical(id="send"):
            yield Label(f"message for {self.session_name} (Enter sends, Esc cancels)")
            yield Input(id="message")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class OvermindApp(App[Attach | None]):
    TITLE = "overmind"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #summary { height: 1; background: $panel; padding: 0 1; }
    #tree { height: 1fr; min-height: 4; }
    #top { height: auto; max-height: 8; border-top: solid $secondary; }
    #log { height: 1fr; min-height: 4; border-top: solid $secondary; }
    #filter { dock: bottom; display: none; }
    HelpScreen, ConfirmKill, SendMessage { align: center middle; }
    #help { width: 100%; max-width: 76; height: auto; max-height: 100%; }
    #help, #send { border: round $secondary; padding: 0 1; background: $panel; }
    #question { width: auto; max-width: 76; border: round $error; padding: 1 2; background: $panel; }
    #send { width: 76; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "down", "down", show=False),
        Binding("k", "up", "up", show=False),
        Binding("l", "logs", "log"),
        Binding("t", "tree", "tree"),
        Binding("slash", "filter", "filter"),
        Binding("x", "kill", "kill"),
        Binding("s", "send", "send"),
        Binding("a", "attach", "attach"),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit"),
        Binding("escape", "back", show=False),
    ]

    def __init__(
        self,
        settings: Settings,
        state: State,
        watcher: FileWatcher,
        *,
        every: bool = False,
        interval: float = 2.0,
        select: str | None = None,
        notice: str | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.every = every
        self.interval = interval
        self.notice = notice
        self.view = "tree"
        # Opened and closed by whoever runs the app: Textual cancels its workers at exit without
        # waiting for them, and a database connection left open keeps the process from exiting.
        self.state = state
        self.watcher = watcher
        self.snapshot: Snapshot | None = None
        self._selected = select
        self._needle = ""
        self._rendered: list[tuple[Any, ...]] = []
        self._widths: tuple[int, ...] = ()
        self._followed: str | None = None
        self._follow_wakeup = Wakeup()
        self._live_ids: set[str] = set()
        self._live_changed = Wakeup()

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("overmind: reading the missions…", id="summary")
        yield DataTable(id="tree", cursor_type="row", zebra_stripes=False)  # columns: _render_tree
        top: DataTable[Any] = DataTable(id="top", cursor_type="none", show_cursor=False)
        top.can_focus = False
        for column in _TOP_COLUMNS:
            top.add_column(column.upper(), key=column)
        top.border_title = "running: nothing"
        yield top
        log = RichLog(id="log", max_lines=LOG_LINES, wrap=False, markup=False, highlight=False)
        log.border_title = "log"
        yield log
        yield Input(placeholder="filter: name, id, status or activity", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#tree", DataTable).focus()
        if self.notice:
            self.notify(self.notice, timeout=8)
        self.read_missions()

    def on_resize(self) -> None:
        self._rendered = []
        self._render_tree()

    # -- data ------------------------------------------------------------------------------

    @work(exclusive=True, group="missions")
    async def read_missions(self) -> None:
        """Read the missions now and at every change; sample CPU while something runs."""
        feed = Feed(self.state, self.watcher, every=self.every)
        try:
            async with anyio.create_task_group() as task_group:
                await task_group.start(feed.run, self._show)
                task_group.start_soon(self._sample, feed)
        finally:
            feed.close()

    def _show(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._render_tree()
        live = {row.id for row in snapshot.rows if row.status in LIVE}
        if live != self._live_ids:
            self._live_ids = live
            self._live_changed.set()  # sample now: a mission started or ended
        if self._followed is not None:
            self._follow_wakeup.set()  # the followed mission may have ended

    async def _sample(self, feed: Feed) -> None:
        """CPU% needs two looks at a process: sample on a timer while missions run, and when they start or end."""
        while True:
            entries = await feed.sample()
            self._render_top(entries)
            with anyio.move_on_after(self.interval if entries else math.inf):
                await self._live_changed.wait()

    # -- the tree --------------------------------------------------------------------------

    def _render_tree(self) -> None:
        snapshot = self.snapshot
        if snapshot is None:
            return
        rows = snapshot.matching(self._needle)
        prefixes = render.tree_prefixes(rows)
        name_width = min(max([len(prefixes.get(row.id, "") + row.name) for row in rows], default=4), _NAME_WIDTH)
        # The columns have fixed widths (a cell changed in place never outgrows its column): DOING
        # takes what the others leave, each padded by one a side, and the scroll bar.
        widths = (name_width, len("succeeded*"), len("00:00:00"), len("$0.0000"))
        widths += (max(12, self.size.width - sum(widths) - 2 * len(_TREE_COLUMNS) - 2),)
        lines = [(row.id, *self._cells(snapshot, row, prefixes.get(row.id, ""), widths)) for row in rows]
        table = self.query_one("#tree", DataTable)
        if widths == self._widths and [line[0] for line in lines] == [line[0] for line in self._rendered]:
            # The same missions in the same order: change only what changed; the cursor stays put.
            for line, before in zip(lines, self._rendered, strict=True):
                for column, value, old in zip(_TREE_COLUMNS, line[1:], before[1:], strict=True):
                    if value != old:
                        table.update_cell(line[0], column, value)
        else:
            table.clear(columns=widths != self._widths)
            if widths != self._widths:
                for column, width in zip(_TREE_COLUMNS, widths, strict=True):
                    table.add_column(column.upper(), key=column, width=width)
                self._widths = widths
            for line in lines:
                table.add_row(*line[1:], key=line[0])
            keys = [line[0] for line in lines]
            if self._selected in keys:
                table.move_cursor(row=keys.index(self._selected), animate=False)
        self._rendered = lines
        self._sync_selection()
        totals = snapshot.totals
        summary = f"overmind  {totals.missions} missions · {totals.running} running · {render.cost(totals.cost_usd)}"
        if self._needle:
            summary += f" · filter {self._needle!r}: {len(rows)} shown"
        if snapshot.hidden:
            summary += f" · {snapshot.hidden} older hidden (--all)"
        self.query_one("#summary", Static).update(Text(summary))

    @staticmethod
    def _cells(snapshot: Snapshot, row: MissionRow, prefix: str, widths: tuple[int, ...]) -> tuple[Text, ...]:
        summary = snapshot.summaries[row.id]
        orphan = "*" if row.id in snapshot.orphans else ""
        if row.status in LIVE:
            doing = Text(render.clip(ps.doing(summary, row), widths[-1]))
        else:
            doing = Text(render.clip(ps.outcome(row), widths[-1]), style="dim")
        return (
            Text(render.clip(prefix + row.name, widths[0])),
            Text(row.status + orphan, style=render.STATUS_STYLES.get(row.status, "")),
            Text(_when(row.created_at)),
            Text(render.cost(summary.tree_cost_usd), justify="right"),
            doing,
        )

    def _selected_row(self) -> MissionRow | None:
        return self._current(self._selected) if self._selected is not None else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._sync_selection()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_logs()

    def _sync_selection(self) -> None:
        """Follow the log of the row under the cursor (read from the table: messages may lag behind it)."""
        table = self.query_one("#tree", DataTable)
        if table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        self._selected = key
        if key != self._followed:
            self._followed = key
            row = self._selected_row()
            if row is not None:
                self.follow_log(row)

    # -- the top-like panel ----------------------------------------------------------------

    def _render_top(self, entries: list[TopEntry]) -> None:
        table = self.query_one("#top", DataTable)
        table.clear()
        for entry in sorted(entries, key=lambda entry: -entry.cpu_percent):
            table.add_row(
                render.clip(entry.name + ("*" if entry.orphan else ""), 24),
                str(entry.pid or "-"),
                str(entry.processes),
                Text(f"{entry.cpu_percent:.1f}", justify="right"),
                Text(render.size(entry.rss_bytes), justify="right"),
                Text(render.size(entry.output_rate), justify="right"),
                Text(render.count(entry.tokens.total), justify="right"),
            )
        cpu = sum(entry.cpu_percent for entry in entries)
        rss = sum(entry.rss_bytes for entry in entries)
        table.border_title = (
            f"running: {len(entries)} · CPU {cpu:.1f}% · RSS {render.size(rss)}" if entries else "running: nothing"
        )

    # -- the log panel ---------------------------------------------------------------------

    @work(exclusive=True, group="log")
    async def follow_log(self, row: MissionRow) -> None:
        """Show the end of a mission's log, then each line it writes, until it ends (or another is selected)."""
        log = self.query_one("#log", RichLog)
        log.clear()
        log.border_title = f"log: {row.name} ({row.status})"
        reader = _tail(row)
        if reader is None:
            log.write(Text("(no output yet)", style="dim"))
            return
        parse = parser_for(row.provider).parse_line
        with reader:
            async with anyio.create_task_group() as task_group:
                await task_group.start(relay, self.watcher, Path(row.output_path), self._follow_wakeup)
                while True:
                    current = self._current(row.id) or row
                    ended = current.status not in LIVE
                    while (chunk := reader.read_chunk(final=ended)) is not None:
                        for _end, line in chunk:
                            for text in views.readable(views.parse_output_line(line, parse)):
                                log.write(Text(*styled(text)))
                    log.border_title = f"log: {current.name} ({current.status})"
                    if ended:
                        break
                    await self._follow_wakeup.wait()
                task_group.cancel_scope.cancel()

    def _current(self, mission_id: str) -> MissionRow | None:
        """The mission as the latest snapshot has it."""
        if self.snapshot is None:
            return None
        return next((row for row in self.snapshot.rows if row.id == mission_id), None)

    # -- keys ------------------------------------------------------------------------------

    def action_down(self) -> None:
        if self.view == "logs":
            self.query_one("#log", RichLog).scroll_down(animate=False)
        else:
            self.query_one("#tree", DataTable).action_cursor_down()

    def action_up(self) -> None:
        if self.view == "logs":
            self.query_one("#log", RichLog).scroll_up(animate=False)
        else:
            self.query_one("#tree", DataTable).action_cursor_up()

    def action_logs(self) -> None:
        self.view = "logs"
        self.query_one("#tree").display = False
        self.query_one("#top").display = False
        self.query_one("#log", RichLog).focus()

    def action_tree(self) -> None:
        self.view = "tree"
        self.query_one("#tree").display = True
        self.query_one("#top").display = True
        self.query_one("#tree", DataTable).focus()

    def action_back(self) -> None:
        field = self.query_one("#filter", Input)
        if field.has_focus:
            field.value = ""
            field.display = False
        self.action_tree()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self._needle = event.value.strip()
            self._render_tree()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if not event.value.strip():
                event.input.display = False
            self.action_tree()

    def action_kill(self) -> None:
        row = self._selected_row()
        if row is None:
            return
        if row.status not in LIVE:
            self.notify(f"{row.name} has already ended ({row.status})")
            return
        below = _live_below(row, self.snapshot) if self.snapshot else 0
        question = f"Kill {row.name}" + (f" and the {render.plural(below, 'live mission')} under it" if below else "")
        self.push_screen(ConfirmKill(question + "?  y / n"), lambda yes: self.kill(row) if yes else None)

    @work(group="act")
    async def kill(self, row: MissionRow) -> None:
        self.notify(f"killing {row.name}…")
        try:
            async with open_state(self.settings, writable=True) as state:
                answer = await kill_missions(
                    state.store,
                    self.watcher,
                    state.database_path,
                    [row],
                    cascade=True,
                    grace_s=self.settings.kill_grace_s,
                )
        except (CliError, OvermindError) as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify("; ".join(f"{outcome.name}: {outcome.status} ({outcome.how})" for outcome in answer.ended))

    def action_send(self) -> None:
        row = self._live_session()
        if row is not None:
            self.push_screen(SendMessage(row.name), lambda text: self.send(row, text) if text else None)

    @work(group="act")
    async def send(self, row: MissionRow, message: str) -> None:
        assert row.server_id is not None
        try:
            turn = await wire.ask(row.server_id, "send", SendRequest(id=row.id, message=message), TurnResult)
        except OvermindError as exc:
            self.notify(str(exc), severity="error")
            return
        where = f" (#{turn.queue_position} in its queue)" if turn.queue_position else ""
        self.notify(f"{turn.name}: turn {turn.turn} is {turn.state}{where}")

    def action_attach(self) -> None:
        row = self._live_session()
        if row is not None:
            self.exit(Attach(row.id, row.name))

    def _live_session(self) -> MissionRow | None:
        """The selected mission if its server can give it a turn now; else None, and the person is told why."""
        row = self._selected_row()
        if row is None:
            return None
        if not row.spec.session:
            self.notify(f"{row.name} is a task, not a live session", severity="warning")
        elif row.status != "running":
            self.notify(f"{row.name} is {row.status}, not running", severity="warning")
        elif self.snapshot is not None and row.id in self.snapshot.orphans:
            self.notify(f"the server of {row.name} is gone", severity="warning")
        else:
            return row
        return None


def _live_below(row: MissionRow, snapshot: Snapshot) -> int:
    """How many live missions a cascading kill of `row` ends besides it."""
    children: dict[str | None, list[MissionRow]] = {}
    for other in snapshot.rows:
        children.setdefault(other.parent_id, []).append(other)
    below, stack = 0, list(children.get(row.id, []))
    while stack:
        other = stack.pop()
        below += other.status in LIVE
        stack.extend(children.get(other.id, []))
    return below


def _tail(row: MissionRow) -> LineReader | None:
    """A reader of the last `LOG_TAIL_BYTES` of a mission's output, from the first line that starts in them."""
    try:
        with Path(row.output_path).open("rb") as output:
            size = output.seek(0, os.SEEK_END)
            start = max(0, size - LOG_TAIL_BYTES)
            if start:
                # From the byte before: a line that starts exactly at `start` is a whole line.
                output.seek(start - 1)
                newline = output.read(LOG_TAIL_BYTES + 1).find(b"\n")
                start = start + newline if newline >= 0 else size
    except FileNotFoundError:
        return None
    return open_reader(row, start)


def _when(timestamp: float) -> str:
    """When a mission was created: the time today, else the day too."""
    local = time.localtime(timestamp)
    if time.strftime("%Y%m%d", local) == time.strftime("%Y%m%d"):
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%b %d %H:%M", local)
