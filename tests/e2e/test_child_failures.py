"""Issue 7, scenario 3: children that fail the way the real CLI fails, and what overmind reports.

An MCP client (the Python SDK's, over stdio, against ``python -m overmind_mcp``) spawns real
``claude -p`` children that the mock makes fail; for each one ``result`` must say what the CLI
itself printed in its ``result`` line (read back through ``logs(format="events")``) and exited with:

==================  =====================================================================================
child               how the real CLI 2.1.332 reports it
==================  =====================================================================================
``not-logged-in``   empty ``ANTHROPIC_API_KEY``: ``subtype:"success"`` **with** ``is_error:true``, exit 1
``api-error``       HTTP 500 once retried (``CLAUDE_CODE_MAX_RETRIES=1``): one ``system/api_retry``, then
                    an ``is_error`` result, again ``subtype:"success"``, exit 1
``max-turns``       ``--max-turns=1`` and a model that keeps calling Bash: ``error_max_turns``, ``errors``,
                    no ``result`` text, exit 1
``denied``          a Bash command that writes, which its permission policy (``approvals="policy"``, no
                    rules) denies at once when the CLI asks: the run goes on and succeeds, with
                    ``permission_denials`` naming the call
``stalled``         a stream that only pings: the CLI would wait forever; ``activity_timeout_s`` ends it
==================  =====================================================================================

All five run at once under one server, so the test costs about the stalled child's time (~4 s).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from tests.e2e.conftest import FIGURES, JSON, ExitClock, Overmind, call_tool
from tests.mockapi import ApiError, Loop, MockAnthropicAPI, Stall, Text, ToolUse

pytestmark = pytest.mark.anyio

DENIED_COMMAND = "touch created-by-child"


@pytest.fixture
async def client(overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path) -> AsyncIterator[Client]:
    """The SDK's client on a real stdio server, in the CLI's isolated environment (so children inherit it)."""
    async with Client(overmind.stdio_server(claude_env, claude_cwd), mode="legacy") as connected:
        yield connected


async def cli_result_line(client: Client, name: str) -> JSON:
    """The child's own ``result`` line, as it printed it (the server keeps every line)."""
    page = await call_tool(client, "logs", id=name, format="events", limit=2000)
    assert not page["more"]
    results = [event for event in page["events"] if event.get("type") == "result"]
    assert len(results) == 1, page["events"]
    return results[0]


def script_failures(api: MockAnthropicAPI) -> None:
    api.on("API-ERROR", steps=[ApiError(500, "api_error", "boom")])
    api.on("STALLS", steps=[Stall()])  # a stream that only pings: the CLI waits forever, printing nothing
    api.on("MAX-TURNS", steps=[Loop(ToolUse("Bash", {"command": "echo again", "description": "loop"}))])
    api.on(
        "DENIED",
        steps=[
            ToolUse("Bash", {"command": DENIED_COMMAND, "description": "write a file"}),
            Text(lambda req: f"could not: {req.last_tool_result}"),
        ],
    )
    # With an empty key the CLI never calls the API: any request at all would be a surprise.
    api.default(Text(lambda req: f"unexpected request: {req.turn_prompt}"))


SPAWNS: dict[str, JSON] = {
    "not-logged-in": {"prompt": "NOT-LOGGED-IN", "env": {"ANTHROPIC_API_KEY": ""}},
    # Without a cap the CLI retries a 500 ten times over minutes (see tests/mockapi.py).
    "api-error": {"prompt": "API-ERROR", "env": {"CLAUDE_CODE_MAX_RETRIES": "1"}},
    "max-turns": {"prompt": "MAX-TURNS", "max_turns": 1, "allowed_tools": ["Bash"]},
    "denied": {"prompt": "DENIED", "approvals": "policy"},
    "stalled": {"prompt": "STALLS", "activity_timeout_s": 3},
}


