"""Issue 19: a person takes a live session over with `overmind attach`, with the real CLI on both sides.

A real stdio server runs a session of the real CLI (headless, stream-json) against the mock API.
`overmind attach chat` runs in a pseudo-terminal, as a person at a terminal would run it: the
server parks the session, the real interactive `claude --resume` opens in the mission's directory,
and the "person" types a turn into it. Meanwhile an agent's `send` is refused. When the person
exits claude, the session goes back to the server, and its next turn, sent by an agent, carries
the person's turn in its conversation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import psutil
import pytest
from mcp import Client

from tests.e2e.conftest import Overmind, call_tool
from tests.mockapi import MockAnthropicAPI, RecordedRequest, Text
from tools.terminal import Terminal

pytestmark = pytest.mark.anyio

API_KEY = "sk-ant-api03-mock"


def heard_the_person(request: RecordedRequest) -> str:
    said = json.dumps(request.messages)
    return "three: you said banana" if "the person says banana" in said else "three: I heard nobody"


def as_a_person_set_it_up(home: Path, project: Path) -> None:
    """The Claude Code settings of someone who has used it before: onboarded, this API key and folder trusted.

    Written before the server starts its session: the CLI writes this file back when it exits.
    """
    config = {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
        "projects": {str(project): {"hasTrustDialogAccepted": True}},
    }
    (home / ".claude.json").write_text(json.dumps(config))


async def test_a_person_takes_a_session_over_and_the_session_remembers_it(
    mock_api: MockAnthropicAPI, overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path
) -> None:
    mock_api.on("TURN-ONE", steps=[Text("one: the word is apple")])
    mock_api.on("TURN-TWO", steps=[Text("two: noted, the person says banana")])
    mock_api.on("TURN-THREE", steps=[Text(heard_the_person)])
    as_a_person_set_it_up(Path(claude_env["HOME"]), claude_cwd)

    async with Client(overmind.stdio_server(claude_env, claude_cwd), mode="legacy") as client:
        await call_tool(client, "spawn", session=True, name="chat", prompt="TURN-ONE: remember apple")
        [one] = (await call_tool(client, "wait", ids=["chat"], timeout_s=60))["done"]
        assert one["text"] == "one: the word is apple"
        headless_pid = overmind.mission("chat").pid

        env = {**claude_env, **overmind.server_env, "TERM": "xterm-256color"}
        argv = [sys.executable, "-m", "overmind_mcp.console", "attach", "chat"]
        person = Terminal(argv, env=env, cwd=claude_cwd, rows=30, columns=100)
        try:
            # The interactive CLI shows the conversation so far, then waits for the person.
            await anyio.to_thread.run_sync(lambda: person.wait_for("the word is apple", timeout=60))
            await anyio.to_thread.run_sync(lambda: person.wait_for("shift+tab", timeout=30))
            chat = overmind.mission("chat")
            assert chat.status == "running" and chat.pid == headless_pid  # parked: the same run, its process gone
            assert not _alive(headless_pid)

            refused = await client.call_tool("send", {"id": "chat", "message": "TURN-THREE: agent here"})
            assert refused.is_error and "attached by a person" in refused.content[0].text, refused.content
            held = await call_tool(client, "result", id="chat")
            assert (held["status"], held["session_state"]) == ("running", "attached")

            person.type("TURN-TWO: the person says banana")
            await anyio.to_thread.run_sync(lambda: person.wait_for("TURN-TWO: the person says banana"))
            person.type("\r")
            await anyio.to_thread.run_sync(lambda: mock_api.wait_for(prompt_contains="TURN-TWO", timeout=30))
            await anyio.to_thread.run_sync(lambda: person.wait_for("two: noted, the person says banana"))
            mark = len(person.output)
            person.type("/exit")
            await anyio.to_thread.run_sync(lambda: person.wait_for("/exit", start=mark))
            person.type("\r")
            code = await anyio.to_thread.run_sync(lambda: person.wait(timeout=60))
        finally:
            person.kill()
        assert code == 0, person.text[-2000:]
        assert "isbackwithitsserver" in person.text

        # The session is the server's again: a new headless run that resumed the same conversation.
        back = overmind.mission("chat")
        assert back.status == "running" and back.pid != headless_pid
        three = await call_tool(client, "send", id="chat", message="TURN-THREE: what did the person say?")
        assert (three["state"], three["text"]) == ("done", "three: you said banana")
        assert three["session_id"] == one["session_id"]
        [ended] = (await call_tool(client, "kill", ids=["chat"]))["ended"]
        assert ended["status"] == "stopped"

    turns = [request.rule for request in mock_api.messages_requests]
    assert turns == ["TURN-ONE", "TURN-TWO", "TURN-THREE"]
    resumed = mock_api.messages_requests[-1]
    said = [message for message in resumed.messages if message.get("role") in ("user", "assistant")]
    assert any("TURN-TWO: the person says banana" in json.dumps(message) for message in said)
    log = (await anyio.Path(back.output_path).read_text()).splitlines()
    notes = [json.loads(line)["text"] for line in log if line.startswith('{"type":"overmind"')]
    assert notes[0].startswith("attached by a person") and notes[1].startswith("the person has left")


def _alive(pid: int | None) -> bool:
    try:
        return pid is not None and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
