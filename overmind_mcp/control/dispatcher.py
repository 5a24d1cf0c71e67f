"""A live server's side of the mailbox: claim each request it may answer, run its handler, write the answer.

Woken by every commit to control.db (inotify on its WAL), never by a timer. Each request
runs in a task of its own, so a `send --wait` that waits minutes holds up nobody else.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from pydantic import ValidationError

from overmind_mcp.control.mailbox import FILENAME, Dispatcher, Mailbox, Request
from overmind_mcp.control.registry import handler_for, load_handlers
from overmind_mcp.errors import InvalidRequest, OvermindError
from overmind_mcp.runners.local.process import process_start_time
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.storage.changes import relay_commits

if TYPE_CHECKING:
    from overmind_mcp.supervision.supervisor import Supervisor

logger = logging.getLogger("overmind_mcp")


async def serve(
    supervisor: Supervisor,
    watcher: FileWatcher,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Answer the console's requests for as long as the task runs; started once it is registered.

    `watcher` is a running FileWatcher (the supervisor's own: inotify instances are few per user).
    """
    load_handlers()
    server_id = supervisor.server_id
    mailbox = await Mailbox.open(supervisor.settings.home / FILENAME)
    try:
        me = os.getpid()
        await mailbox.register(Dispatcher(server_id, me, process_start_time(me) or 0.0, time.time()))
        await mailbox.fail_orphans((await mailbox.live_dispatchers()).keys())
        async with anyio.create_task_group() as task_group:
            wakeup = Wakeup()
            await task_group.start(relay_commits, watcher, mailbox.path, wakeup)
            task_status.started()
            while True:
                while (request := await mailbox.claim(server_id)) is not None:
                    task_group.start_soon(_carry_out, supervisor, mailbox, request)
                await wakeup.wait()
    finally:
        with anyio.CancelScope(shield=True):
            await mailbox.unregister(server_id)
            await mailbox.close()


async def _carry_out(supervisor: Supervisor, mailbox: Mailbox, request: Request) -> None:
    try:
        registered = handler_for(request.verb)
        if registered is None:
            raise InvalidRequest(
                f"this server does not answer {request.verb!r}: it may be older than this overmind command"
            )
        try:
            payload = registered.verb.payload.model_validate_json(request.payload)
        except ValidationError as exc:
            raise InvalidRequest(f"bad {request.verb} request: {_problems(exc)}") from None
        answer = await registered.handler(supervisor, payload)
        await mailbox.answer(request.id, answer.model_dump_json())
    except OvermindError as exc:
        await mailbox.fail(request.id, type(exc).__name__, str(exc))
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await mailbox.fail(request.id, "ServerGone", "the server shut down before it finished this request")
        raise
    except Exception as exc:
        logger.exception("control request %s (%s) failed", request.id, request.verb)
        await mailbox.fail(request.id, "InternalError", f"internal error ({type(exc).__name__}: {exc})")


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'payload'}: {error['msg']}" for error in exc.errors()
    )
