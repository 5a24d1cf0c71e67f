"""Our stdio transport, driven with raw bytes on a real server's stdin: every malformed line is answered."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
import pytest

from overmind_mcp.server.stdio import MAX_LINE_BYTES
from overmind_mcp.settings import Settings
from tests.helpers import call, server_env, stdio_server

pytestmark = pytest.mark.anyio

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


class RawSession:
    """A server process spoken to in bytes: one line out, one JSON answer in."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.stdin = process.stdin
        self.stdout = process.stdout
        self.pending = b""

    async def send(self, line: bytes) -> None:
        await self.stdin.send(line + b"\n")

    async def answer(self, within: float = 20) -> dict[str, Any]:
        with anyio.fail_after(within):
            while b"\n" not in self.pending:
                self.pending += await self.stdout.receive()
        line, _, self.pending = self.pending.partition(b"\n")
        return json.loads(line)

    async def request(self, request_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(json.dumps(message).encode())
        answer = await self.answer()
        assert answer["id"] == request_id, answer
        return answer


@pytest.fixture
async def raw(settings: Settings) -> AsyncIterator[RawSession]:
    process = await anyio.open_process([sys.executable, "-m", "overmind_mcp"], env=server_env(settings))
    async with process:
        session = RawSession(process)
        initialized = await session.request(
            1,
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
        )
        assert "result" in initialized, initialized
        await session.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
        yield session
        await session.stdin.aclose()
        with anyio.fail_after(20):
            assert await process.wait() == 0  # stdin EOF still ends it cleanly


MALFORMED = {
    "invalid JSON": (b'{"jsonrpc": "2.0", "id": 3, "method": ', PARSE_ERROR, None),
    "lone surrogate escape": (
        b'{"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"x": "\\ud800"}}',
        PARSE_ERROR,
        None,
    ),
    "100k-deep nesting": (b"[" * 100_000 + b"]" * 100_000, PARSE_ERROR, None),
    "deep nesting inside a request": (
        b'{"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        PARSE_ERROR,
        None,
    ),
    "not UTF-8": (b'{"jsonrpc": "2.0", "id": 3, "method": "p\xffng"}', PARSE_ERROR, None),
    "a number": (b"42", INVALID_REQUEST, None),
    "a string": (b'"ping"', INVALID_REQUEST, None),
    "a batch": (b'[{"jsonrpc": "2.0", "id": 3, "method": "ping"}]', INVALID_REQUEST, None),
    "no method": (b'{"jsonrpc": "2.0", "id": 3}', INVALID_REQUEST, 3),
    "wrong version": (b'{"jsonrpc": "1.0", "id": "x", "method": "ping"}', INVALID_REQUEST, "x"),
    "params not an object": (b'{"jsonrpc": "2.0", "id": 3, "method": "ping", "params": 5}', INVALID_REQUEST, 3),
    "an id that is null": (b'{"jsonrpc": "2.0", "id": null, "method": "ping"}', INVALID_REQUEST, None),
    "an id that is a fraction": (b'{"jsonrpc": "2.0", "id": 1.5, "method": "ping"}', INVALID_REQUEST, None),
    "an id that is an object": (b'{"jsonrpc": "2.0", "id": {}, "method": "ping"}', INVALID_REQUEST, None),
}


async def test_every_malformed_line_is_answered_and_the_server_serves_on(raw: RawSession) -> None:
    for number, (what, (line, code, request_id)) in enumerate(MALFORMED.items(), start=10):
        await raw.send(line)
        answer = await raw.answer()
        assert answer["id"] == request_id, what
        assert answer["error"]["code"] == code, (what, answer)
        assert answer["error"]["message"], what
        assert "result" in await raw.request(number, "ping"), what
    # The session itself still works end to end after all of that.
    listed = await raw.request(99, "tools/list")
    assert any(tool["name"] == "spawn" for tool in listed["result"]["tools"])


async def test_a_blank_line_is_no_message_and_needs_no_answer(raw: RawSession) -> None:
    await raw.send(b"")
    await raw.send(b"  \r")
    assert "result" in await raw.request(5, "ping")


async def test_a_line_over_the_limit_is_answered_and_skipped(raw: RawSession) -> None:
    async with anyio.create_task_group() as task_group:
        # Written while the answer is read, so neither pipe fills up against the other.
        task_group.start_soon(raw.send, b'{"x": "' + b"a" * MAX_LINE_BYTES + b'"}')
        answer = await raw.answer(within=60)
    assert answer["id"] is None
    assert answer["error"]["code"] == INVALID_REQUEST
    assert str(MAX_LINE_BYTES) in answer["error"]["message"]
    assert "result" in await raw.request(5, "ping")


async def test_requests_split_across_writes_and_packed_into_one_are_all_answered(raw: RawSession) -> None:
    first = json.dumps({"jsonrpc": "2.0", "id": 21, "method": "ping"}).encode()
    second = json.dumps({"jsonrpc": "2.0", "id": 22, "method": "ping"}).encode()
    await raw.stdin.send(first[:10])
    await raw.stdin.send(first[10:] + b"\n" + second + b"\n{bad\n")
    answers = [await raw.answer() for _ in range(3)]
    assert sorted(str(answer["id"]) for answer in answers) == ["21", "22", "None"]
    assert [answer["error"]["code"] for answer in answers if "error" in answer] == [PARSE_ERROR]


async def test_the_sdk_transport_stays_selectable(settings: Settings) -> None:
    async with stdio_server(settings, OVERMIND_STDIO="sdk") as (client, _process):
        spawned = await call(client, "spawn", command=["sh", "-c", "echo over sdk"])
        waited = await call(client, "wait", ids=[spawned["id"]], timeout_s=10)
        assert waited["done"][0]["text"] == "over sdk"


# The server as `python -m overmind_mcp` runs it, told to say on stderr whether the collector is on, and
# which modules it has loaded, once it serves.
_REPORTING = """
import gc, sys
from overmind_mcp import cli
started = cli.started
def reporting() -> None:
    print("collecting while it starts:", gc.isenabled(), file=sys.stderr, flush=True)
    started()
    print("collecting once it serves:", gc.isenabled(), file=sys.stderr, flush=True)
    print("loaded:", " ".join(sorted(name for name in sys.modules if "." not in name)), file=sys.stderr, flush=True)
cli.started = reporting
cli.main([])
"""
# What a server loads only once it is used for something that needs it.
_LOADED_ON_USE = {"git", "jinja2", "jsonschema", "yaml", "croniter", "ray", "textual"}


async def test_the_server_starts_with_the_collector_off_and_without_what_it_loads_on_use(settings: Settings) -> None:
    argv = [sys.executable, "-c", _REPORTING]
    with anyio.fail_after(60):
        done = await anyio.run_process(argv, input=b"", env=server_env(settings), check=False)
    said = done.stderr.decode()
    assert "collecting while it starts: False" in said and "collecting once it serves: True" in said, said
    loaded = set(said.partition("loaded: ")[2].split("\n")[0].split())
    assert "overmind_mcp" in loaded and "uvicorn" in loaded  # the report is of the server, serving
    assert not loaded & _LOADED_ON_USE
