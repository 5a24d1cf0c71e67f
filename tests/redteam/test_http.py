"""The HTTP endpoint under abuse: session churn, rebinding on any loopback address, oversize and malformed bodies.

Each test runs a real `overmind-mcp serve --http` process and talks to it over loopback.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2 as httpx
import psutil
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from overmind_mcp.models import SpawnRequest
from overmind_mcp.server import http
from overmind_mcp.server.app import create_server
from overmind_mcp.server.http import SESSIONS_PER_CALLER
from overmind_mcp.server.http_limits import MAX_REQUEST_BYTES, SessionLedger
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor
from tests.conftest import assert_no_leftovers
from tests.helpers import script, server_env
from tests.test_supervisor_raw import until_output

pytestmark = pytest.mark.anyio

ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
CHURN = 3000
"""initialize calls that never end their session (the issue's probe: +117 MB before the fix)."""
CHURN_GROWTH_LIMIT_MB = 25


@dataclass
class HttpServer:
    url: str
    token: str
    process: psutil.Process

    @property
    def headers(self) -> dict[str, str]:
        return {**ACCEPT, "authorization": f"Bearer {self.token}"}


@asynccontextmanager
async def http_server(settings: Settings, host: str = "127.0.0.1") -> AsyncIterator[HttpServer]:
    argv = [sys.executable, "-m", "overmind_mcp", "serve", "--http", "--host", host, "--port", "0"]
    async with await anyio.open_process(argv, env=server_env(settings), stderr=subprocess.PIPE) as server:
        assert server.stderr is not None
        seen = ""
        with anyio.fail_after(30):
            async for chunk in server.stderr:
                seen += chunk.decode()
                if match := re.search(r"serving (http://\S+)", seen):
                    break
        token = (settings.home / "http-token").read_text().strip()
        try:
            yield HttpServer(match.group(1), token, psutil.Process(server.pid))
        finally:
            server.terminate()
            await server.wait()
    await assert_no_leftovers(settings)


def initialize(request_id: int = 1) -> dict[str, Any]:
    params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "churn", "version": "0"}}
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}


