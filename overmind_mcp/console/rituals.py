"""`overmind ritual …` and `overmind quest …`: scheduled runs and one-shot runs from the terminal.

Changes (create, delete, pause, resume, quest run) go through a live server (the control
mailbox), which validates them and whose scheduler wakes at once; listings read rituals.db
and the mission table directly, so they work while no server runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import anyio

from overmind_mcp.console import answers, render
from overmind_mcp.console.common import CliError, Exit, NoDatabase
from overmind_mcp.console.remote import ANSWER_TIMEOUT_S, ask, finish, spawn_request
from overmind_mcp.console.render import Column, Out
from overmind_mcp.console.state import State, open_state
from overmind_mcp.rituals import views
from overmind_mcp.rituals.models import History, QuestList, QuestRequest, Ritual, RitualList, RitualRun
from overmind_mcp.rituals.store import RitualStore
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import MissionRow


def ritual(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_RITUAL_ACTIONS[args.action], settings, args)


def quest(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_QUEST_ACTIONS[args.action], settings, args)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """`overmind run` is `overmind quest run`."""
    return anyio.run(_quest_run, settings, args)


# -- changes, through a live server ----------------------------------------------------------------


async def _create(settings: Settings, args: argparse.Namespace) -> int:
    from overmind_mcp.rituals.models import RitualSpec
    from overmind_mcp.rituals.verbs import SCHEDULE

    spawn = spawn_request(args)
    try:
        spec = RitualSpec(
            name=args.name,
            cron=args.cron,
            spawn=spawn,
            tz=args.tz,
            catch_up=args.catch_up,
            misfire_grace_s=args.grace,
            overlap=args.overlap,
            jitter_s=args.jitter,
            enabled=not args.paused,
        )
    except ValueError as exc:
        raise CliError(str(exc), Exit.USAGE) from None
    created = await ask(settings, SCHEDULE, spec, target=None, timeout_s=ANSWER_TIMEOUT_S)
    return _print_ritual(Out(json_mode=args.json), created)


async def _delete(settings: Settings, args: argparse.Namespace) -> int:
    from overmind_mcp.rituals.models import RitualName
    from overmind_mcp.rituals.verbs import UNSCHEDULE

    deleted = await ask(settings, UNSCHEDULE, RitualName(name=args.name), target=None, timeout_s=ANSWER_TIMEOUT_S)
    out = Out(json_mode=args.json)
    if out.json_mode:
        out.json(answers.dump(deleted))
    else:
        still = f"; {render.plural(deleted.fires_kept, 'run')} already started go on" if deleted.fires_kept else ""
        out.line(f"deleted ritual {deleted.name}{still}")
    return Exit.OK


async def _pause(settings: Settings, args: argparse.Namespace) -> int:
    from overmind_mcp.rituals.models import Paused
    from overmind_mcp.rituals.verbs import PAUSE

    request = Paused(name=args.name, paused=args.action == "pause")
    changed = await ask(settings, PAUSE, request, target=None, timeout_s=ANSWER_TIMEOUT_S)
    return _print_ritual(Out(json_mode=args.json), changed)


async def _quest_run(settings: Settings, args: argparse.Namespace) -> int:
    from overmind_mcp.rituals.verbs import QUEST

    out = Out(json_mode=args.json)
    request = QuestRequest(spawn=spawn_request(args))
    spawned = await ask(settings, QUEST, request, target=args.server, timeout_s=ANSWER_TIMEOUT_S)
    if args.wait:
        if not out.json_mode:
            render.note(f"started {spawned.name} ({spawned.id}); waiting for it to end")
        return await finish(settings, out, spawned.id, spawned)
    if out.json_mode:
        out.json(answers.dump(spawned))
    else:
        pid = f", pid {spawned.pid}" if spawned.pid else ""
        out.line(f"{spawned.name} ({spawned.id}): {spawned.status}{pid}")
    return Exit.OK


# -- listings, read directly -----------------------------------------------------------------------


@dataclass(slots=True)
class _Reading:
    rituals: RitualStore
    missions: State | None

    async def lookup(self, mission_id: str) -> MissionRow | None:
        return await self.missions.store.get(mission_id) if self.missions is not None else None


@asynccontextmanager
async def _reading(settings: Settings) -> AsyncIterator[_Reading]:
    try:
        store = await RitualStore.open_readonly(settings.home)
    except RuntimeError as exc:
        raise CliError(f"{exc}: upgrade overmind-mcp, or start a server once") from None
    if store is None:
        raise NoDatabase(f"no rituals yet: {settings.home / 'rituals.db'} does not exist")
    async with AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        try:
            missions: State | None = await stack.enter_async_context(open_state(settings))
        except NoDatabase:
            missions = None
        yield _Reading(store, missions)


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    async with _reading(settings) as reading:
        now = time.time()
        listed = RitualList(
            rituals=[
                await views.ritual_of(row, await reading.rituals.fires(row.id, limit=1), reading.lookup, now)
                for row in await reading.rituals.rituals()
            ]
        )
    if out.json_mode:
        out.json(answers.dump(listed))
        return Exit.OK
    rows = [
        [
            entry.name,
            entry.cron,
            entry.tz,
            ("active", "green") if entry.enabled else ("paused", "yellow"),
            entry.next_fires[0] if entry.next_fires else "-",
            _last(entry.last_runs[0]) if entry.last_runs else "-",
            _what(entry),
        ]
        for entry in listed.rituals
    ]
    columns = ["NAME", "CRON", "TZ", "STATE", "NEXT", "LAST"]
    out.table([*map(Column, columns), Column("RUNS", flexible=True)], rows)
    return Exit.OK


async def _history(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    async with _reading(settings) as reading:
        row = await reading.rituals.ritual(args.name)
        if row is None:
            raise CliError(f"no ritual is named {args.name!r}; `overmind ritual list` lists them", Exit.NOT_FOUND)
        now = time.time()
        fires = await reading.rituals.fires(row.id, limit=args.limit)
        history = History(name=row.name, runs=[await views.run_of(fire, row.tz, reading.lookup, now) for fire in fires])
    if out.json_mode:
        out.json(answers.dump(history))
        return Exit.OK
    columns = [
        Column("SLOT"),
        Column("STATUS"),
        Column("EXIT", "right"),
        Column("COST", "right"),
        Column("TOOK", "right"),
        Column("LATE", "right"),
        Column("MISSION"),
        Column("WHY", flexible=True),
    ]
    out.table(columns, [_history_row(run) for run in history.runs])
    return Exit.OK


async def _quest_list(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    async with _reading(settings) as reading:
        now = time.time()
        quests = QuestList(
            quests=[
                await views.quest_of(row, reading.lookup, now) for row in await reading.rituals.quests(limit=args.limit)
            ]
        )
    if out.json_mode:
        out.json(answers.dump(quests))
        return Exit.OK
    rows = [
        [
            entry.name,
            entry.origin if entry.ritual is None else f"ritual {entry.ritual} @ {entry.slot}",
            render.status_cell(entry.status),
            "-" if entry.exit_code is None else str(entry.exit_code),
            render.cost(entry.cost_usd),
            "-" if entry.duration_s is None else f"{entry.duration_s:.1f}s",
            entry.created_at,
        ]
        for entry in quests.quests
    ]
    header = [Column("NAME"), Column("FROM"), Column("STATUS"), Column("EXIT", "right"), Column("COST", "right")]
    out.table([*header, Column("TOOK", "right"), Column("STARTED")], rows)
    return Exit.OK


def _print_ritual(out: Out, entry: Ritual) -> int:
    if out.json_mode:
        out.json(answers.dump(entry))
        return Exit.OK
    state = "active" if entry.enabled else "paused"
    out.line(f"ritual {entry.name}: {entry.cron} ({entry.tz}), {state}; runs {_what(entry)}")
    if entry.next_fires:
        out.line(f"next: {', '.join(entry.next_fires)}", "dim")
    return Exit.OK


def _what(entry: Ritual) -> str:
    if entry.blueprint is not None:
        return f"blueprint {entry.blueprint}"
    spawn = entry.spawn or {}
    if spawn.get("command"):
        return " ".join(spawn["command"])
    return f"claude: {render.clip(str(spawn.get('prompt', '')), 60)}"


def _last(run: RitualRun) -> str:
    return f"{run.slot} {run.status}"


def _history_row(run: RitualRun) -> list[render.Cell]:
    return [
        run.slot,
        render.status_cell(run.status),
        "-" if run.exit_code is None else str(run.exit_code),
        render.cost(run.cost_usd),
        "-" if run.duration_s is None else f"{run.duration_s:.1f}s",
        "-" if run.late_s is None else f"{run.late_s * 1000:.0f}ms",
        run.name or "-",
        run.reason or "",
    ]


_RITUAL_ACTIONS = {
    "create": _create,
    "delete": _delete,
    "pause": _pause,
    "resume": _pause,
    "list": _list,
    "history": _history,
}
_QUEST_ACTIONS = {"run": _quest_run, "list": _quest_list}
