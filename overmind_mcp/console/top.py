"""`overmind top`: running missions with the CPU and memory of each one's whole process tree.

A mission is more than its leader: `claude` starts MCP servers, shells and test runs. Its
tree is every descendant of the leader plus every process still in its process group
(grandchildren whose parent has gone are re-parented away but stay in the group). The
leader is named by pid plus start time, so a reused pid is never measured. Output rate,
tokens and cost come from the output file (live.py), read incrementally between refreshes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import psutil

from overmind_mcp.console import render
from overmind_mcp.console.common import Exit
from overmind_mcp.console.live import LiveOutput, Tokens
from overmind_mcp.console.render import Column, Out
from overmind_mcp.console.state import State, open_state
from overmind_mcp.models import LIVE
from overmind_mcp.runners.local.process import same_process
from overmind_mcp.runners.local.watch import Wakeup
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision.foreign import live_owners, orphan_state

# key → (the sort's name, a value to sort on, largest first)
SORTS: dict[str, Callable[[TopEntry], Any]] = {
    "cpu": lambda entry: -entry.cpu_percent,
    "rss": lambda entry: -entry.rss_bytes,
    "rate": lambda entry: -entry.output_rate,
    "tokens": lambda entry: -entry.tokens.total,
    "cost": lambda entry: -(entry.cost_usd or 0.0),
    "age": lambda entry: -entry.age_s,
    "name": lambda entry: entry.name,
}
_KEYS = {"c": "cpu", "m": "rss", "r": "rate", "t": "tokens", "$": "cost", "a": "age", "n": "name"}


@dataclass(slots=True)
class TopEntry:
    id: str
    name: str
    pid: int | None
    processes: int
    cpu_percent: float
    rss_bytes: int
    output_bytes: int
    output_rate: float  # bytes per second over the last interval
    tokens: Tokens
    cost_usd: float | None
    turns: int
    age_s: float
    doing: str | None
    orphan: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "pid": self.pid,
            "processes": self.processes,
            "cpu_percent": round(self.cpu_percent, 1),
            "rss_bytes": self.rss_bytes,
            "output_bytes": self.output_bytes,
            "output_bytes_per_s": round(self.output_rate, 1),
            "tokens": {
                "input": self.tokens.input,
                "output": self.tokens.output,
                "cache_creation": self.tokens.cache_creation,
                "cache_read": self.tokens.cache_read,
                "total": self.tokens.total,
            },
            "cost_usd": self.cost_usd,
            "turns": self.turns,
            "age_s": self.age_s,
            "doing": self.doing,
            "orphan": self.orphan,
        }


class ProcessMeter:
    """CPU% and RSS per mission's process tree, from one pass over the process table per sample."""

    def __init__(self) -> None:
        # psutil reports CPU% since the previous call on the same Process object: keep them.
        self._processes: dict[tuple[int, float], psutil.Process] = {}

    def measure(self, rows: list[MissionRow]) -> dict[str, tuple[float, int, int]]:
        """(cpu %, rss bytes, process count) for each row whose leader still runs."""
        children: dict[int, list[int]] = {}
        groups: dict[int, list[int]] = {}
        created: dict[int, float] = {}
        for process in psutil.process_iter(["ppid", "create_time"]):
            try:
                pgid = os.getpgid(process.pid)
            except OSError:
                continue
            children.setdefault(process.info["ppid"] or 0, []).append(process.pid)
            groups.setdefault(pgid, []).append(process.pid)
            created[process.pid] = process.info["create_time"] or 0.0
        seen: set[tuple[int, float]] = set()
        found: dict[str, tuple[float, int, int]] = {}
        for row in rows:
            if row.pid is None or not same_process(row.pid, row.proc_start):
                continue
            members = set(groups.get(row.pgid or row.pid, []))
            stack = [row.pid]
            while stack:
                pid = stack.pop()
                members.add(pid)
                stack.extend(child for child in children.get(pid, []) if child not in members)
            cpu, rss, count = 0.0, 0, 0
            for pid in members:
                key = (pid, created.get(pid, 0.0))
                seen.add(key)
                process = self._processes.get(key)
                try:
                    if process is None:
                        process = self._processes[key] = psutil.Process(pid)
                    with process.oneshot():
                        cpu += process.cpu_percent(None)
                        rss += process.memory_info().rss
                    count += 1
                except psutil.Error:
                    continue
            found[row.id] = (cpu, rss, count)
        for key in set(self._processes) - seen:
            del self._processes[key]
        return found


@dataclass
class Top:
    state: State
    meter: ProcessMeter = field(default_factory=ProcessMeter)
    lives: dict[str, LiveOutput] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    sampled_at: float = 0.0

    async def sample(self) -> list[TopEntry]:
        rows = await self.state.store.missions(statuses=tuple(LIVE))
        owners = await live_owners(self.state.store, rows)
        now = time.monotonic()
        elapsed = now - self.sampled_at if self.sampled_at else 0.0
        self.sampled_at = now
        self.follow(rows)
        usage = self.meter.measure(rows)
        entries = []
        for row in rows:
            live = self.lives[row.id]
            before = self.sizes.get(row.id)
            self.sizes[row.id] = live.size
            cpu, rss, count = usage.get(row.id, (0.0, 0, 0))
            entries.append(
                TopEntry(
                    id=row.id,
                    name=row.name,
                    pid=row.pid,
                    processes=count,
                    cpu_percent=cpu,
                    rss_bytes=rss,
                    output_bytes=live.size,
                    output_rate=(live.size - before) / elapsed if before is not None and elapsed > 0 else 0.0,
                    tokens=live.tokens,
                    cost_usd=live.activity.cost_usd,
                    turns=live.activity.turns,
                    age_s=round(time.time() - row.created_at, 1),
                    doing=live.activity.doing(),
                    orphan=orphan_state(row, owners),
                )
            )
        return entries

    def follow(self, rows: list[MissionRow]) -> dict[str, LiveOutput]:
        """What each of these live missions has done, read on from where the last look stopped."""
        for gone in set(self.lives) - {row.id for row in rows}:
            self.lives.pop(gone).close()
            self.sizes.pop(gone, None)
        for row in rows:
            live = self.lives.get(row.id)
            if live is None:
                live = self.lives[row.id] = LiveOutput(row)
            live.update()
        return self.lives

    def close(self) -> None:
        for live in self.lives.values():
            live.close()


