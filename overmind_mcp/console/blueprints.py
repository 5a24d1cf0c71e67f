"""`overmind agents` and `overmind apply`: a blueprint's plan, offline; and a run of it, through a live server.

`agents` needs no server: it reads and checks the file, and prints its agents in layers (each
layer runs at once, after the one before it) or every problem. `apply` checks the file too,
then asks a live server on the state directory to run it (the control mailbox): the run is a
mission like any other, so `overmind ps --tree`, `logs`, `wait` and `kill` work on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anyio

from overmind_mcp.blueprints.launch import checked
from overmind_mcp.blueprints.plan import Plan, plan_of
from overmind_mcp.blueprints.validate import BlueprintInvalid, load, read_source
from overmind_mcp.console import answers, render
from overmind_mcp.console.common import CliError, Exit
from overmind_mcp.console.render import Out
from overmind_mcp.errors import InvalidRequest
from overmind_mcp.settings import Settings


def agents(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    text, source = _read(args.file)
    check = checked(text, source)
    if check.plan is None:
        _refuse(out, args.file, check.problems)
    assert check.plan is not None
    if args.json:
        out.json(check.plan.model_dump(mode="json"))
        return Exit.OK
    _print_plan(out, check.plan)
    return Exit.OK


def apply(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_apply, settings, args)


async def _apply(settings: Settings, args: argparse.Namespace) -> int:
    from overmind_mcp.blueprints.verbs import APPLY, ApplyRequest
    from overmind_mcp.console.remote import ANSWER_TIMEOUT_S, ask, finish

    out = Out(json_mode=args.json)
    text, source = _read(args.file)
    run_vars = _vars(args.var or [])
    try:
        plan = plan_of(load(text, source=source, run_vars=run_vars))
    except BlueprintInvalid as invalid:
        _refuse(out, args.file, [str(problem) for problem in invalid.problems])
    started = await ask(
        settings,
        APPLY,
        ApplyRequest(toml=text, source=source, vars=run_vars),
        target=args.server,
        timeout_s=ANSWER_TIMEOUT_S,
    )
    if args.wait:
        if not out.json_mode:
            render.note(f"started {started.name} ({started.id}); waiting for it to end")
        return await finish(settings, out, started.id, started)
    if out.json_mode:
        out.json(answers.dump(started))
    else:
        out.line(f"started {started.name} ({started.id})")
        _print_plan(out, plan)
    return Exit.OK


def _read(file: str) -> tuple[str, str | None]:
    try:
        return read_source(file, None, base=Path.cwd())
    except InvalidRequest as exc:
        raise CliError(str(exc), Exit.NOT_FOUND) from None


def _refuse(out: Out, file: str, problems: list[str]) -> None:
    if out.json_mode:
        out.json({"valid": False, "problems": problems})
    else:
        for problem in problems:
            sys.stderr.write(f"{file}: {problem}\n")
    raise CliError(f"{file}: {render.plural(len(problems), 'problem')}; nothing was run", Exit.USAGE)


def _print_plan(out: Out, plan: Plan) -> None:
    out.line(f"{plan.name}: {render.plural(plan.nodes, 'agent')} in {render.plural(len(plan.layers), 'layer')}")
    for number, layer in enumerate(plan.layers, start=1):
        for name in layer:
            deps = plan.depends_on[name]
            after = f"  (after {', '.join(deps)})" if deps else ""
            out.line(f"  {number}. {name}{after}")


def _vars(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        name, equals, raw = pair.partition("=")
        if not equals or not name:
            raise CliError(f"--var {pair!r}: write NAME=VALUE (the value as JSON, or plain text)", Exit.USAGE)
        try:
            values[name] = json.loads(raw)
        except ValueError:
            values[name] = raw
    return values
