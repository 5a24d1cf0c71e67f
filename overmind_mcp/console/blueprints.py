"""`overmind agents` and `overmind apply`: a blueprint's plan, offline; and how to run it.

`agents` needs no server: it reads and checks the file, and prints its agents in layers (each
layer runs at once, after the one before it) or every problem. `apply` runs a blueprint
through a live server, which the console has no way to ask yet: it checks the file and
says how to run it from an MCP client.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from overmind_mcp.blueprints.launch import checked
from overmind_mcp.blueprints.plan import Plan
from overmind_mcp.blueprints.validate import read_source
from overmind_mcp.console import render
from overmind_mcp.console.common import CliError, Exit
from overmind_mcp.console.render import Out
from overmind_mcp.errors import InvalidRequest
from overmind_mcp.settings import Settings


def agents(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    plan = _plan(args.file, out)
    if args.json:
        out.json(plan.model_dump(mode="json"))
        return Exit.OK
    out.line(f"{plan.name}: {render.plural(plan.nodes, 'agent')} in {render.plural(len(plan.layers), 'layer')}")
    for number, layer in enumerate(plan.layers, start=1):
        for name in layer:
            deps = plan.depends_on[name]
            after = f"  (after {', '.join(deps)})" if deps else ""
            out.line(f"  {number}. {name}{after}")
    return Exit.OK


def apply(settings: Settings, args: argparse.Namespace) -> int:
    plan = _plan(args.file, Out(json_mode=args.json))
    path = str(Path(args.file).resolve())
    run_vars = _vars(args.var or [])
    call = {"path": path, **({"vars": run_vars} if run_vars else {})}
    raise CliError(
        f"{plan.name} is valid ({render.plural(plan.nodes, 'agent')}), but this overmind command cannot reach a "
        "live server to run it. Run it from the MCP client that owns the server (a Claude Code session "
        f"with overmind added): call blueprint_run with {json.dumps(call)}; then `overmind ps --tree` "
        "shows the run and its agents.",
        Exit.PROBLEM,
    )


def _plan(file: str, out: Out) -> Plan:
    try:
        text, source = read_source(file, None, base=Path.cwd())
    except InvalidRequest as exc:
        raise CliError(str(exc), Exit.NOT_FOUND) from None
    check = checked(text, source)
    if check.plan is None:
        if out.json_mode:
            out.json(check.model_dump(mode="json"))
        else:
            for problem in check.problems:
                sys.stderr.write(f"{file}: {problem}\n")
        raise CliError(f"{file}: {render.plural(len(check.problems), 'problem')}; nothing was run", Exit.USAGE)
    return check.plan


def _vars(pairs: list[str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for pair in pairs:
        name, equals, raw = pair.partition("=")
        if not equals or not name:
            raise CliError(f"--var {pair!r}: write NAME=VALUE (the value as JSON, or plain text)", Exit.USAGE)
        try:
            values[name] = json.loads(raw)
        except ValueError:
            values[name] = raw
    return values
