"""Printing for people and for scripts: rich tables on a terminal, aligned plain text in a pipe, JSON on request.

rich is imported only when stdout is a terminal (and is optional: plain text stands in
for it), so a pipe, a script and `--json` pay nothing for it and get stable text.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TextIO

from overmind_mcp.storage.missions import MissionRow

if TYPE_CHECKING:
    from rich.console import Console

STATUS_STYLES = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "stopped": "magenta",
    "killed": "magenta",
    "timed_out": "red",
    "lost": "dim",
}


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    align: Literal["left", "right"] = "left"
    # The one column that gives way (is cut with an ellipsis) when a terminal is too narrow.
    flexible: bool = False


Cell = str | tuple[str, str | None]  # text, or (text, rich style)


class Out:
    """Where a verb prints: rich on a terminal, plain text otherwise, JSON when asked."""

    def __init__(self, *, json_mode: bool = False, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.json_mode = json_mode
        self.tty = self.stream.isatty() and not json_mode and os.environ.get("TERM") != "dumb"
        self._console: Console | None = None
        if self.tty:
            try:
                from rich.console import Console
            except ImportError:  # rich is optional: plain text is readable too
                pass
            else:
                self._console = Console(file=self.stream, highlight=False, no_color="NO_COLOR" in os.environ)

    @property
    def console(self) -> Console | None:
        return self._console

    def json(self, data: Any) -> None:
        self.stream.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        self.stream.flush()

    def line(self, text: str = "", style: str | None = None) -> None:
        if self._console is not None:
            self._console.print(text, style=style, markup=False, soft_wrap=True)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def table(self, columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> None:
        if self._console is not None:
            self._console.print(rich_table(columns, rows))
            return
        self.stream.write(plain_table(columns, rows))
        self.stream.flush()


def note(text: str) -> None:
    """A remark for the person at the terminal, on stderr so stdout stays clean for pipes."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def plain_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> str:
    texts = [[cell if isinstance(cell, str) else cell[0] for cell in row] for row in rows]
    widths = [max([len(column.header), *(len(row[index]) for row in texts)]) for index, column in enumerate(columns)]
    lines = []
    for cells in [[column.header for column in columns], *texts]:
        padded = [
            cell.rjust(width) if column.align == "right" else cell.ljust(width)
            for cell, width, column in zip(cells, widths, columns, strict=True)
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines) + "\n"


def rich_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for index, column in enumerate(columns):
        # Only the flexible column gives way on a narrow terminal; the others keep their width.
        width = max(
            [len(column.header)]
            + [len(cell if isinstance(cell, str) else cell[0]) for cell in (row[index] for row in rows)]
        )
        table.add_column(
            column.header,
            justify=column.align,
            no_wrap=True,
            overflow="ellipsis",
            min_width=None if column.flexible else width,
        )
    for row in rows:
        table.add_row(*(Text(cell) if isinstance(cell, str) else Text(cell[0], style=cell[1] or "") for cell in row))
    return table


def status_cell(status: str, suffix: str = "") -> Cell:
    return (status + suffix, STATUS_STYLES.get(status))


def tree_prefixes(rows: Sequence[MissionRow]) -> dict[str, str]:
    """The connectors that draw rows (in depth-first order) as a tree: ├─, └─ and │ below."""
    ids = {row.id for row in rows}
    children: dict[str | None, list[MissionRow]] = {}
    for row in rows:
        children.setdefault(row.parent_id if row.parent_id in ids else None, []).append(row)
    prefixes: dict[str, str] = {}
    # (row, the indent its children continue, its own connector); roots have neither.
    stack: list[tuple[MissionRow, str, str]] = [(row, "", "") for row in reversed(children.get(None, []))]
    while stack:
        row, indent, connector = stack.pop()
        prefixes[row.id] = indent + connector
        below = indent + ("" if not connector else "   " if connector == "└─ " else "│  ")
        kids = children.get(row.id, [])
        for index, kid in reversed(list(enumerate(kids))):
            stack.append((kid, below, "└─ " if index == len(kids) - 1 else "├─ "))
    return prefixes


def age(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def cost(usd: float | None) -> str:
    if usd is None:
        return "-"
    return f"${usd:.4f}" if usd < 10 else f"${usd:,.2f}"


def count(number: float) -> str:
    """12, 1.2k, 3.4M: short enough for a narrow column."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if number >= limit:
            return f"{number / limit:.1f}{suffix}"
    return f"{number:.0f}"


def size(number: float) -> str:
    for limit, suffix in ((1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")):
        if number >= limit:
            return f"{number / limit:.1f}{suffix}"
    return f"{number:.0f}B"


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plural(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def outcome_line(row: MissionRow) -> str:
    """How a mission ended, in one line: its status, exit code, cost and reason."""
    parts = [row.status]
    if row.exit_code is not None:
        parts.append(f"exit code {row.exit_code}")
    if row.cost_usd is not None:
        parts.append(cost(row.cost_usd))
    if row.end_reason:
        parts.append(row.end_reason)
    return f"{row.name}: {', '.join(parts)}"
