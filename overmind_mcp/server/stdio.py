"""Our stdio transport: newline-delimited JSON-RPC on fd 0 and fd 1, read and written on the event loop.

The SDK's transport reads stdin through a worker thread, a thread hop for every line, and drops
a line it cannot parse without a word, so its sender waits forever. This one reads and writes
the descriptors non-blocking and waits for readiness on the loop, and answers every malformed
line with a JSON-RPC error (-32700 parse error, -32600 invalid request) and serves on. The SDK's
session runs on top, unchanged; `OVERMIND_STDIO=sdk` selects the SDK's transport instead.

While serving, fd 0 reads the null device and fd 1 writes to stderr (as with the SDK's
transport), so children and stray prints cannot touch the wire; both are restored at the end.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Literal

import anyio
import pydantic_core
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

StdioTransport = Literal["overmind", "sdk"]

MAX_LINE_BYTES = 64 * 1024 * 1024
"""Longest request line kept; a longer one is skipped to its end and answered -32600."""
_CHUNK = 256 * 1024

logger = logging.getLogger("overmind_mcp")


async def run_stdio(server: MCPServer[object], transport: StdioTransport = "overmind") -> None:
    """Serve one MCP session on stdin/stdout; returns at stdin EOF, once every answer is written."""
    if transport == "sdk":
        await server.run_stdio_async()
        return
    lowlevel = server._lowlevel_server  # what `run_stdio_async` drives, on our streams instead (mcp 2.3.0)
    async with stdio_streams() as (read_stream, write_stream):
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


SessionStreams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]


@asynccontextmanager
async def stdio_streams() -> AsyncIterator[SessionStreams]:
    """The session's streams over fd 0 and fd 1, claimed for the duration."""
    with _claimed(0, os.O_RDONLY) as fd_in, _claimed(1, os.O_WRONLY) as fd_out:
        read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
        # The reader answers malformed lines itself, through the one writer, so frames never tear.
        answers = write_stream.clone()
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(_read_lines, fd_in, read_writer, answers)
            task_group.start_soon(_write_messages, fd_out, write_reader)
            yield read_stream, write_stream


@contextmanager
def _claimed(fd: int, mode: int) -> Iterator[int]:
    """A private, non-blocking duplicate of `fd` to serve the wire on, with `fd` itself diverted."""
    wire = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    diversion = os.open(os.devnull, os.O_RDONLY) if mode == os.O_RDONLY else os.dup(2)
    os.dup2(diversion, fd)
    os.close(diversion)
    try:
        with _non_blocking(wire):
            yield wire
    finally:
        os.dup2(wire, fd)
        os.close(wire)


@contextmanager
def _non_blocking(fd: int) -> Iterator[None]:
    # O_NONBLOCK lives on the open file description, which a terminal shares with the shell:
    # put the flags back as they were.
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        yield
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)


async def _read_lines(
    fd: int,
    messages: MemoryObjectSendStream[SessionMessage | Exception],
    answers: MemoryObjectSendStream[SessionMessage],
) -> None:
    async with messages, answers:
        async for line in _lines(fd):
            if line is None:
                too_long = f"Invalid request: a line longer than {MAX_LINE_BYTES} bytes"
                await answers.send(SessionMessage(_error(None, INVALID_REQUEST, too_long)))
            elif line.strip():  # a blank line carries no message: nothing to answer
                parsed = parse_line(line)
                if isinstance(parsed, JSONRPCError):
                    await answers.send(SessionMessage(parsed))
                else:
                    await messages.send(parsed)


async def _lines(fd: int) -> AsyncIterator[bytes | None]:
    """Each line read from `fd` without its newline, until EOF; None for a line over the limit."""
    buffer = bytearray()
    scanned = 0  # bytes of `buffer` known to hold no newline
    oversized = False
    while True:
        chunk = await _read_some(fd)
        if not chunk:
            if buffer and not oversized:
                yield bytes(buffer)
            elif oversized:
                yield None
            return
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n", scanned)) != -1:
            if oversized or end - start > MAX_LINE_BYTES:
                oversized = False
                yield None
            else:
                yield bytes(buffer[start:end])
            start = scanned = end + 1
        del buffer[:start]
        scanned = len(buffer)
        if len(buffer) > MAX_LINE_BYTES:
            oversized = True
            buffer.clear()
            scanned = 0


async def _read_some(fd: int) -> bytes:
    # A regular file or /dev/null never says EAGAIN, so the loop is asked only about what it can poll.
    while True:
        try:
            return os.read(fd, _CHUNK)
        except BlockingIOError:
            await anyio.wait_readable(fd)


def parse_line(line: bytes) -> SessionMessage | JSONRPCError:
    """One line as a message for the session, or as the JSON-RPC error that answers it."""
    try:
        message = jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError:
        pass
    else:
        # A request whose id is not a string or an integer parses as a notification (extra keys are
        # ignored) that nobody answers; its sender would wait forever.
        if not (isinstance(message, JSONRPCNotification) and b'"id"' in line and "id" in pydantic_core.from_json(line)):
            return SessionMessage(message)
        return _error(None, INVALID_REQUEST, 'Invalid request: "id" must be a string or an integer')
    # Off the hot path: tell a line that is not JSON from JSON that is not a message.
    try:
        value = pydantic_core.from_json(line)
    except ValueError as exc:
        return _error(None, PARSE_ERROR, f"Parse error: {exc}")
    if not isinstance(value, dict):
        return _error(
            None,
            INVALID_REQUEST,
            "Invalid request: a message is one JSON object, not an array, string or number (batches are not served)",
        )
    request_id = value.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        request_id = None
    return _error(
        request_id,
        INVALID_REQUEST,
        'Invalid request: expected {"jsonrpc": "2.0", "method": <string>} with an optional "id" '
        '(a string or an integer) and "params" (an object), or a response with "id" and "result" or "error"',
    )


def _error(request_id: int | str | None, code: int, message: str) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))


async def _write_messages(fd: int, messages: MemoryObjectReceiveStream[SessionMessage]) -> None:
    connected = True
    async with messages:
        async for session_message in messages:
            if not connected:
                continue  # the client stopped reading; drain so the session never blocks on us
            frame = _frame(session_message)
            if frame is None:
                continue
            try:
                await _write_all(fd, frame)
            except (BrokenPipeError, ConnectionResetError):
                connected = False


def _frame(session_message: SessionMessage) -> bytes | None:
    """The message as one line; an answer that cannot be UTF-8 JSON still answers its request."""
    message = session_message.message
    try:
        return message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"
    except (ValueError, UnicodeError) as exc:
        logger.warning("a message could not be encoded: %r", exc)
        if not isinstance(message, JSONRPCResponse):
            return None  # only a response has a caller waiting on it
        error = _error(message.id, INTERNAL_ERROR, "the answer could not be encoded as UTF-8 JSON")
        return error.model_dump_json(by_alias=True).encode() + b"\n"


async def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            await anyio.wait_writable(fd)
