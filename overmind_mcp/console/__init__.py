"""`overmind`: watch and steer the missions of every overmind-mcp server on this state directory.

Agents use the MCP tools; this is the human side, for another terminal while a Claude Code
session owns its server over stdio. The database is the source of truth: every verb works
against live servers started by anybody on the same state directory, and none starts a
server or a supervisor of its own.

Fast to start: this module imports only argparse; each verb imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from overmind_mcp.console.common import CliError, Exit

# verb → (module, function); each function takes (settings, args) and returns an exit code.
_VERBS: dict[str, tuple[str, str]] = {
    "ps": ("ps", "ps"),
    "status": ("ps", "status"),
    "logs": ("logs", "logs"),
    "monitor": ("logs", "monitor"),
    "result": ("missions", "result"),
    "info": ("missions", "info"),
    "kill": ("missions", "kill"),
    "wait": ("missions", "wait"),
    "top": ("top", "top"),
    "tui": ("tui", "tui"),
    "attach": ("attach", "attach"),
    "doctor": ("doctor", "doctor"),
    "install": ("install", "install"),
    "dashboard": ("dashboard", "dashboard"),
    "agents": ("blueprints", "agents"),
    "apply": ("blueprints", "apply"),
}

# For `overmind-mcp <verb>`: the server's own command can hand these to `main`.
VERBS = frozenset(_VERBS)

EPILOG = """\
exit codes: 0 ok; 1 something needs attention (doctor found a problem, a kill left a mission
running); 2 bad arguments; 3 no such mission, or no database yet; 124 `wait --timeout` passed;
`wait` otherwise exits with the mission's own exit code.
"""


def build_parser() -> argparse.ArgumentParser:
    # --home and --json work before or after the verb; SUPPRESS keeps a verb's parser from
    # overwriting what was given before it.
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "--home", default=argparse.SUPPRESS, help="the state directory (default: $OVERMIND_HOME, else ~/.overmind)"
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON (the MCP tools' shapes)"
    )

    parser = argparse.ArgumentParser(
        prog="overmind",
        description="Watch and steer the agents of every overmind-mcp server on this state directory.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[shared, listing],
    )
    from overmind_mcp import __version__

    parser.add_argument("--version", action="version", version=f"overmind {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        return verbs.add_parser(name, help=help, description=help, parents=[shared, listing])

    ps = verb("ps", "missions of every server: id, name, status, parent, age, turns, cost, what each is doing")
    ps.add_argument("--tree", action="store_true", help="draw each mission under its parent")
    ps.add_argument(
        "--all", action="store_true", help="every mission, not only live ones and those ended in the last hour"
    )
    ps.add_argument("--parent", metavar="ID", help="only this mission's children (its whole subtree with --tree)")
    ps.add_argument("--status", help="only missions with this status (running, succeeded, failed, …)")
    ps.add_argument(
        "--limit", type=_positive_int, default=100, help="most missions to list; live ones always are (100)"
    )

    verb("status", "missions by status, total cost, and the servers sharing the state directory")

    logs = verb("logs", "a mission's readable log: its text, one line per tool call, restarts, errors")
    logs.add_argument("id", metavar="ID", help="the mission's id or name")
    logs.add_argument("-f", "--follow", action="store_true", help="follow the log live until the mission ends")
    logs.add_argument("--events", action="store_true", help="the raw stream-json lines instead")
    logs.add_argument("-n", "--tail", type=_positive_int, metavar="N", help="only the last N lines to start with")
    logs.add_argument("--cursor", type=_non_negative_int, default=0, help="with --json: the byte offset to read from")
    logs.add_argument("--limit", type=_positive_int, default=200, help="with --json: most lines in the page (200)")

    monitor = verb("monitor", "follow every running mission's log at once, and new missions as they start")
    monitor.add_argument("--exit-when-idle", action="store_true", help="stop once no mission is running")

    for name, help in (
        ("result", "a mission's outcome: status, final answer, errors, cost; progress while it runs"),
        ("info", "everything stored about a mission: options, process, server, files, events"),
    ):
        verb(name, help).add_argument("id", metavar="ID", help="the mission's id or name")

    kill = verb("kill", "end missions and everything they started (children first): SIGINT, SIGTERM, then SIGKILL")
    kill.add_argument("ids", nargs="+", metavar="ID", help="ids or names of the missions to end")
    kill.add_argument("--force", action="store_true", help="SIGKILL at once")
    kill.add_argument("--no-cascade", dest="cascade", action="store_false", help="leave their children running")

    wait = verb("wait", "wait until missions end; exits with the mission's exit code")
    wait.add_argument("ids", nargs="+", metavar="ID", help="ids or names of the missions to wait for")
    wait.add_argument("--any", action="store_true", help="return when the first one ends")
    wait.add_argument("--timeout", type=_non_negative_float, metavar="S", help="give up after S seconds (exit 124)")

    top = verb("top", "a live view of running missions: CPU and memory of each whole process tree, output, cost")
    top.add_argument(
        "--sort",
        choices=["cpu", "rss", "rate", "tokens", "cost", "age", "name"],
        default="cpu",
        help="the column to sort by, largest first (cpu)",
    )
    top.add_argument("--interval", type=_positive_float, default=2.0, metavar="S", help="seconds between refreshes (2)")
    top.add_argument(
        "--once", action="store_true", help="print one measurement and exit (the default when stdout is not a terminal)"
    )

    tui = verb("tui", "a full-screen view: the mission tree, a live log, CPU and memory; kill, send, attach by key")
    tui.add_argument(
        "--all", action="store_true", help="every mission, not only live ones and those ended in the last hour"
    )
    tui.add_argument(
        "--interval", type=_positive_float, default=2.0, metavar="S", help="seconds between CPU samples (2)"
    )

    attach = verb("attach", "take a live session over: `claude --resume` here, then it goes back to its server")
    attach.add_argument("id", metavar="ID", help="the session's id or name")

    doctor = verb("doctor", "check the claude binary, the state directory, the database and ports; say what to fix")
    doctor.add_argument("--port", type=int, default=8765, help="the HTTP mode's port to check (8765)")

    install = verb("install", "register the server with Claude Code and install the /overmind skill")
    install.add_argument("--dry-run", action="store_true", help="print what would be done, and do nothing")
    install.add_argument("--force", action="store_true", help="replace an existing registration and skill")
    install.add_argument(
        "--scope", choices=["user", "project", "local"], default="user", help="Claude Code scope (user)"
    )
    install.add_argument("--skill-file", metavar="PATH", help="the SKILL.md to install (default: the package's own)")
    dashboard = verb("dashboard", "print (and open, where a browser can show it) a one-time login link to the web UI")
    dashboard.add_argument("--no-open", dest="open", action="store_false", help="print the link only")
    dashboard.add_argument("--server", metavar="ID", help="the server whose dashboard to use (default: the newest)")
    agents = verb("agents", "a blueprint's agents in the order they run (layers run at once), or its every problem")
    agents.add_argument("file", metavar="FILE", help="the blueprint (TOML)")
    apply = verb("apply", "run a blueprint through a live server (or say how to)")
    apply.add_argument("file", metavar="FILE", help="the blueprint (TOML)")
    apply.add_argument("--var", action="append", metavar="NAME=VALUE", help="a value for one of its [vars]")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(run(args))


def run(args: argparse.Namespace) -> int:
    args.json = getattr(args, "json", False)
    module_name, function_name = _VERBS[args.verb]
    try:
        from pathlib import Path

        from overmind_mcp.settings import Settings

        try:
            overrides = {"home": Path(args.home).expanduser()} if getattr(args, "home", None) else {}
            settings = Settings.from_env(None, **overrides)
        except ValueError as exc:
            raise CliError(str(exc), Exit.USAGE) from None
        module = importlib.import_module(f"overmind_mcp.console.{module_name}")
        handler: Callable[..., int] = getattr(module, function_name)
        return int(handler(settings, args))
    except BaseException as raised:
        # A task group wraps what its tasks raise; a refusal is still a refusal.
        error = _unwrap(raised)
        if isinstance(error, CliError):
            sys.stderr.write(f"overmind {args.verb}: {error}\n")
            return int(error.code)
        if isinstance(error, KeyboardInterrupt):
            return int(Exit.INTERRUPTED)
        if isinstance(error, BrokenPipeError):
            # The reader went away (`overmind logs x | head`): not an error; keep Python's exit quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return int(Exit.OK)
        raise


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value
