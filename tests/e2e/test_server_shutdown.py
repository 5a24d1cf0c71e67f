"""A client closes the stdio server while a real Claude child is still running.

The MCP way to stop a stdio server is to close its stdin, wait, then SIGTERM, then SIGKILL; both
official SDK clients give it 2 s before the SIGTERM. A real ``claude`` child of overmind keeps an
MCP connection open to the server's loopback HTTP endpoint (delegation) the whole time it runs: Claude
Code 2.1.332 holds a long-lived streamable-HTTP request open on it.

What happens in ``overmind_mcp/cli.py`` ``serve_stdio`` at stdin EOF: the task group is cancelled
first, so the HTTP server begins a graceful shutdown that waits (uvicorn's 2 s
``timeout_graceful_shutdown``) for that request, and the supervisor only ends its children after
that. The SDK's SIGTERM lands in the same 2 s; the signal receiver was cancelled along with the task
group, so SIGTERM kills the server outright: the mission stays ``running`` in the store, and a task
child (stdin ``/dev/null``) outlives its server. A client that waits longer sees a 2.3 s shutdown
and a ``CancelledError … timeout graceful shutdown exceeded`` traceback on stderr.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.e2e.conftest import Overmind, call_tool
from tests.mockapi import MockAnthropicAPI, Stall

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("session", [False, True], ids=["task", "session"])
async def test_closing_the_client_ends_a_running_claude_child_and_records_it(
    mock_api: MockAnthropicAPI, overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path, session: bool
) -> None:
    mock_api.on("STALLS", steps=[Stall()])  # the child stays busy until it is ended
    try:
        async with Client(overmind.stdio_server(claude_env, claude_cwd), mode="legacy") as client:
            await call_tool(client, "spawn", name="busy", prompt="STALLS: think", session=session)
            # Running for sure, MCP connection and all, once its request reaches the mock.
            await anyio.to_thread.run_sync(lambda: mock_api.wait_for(prompt_contains="STALLS", timeout=30))
            closing = time.monotonic()
        closed_in = time.monotonic() - closing
        survivors = [process.pid for process in overmind.processes()]
    finally:
        for process in overmind.processes():  # a leaked child must not outlive the test either way
            process.kill()

    busy = overmind.mission("busy")
    assert busy.status == "stopped" and (busy.end_reason or "").startswith("the server shut down; ended by "), busy
    assert survivors == []
    # What matters is that it is gone before the client's SIGTERM, 2 s after stdin closed (a
    # session child is asked to end by closing its input, then signalled; about 1.3 s unloaded).
    assert closed_in < 1.9, f"the server took {closed_in:.1f} s to stop after its stdin closed"
