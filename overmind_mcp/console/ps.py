"""`overmind ps` and `overmind status`: what runs on this state directory, whoever started it."""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio

from overmind_mcp.console import answers, approvals, render
from overmind_mcp.console.common import CliError, Exit, NoDatabase
from overmind_mcp.console.live import read_live
from overmind_mcp.console.render import Column, Out
from overmind_mcp.console.state import State, open_state
from overmind_mcp.models import LIVE, MissionSummary, PsResult, Status, Totals
from overmind_mcp.providers import parser_for
from overmind_mcp.readside import views
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision.foreign import live_owners, orphan_state

# Without --all, ps lists live missions and those that ended this recently.
RECENT_S = 3600.0

_ORPHAN_NOTES = {
    "orphaned": "its server is gone but it still runs; the next server to start adopts it",
    "unrecorded": "its server is gone and so is its process; the next server to start records how it ended",
}


def ps(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_ps, settings, args)


async def _ps(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    statuses = [str(status) for status in Status]
    if args.status is not None and args.status not in statuses:
        raise CliError(f"--status {args.status!r}: use one of {', '.join(statuses)}", Exit.USAGE)
    try:
        async with open_state(settings) as state:
            rows, hidden = await _select(state, args)
            waiting = await approvals.waiting_for(state)
            if args.status in (Status.NEEDS_APPROVAL, Status.RUNNING):
                # Stored as running: which of them wait for an answer is in the permission journal.
                rows = [row for row in rows if (row.id in waiting) == (args.status == Status.NEEDS_APPROVAL)]
            lives = read_live([row for row in rows if row.status in LIVE])
            for mission_id, what in waiting.items():
                if mission_id in lives:
                    lives[mission_id].awaiting_approval = what
            positions = answers.queue_positions(rows, await state.store.missions(statuses=("queued",)))
            answer, rows = answers.ps_result(rows, lives, positions, limit=args.limit, tree=args.tree)
            if args.json:
                out.json(answers.dump(answer))
                return Exit.OK
            live_rows = [row for row in rows if row.status in LIVE]
            owners = await live_owners(state.store, live_rows)
            orphans = {row.id: kind for row in live_rows if (kind := orphan_state(row, owners))}
    except NoDatabase as exc:
        if args.parent:
            raise
        empty = PsResult(missions=[], totals=Totals(missions=0, running=0, cost_usd=0.0))
        if args.json:
            out.json(answers.dump(empty))
        else:
            render.note(str(exc))
        return Exit.OK
    # Counted from the tail of a very long output only: at least this many turns.
    partial = {mission_id for mission_id, live in lives.items() if live.partial}
    _print(out, answer, rows, orphans, partial, tree=args.tree)
    if hidden:
        render.note(f"({hidden} older missions not shown: --all lists them)")
    return Exit.OK


async def listed(
    state: State, *, tree: bool, every: bool, parent: str | None = None, status: str | None = None
) -> tuple[list[MissionRow], int]:
    """The rows `overmind ps` lists with these options (`every` is --all), in order; and how many it hid."""
    return await _select(state, argparse.Namespace(parent=parent, tree=tree, all=every, status=status))


async def _select(state: State, args: argparse.Namespace) -> tuple[list[MissionRow], int]:
    """The rows to list, in order, as the MCP `ps` selects them; and how many the recency cut hid."""
    if args.parent is not None:
        root = await state.resolve(args.parent)
        rows = (
            [root, *await state.store.descendants(root.id)]
            if args.tree
            else await state.store.missions(parent_id=root.id)
        )
    else:
        rows = await state.store.missions()
    hidden = 0
    if not args.all:
        since = time.time() - RECENT_S
        shown = [row for row in rows if row.status in LIVE or (row.ended_at or row.created_at) >= since]
        if args.tree:
            shown = _with_ancestors(shown, rows)
        hidden, rows = len(rows) - len(shown), shown
    if args.tree:
        rows = views.depth_first(rows)
    if args.status is not None:
        stored = Status.RUNNING if args.status == Status.NEEDS_APPROVAL else args.status
        rows = [row for row in rows if row.status == stored]
    return rows, hidden


def _with_ancestors(shown: list[MissionRow], every: list[MissionRow]) -> list[MissionRow]:
    """`shown` plus the ancestors of each, so every tree hangs from its root."""
    by_id = {row.id: row for row in every}
    keep = {row.id for row in shown}
    for row in shown:
        parent = row.parent_id
        while parent is not None and parent not in keep and parent in by_id:
            keep.add(parent)
            parent = by_id[parent].parent_id
    return [row for row in every if row.id in keep]


def _print(
    out: Out, answer: PsResult, rows: list[MissionRow], orphans: dict[str, str], partial: set[str], *, tree: bool
) -> None:
    if not rows:
        render.note("no missions to list (--all lists every mission)")
        return
    names = {row.id: row.name for row in rows}
    prefixes = render.tree_prefixes(rows) if tree else {}
    columns = [Column("ID"), Column("NAME"), Column("STATUS")]
    columns += [] if tree else [Column("PARENT")]
    columns += [Column("AGE", "right"), Column("TURNS", "right"), Column("COST", "right")]
    columns += [Column("TREE COST", "right")] if tree else []
    # Only where some mission runs on a Ray node.
    nodes = any(summary.node for summary in answer.missions)
    columns += [Column("NODE")] if nodes else []
    columns += [Column("DOING", flexible=True)]
    table = []
    for summary, row in zip(answer.missions, rows, strict=True):
        orphan = orphans.get(row.id)
        cells: list[render.Cell] = [
            row.id,
            prefixes.get(row.id, "") + row.name,
            render.status_cell(summary.status, "*" if orphan else ""),
        ]
        if not tree:
            cells.append(names.get(row.parent_id or "", row.parent_id or "-"))
        turns = f"≥{summary.turns}" if row.id in partial else str(summary.turns)
        cells += [render.age(summary.age_s), turns, render.cost(summary.cost_usd)]
        if tree:
            cells.append(render.cost(summary.tree_cost_usd))
        if nodes:
            cells.append(summary.node or "-")
        cells.append(doing(summary, row) if row.status in LIVE else (outcome(row), "dim"))
        table.append(cells)
    out.table(columns, table)
    totals = answer.totals
    out.line(f"{totals.missions} missions, {totals.running} running, {render.cost(totals.cost_usd)} in all", "dim")
    for kind in sorted(set(orphans.values())):
        out.line(f"* {_ORPHAN_NOTES[kind]}", "yellow")


def doing(summary: MissionSummary, row: MissionRow) -> str:
    """For a live mission: its place in the queue, or what it is doing."""
    if summary.queue_position is not None:
        return f"queued (#{summary.queue_position})"
    if summary.doing:
        state = f"[{summary.session_state}] " if summary.session_state else ""
        return state + render.clip(summary.doing, 200)
    return "starting" if parser_for(row.provider).structured_output else ""


def outcome(row: MissionRow) -> str:
    """For an ended mission: the first line of its answer, or why it ended."""
    text = (row.result or {}).get("text")
    if row.status == "succeeded" and text:
        return render.clip(text.strip().splitlines()[0] if text.strip() else "", 200)
    return render.clip(row.end_reason or text or "", 200)


# -- status -------------------------------------------------------------------------------------


def status(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_status, settings, args)


async def _status(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    report: dict[str, Any] = {
        "state_dir": str(settings.home),
        "missions_by_status": {},
        "running": 0,
        "total_cost_usd": 0.0,
        "servers": [],
    }
    try:
        async with open_state(settings) as state:
            counts = await state.store.counts_by_status()
            live = await state.store.missions(statuses=tuple(LIVE))
            lives = read_live(live)
            # Running missions' costs are in their output until they end.
            spent = await state.store.total_cost() + sum(answers.cost_of(row, lives.get(row.id)) or 0.0 for row in live)
            servers = [server for server in await state.servers() if server.alive]
            report.update(
                missions_by_status=counts,
                running=len(live),
                total_cost_usd=round(spent, 6),
                servers=[
                    {
                        "id": server.id,
                        "pid": server.pid,
                        "started_at": views.iso(server.started_at),
                        "missions_running": sum(row.server_id == server.id for row in live),
                    }
                    for server in servers
                ],
            )
    except NoDatabase as exc:
        if not args.json:
            render.note(str(exc))
    if args.json:
        out.json(report)
        return Exit.OK
    counts = report["missions_by_status"]
    by_status = ", ".join(f"{count} {name}" for name, count in sorted(counts.items())) or "none"
    out.line(f"state directory  {report['state_dir']}")
    out.line(f"missions         {sum(counts.values())} ({by_status})")
    out.line(f"running          {report['running']}")
    out.line(f"total cost       {render.cost(report['total_cost_usd'])}")
    servers = report["servers"]
    out.line(f"servers          {len(servers)} running")
    for server in servers:
        out.line(
            f"  {server['id']}  pid {server['pid']}  since {server['started_at']}  {server['missions_running']} running"
        )
    return Exit.OK
