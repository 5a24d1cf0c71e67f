"""A live session of the real CLI outlives a server SIGKILL: the next server re-adopts it through the keeper,
which held its stdin, and `send` goes on with the same process and the same conversation."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from mcp import Client

from tests.conftest import new_child_running
from tests.e2e.conftest import Overmind, call_tool
from tests.mockapi import MockAnthropicAPI, RecordedRequest, Text

pytestmark = pytest.mark.anyio

WORD = "pear"


def remembers(request: RecordedRequest) -> str:
    said = json.dumps(request.messages)
    return f"two: the word was {WORD}" if f"the word is {WORD}" in said else "two: no memory of a word"


async def test_a_session_survives_a_server_sigkill_with_its_conversation(
    mock_api: MockAnthropicAPI, overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path
) -> None:
    mock_api.on("TURN-ONE", steps=[Text(f"one: the word is {WORD}")])
    mock_api.on("TURN-TWO", steps=[Text(remembers)])
    server = overmind.stdio_server(claude_env, claude_cwd)

    before = {child.pid for child in psutil.Process().children()}
    async with Client(server, mode="legacy") as client:
        spawned = await call_tool(client, "spawn", session=True, name="chat", prompt=f"TURN-ONE: remember {WORD}")
        one = await call_tool(client, "result", id="chat")
        while one["session_state"] != "idle":  # its first turn (the spawn's prompt) is answered
            await call_tool(client, "wait", ids=["chat"], timeout_s=0.5)
            one = await call_tool(client, "result", id="chat")
        assert one["text"] == f"one: the word is {WORD}"
        server_process = new_child_running("overmind_mcp", before)
        server_process.kill()  # SIGKILL, mid-conversation
        server_process.wait()

    cli = psutil.Process(spawned["pid"])
    assert cli.is_running() and cli.status() != psutil.STATUS_ZOMBIE, "the session should outlive its server"

    async with Client(overmind.stdio_server(claude_env, claude_cwd), mode="legacy") as client:
        two = await call_tool(client, "send", id="chat", message="TURN-TWO: what was the word?", timeout_s=60)
        assert (two["state"], two["text"]) == ("done", f"two: the word was {WORD}")
        assert two["session_id"] == one["session_id"]
        assert psutil.Process(spawned["pid"]).create_time() == cli.create_time()  # the same process
        [ended] = (await call_tool(client, "kill", ids=["chat"]))["ended"]
        assert (ended["status"], ended["how"]) == ("stopped", "end of input")
    assert overmind.processes() == []