async def test_failures_are_reported_as_the_cli_reported_them(
    mock_api: MockAnthropicAPI, overmind: Overmind, client: Client, claude_cwd: Path
) -> None:
    script_failures(mock_api)
    clocks = {}
    for name, arguments in SPAWNS.items():
        spawned = await call_tool(client, "spawn", name=name, **arguments)
        clocks[name] = ExitClock(spawned["pid"])  # a child takes far longer than this to start, let alone end

    waited = await call_tool(client, "wait", ids=list(SPAWNS), timeout_s=60)
    answered_at = time.time()

    # The server's own overhead, no CLI in the way: the last child's exit → wait's answer in the client.
    overhead = answered_at - max(clock.read() for clock in clocks.values())
    FIGURES["server overhead: last child's exit → wait's answer at an SDK client (stdio)"] = f"{overhead * 1e3:.0f} ms"

    assert waited["timed_out"] is False and waited["pending"] == []
    done = {answer["name"]: answer for answer in waited["done"]}
    results = {name: await call_tool(client, "result", id=name) for name in SPAWNS}
    for name in SPAWNS:
        assert done[name] == results[name], name  # wait's answers are result's answers
    # The children that ended by themselves: whatever their CLI printed last is what result says.
    lines = {name: await cli_result_line(client, name) for name in SPAWNS if name != "stalled"}
    for name, line in lines.items():
        assert_faithful(results[name], line)

    not_logged_in, api_error = results["not-logged-in"], results["api-error"]
    max_turns, denied = results["max-turns"], results["denied"]

    # is_error is the authority, whatever the subtype says.
    for answer, line in [(not_logged_in, lines["not-logged-in"]), (api_error, lines["api-error"])]:
        assert line["subtype"] == "success" and line["is_error"] is True and line["terminal_reason"] == "api_error"
        assert (answer["status"], answer["exit_code"], answer["is_error"]) == ("failed", 1, True)
    assert not_logged_in["text"] == "Not logged in · Please run /login"
    assert api_error["text"].startswith("API Error: 500 boom")

    assert (max_turns["status"], max_turns["exit_code"], max_turns["is_error"]) == ("failed", 1, True)
    assert lines["max-turns"]["subtype"] == "error_max_turns" and "result" not in lines["max-turns"]
    assert max_turns["text"] is None
    assert max_turns["errors"] == ["Reached maximum number of turns (1)"]

    # A denial is not a failure to the CLI: the model hears why, and carries on.
    assert (denied["status"], denied["exit_code"], denied["is_error"]) == ("succeeded", 0, False)
    [denial] = denied["permission_denials"]
    assert denial["tool_name"] == "Bash" and denial["tool_input"]["command"] == DENIED_COMMAND
    assert denied["text"].startswith("could not: Denied by the mission's permission policy: no rule allows")
    assert not (claude_cwd / "created-by-child").exists()

    # The stalled child printed nothing after its init for activity_timeout_s: overmind ended it (SIGINT
    # first; the CLI then prints a result line, or, now and then, nothing more) and calls that a failure.
    stalled = results["stalled"]
    assert stalled["status"] == "failed" and stalled["progress"] is None

    # What the mock saw: no request without a key, two for the retried 500, one per allowed turn.
    requests = mock_api.messages_requests
    assert [r.rule for r in requests if r.rule == "default"] == []
    assert [r.step for r in requests if r.rule == "API-ERROR"] == [0, 0]
    assert [r.step for r in requests if r.rule == "MAX-TURNS"] == [0]
    assert [r.step for r in requests if r.rule == "DENIED"] == [0, 1]

    # The logs say why, in readable form.
    retry_log = await call_tool(client, "logs", id="api-error")
    assert any(line.startswith("[api retry 1/1") for line in retry_log["lines"]), retry_log["lines"]
    denial_log = await call_tool(client, "logs", id="denied")
    denial = f"--- permission: Bash({DENIED_COMMAND}) denied by policy"
    assert any(line.startswith(denial) for line in denial_log["lines"]), denial_log["lines"]

    # The mission table agrees, and records the CLI's own words for the failure.
    rows = {row.name: row for row in overmind.missions()}
    assert {name: row.status for name, row in rows.items()} == {
        "not-logged-in": "failed",
        "api-error": "failed",
        "max-turns": "failed",
        "denied": "succeeded",
        "stalled": "failed",
    }
    assert (rows["stalled"].end_reason or "").startswith("stalled: no output for 3.0s; ended by SIG")
    assert rows["max-turns"].result is not None and rows["max-turns"].result["subtype"] == "error_max_turns"
    assert rows["api-error"].result is not None and rows["api-error"].result["terminal_reason"] == "api_error"


def assert_faithful(answer: JSON, line: JSON) -> None:
    """``result`` carries what the CLI's own result line says, field by field."""
    name = answer["name"]
    assert answer["is_error"] is line["is_error"], name
    assert answer["text"] == line.get("result"), name
    assert answer["session_id"] == line["session_id"], name
    assert answer["num_turns"] == line["num_turns"], name
    assert answer["duration_ms"] == line["duration_ms"], name
    assert answer["cost_usd"] == line["total_cost_usd"], name
    assert answer["permission_denials"] == line["permission_denials"], name
    # The CLI's own errors come first; overmind may add the end of stderr after them for a failure.
    assert answer["errors"][: len(line.get("errors", []))] == line.get("errors", []), name
    assert answer["progress"] is None and answer["ended_at"] is not None, name


async def test_result_says_why_overmind_ended_a_stalled_child(mock_api: MockAnthropicAPI, client: Client) -> None:
    mock_api.on("STALLS", steps=[Stall()])
    await call_tool(client, "spawn", name="stalled", prompt="STALLS", activity_timeout_s=1.5)

    [answer] = (await call_tool(client, "wait", ids=["stalled"], timeout_s=30))["done"]

    assert answer["status"] == "failed"
    # What the CLI said when it was interrupted ("[ede_diagnostic] result_type=user …") does not say it.
    said = " ".join([str(answer.get("end_reason")), *answer["errors"]])
    assert "stalled: no output for 1.5s" in said, answer
