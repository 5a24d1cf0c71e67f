"""What the verbs carried out by a live server share (through the control mailbox), and `overmind send`."""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio
from pydantic import BaseModel

from overmind_mcp.console import answers, render
from overmind_mcp.console.common import CliError, Exit
from overmind_mcp.console.render import Out
from overmind_mcp.console.state import open_state, watching
from overmind_mcp.control.client import ControlError, call
from overmind_mcp.control.verbs import A, P, Verb
from overmind_mcp.models import SpawnRequest, TurnResult
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.foreign import until_ended

_EXIT_BY_KIND = {"NotFound": Exit.NOT_FOUND, "InvalidRequest": Exit.USAGE}
ANSWER_TIMEOUT_S = 30.0


async def ask(settings: Settings, verb: Verb[P, A], payload: P, *, target: str | None, timeout_s: float) -> A:
    """A live server's answer, or a CliError that says why there is none."""
    try:
        return await call(settings.home, verb, payload, target=target, timeout_s=timeout_s)
    except ControlError as exc:
        raise CliError(str(exc), _EXIT_BY_KIND.get(exc.kind, Exit.PROBLEM)) from None


def spawn_request(args: argparse.Namespace) -> SpawnRequest:
    """What `run` (and `quest run`) asks for: a prompt or an argv, in the terminal's directory."""
    if (args.prompt is None) == (not args.command):
        raise CliError("give either --prompt TEXT or a command after `--` (e.g. overmind run -- make test)", Exit.USAGE)
    # The server's cwd is not the person's: a run starts where the command was typed.
    cwd = Path(args.cwd).expanduser() if args.cwd else Path.cwd()
    fields = {
        "prompt": args.prompt,
        "command": args.command or None,
        "name": args.run_name,
        "cwd": str(cwd.resolve()),
        "model": args.model,
        "max_turns": args.max_turns,
        "max_budget_usd": args.max_budget_usd,
        "timeout_s": args.timeout,
        "detach": args.detach,
    }
    try:
        return SpawnRequest.model_validate({key: value for key, value in fields.items() if value is not None})
    except ValueError as exc:
        raise CliError(str(exc), Exit.USAGE) from None


async def finish(settings: Settings, out: Out, mission_id: str, spawned: BaseModel) -> int:
    """With --wait: the mission's end, printed, as the exit code (`overmind wait` does the same)."""
    from overmind_mcp.console.missions import exit_code_of

    async with open_state(settings) as state, watching() as watcher:
        waited = await until_ended(state.store, watcher, state.database_path, [mission_id])
        row = waited.rows.get(mission_id)
    if row is None:
        raise CliError(f"mission {mission_id} was removed before it ended", Exit.NOT_FOUND)
    if out.json_mode:
        out.json(
            {
                "started": answers.dump(spawned),
                "result": answers.dump(answers.result(row, None, text_limit=settings.result_text_chars)),
            }
        )
    else:
        out.line(render.outcome_line(row), render.STATUS_STYLES.get(row.status))
        text = (row.result or {}).get("text")
        if text:
            out.line(text)
    if mission_id in waited.unrecorded:
        render.note("its process ended while its server was gone; the next server to start records how it ended")
        return Exit.PROBLEM
    return exit_code_of(row)


# -- send ----------------------------------------------------------------------------------------


def send(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_send, settings, args)


async def _send(settings: Settings, args: argparse.Namespace) -> int:
    from overmind_mcp.control.verbs import SEND, SendRequest

    out = Out(json_mode=args.json)
    request = SendRequest(id=args.id, message=args.message, wait=args.wait, timeout_s=args.timeout)
    # The server waits up to timeout_s for the turn; the answer needs a moment more to come back.
    budget = request.timeout_s + ANSWER_TIMEOUT_S if request.wait else ANSWER_TIMEOUT_S
    turn = await ask(settings, SEND, request, target=args.server, timeout_s=budget)
    if out.json_mode:
        out.json(answers.dump(turn))
    else:
        _print_turn(out, turn)
    if turn.timed_out:
        return Exit.TIMEOUT
    return Exit.PROBLEM if turn.is_error or turn.state == "abandoned" else Exit.OK


def _print_turn(out: Out, turn: TurnResult) -> None:
    where = f" (#{turn.queue_position} in the queue)" if turn.queue_position else ""
    cost = f", {render.cost(turn.cost_usd)} so far" if turn.cost_usd is not None else ""
    out.line(f"{turn.name} turn {turn.turn}: {turn.state}{where}{cost}", "dim")
    for error in turn.errors:
        out.line(f"error: {error}", "red")
    if turn.text:
        out.line(turn.text)
    if turn.timed_out:
        render.note("no answer within --timeout; the turn goes on (`overmind logs -f` follows it)")
