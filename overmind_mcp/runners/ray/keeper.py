"""The keeper: a mission's child's parent on its node, and the link that ends the child with its actor.

The actor starts this file as `python -I -S keeper.py --control FD --stdout FD --spool DIR --env FILE -- ARGV…`
(standard library only, so it starts in milliseconds and imports nothing from the node's
environment); it forks once more, away from the actor's process. It starts ARGV as the
leader of a new session and process group, as the local runner does, and then waits on two
things only, without polling:

- the child's pidfd: when the child ends, the keeper (its parent, so the child stays an
  unreaped zombie and its group id cannot be reused) kills whatever the child left in its
  group, reaps it, kills and reaps every other process it left (the keeper is a subreaper:
  orphans come to it), reports the exit status and exits: when the report is out, nothing
  of the mission runs on the node any more;
- the control pipe from the actor: each byte is a signal number for the child's whole
  group; end of file means the actor has gone (its node's Ray processes died, or it was
  killed), and then the group is killed, so a child never outlives its owner; its spool
  files go too, since nobody can read them any more.

The child itself gets SIGKILL if the keeper dies first (PR_SET_PDEATHSIG), so killing the
keeper cannot leave it running unsupervised either.

Reports, one JSON object a line on stdout: {"pid": N} once started, {"error": "..."} if it
could not start, {"code": N | null, "signal": N | null} when it has ended.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _report(**fields: object) -> None:
    with contextlib.suppress(OSError):  # the actor has gone: nobody is left to tell
        os.write(1, json.dumps(fields).encode() + b"\n")


def _die_with_keeper() -> None:
    # Runs in the forked child before exec: the keeper is single-threaded, so this is safe.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _signal_group(pgid: int, number: int) -> None:
    with contextlib.suppress(OSError):  # gone already, or not ours
        os.killpg(pgid, number)


def _end_descendants() -> None:
    """Kill and reap every process the child left, in its group or not, before saying it has ended.

    As a subreaper the keeper inherits each orphan; a process reaped here has handed its own
    children to the keeper before it could be reaped, so the next round sees them.
    """
    while True:
        for pid in _children():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _children() -> list[int]:
    pid = os.getpid()
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="keeper")
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--stdout", type=int, required=True)
    parser.add_argument("--spool", required=True)
    parser.add_argument("--env", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    # The child's environment comes in a file (read once, then gone), not in the keeper's own: the keeper
    # is not the mission's, and a token in it must not be left readable any longer than needed.
    env_file = Path(args.env)
    env = json.loads(env_file.read_bytes())
    env_file.unlink()
    # Away from the actor's process: Ray kills a worker's own children when the worker exits, and the
    # keeper must outlive it to end the child's whole group (the actor reaps the first half at once).
    if os.fork() != 0:
        os._exit(0)
    # Whatever the child leaves behind comes to the keeper when its parent dies, to be ended and reaped.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        child = subprocess.Popen(
            command,
            stdin=0,
            stdout=args.stdout,
            stderr=2,
            env=env,
            close_fds=True,
            start_new_session=True,
            preexec_fn=_die_with_keeper,
        )
    except FileNotFoundError as exc:
        _report(error=f"cannot start {command[0]!r}: no such program ({exc.strerror})")
        return 1
    except PermissionError as exc:
        _report(error=f"cannot start {command[0]!r}: {exc.strerror}")
        return 1
    # Reaped below, by hand, after its group's leftovers are gone.
    child.returncode = 0
    # The child alone holds its input and output now: closing the actor's end of stdin ends its input.
    os.close(0)
    os.close(args.stdout)
    _report(pid=child.pid)
    pidfd = os.pidfd_open(child.pid)
    owner_gone = False
    while True:
        ready, _, _ = select.select([pidfd, args.control] if not owner_gone else [pidfd], [], [])
        if args.control in ready:
            try:
                data = os.read(args.control, 64)
            except OSError:
                data = b""
            if not data:
                owner_gone = True
                _signal_group(child.pid, signal.SIGKILL)
            for number in data:
                _signal_group(child.pid, number)
        if pidfd in ready:
            break
    info = os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    # The leader is a zombie: its group id is still its own, so this reaches only what it left behind.
    _signal_group(child.pid, signal.SIGKILL)
    os.waitpid(child.pid, 0)
    _end_descendants()
    if owner_gone:
        # Nobody can pull the rest of the child's output any more: its spool goes too.
        shutil.rmtree(args.spool, ignore_errors=True)
        with contextlib.suppress(OSError):
            Path(args.spool).parent.rmdir()  # the namespace's folder, once its last mission is gone
    if info is not None and info.si_code == os.CLD_EXITED:
        _report(code=info.si_status, signal=None)
    else:
        _report(code=None, signal=info.si_status if info is not None else None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
