"""A narrow request path from the `overmind` command to the live server that owns a mission.

Everything else the console does goes through the store and the kernel; parking a session and
giving it a turn need the process that holds its stdin. Each server listens on an abstract Unix
socket named after its id (no file to leave behind when it dies, no path-length limit); a
request is one JSON line, its answer one JSON line, one request per connection. Only processes
of the same user are answered (the kernel's SO_PEERCRED says who connected, and which pid).

A client that closes its connection before the answer cancels its request: someone who gives up
waiting for a session to finish its turn (Ctrl-C) leaves no hold behind.

This is to be replaced by the control mailbox (console → server requests with registered
handlers); the handlers the supervisor registers here are the ones to register there.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream
from pydantic import BaseModel, ValidationError

from overmind_mcp import errors
from overmind_mcp.errors import InvalidRequest, OvermindError

logger = logging.getLogger("overmind_mcp")

_MAX_LINE = 1024 * 1024
_PEERCRED = struct.Struct("3i")  # pid, uid, gid
Answer = TypeVar("Answer", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Peer:
    """The process at the other end of a connection, as the kernel reports it."""

    pid: int
    uid: int


Handler = Callable[[dict[str, Any], Peer], Awaitable[BaseModel]]


class Unreachable(OvermindError):
    """The server that owns the mission does not answer."""


def address(server_id: str) -> str:
    """A server's socket, in the abstract namespace (the leading NUL): it goes away with the process."""
    return f"\0overmind-mcp/{server_id}"


async def serve(
    server_id: str,
    handlers: Mapping[str, Handler],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Answer requests until cancelled; `handlers` maps each verb to what carries it out."""
    # Bound here, not in a worker thread as anyio's create_unix_listener does: an abstract address
    # touches no file system, and a worker thread left idle slowed the server's exit.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind(address(server_id))
        sock.listen()
        listener = await anyio.abc.SocketListener.from_socket(sock)
    except BaseException:
        sock.close()
        raise
    task_status.started()
    async with listener:
        await listener.serve(lambda stream: _answer(stream, handlers))


async def ask(server_id: str, verb: str, request: BaseModel, answer: type[Answer]) -> Answer:
    """Send one request to a server and return its answer; raises the server's refusal as the same error."""
    try:
        stream = await anyio.connect_unix(address(server_id))
    except OSError:
        raise Unreachable(
            f"its server ({server_id}) does not answer: it has just stopped, or it is an older overmind-mcp"
        ) from None
    async with stream:
        line = json.dumps({"verb": verb, "args": request.model_dump(mode="json")}) + "\n"
        await stream.send(line.encode())
        try:
            reply = json.loads(await BufferedByteReceiveStream(stream).receive_until(b"\n", _MAX_LINE))
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound, ValueError):
            raise Unreachable(f"its server ({server_id}) closed the connection without an answer") from None
    if "error" in reply:
        kind = getattr(errors, str(reply["error"].get("kind")), OvermindError)
        raise (kind if isinstance(kind, type) and issubclass(kind, OvermindError) else OvermindError)(
            str(reply["error"].get("message"))
        )
    return answer.model_validate(reply["ok"])


async def _answer(stream: anyio.abc.SocketStream, handlers: Mapping[str, Handler]) -> None:
    async with stream:
        try:
            reply = await _handle(stream, handlers)
            if reply is not None:
                await stream.send((json.dumps(reply) + "\n").encode())
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError):
            pass  # the client went away: nobody is left to answer
        except Exception:
            # One bad connection must not take the listener, and with it the server, down.
            logger.exception("a console connection failed")


async def _handle(stream: anyio.abc.SocketStream, handlers: Mapping[str, Handler]) -> dict[str, Any] | None:
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    pid, uid, _gid = _PEERCRED.unpack(raw.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    if uid != os.getuid():
        return _error(errors.AccessDenied("only the user running this server may ask it anything"))
    buffered = BufferedByteReceiveStream(stream)
    try:
        request = json.loads(await buffered.receive_until(b"\n", _MAX_LINE))
        verb, args = request["verb"], request["args"]
    except (anyio.EndOfStream, anyio.IncompleteRead):
        return None
    except (anyio.DelimiterNotFound, ValueError, KeyError, TypeError):
        return _error(InvalidRequest("a request is one JSON line: {'verb': …, 'args': {…}}"))
    handler = handlers.get(verb)
    if handler is None or not isinstance(args, dict):
        return _error(InvalidRequest(f"unknown request {verb!r}; this server answers {', '.join(sorted(handlers))}"))
    reply: dict[str, Any] | None = None

    async def run(scope: anyio.CancelScope) -> None:
        nonlocal reply
        try:
            reply = {"ok": (await handler(args, Peer(pid, uid))).model_dump(mode="json")}
        except OvermindError as exc:
            reply = _error(exc)
        except ValidationError as exc:
            reply = _error(InvalidRequest(f"bad {verb} request: {exc.errors()[0]['msg']}"))
        except Exception as exc:
            logger.exception("the console's %s request failed", verb)
            reply = _error(OvermindError(f"internal error ({type(exc).__name__}: {exc}); the server log has more"))
        scope.cancel()

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(run, task_group.cancel_scope)
        # The client hanging up before the answer cancels the request (anything more it sends is ignored).
        try:
            while True:
                await buffered.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
            pass
        task_group.cancel_scope.cancel()
    return reply


def _error(exc: OvermindError) -> dict[str, Any]:
    return {"error": {"kind": type(exc).__name__, "message": str(exc)}}
