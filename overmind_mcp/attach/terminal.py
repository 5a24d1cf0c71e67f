"""`overmind attach`: a person takes a live session over in their own terminal, then gives it back.

The server that owns the session parks it between turns (supervision/holds.py) and answers with its
session id and working directory; `claude --resume=<id>` then runs here, interactively, in that
directory, with this terminal as its own. When it exits the session is released, and the server
resumes it headless: the conversation goes on with whatever the person did in it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
from pydantic import BaseModel

from overmind_mcp.attach import wire
from overmind_mcp.attach.models import AttachRequest, ReleaseRequest
from overmind_mcp.console import render
from overmind_mcp.console.common import CliError, Exit
from overmind_mcp.console.state import open_state
from overmind_mcp.errors import NotFound, OvermindError
from overmind_mcp.models import AttachGrant, Released
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision.foreign import live_owners

# Claude Code refuses to start inside another Claude Code session: a person attaching from a
# session's shell is not nesting one.
_NESTING_GUARDS = ("CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT")


def check_attachable(row: MissionRow) -> None:
    """Refuse at once, saying why, what no server could hand over."""
    if not row.spec.session:
        raise CliError(f"{row.name!r} is a task: only a live session (spawn session=true) can be attached")
    if row.status != "running":
        resume = f"; `claude --resume {row.session_id}` opens its conversation" if row.session_id else ""
        raise CliError(f"session {row.name!r} is {row.status}, not running{resume}")


async def take_over(settings: Settings, ref: str) -> int:
    """Attach to a session, run `claude --resume` in this terminal until it exits, and release the session."""
    async with open_state(settings) as state:
        row = await state.resolve(ref)
        check_attachable(row)
        owners = await live_owners(state.store, [row])
    if not sys.stdin.isatty():
        raise CliError("attach needs a terminal: `claude --resume` is interactive", Exit.USAGE)
    if row.server_id is None or row.server_id not in owners:
        raise CliError(f"the server of {row.name!r} is gone: the next server to start takes the session over")
    claude = shutil.which(settings.claude_bin)
    if claude is None:
        raise CliError(f"no Claude Code CLI {settings.claude_bin!r} here: put it on PATH or set OVERMIND_CLAUDE_BIN")
    render.note(f"── asking for {row.name}: it finishes the turn it is on first (Ctrl-C gives up)")
    grant = await _ask(row.server_id, "attach", AttachRequest(id=row.id), AttachGrant)
    try:
        render.note(
            f"── {grant.name} is yours (session {grant.session_id}, in {grant.cwd}); "
            "agents' messages are refused until you leave claude"
        )
        env = {name: value for name, value in os.environ.items() if name not in _NESTING_GUARDS}
        code = await run_in_terminal([claude, f"--resume={grant.session_id}"], cwd=Path(grant.cwd), env=env)
    finally:
        with anyio.CancelScope(shield=True):
            released = await _ask(row.server_id, "release", ReleaseRequest(id=row.id), Released)
    if released.status != "running":
        render.note(f"── {released.name} ended while you held it ({released.status}); `overmind result` says how")
        return Exit.PROBLEM
    render.note(f"── {released.name} is back with its server (pid {released.pid}): it goes on from what you did")
    return code


async def run_in_terminal(argv: Sequence[str], *, cwd: Path, env: dict[str, str]) -> int:
    """Run `argv` in the foreground of this terminal until it exits; its exit code (128+N for signal N)."""
    # Keys such as Ctrl-C and Ctrl-\ reach the whole foreground group: while the program runs they
    # are its own, as a shell leaves them to the job it runs. (A handler, unlike SIG_IGN, is not
    # inherited: the program gets the default actions.)
    previous = {sig: signal.signal(sig, _leave_to_the_program) for sig in (signal.SIGINT, signal.SIGQUIT)}
    try:
        process = _start(argv, cwd=cwd, env=env)
        pidfd = os.pidfd_open(process.pid)
        try:
            with anyio.CancelScope(shield=True):
                await anyio.wait_readable(pidfd)
        finally:
            os.close(pidfd)
        code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code if code >= 0 else 128 - code


def _start(argv: Sequence[str], *, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    try:
        # stdin, stdout and stderr are this terminal's.
        return subprocess.Popen(list(argv), cwd=cwd, env=env)
    except OSError as exc:
        raise CliError(f"cannot start {argv[0]}: {exc.strerror}") from None


def _leave_to_the_program(signum: int, frame: object) -> None:
    pass


async def _ask(server_id: str, verb: str, request: BaseModel, answer: type[wire.Answer]) -> wire.Answer:
    try:
        return await wire.ask(server_id, verb, request, answer)
    except NotFound as exc:
        raise CliError(str(exc), Exit.NOT_FOUND) from None
    except OvermindError as exc:
        raise CliError(str(exc)) from None
