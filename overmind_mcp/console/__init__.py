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
    "run": ("rituals", "run"),
    "send": ("remote", "send"),
    "ritual": ("rituals", "ritual"),
    "quest": ("rituals", "quest"),
    "agents": ("blueprints", "agents"),
    "apply": ("blueprints", "apply"),
    "worktrees": ("worktrees", "worktrees"),
    "merge": ("worktrees", "merge"),
    "discard": ("worktrees", "discard"),
    "approvals": ("approvals", "approvals"),
    "approve": ("approvals", "approve"),
}

# For `overmind-mcp <verb>`: the server's own command can hand these to `main`.
VERBS = frozenset(_VERBS)

EPILOG = """\
exit codes: 0 ok; 1 something needs attention (doctor found a problem, a kill left a mission
running, no server is running for run or send); 2 bad arguments; 3 no such mission, or no
database yet; 124 `wait --timeout` passed; `wait` and `run --wait` otherwise exit with the
mission's own exit code.
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

    run = verb("run", "start a quest (a one-shot mission) through a live server: a prompt, or a command after --")
    add_run_arguments(run)

    quest = verb("quest", "one-shot missions started from outside a session, with where each came from")
    quest_actions = quest.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_run_arguments(quest_actions.add_parser("run", help="the same as `overmind run`", parents=[shared, listing]))
    quests = quest_actions.add_parser(
        "list", help="quests, newest first: origin, status, exit code, cost", parents=[shared, listing]
    )
    quests.add_argument("--limit", type=_positive_int, default=50, help="most quests to list (50)")

    ritual = verb("ritual", "scheduled runs: create, list, delete, pause, resume, history")
    actions = ritual.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        return actions.add_parser(name, help=help, description=help, parents=[shared, listing])

    create = action("create", "schedule a prompt or a command after -- (through a live server)")
    create.add_argument("name", metavar="NAME", help="a unique name; each run is named NAME-<slot>")
    create.add_argument("cron", metavar="CRON", help='e.g. "0 9 * * mon-fri", "@daily"; 6 fields: leading seconds')
    add_spawn_arguments(create)
    create.add_argument("--tz", help="IANA time zone (default: this host's, frozen now)")
    create.add_argument(
        "--catch-up", choices=["latest", "none", "all"], default="latest", help="slots missed while no server ran"
    )
    create.add_argument("--grace", type=_non_negative_float, metavar="S", help="skip a slot more than S late")
    create.add_argument(
        "--overlap",
        choices=["forbid", "allow", "replace", "queue"],
        default="forbid",
        help="when the previous run is still going (forbid)",
    )
    create.add_argument("--jitter", type=_non_negative_float, default=0.0, metavar="S", help="a delay in [0, S)")
    create.add_argument("--paused", action="store_true", help="create it paused")
    for name, help in (
        ("delete", "delete a ritual; runs already started go on"),
        ("pause", "stop firing a ritual until it is resumed"),
        ("resume", "fire a paused ritual again (slots while paused are not owed)"),
    ):
        action(name, help).add_argument("name", metavar="NAME")
    action("list", "rituals: schedule, state, next fire, last run")
    history = action("history", "every fire of a ritual: slot, status, exit code, cost, duration, lateness")
    history.add_argument("name", metavar="NAME")
    history.add_argument("--limit", type=_positive_int, default=50, help="most fires to list, newest first (50)")

    send = verb("send", "send a live session its next message through a live server")
    send.add_argument("id", metavar="ID", help="the session's id or name")
    send.add_argument("message", help="the session's next turn")
    send.add_argument("--wait", action="store_true", help="wait for the turn's answer and print it")
    send.add_argument(
        "--timeout", type=_positive_float, default=120.0, metavar="S", help="with --wait: longest wait (120)"
    )
    send.add_argument("--server", metavar="ID", help="the server that runs the session (default: any)")

    install = verb("install", "register the server with Claude Code and install the /overmind skill")
    install.add_argument("--dry-run", action="store_true", help="print what would be done, and do nothing")
    install.add_argument("--force", action="store_true", help="replace an existing registration and skill")
    install.add_argument(
        "--scope", choices=["user", "project", "local"], default="user", help="Claude Code scope (user)"
    )
    install.add_argument("--skill-file", metavar="PATH", help="the SKILL.md to install (default: the package's own)")
    install.add_argument(
        "--service",
        action="store_true",
        help="instead: write a systemd user unit running `overmind-mcp serve --headless` (fires rituals)",
    )

    verb("approvals", "children's tool calls waiting for an answer, from every server on this state directory")
    approve = verb("approve", "answer a child's permission request; the server that holds it applies the answer")
    approve.add_argument("id", metavar="ID", help="the request's id (overmind approvals lists them)")
    approve.add_argument("decision", choices=["allow", "deny"])
    approve.add_argument("--message", help="on deny: what the child is told")
    approve.add_argument("--input", metavar="JSON", help="on allow: the tool's input to run instead (a JSON object)")
    approve.add_argument("--remember", action="store_true", help="answer the same call the same way from now on")
    dashboard = verb("dashboard", "print (and open, where a browser can show it) a one-time login link to the web UI")
    dashboard.add_argument("--no-open", dest="open", action="store_false", help="print the link only")
    dashboard.add_argument("--server", metavar="ID", help="the server whose dashboard to use (default: the newest)")
    agents = verb("agents", "a blueprint's agents in the order they run (layers run at once), or its every problem")
    agents.add_argument("file", metavar="FILE", help="the blueprint (TOML)")
    apply = verb("apply", "run a blueprint through a live server: a mission whose children are its agents")
    apply.add_argument("file", metavar="FILE", help="the blueprint (TOML)")
    apply.add_argument("--var", action="append", metavar="NAME=VALUE", help="a value for one of its [vars]")
    apply.add_argument("--wait", action="store_true", help="wait for the run to end; exit with its exit code")
    apply.add_argument("--server", metavar="ID", help="the server to run it on (default: any live one)")

    listed = verb("worktrees", "isolated missions' worktrees: mission, branch, commits ahead, uncommitted work, state")
    listed.add_argument("--all", action="store_true", help="removed and discarded ones too")
    merging = verb("merge", "merge an ended isolated mission's branch back; on conflict nothing changes (exit 1)")
    merging.add_argument("id", metavar="ID", help="the mission's id or name")
    merging.add_argument("--strategy", choices=["merge", "squash", "rebase"], default="merge", help="(merge)")
    merging.add_argument("--into", metavar="BRANCH", help="the target branch (default: the one it started from)")
    merging.add_argument("--check", action="store_true", help="only say whether it merges cleanly")
    discarding = verb("discard", "delete an ended isolated mission's worktree and branch, with any work in them")
    discarding.add_argument("id", metavar="ID", help="the mission's id or name")
    return parser


def add_spawn_arguments(parser: argparse.ArgumentParser) -> None:
    """What to run, and a few of spawn's limits (`run`, `quest run`, `ritual create`)."""
    parser.add_argument("--prompt", help="a task for a `claude -p` child; or, last, `-- ARGV…`: a command (no shell)")
    # `-- ARGV` is cut off before parsing (see main): argparse cannot place it after options reliably.
    parser.set_defaults(command=[])
    parser.add_argument("--cwd", help="its working directory (default: this one)")
    parser.add_argument("--model", help="the claude model")
    parser.add_argument("--max-turns", type=_positive_int, metavar="N")
    parser.add_argument("--max-budget-usd", type=_positive_float, metavar="USD")
    parser.add_argument("--timeout", type=_positive_float, metavar="S", help="end it after S seconds")
    parser.set_defaults(detach=False, run_name=None)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_spawn_arguments(parser)
    parser.add_argument("--name", dest="run_name", metavar="NAME", help="the mission's name (generated if left out)")
    parser.add_argument("--detach", action="store_true", help="keep it running if its server stops")
    parser.add_argument("--wait", action="store_true", help="wait for it to end; exit with its exit code")
    parser.add_argument("--server", metavar="ID", help="the server to start it on (default: any live one)")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    command: list[str] | None = None
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    if command is not None:
        if not hasattr(args, "command"):
            parser.error(f"{args.verb} takes no command after --")
        args.command = command
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