async def churn(client: httpx.AsyncClient, server: HttpServer, count: int, width: int = 8) -> list[str]:
    """`count` initialize calls, `width` at a time, none of them ever ended by its client."""
    sessions: list[str] = []

    async def worker(share: int) -> None:
        for _ in range(share):
            answer = await client.post(server.url, json=initialize(), headers=server.headers)
            assert answer.status_code == 200, answer.text
            sessions.append(answer.headers["mcp-session-id"])

    async with anyio.create_task_group() as group:
        for index in range(width):
            group.start_soon(worker, count // width + (index < count % width))
    return sessions


async def test_session_churn_does_not_grow_the_server(settings: Settings) -> None:
    async with http_server(settings) as server, httpx.AsyncClient(timeout=30) as client:
        await churn(client, server, 200)
        before = server.process.memory_info().rss
        sessions = await churn(client, server, CHURN)
        after = server.process.memory_info().rss
        growth_mb = (after - before) / 2**20
        print(f"RSS after {CHURN} initialize calls: {before / 2**20:.1f} MB → {after / 2**20:.1f} MB")
        assert growth_mb < CHURN_GROWTH_LIMIT_MB, f"+{growth_mb:.1f} MB for {CHURN} sessions"
        # The caller's oldest sessions were closed; its newest still work.
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        oldest = await client.post(server.url, json=listing, headers={**server.headers, "mcp-session-id": sessions[0]})
        newest = await client.post(server.url, json=listing, headers={**server.headers, "mcp-session-id": sessions[-1]})
        assert oldest.status_code == 404
        assert newest.status_code == 200, newest.text
        # Another caller is not crowded out by that one: a real client still connects and works.
        authorized = httpx.AsyncClient(headers={"authorization": f"Bearer {server.token}"})
        async with authorized, Client(streamable_http_client(server.url, http_client=authorized)) as mcp:
            assert (await mcp.call_tool("status", {})).is_error is False
    assert SESSIONS_PER_CALLER < 100


async def test_any_loopback_bind_checks_host_and_origin(settings: Settings) -> None:
    async with http_server(settings, host="127.0.0.2") as server, httpx.AsyncClient() as client:
        assert "127.0.0.2" in server.url
        body = initialize()
        good = await client.post(server.url, json=body, headers=server.headers)
        foreign_host = await client.post(server.url, json=body, headers={**server.headers, "host": "evil.example"})
        foreign_origin = await client.post(
            server.url, json=body, headers={**server.headers, "origin": "http://evil.example"}
        )
        assert (good.status_code, foreign_host.status_code, foreign_origin.status_code) == (200, 421, 403)


async def test_oversize_and_malformed_requests_are_answered_in_the_protocol(settings: Settings) -> None:
    async with http_server(settings) as server:
        authorized = httpx.AsyncClient(headers={"authorization": f"Bearer {server.token}"}, timeout=60)
        async with authorized, Client(streamable_http_client(server.url, http_client=authorized)) as mcp:
            # A tool call over the limit is a tool error that says what to do, not a transport failure.
            huge = await mcp.call_tool("remember", {"content": "x" * (MAX_REQUEST_BYTES + 10)})
            assert huge.is_error
            assert "the limit is 4,194,304 bytes" in huge.content[0].text
            assert (await mcp.call_tool("status", {})).is_error is False, "the session goes on"
        async with httpx.AsyncClient(timeout=60) as client:
            # The answer carries the request's own id, not an "id" inside its params.
            padded = {
                "jsonrpc": "2.0",
                "method": "resources/read",
                "params": {"uri": "x", "id": "not-this-one"},
                "id": 77,
                "padding": "p" * MAX_REQUEST_BYTES,
            }
            answer = await client.post(server.url, content=json.dumps(padded), headers=server.headers)
            assert answer.status_code == 200
            assert answer.json()["id"] == 77 and "the limit is" in answer.json()["error"]["message"]

            # A flood declared at 1 GB is answered after its first bytes: the rest is never read.
            flooded = await declared_flood(server, 2**30)
            assert flooded["id"] == 5 and flooded["result"]["isError"] is True, flooded
            # A lone surrogate or a broken body gets a JSON-RPC answer too.
            lone = b'{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "recall", '
            lone += b'"arguments": {"query": "\\ud800"}}}'
            answer = await client.post(server.url, content=lone, headers=server.headers)
            assert answer.status_code in (200, 400) and "jsonrpc" in answer.text, answer.text
            broken = await client.post(server.url, content=b'{"jsonrpc": "2.0", "id": ', headers=server.headers)
            assert broken.status_code == 400 and "-32700" in broken.text, broken.text


async def declared_flood(server: HttpServer, declared: int) -> dict[str, Any]:
    """Send the headers of a `declared`-byte tools/call and its first 128 KiB, then read the answer."""
    host, _, rest = server.url.removeprefix("http://").partition(":")
    port = int(rest.partition("/")[0])
    head = b'{"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "remember", "x": "'
    request = (
        f"POST /mcp HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"accept: application/json, text/event-stream\r\nauthorization: Bearer {server.token}\r\n"
        f"content-length: {declared}\r\n\r\n"
    ).encode()
    with anyio.fail_after(30):
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(request + head + b"y" * 131072)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                answer += await stream.receive()
    return json.loads(answer.partition(b"\r\n\r\n")[2])


async def test_an_ended_missions_sessions_are_closed(settings: Settings) -> None:
    """A session opened with a child's token goes when the child ends, even if its client never closed it."""
    root_token = "root-token-for-this-test"
    async with Supervisor.running(settings) as supervisor, anyio.create_task_group() as group:
        supervisor.credentials.allow_root(root_token)
        sock = http.bind("127.0.0.1", 0)
        url = supervisor.delegation_url = http.url_of(sock)
        app = http.http_app(create_server(supervisor=supervisor), supervisor.credentials, "127.0.0.1")
        ledger = app.app.app  # BearerAuth → OversizeAsErrors → SessionLedger
        assert isinstance(ledger, SessionLedger)
        group.start_soon(http.serve, app, sock)
        child = await supervisor.spawn(SpawnRequest(prompt=script("say up", "hang")))
        await until_output(supervisor, child.id, "up")
        child_token = psutil.Process(child.pid).environ()["OVERMIND_TOKEN"]
        async with httpx.AsyncClient() as client:
            as_child = await client.post(
                url, json=initialize(), headers={**ACCEPT, "authorization": f"Bearer {child_token}"}
            )
            assert ledger.open_sessions == 1, (as_child.status_code, as_child.headers, as_child.text[:300])
            await supervisor.kill([child.id])
            as_root = {**ACCEPT, "authorization": f"Bearer {root_token}"}
            assert (await client.post(url, json=initialize(), headers=as_root)).status_code == 200
            assert ledger.open_sessions == 1, "only the top-level client's session is left"
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
            stale = {**as_root, "mcp-session-id": as_child.headers["mcp-session-id"]}
            assert (await client.post(url, json=listing, headers=stale)).status_code == 404
        group.cancel_scope.cancel()