def top(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_top, settings, args)


async def _top(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    async with open_state(settings) as state:
        view = Top(state)
        try:
            await view.sample()  # CPU% and rates are measured over the interval from here
            if args.once or args.json or not out.tty or not sys.stdin.isatty():
                await anyio.sleep(args.interval)
                entries = sorted(await view.sample(), key=SORTS[args.sort])
                if args.json:
                    out.json(_json(entries, args))
                else:
                    _print_frame(out, entries, args.sort)
                return Exit.OK
            await _interactive(out, view, args)
        finally:
            view.close()
    return Exit.OK


def _json(entries: list[TopEntry], args: argparse.Namespace) -> dict[str, Any]:
    return {
        "missions": [entry.to_json() for entry in entries],
        "totals": {
            "running": len(entries),
            "cpu_percent": round(sum(entry.cpu_percent for entry in entries), 1),
            "rss_bytes": sum(entry.rss_bytes for entry in entries),
            "cost_usd": round(sum(entry.cost_usd or 0.0 for entry in entries), 6),
        },
        "sort": args.sort,
        "interval_s": args.interval,
    }


_COLUMNS = [
    Column("NAME"),
    Column("PID", "right"),
    Column("PROCS", "right"),
    Column("CPU%", "right"),
    Column("RSS", "right"),
    Column("OUT/s", "right"),
    Column("TOKENS", "right"),
    Column("COST", "right"),
    Column("TURNS", "right"),
    Column("AGE", "right"),
    Column("DOING", flexible=True),
]


def _table_rows(entries: list[TopEntry]) -> list[list[render.Cell]]:
    return [
        [
            entry.name + ("*" if entry.orphan else ""),
            str(entry.pid or "-"),
            str(entry.processes),
            f"{entry.cpu_percent:.1f}",
            render.size(entry.rss_bytes),
            render.size(entry.output_rate),
            render.count(entry.tokens.total),
            render.cost(entry.cost_usd),
            str(entry.turns),
            render.age(entry.age_s),
            render.clip(entry.doing or "", 200),
        ]
        for entry in entries
    ]


def _header(entries: list[TopEntry], sort: str) -> str:
    cpu = sum(entry.cpu_percent for entry in entries)
    rss = sum(entry.rss_bytes for entry in entries)
    spent = sum(entry.cost_usd or 0.0 for entry in entries)
    return f"{len(entries)} running  CPU {cpu:.1f}%  RSS {render.size(rss)}  {render.cost(spent)}  sorted by {sort}"


def _print_frame(out: Out, entries: list[TopEntry], sort: str) -> None:
    out.line(_header(entries, sort), "bold")
    if entries:
        out.table(_COLUMNS, _table_rows(entries))
    if any(entry.orphan for entry in entries):
        out.line("* its server is gone: the next server to start takes it over", "yellow")


async def _interactive(out: Out, view: Top, args: argparse.Namespace) -> None:
    """Refresh every interval until q (or Ctrl-C); c m r t $ a n change the sort at once."""
    import termios
    import tty

    sort = args.sort
    # The first frame too measures CPU and output over a (short) interval.
    await anyio.sleep(min(args.interval, 0.5))
    entries = await view.sample()
    redraw = Wakeup()
    keys = "keys: c cpu, m rss, r rate, t tokens, $ cost, a age, n name, q quit"

    def frame() -> Any:
        ordered = sorted(entries, key=SORTS[sort])
        if out.console is None:
            return "\x1b[H\x1b[2J" + "\n".join(
                [_header(ordered, sort), keys, render.plain_table(_COLUMNS, _table_rows(ordered))]
            )
        from rich.console import Group
        from rich.text import Text

        table = render.rich_table(_COLUMNS, _table_rows(ordered))
        return Group(Text(_header(ordered, sort), style="bold"), Text(keys, style="dim"), table)

    async def refresh() -> None:
        nonlocal entries
        while True:
            await anyio.sleep(args.interval)
            entries = await view.sample()
            redraw.set()

    async def read_keys(scope: anyio.CancelScope) -> None:
        nonlocal sort
        while True:
            await anyio.wait_readable(stdin)
            for key in os.read(stdin, 32).decode(errors="ignore"):
                if key in ("q", "Q"):
                    scope.cancel()
                    return
                if key in _KEYS:
                    sort = _KEYS[key]
                    redraw.set()

    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin)
    # Keys arrive one by one, unechoed; the terminal is restored however top ends.
    tty.setcbreak(stdin)
    try:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(refresh)
            task_group.start_soon(read_keys, task_group.cancel_scope)
            if out.console is None:
                while True:
                    out.stream.write(frame())
                    out.stream.flush()
                    await redraw.wait()
            from rich.live import Live

            with Live(frame(), console=out.console, screen=True, auto_refresh=False) as live:
                while True:
                    await redraw.wait()
                    live.update(frame(), refresh=True)
    finally:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
