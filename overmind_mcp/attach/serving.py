"""The server's side of the request path: what the `overmind` command may ask of it, handed to the supervisor."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc

from overmind_mcp.attach import wire
from overmind_mcp.attach.models import AttachRequest, ReleaseRequest, SendRequest
from overmind_mcp.models import AttachGrant, Released, TurnResult
from overmind_mcp.runners.local.process import process_start_time
from overmind_mcp.supervision.holds import Holder
from overmind_mcp.supervision.supervisor import Supervisor


def console_handlers(supervisor: Supervisor) -> dict[str, wire.Handler]:
    async def attach(args: dict[str, Any], peer: wire.Peer) -> AttachGrant:
        request = AttachRequest.model_validate(args)
        # The holder is the process that asked: when it ends, however it ends, so does the hold.
        return await supervisor.attach(request.id, Holder(peer.pid, process_start_time(peer.pid) or 0.0))

    async def release(args: dict[str, Any], peer: wire.Peer) -> Released:
        return await supervisor.release(ReleaseRequest.model_validate(args).id)

    async def send(args: dict[str, Any], peer: wire.Peer) -> TurnResult:
        request = SendRequest.model_validate(args)
        return await supervisor.send(request.id, request.message, wait=False)

    return {"attach": attach, "release": release, "send": send}


async def serve(supervisor: Supervisor, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    """Answer the `overmind` command's requests for this supervisor until cancelled."""
    await wire.serve(supervisor.server_id, console_handlers(supervisor), task_status=task_status)
