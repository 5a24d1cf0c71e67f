"""The permission bridge end to end: real Claude Code children ask, overmind's chain answers.

    SDK client (the top-level client) ──stdio──▶ overmind-mcp ──▶ claude -p (parent) ──HTTP──▶ overmind
                                                              └─▶ claude -p (child) ──HTTP: permission_prompt

A child's CLI runs with `--permission-prompt-tool=mcp__overmind__permission_prompt` (a task) or asks on
stdout (a session). Its policy answers at once; what the policy does not allow goes to the nearest
ancestor that may allow it (a real Claude parent here, answering with `approve`), or climbs to the
client, which answers with `approve` or in an elicitation form; nobody answering is a deny after
the timeout. Each decision is in the mission's `result` and log.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.conftest import JSON, Overmind, call_tool
from tests.mockapi import MockAnthropicAPI, RecordedRequest, Text, ToolUse

pytestmark = pytest.mark.anyio

TOOLS = "mcp__overmind__"


def said(request: RecordedRequest) -> str:
    return f"TOOL SAID: {request.last_tool_result}"


def child_runs(api: MockAnthropicAPI, prompt: str, command: str) -> None:
    """A child that runs one Bash command and answers with what the tool said."""
    api.on(prompt, steps=[ToolUse("Bash", {"command": command, "description": "change a file"}), Text(said)])


@asynccontextmanager
async def client_of(
    overmind: Overmind,
    claude_env: dict[str, str],
    claude_cwd: Path,
    *,
    mode: str = "legacy",
    elicitation: Callable[..., Any] | None = None,
    **server_env: str,
) -> AsyncIterator[Client]:
    server = overmind.stdio_server({**claude_env, **server_env}, claude_cwd)
    kwargs: dict[str, Any] = {"elicitation_callback": elicitation} if elicitation is not None else {}
    if mode == "legacy":
        kwargs["mode"] = "legacy"
    async with Client(server, **kwargs) as client:
        yield client


async def wait_for_request(client: Client, mission: str) -> JSON:
    """Wait for `mission` until one of its requests comes up for the client; the request."""
    answer = await call_tool(client, "wait", ids=[mission], timeout_s=60)
    assert answer["needs_approval"], answer
    return answer["needs_approval"][0]


async def finished(client: Client, mission: str) -> JSON:
    answer = await call_tool(client, "wait", ids=[mission], timeout_s=60)
    [done] = answer["done"]
    return await call_tool(client, "result", id=done["id"])


def text_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.suffix == ".txt")


def log_text(client_answer: JSON) -> str:
    return "\n".join(client_answer["lines"])


async def test_policy_allows_a_call_and_it_runs(
    mock_api: MockAnthropicAPI, overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path
) -> None:
    child_runs(mock_api, "ALLOWED", "touch allowed.txt")
    async with client_of(overmind, claude_env, claude_cwd) as client:
        await call_tool(client, "spawn", prompt="ALLOWED", name="allowed", permissions={"allow": ["Bash(touch:*)"]})
        result = await finished(client, "allowed")
        logs = await call_tool(client, "logs", id="allowed")

    assert result["status"] == "succeeded" and (claude_cwd / "allowed.txt").exists()
    [decision] = result["approvals"]
    assert (decision["call"], decision["decision"], decision["by"]) == ("Bash(touch allowed.txt)", "allow", "policy")
    assert decision["rule"] == "Bash(touch:*)" and decision["latency_ms"] < 1000
    assert "permission: Bash(touch allowed.txt) allowed by policy by rule Bash(touch:*)" in log_text(logs)
    # The child's CLI was given the prompt tool; a child that delegates sees the tools besides.
    child_request = mock_api.messages_requests[0]
    assert f"{TOOLS}spawn" in child_request.tool_names and f"{TOOLS}permission_prompt" not in child_request.tool_names


async def test_policy_denies_and_the_child_reads_why(
    mock_api: MockAnthropicAPI, overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path
) -> None:
    (claude_cwd / "keep.txt").write_text("precious")
    child_runs(mock_api, "DENIED", "rm -f keep.txt")
    async with client_of(overmind, claude_env, claude_cwd) as client:
        await call_tool(
            client,
            "spawn",
            prompt="DENIED",
            name="denied",
            delegate=False,
            permissions={"allow": ["Bash"], "deny": ["Bash(rm:*)"]},
        )
        result = await finished(client, "denied")

    assert (claude_cwd / "keep.txt").read_text() == "precious"
    assert result["text"] == (
        "TOOL SAID: Denied by the mission's permission policy: the deny rule Bash(rm:*) matches Bash(rm -f keep.txt)."
    )
    [decision] = result["approvals"]
    assert (decision["decision"], decision["by"], decision["rule"]) == ("deny", "policy", "Bash(rm:*)")
    # Without delegation the child is offered none of overmind's tools, yet its CLI asked through the server.
    assert not [name for name in mock_api.messages_requests[0].tool_names if name.startswith(TOOLS)]


def parent_answers(api: MockAnthropicAPI, prompt: str, child_prompt: str, answer: Callable[[str], JSON]) -> None:
    """A real Claude parent: spawn the child, wait, answer the request wait shows it, wait again, report."""

    def approve(request: RecordedRequest) -> JSON:
        waited = json.loads(request.last_tool_result or "{}")
        [pending] = waited["needs_approval"]
        return {"request_id": pending["id"], **answer(pending["input"]["command"])}

    def report(request: RecordedRequest) -> str:
        waited = json.loads(request.last_tool_result or "{}")
        [done] = waited["done"]
        return f"child said: {done['text']}"

    api.on(
        prompt,
        steps=[
            ToolUse(f"{TOOLS}spawn", {"prompt": child_prompt, "name": "child"}),
            ToolUse(f"{TOOLS}wait", {"ids": ["child"], "timeout_s": 60}),
            ToolUse(f"{TOOLS}approve", approve),
            ToolUse(f"{TOOLS}wait", {"ids": ["child"], "timeout_s": 60}),
            Text(report),
        ],
    )


@pytest.mark.parametrize(
    ("answer", "runs", "child_says"),
    [
        ({"decision": "allow"}, "asked.txt", "TOOL SAID: (Bash completed with no output)"),
        ({"decision": "deny", "message": "not in this directory"}, None, None),
        ({"decision": "allow", "updated_input": {"command": "touch edited.txt"}}, "edited.txt", None),
    ],
    ids=["approves", "denies", "edits"],
)
async def test_a_parent_answers_its_childs_request(
    answer: JSON,
    runs: str | None,
    child_says: str | None,
    mock_api: MockAnthropicAPI,
    overmind: Overmind,
    claude_env: dict[str, str],
    claude_cwd: Path,
) -> None:
    child_runs(mock_api, "CHILD-ASKS", "touch asked.txt")
    parent_answers(mock_api, "PARENT-ANSWERS", "CHILD-ASKS", lambda _command: answer)
    async with client_of(overmind, claude_env, claude_cwd) as client:
        # The parent may allow `touch` itself, so the child's request stops with it.
        await call_tool(
            client, "spawn", prompt="PARENT-ANSWERS", name="parent", permissions={"allow": ["Bash(touch:*)"]}
        )
        parent = await finished(client, "parent")
        child = await call_tool(client, "result", id="child")

    assert parent["status"] == "succeeded", parent
    assert text_files(claude_cwd) == ([runs] if runs else [])
    [decision] = child["approvals"]
    assert (decision["by"], decision["by_name"]) == ("parent", "parent")
    assert decision["decision"] == answer["decision"] and decision["edited"] is ("updated_input" in answer)
    if answer["decision"] == "deny":
        assert child["text"] == "TOOL SAID: Denied by its parent 'parent': not in this directory"
    if child_says is not None:
        assert child["text"] == child_says
    assert parent["text"] == f"child said: {child['text']}"


async def test_a_grandchilds_request_its_parent_may_not_allow_climbs_to_the_client(
    mock_api: MockAnthropicAPI, overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path
) -> None:
    child_runs(mock_api, "GRANDCHILD", "touch climbed.txt")
    mock_api.on(
        "MIDDLE",
        steps=[
            ToolUse(f"{TOOLS}spawn", {"prompt": "GRANDCHILD", "name": "grandchild"}),
            ToolUse(f"{TOOLS}wait", {"ids": ["grandchild"], "timeout_s": 60}),
            Text(lambda request: request.last_tool_result or ""),
        ],
    )
    async with client_of(overmind, claude_env, claude_cwd) as client:
        # The middle may allow `git` only: a `touch` is beyond it, and goes to the client.
        await call_tool(client, "spawn", prompt="MIDDLE", name="middle", permissions={"allow": ["Bash(git:*)"]})
        request = await wait_for_request(client, "middle")
        assert (request["name"], request["tool"], request["input"]["command"]) == (
            "grandchild",
            "Bash",
            "touch climbed.txt",
        )
        assert "no rule allows Bash(touch climbed.txt)" in request["why"]
        ps = await call_tool(client, "ps", tree=True)
        statuses = {mission["name"]: (mission["status"], mission["doing"]) for mission in ps["missions"]}
        assert statuses["grandchild"] == (
            "needs_approval",
            "waiting for approval of Bash(touch climbed.txt) from the client",
        )
        outcome = await call_tool(client, "approve", request_id=request["id"], decision="allow")
        assert (outcome["by"], outcome["decision"]) == ("client", "allow")
        middle = await finished(client, "middle")
        grandchild = await call_tool(client, "result", id="grandchild")

    assert (claude_cwd / "climbed.txt").exists()
    [decision] = grandchild["approvals"]
    assert (decision["by"], decision["decision"]) == ("client", "allow")
    # The middle's own wait never showed it the request: it was never the middle's to answer.
    *_, middle_last = (request for request in mock_api.messages_requests if request.rule == "MIDDLE")
    middle_calls = middle_last.tool_calls
    middle_waits = [json.loads(call.result) for call in middle_calls if call.name.endswith("wait")]
    assert middle_waits and all(not waited["needs_approval"] for waited in middle_waits), middle["text"]


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_the_client_answers_in_an_elicitation_form(
    mode: str, mock_api: MockAnthropicAPI, overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path
) -> None:
    child_runs(mock_api, "FORM", "touch by-form.txt")
    asked: list[str] = []

    async def fill_in(_context: Any, params: types.ElicitRequestFormParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"decision": "allow", "message": ""})

    async with client_of(overmind, claude_env, claude_cwd, mode=mode, elicitation=fill_in) as client:
        await call_tool(client, "spawn", prompt="FORM", name="form")
        await wait_for_request(client, "form")
        # The next wait puts the request to the client's user as a form first.
        result = await finished(client, "form")

    [question] = asked
    assert question.startswith("Mission 'form' asks to use Bash(touch by-form.txt)")
    assert (claude_cwd / "by-form.txt").exists()
    [decision] = result["approvals"]
    assert (decision["by"], decision["decision"]) == ("elicitation", "allow")


async def test_nobody_answers_and_the_timeout_denies(
    mock_api: MockAnthropicAPI, overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path
) -> None:
    child_runs(mock_api, "UNANSWERED", "touch never.txt")
    async with client_of(overmind, claude_env, claude_cwd) as client:
        await call_tool(client, "spawn", prompt="UNANSWERED", name="unanswered", approval_timeout_s=1.5)
        request = await wait_for_request(client, "unanswered")
        assert request["expires_in_s"] <= 1.5
        result = await finished(client, "unanswered")

    assert not (claude_cwd / "never.txt").exists()
    assert result["text"] == (
        "TOOL SAID: Denied: nobody answered this permission request within 1.5 s (approval_timeout_s). "
        "Do not retry it; say what you needed and why."
    )
    [decision] = result["approvals"]
    assert (decision["by"], decision["decision"]) == ("timeout", "deny")
    assert 1400 <= decision["latency_ms"] < 5000


async def test_the_stall_watchdog_waits_while_an_answer_is_pending(
    mock_api: MockAnthropicAPI, overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path
) -> None:
    # Two calls in one message: the read needs no permission and its result is printed at once, so the
    # child is not "inside a tool" any more while its other call waits for the answer.
    (claude_cwd / "notes.txt").write_text("notes")
    mock_api.on(
        "SLOW-ANSWER",
        steps=[
            ToolUse("Read", {"file_path": "notes.txt"}, also=(ToolUse("Bash", {"command": "touch late.txt"}),)),
            Text("done"),
        ],
    )
    stall_s = 3.0  # above the child's start-up (it connects to the server before it prints a line)
    async with client_of(overmind, claude_env, claude_cwd) as client:
        await call_tool(client, "spawn", prompt="SLOW-ANSWER", name="patient", activity_timeout_s=stall_s)
        request = await wait_for_request(client, "patient")
        # One and a half stall timeouts with the child silent: it waits for an answer, it is not stalled.
        await anyio.sleep(stall_s * 1.5)
        [patient] = (await call_tool(client, "ps"))["missions"]
        assert (patient["status"], patient["doing"]) == (
            "needs_approval",
            "waiting for approval of Bash(touch late.txt) from the client",
        )
        await call_tool(client, "approve", request_id=request["id"], decision="allow")
        result = await finished(client, "patient")

    assert result["status"] == "succeeded", result
    assert (claude_cwd / "late.txt").exists()
    [decision] = result["approvals"]
    assert decision["latency_ms"] >= stall_s * 1500


async def test_a_session_asks_on_its_stdout(
    mock_api: MockAnthropicAPI, overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path
) -> None:
    child_runs(mock_api, "SESSION-TURN", "touch from-session.txt")
    async with client_of(overmind, claude_env, claude_cwd) as client:
        await call_tool(client, "spawn", prompt="SESSION-TURN", name="chat", session=True, delegate=False)
        request = await wait_for_request(client, "chat")
        assert request["input"] == {"command": "touch from-session.txt", "description": "change a file"}
        await call_tool(client, "approve", request_id=request["id"], decision="allow", remember=True)
        turn = await call_tool(client, "send", id="chat", message="SESSION-TURN again", wait=True, timeout_s=60)
        result = await call_tool(client, "result", id="chat")
        await call_tool(client, "kill", ids=["chat"])

    assert turn["text"] == "TOOL SAID: (Bash completed with no output)", turn
    assert (claude_cwd / "from-session.txt").exists()
    first, second = result["approvals"]
    assert (first["by"], second["by"]) == ("client", "policy")
    assert second["rule"] == "Bash(touch from-session.txt)"
    # A session asks on stdout: its CLI was given no MCP server at all.
    chat = overmind.mission("chat")
    assert chat.spec.task.session
