"""Bounds on what HTTP clients can make the server hold: request bodies and sessions.

An oversize request is answered in the protocol, not with a bare transport error: a
`tools/call` gets a tool error, any other request a JSON-RPC error, each with the request's
own id, so the caller sees what to fix and no client waits for an answer that never
comes. Only the first 64 KiB of such a body are read, to find that id (clients write it
before the params); without one, the answer is a 413 with a JSON-RPC error.

A session costs the server memory until it ends. The SDK ends idle ones and caps their
number; on top of that each caller (a mission's token, or the top-level token) keeps at
most `per_caller` sessions, its oldest closed when it opens more, and the sessions of a
mission whose token has died are closed: one client that keeps initializing can neither
grow the server without bound nor crowd the others out.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from overmind_mcp.identity import Caller, Credentials, bearer

MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""The largest request body served (the SDK's own limit too)."""
_HEAD_BYTES = 64 * 1024
"""How much of an oversize body is read to find its id and method."""


class OversizeAsErrors:
    """Answers requests over `limit` bytes with a JSON-RPC answer that says so; passes the rest on."""

    def __init__(self, app: ASGIApp, limit: int = MAX_REQUEST_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        declared_over = declared is not None and declared > self.limit
        # The whole body, until it passes the limit; of one declared too big, only its head.
        wanted = _HEAD_BYTES if declared_over else self.limit + 1
        chunks: list[bytes] = []
        size = 0
        complete = False
        trailing: Message | None = None
        while size < wanted:
            message = await receive()
            if message["type"] != "http.request":
                trailing = message
                break
            body = message.get("body", b"")
            chunks.append(body)
            size += len(body)
            if not message.get("more_body", False):
                complete = True
                break
        if declared_over or size > self.limit:
            await _answer_oversize(b"".join(chunks)[:_HEAD_BYTES], max(size, declared or 0), self.limit, send)
            return
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": not complete}]
        if trailing is not None:
            replay.append(trailing)

        async def replayed() -> Message:
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replayed, send)


class SessionLedger:
    """Who opened each session; closes a caller's oldest beyond `per_caller`, and those of ended missions."""

    def __init__(self, app: ASGIApp, credentials: Credentials, *, per_caller: int) -> None:
        self.app = app
        self.credentials = credentials
        self.per_caller = per_caller
        self._sessions: dict[Caller, OrderedDict[str, None]] = {}

    @property
    def open_sessions(self) -> int:
        return sum(len(sessions) for sessions in self._sessions.values())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session_id = _header(scope, b"mcp-session-id")
        if session_id is not None:
            if scope["method"] == "DELETE":
                self._forget(session_id)
            await self.app(scope, receive, send)
            return
        caller = self.credentials.identify(bearer(_header(scope, b"authorization")))

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400 and caller is not None:
                opened = _find(message.get("headers", []), b"mcp-session-id")
                if opened is not None:
                    # Before the client hears of its new session: by then the stale ones are gone.
                    await self._admit(scope, caller, opened)
            await send(message)

        await self.app(scope, receive, watching)

    async def _admit(self, scope: Scope, caller: Caller, session_id: str) -> None:
        sessions = self._sessions.setdefault(caller, OrderedDict())
        sessions[session_id] = None
        closing = [sessions.popitem(last=False)[0] for _ in range(len(sessions) - self.per_caller)]
        for ended in [who for who in self._sessions if who.mission_id and not self.credentials.active(who.mission_id)]:
            closing += list(self._sessions.pop(ended))
        for stale in closing:
            await self._close(scope, stale)

    def _forget(self, session_id: str) -> None:
        for sessions in self._sessions.values():
            sessions.pop(session_id, None)

    async def _close(self, scope: Scope, session_id: str) -> None:
        """End a session as its client would, with a DELETE through the app (the SDK's own way)."""
        headers = [(b"mcp-session-id", session_id.encode("latin-1"))]
        headers += [(name, value) for name, value in scope["headers"] if name == b"host"]
        delete_scope = {**scope, "method": "DELETE", "headers": headers, "query_string": b""}
        sent = False

        async def empty() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(_message: Message) -> None:
            return None

        await self.app(delete_scope, empty, discard)


async def _answer_oversize(head: bytes, size: int, limit: int, send: Send) -> None:
    found = _top_level(head.decode("utf-8", "replace"), ("id", "method"))
    request_id = found.get("id")
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        request_id = None
    text = (
        f"the request is {size:,} bytes or more; the limit is {limit:,} bytes ({limit // 2**20} MiB). "
        "Put large text in a file and pass its path instead"
    )
    answer: dict[str, Any]
    if request_id is None:
        status, answer = 413, {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": text}}
    elif found.get("method") == "tools/call":
        result = {"content": [{"type": "text", "text": text}], "isError": True, "resultType": "complete"}
        status, answer = 200, {"jsonrpc": "2.0", "id": request_id, "result": result}
    else:
        status, answer = 200, {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32600, "message": text}}
    body = json.dumps(answer).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _top_level(text: str, wanted: tuple[str, ...]) -> dict[str, Any]:
    """The values of the `wanted` keys of the JSON object that `text` begins with, as far as it can be read.

    Only the top level counts: an `"id"` inside `params` (a tool's own argument) is not
    the request's id. Nested values are skipped without being parsed.
    """
    decoder = json.JSONDecoder()
    found: dict[str, Any] = {}
    end = len(text)
    position = _skip_space(text, 0)
    if position >= end or text[position] != "{":
        return found
    position, depth, expecting_key = position + 1, 1, True
    while position < end and depth:
        char = text[position]
        if char == '"' and depth == 1 and expecting_key:
            try:
                key, position = decoder.raw_decode(text, position)
            except ValueError:
                break
            position = _skip_space(text, position)
            if position >= end or text[position] != ":":
                break
            position = _skip_space(text, position + 1)
            expecting_key = False
            if key in wanted:
                try:
                    found[key], position = decoder.raw_decode(text, position)
                except (ValueError, RecursionError):
                    break
            continue
        if char == '"':
            position = _skip_string(text, position)
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
        elif char == "," and depth == 1:
            expecting_key = True
        position += 1
    return found


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _skip_string(text: str, position: int) -> int:
    """The index just past the JSON string that starts at `position`."""
    position += 1
    while position < len(text):
        char = text[position]
        if char == "\\":
            position += 2
            continue
        if char == '"':
            return position + 1
        position += 1
    return position


def _declared_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def _header(scope: Scope, name: bytes) -> str | None:
    return _find(scope["headers"], name)


def _find(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    return next((value.decode("latin-1") for key, value in headers if key == name), None)
