"""The console's side of the mailbox: ask a live server, wait for its answer without polling.

The wait wakes on every commit to control.db (inotify on its WAL) and on the end of each
server that could answer (a pidfd), so a server that dies mid-request is reported at once,
not when the timeout passes.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio

from overmind_mcp.control.mailbox import FILENAME, Dispatcher, Mailbox, Request
from overmind_mcp.control.verbs import A, P, Verb
from overmind_mcp.errors import OvermindError
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.storage.changes import relay_commits
from overmind_mcp.supervision.foreign import watch_process


class ControlError(OvermindError):
    """A request that got no answer, or the server's refusal; `kind` names the server's error class."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class NoServer(ControlError):
    def __init__(self, home: Path, target: str | None = None) -> None:
        who = f"server {target} is not running" if target else "no overmind-mcp server is running"
        super().__init__(f"{who} on {home}; start one with `overmind-mcp serve`", "NoServer")


async def call(home: Path, verb: Verb[P, A], payload: P, *, target: str | None = None, timeout_s: float = 30.0) -> A:
    """What a live server on the state directory `home` answers to `payload`; raises ControlError."""
    path = home / FILENAME
    if not path.exists():
        raise NoServer(home)
    mailbox = await Mailbox.open(path)
    try:
        live = await mailbox.live_dispatchers()
        if not live or (target is not None and target not in live):
            raise NoServer(home, target)
        request_id = await mailbox.submit(
            verb.name, payload.model_dump_json(), target=target, expires_at=time.time() + timeout_s
        )
        try:
            request = await _until_answered(mailbox, request_id, timeout_s)
        finally:
            with anyio.CancelScope(shield=True):
                # Taken back if no server has it yet (a timeout, Ctrl-C): it must not run later.
                await mailbox.withdraw(request_id)
    finally:
        with anyio.CancelScope(shield=True):
            await mailbox.close()
    if request.state == "answered":
        assert request.answer is not None
        return verb.answer.model_validate_json(request.answer)
    if request.state == "failed":
        raise ControlError(request.error or "the request failed", request.error_kind or "Failed")
    if request.state == "claimed":
        raise ControlError(
            f"server {request.claimed_by} took the request but gave no answer within {timeout_s:g}s; "
            "it goes on there (`overmind ps` shows what it started)",
            "NoAnswer",
        )
    raise ControlError(f"no server took the request within {timeout_s:g}s; it was withdrawn", "NoAnswer")


async def _until_answered(mailbox: Mailbox, request_id: int, timeout_s: float) -> Request:
    """The request once answered or failed; as it stands when `timeout_s` passes."""
    watcher = FileWatcher()
    wakeup = Wakeup()
    watched: set[tuple[int, float]] = set()
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(watcher.run)
        await task_group.start(relay_commits, watcher, mailbox.path, wakeup)
        with anyio.move_on_after(timeout_s):
            while True:
                # Read after the watch is in place: an answer written before it is seen here.
                request = await mailbox.get(request_id)
                if request.state in ("answered", "failed"):
                    break
                candidates = _who_could_answer(request, await mailbox.live_dispatchers())
                if not candidates:
                    why = (
                        f"server {request.claimed_by} took the request and stopped before answering; "
                        "it may have been partly carried out"
                        if request.state == "claimed"
                        else "every server that could take the request has stopped"
                    )
                    await mailbox.fail(request_id, "ServerGone", why, states=(request.state,))
                    continue
                for dispatcher in candidates:
                    process = (dispatcher.pid, dispatcher.proc_start)
                    if process not in watched:
                        watched.add(process)
                        task_group.start_soon(watch_process, *process, wakeup)
                await wakeup.wait()
        request = await mailbox.get(request_id)
        task_group.cancel_scope.cancel()
    return request


def _who_could_answer(request: Request, live: dict[str, Dispatcher]) -> list[Dispatcher]:
    if request.state == "claimed":
        return [live[request.claimed_by]] if request.claimed_by in live else []
    return [dispatcher for server_id, dispatcher in live.items() if request.target in (None, server_id)]
