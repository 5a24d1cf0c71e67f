"""Issue 7, scenario 4: a live session of the real CLI, across a server restart.

An SDK client on a real stdio server opens a session (``spawn(session=true)``: ``claude -p
--input-format stream-json``) and talks to it: the first turn is the spawn's prompt, then ``send``
twice more; the third turn stalls and is ``interrupt``-ed (the CLI's interrupt control request), and
the session takes a fourth. The session is ended (``kill``: end of input) and the client closes, and
the server with it. A new server on the same state directory refuses to ``send`` to the ended session, naming the way
on: ``spawn(session=true, resume=<session id>)``, which runs ``--resume`` and continues the very
conversation, as the mock sees in the messages the CLI sends.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.e2e.conftest import Overmind, call_tool
from tests.mockapi import MockAnthropicAPI, RecordedRequest, Stall, Text

pytestmark = pytest.mark.anyio

WORD = "apple"


def remembers(request: RecordedRequest) -> str:
    """Whether the conversation the CLI sent still holds the first turn's answer."""
    said = json.dumps(request.messages)
    return f"five: the word was {WORD}" if f"the word is {WORD}" in said else "five: no memory of a word"


def script_session(api: MockAnthropicAPI) -> None:
    api.on("TURN-ONE", steps=[Text(f"one: the word is {WORD}")])
    api.on("TURN-TWO", steps=[Text(lambda req: f"two: {req.assistant_turns} answer(s) so far")])
    api.on("TURN-THREE", steps=[Stall()])  # thinks forever, until interrupted
    api.on("TURN-FOUR", steps=[Text("four: back after the interruption")])
    api.on("TURN-FIVE", steps=[Text(remembers)])


async def test_session_turns_interrupt_and_resume_after_a_server_restart(
    mock_api: MockAnthropicAPI, overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path
) -> None:
    script_session(mock_api)
    server = overmind.stdio_server(claude_env, claude_cwd)

    async with Client(server, mode="legacy") as client:
        spawned = await call_tool(client, "spawn", session=True, name="chat", prompt=f"TURN-ONE: remember {WORD}")
        assert spawned["status"] == "running"

        # send waits for the turns before its own: its answer is its own turn's.
        two = await call_tool(client, "send", id="chat", message="TURN-TWO: how far are we?")
        assert (two["turn"], two["state"], two["text"]) == (1, "done", "two: 1 answer(s) so far")

        three = await call_tool(client, "send", id="chat", message="TURN-THREE: think hard", wait=False)
        assert three["turn"] == 2 and three["state"] in ("queued", "working")
        # The CLI is in turn three once its request reaches the mock (a stream that only pings).
        await anyio.to_thread.run_sync(lambda: mock_api.wait_for(prompt_contains="TURN-THREE", timeout=30))
        interrupted = await call_tool(client, "interrupt", id="chat")
        assert (interrupted["turn"], interrupted["state"], interrupted["is_error"]) == (2, "interrupted", True)

        four = await call_tool(client, "send", id="chat", message="TURN-FOUR: carry on")
        assert (four["turn"], four["state"], four["text"]) == (3, "done", "four: back after the interruption")
        session_id = four["session_id"]
        live = await call_tool(client, "result", id="chat")
        assert (live["status"], live["session_state"], live["session_id"]) == ("running", "idle", session_id)
        assert live["text"] == four["text"]  # a live session's result is its latest turn

        # Ended before the client goes: closing the client with the session still up is another story
        # (test_server_shutdown.py).
        [ended] = (await call_tool(client, "kill", ids=["chat"]))["ended"]
        assert (ended["status"], ended["how"]) == ("stopped", "end of input")

    # The server is gone, and the session with it.
    chat = overmind.mission("chat")
    assert (chat.status, chat.session_id) == ("stopped", session_id)
    assert overmind.processes() == []

    async with Client(server, mode="legacy") as client:
        refused = await client.call_tool("send", {"id": "chat", "message": "TURN-FIVE: still there?"})
        assert refused.is_error and f"resume={session_id!r}" in refused.content[0].text, refused.content

        await call_tool(
            client, "spawn", session=True, name="chat-resumed", resume=session_id, prompt="TURN-FIVE: the word?"
        )
        [five] = (await call_tool(client, "wait", ids=["chat-resumed"], timeout_s=30))["done"]
        assert five["text"] == f"five: the word was {WORD}"
        assert five["session_id"] == session_id  # --resume continues the conversation under its own id

    # The mock saw each turn once, in order, and the resumed CLI sent the whole conversation again.
    turns = [r.rule for r in mock_api.messages_requests]
    assert turns == ["TURN-ONE", "TURN-TWO", "TURN-THREE", "TURN-FOUR", "TURN-FIVE"]
    resumed = mock_api.messages_requests[-1]
    assert resumed.prompt is not None and resumed.prompt.startswith("TURN-ONE")
    rows = {row.name: row for row in overmind.missions()}
    assert rows["chat-resumed"].spec.task.resume == session_id
