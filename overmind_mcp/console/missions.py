"""`overmind result`, `info`, `kill` and `wait`: one mission (or a few), as the MCP tools see them.

`kill` and `wait` act on missions other processes supervise, through the store and the
kernel only (see foreign.py); the answers are the MCP tools' own models.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

import anyio

from overmind_mcp.console import answers, approvals, render
from overmind_mcp.console.common import Exit
from overmind_mcp.console.live import read_live
from overmind_mcp.console.render import Column, Out
from overmind_mcp.console.state import open_state, watching
from overmind_mcp.models import LIVE, KillResult, MissionResult, WaitResult
from overmind_mcp.providers import parser_for
from overmind_mcp.readside import views
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision.foreign import is_running, kill_missions, live_owners, orphan_state, until_ended

_UNRECORDED = "its process ended while its server was gone; the next server to start records how it ended"

# -- result --------------------------------------------------------------------------------------


def result(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_result, settings, args)


async def _result(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    async with open_state(settings) as state:
        row = await state.resolve(args.id)
        live = read_live([row]).get(row.id)
        if live is not None:
            live.awaiting_approval = (await approvals.waiting_for(state)).get(row.id)
        answer = answers.result(row, live, text_limit=settings.result_text_chars)
    answer.approvals = await approvals.decisions(settings, row.id)
    if args.json:
        out.json(answers.dump(answer))
        return Exit.OK
    _print_result(out, answer)
    return Exit.OK


def _print_result(out: Out, answer: MissionResult) -> None:
    exit_code = f", exit code {answer.exit_code}" if answer.exit_code is not None else ""
    out.line(f"{answer.name} ({answer.id}): {answer.status}{exit_code}", render.STATUS_STYLES.get(answer.status))
    facts = [f"cost {render.cost(answer.cost_usd)}"]
    if answer.num_turns is not None:
        facts.append(render.plural(answer.num_turns, "turn"))
    if answer.duration_ms is not None:
        facts.append(f"{answer.duration_ms / 1000:.1f}s")
    if answer.usage is not None:
        facts.append(
            f"{render.count(answer.usage.input_tokens)} in / {render.count(answer.usage.output_tokens)} out tokens"
        )
    if answer.session_id:
        facts.append(f"session {answer.session_id}")
    out.line(", ".join(facts), "dim")
    if answer.progress is not None:
        progress = answer.progress
        last = f", last tool {progress.last_tool}" if progress.last_tool else ""
        out.line(
            f"running: {render.plural(progress.turns, 'turn')}, {render.plural(progress.tool_calls, 'tool call')}"
            f"{last}, {render.plural(progress.output_lines, 'output line')}, idle {render.age(progress.idle_s)}"
        )
        if progress.last_text:
            out.line(f"last said: {render.clip(progress.last_text, 200)}")
    for error in answer.errors:
        out.line(f"error: {error}", "red")
    for denial in answer.permission_denials:
        out.line(f"permission denied: {denial.get('tool_name', '?')}", "yellow")
    for decision in answer.approvals:
        by = f"{decision.by} {decision.by_name}" if decision.by_name else decision.by
        rule = f" (rule {decision.rule})" if decision.rule else ""
        edited = ", edited" if decision.edited else ""
        out.line(
            f"permission: {decision.call} {decision.decision} by {by}{rule}{edited}, {decision.latency_ms:.0f} ms",
            "green" if decision.decision == "allow" else "yellow",
        )
    if answer.text:
        out.line()
        out.line(answer.text)
        if answer.text_truncated:
            out.line("[the text was cut; `overmind logs` has all of it]", "dim")


# -- info ----------------------------------------------------------------------------------------


def info(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_info, settings, args)


async def _info(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    async with open_state(settings) as state:
        row = await state.resolve(args.id)
        children = await state.store.missions(parent_id=row.id)
        parent = await state.store.get(row.parent_id) if row.parent_id else None
        events = await state.store.events(row.id)
        servers = {server.id: server for server in await state.servers()}
    server = servers.get(row.server_id or "")
    report: dict[str, Any] = {
        "mission": {**asdict(row), "spec": row.spec.model_dump(mode="json", exclude_none=True)},
        "process_alive": row.pid is not None and is_running(row.pid, row.proc_start),
        "server": None
        if server is None
        else {"id": server.id, "pid": server.pid, "alive": server.alive, "started_at": views.iso(server.started_at)},
        "children": [{"id": child.id, "name": child.name, "status": child.status} for child in children],
        "events": [{"at": views.iso(at), "kind": kind, "data": data} for at, kind, data in events],
    }
    if args.json:
        out.json(report)
        return Exit.OK
    fields: list[tuple[str, str]] = [
        ("id", row.id),
        ("name", row.name),
        ("status", row.status + (f" (exit code {row.exit_code})" if row.exit_code is not None else "")),
        ("parent", f"{parent.name} ({parent.id})" if parent else row.parent_id or "-"),
        ("children", ", ".join(f"{child.name} ({child.status})" for child in children) or "-"),
        ("depth", str(row.depth)),
        ("kind", parser_for(row.provider).label),
        ("cwd", row.cwd),
        ("created", _when(row.created_at)),
        ("started", _when(row.started_at)),
        ("ended", _when(row.ended_at)),
        ("end reason", row.end_reason or "-"),
        ("process", _process(row, report["process_alive"])),
        ("server", _server(report["server"])),
        ("session", row.session_id or "-"),
        ("cost", render.cost(row.cost_usd)),
        ("turns", str(row.num_turns)),
        ("restarts", str(row.restarts)),
        ("stop request", row.stop_request or "-"),
        ("output", _file(row.output_path)),
        ("stderr", _file(row.stderr_path)),
        ("spec", row.spec.model_dump_json(exclude_defaults=True)),
    ]
    width = max(len(name) for name, _value in fields)
    for name, value in fields:
        out.line(f"{name.ljust(width)}  {value}")
    if events:
        out.line()
        out.line("events", "bold")
        for at, kind, data in events:
            out.line(f"  {views.iso(at)}  {kind}  {json.dumps(data, ensure_ascii=False)}")
    return Exit.OK


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    import time

    return f"{views.iso(timestamp)} ({render.age(time.time() - timestamp)} ago)"


def _process(row: MissionRow, alive: bool) -> str:
    if row.pid is None:
        return "-"
    return f"pid {row.pid}, group {row.pgid}, {'running' if alive else 'ended'}"


def _server(server: dict[str, Any] | None) -> str:
    if server is None:
        return "-"
    return f"{server['id']} (pid {server['pid']}, {'running' if server['alive'] else 'gone'})"


def _file(path: str) -> str:
    size = answers.file_size(path)
    return f"{path} ({render.size(size)})"


# -- kill ----------------------------------------------------------------------------------------


def kill(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_kill, settings, args)


async def _kill(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    # Read-write: a stop request goes into the store before any signal, for the owner to record.
    async with open_state(settings, writable=True) as state, watching() as watcher:
        targets = [await state.resolve(ref) for ref in dict.fromkeys(args.ids)]
        answer = await kill_missions(
            state.store,
            watcher,
            state.database_path,
            targets,
            cascade=args.cascade,
            force=args.force,
            grace_s=settings.kill_grace_s,
        )
        rows = [await state.store.get(outcome.id) for outcome in answer.ended]
        owners = await live_owners(state.store, [row for row in rows if row is not None])
    unrecorded = {row.id for row in rows if row is not None and orphan_state(row, owners) == "unrecorded"}
    still_running = [
        outcome.name
        for outcome, row in zip(answer.ended, rows, strict=True)
        if row is not None and row.status in LIVE and row.id not in unrecorded
    ]
    if args.json:
        out.json(answers.dump(answer))
    else:
        _print_kill(out, answer, unrecorded)
    if still_running:
        render.note(f"still running: {', '.join(still_running)}")
        return Exit.PROBLEM
    return Exit.OK


def _print_kill(out: Out, answer: KillResult, unrecorded: set[str]) -> None:
    rows = [
        [outcome.name, render.status_cell(outcome.status, "*" if outcome.id in unrecorded else ""), outcome.how]
        for outcome in answer.ended
    ]
    out.table([Column("NAME"), Column("STATUS"), Column("HOW", flexible=True)], rows)
    if unrecorded:
        out.line(f"* {_UNRECORDED}", "yellow")


# -- wait ----------------------------------------------------------------------------------------


def wait(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_wait, settings, args)


async def _wait(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    async with open_state(settings) as state, watching() as watcher:
        ids = list(dict.fromkeys([(await state.resolve(ref)).id for ref in args.ids]))
        waited = await until_ended(
            state.store, watcher, state.database_path, ids, mode="any" if args.any else "all", timeout_s=args.timeout
        )
        rows = {mission_id: row for mission_id, row in waited.rows.items() if row is not None}
        done = [rows[mission_id] for mission_id in waited.done if mission_id in rows]
        pending = [row for mission_id, row in rows.items() if mission_id not in waited.done]
        positions = answers.queue_positions(pending, await state.store.missions(statuses=("queued",)))
    lives = read_live(pending)
    answer = WaitResult(
        done=[answers.result(row, None, text_limit=settings.result_text_chars) for row in done],
        pending=[answers.summary(row, lives.get(row.id), positions.get(row.id)) for row in pending],
        timed_out=waited.timed_out,
    )
    if args.json:
        out.json(answers.dump(answer))
    else:
        for row in done:
            out.line(render.outcome_line(row), render.STATUS_STYLES.get(row.status))
        for row in pending:
            why = _UNRECORDED if row.id in waited.unrecorded else "still running"
            out.line(f"{row.name}: {why}", "yellow")
    if waited.timed_out:
        return Exit.TIMEOUT
    if waited.unrecorded and not done:
        return Exit.PROBLEM
    return exit_code_of(done[0] if args.any else _first_failure(done))


def _first_failure(rows: list[MissionRow]) -> MissionRow | None:
    return next((row for row in rows if exit_code_of(row) != 0), None)


def exit_code_of(row: MissionRow | None) -> int:
    """The mission's exit code as a shell reports it (128+N for signal N); 1 for an unsuccessful end without one."""
    if row is None or row.status == "succeeded":
        return Exit.OK
    code = row.exit_code
    if code is None or code == 0:
        # Stopped, timed out, lost, or a failure that exited 0: a script must not read it as success.
        return Exit.PROBLEM
    return code if code > 0 else 128 - code
