"""Issue 7, scenario 1 and its edges: a real Claude Code parent delegates to real Claude Code children.

    pytest ──▶ claude -p (parent) ──stdio MCP──▶ overmind-mcp ──▶ claude -p (child-a)
                     │                                        └──▶ claude -p (child-b)
                     └──────────────── all three talk to one MockAnthropicAPI ─────────┘

The mock scripts the parent's model to call ``spawn`` twice, ``wait`` and ``result`` twice, then to
answer with what the children said; the children are scripted by their prompts. Nothing is faked on
overmind's side: the parent is the pinned CLI, the server is ``python -m overmind_mcp`` as the CLI
starts it from ``--mcp-config``, and the children are the same pinned CLI started by the server.

The other tests here pin down how the real parent and the server treat each other at the edges: a
refused call, the parent exiting with a child still running, the CLI's own tool-call timeout
cancelling ``wait``, and what the CLI's environment leaves in a child's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.e2e.conftest import FIGURES, ClaudeProcess, ExitClock, Overmind, StartClaude
from tests.mockapi import MockAnthropicAPI, RecordedRequest, Stall, Text, ToolCall, ToolUse

PARENT = "PARENT-DELEGATES"
CHILD_A = "CHILD-A"
CHILD_B = "CHILD-B"
TOOLS = "mcp__overmind__"

ANSWER_A = "alpha-answer-17"


def script_parent(api: MockAnthropicAPI) -> None:
    """spawn A, spawn B, wait for both, result of each, then a final answer quoting both results."""

    def final_answer(request: RecordedRequest) -> str:
        # Claude Code shows the model only the structuredContent of a tool result, as compact JSON.
        results = [json.loads(call.result) for call in request.tool_calls if call.name == f"{TOOLS}result"]
        return "children said: " + " | ".join(f"{r['name']}={r['text']}" for r in results)

    api.on(
        PARENT,
        steps=[
            ToolUse(f"{TOOLS}spawn", {"prompt": f"{CHILD_A}: answer with your word", "name": "child-a"}),
            ToolUse(
                f"{TOOLS}spawn",
                {"prompt": f"{CHILD_B}: compute with Bash", "name": "child-b", "allowed_tools": ["Bash"]},
            ),
            ToolUse(f"{TOOLS}wait", {"ids": ["child-a", "child-b"], "timeout_s": 60}),
            ToolUse(f"{TOOLS}result", {"id": "child-a"}),
            ToolUse(f"{TOOLS}result", {"id": "child-b"}),
            Text(final_answer),
        ],
    )


def script_children(api: MockAnthropicAPI, overmind: Overmind, clocks: dict[str, ExitClock]) -> None:
    """Child A answers at once; child B runs Bash, then answers only once the parent is waiting.

    Holding B's answer until the mock has handed the parent its ``wait`` call makes sure ``wait`` is
    in progress when B ends, so the parent's next request measures the server's reaction to a
    child's exit rather than a ``wait`` that found both children long finished. Meanwhile B is alive
    for sure, so this is also where the clock on its exit starts.
    """

    def answer_b(request: RecordedRequest) -> str:
        clocks["child-b"] = ExitClock(overmind.mission("child-b").pid or 0)
        api.wait_for(lambda r: r.rule == PARENT and r.step == 2, timeout=30)
        return f"beta-{request.last_tool_result}"

    api.on(CHILD_A, steps=[Text(ANSWER_A)])
    api.on(
        CHILD_B,
        steps=[ToolUse("Bash", {"command": "echo $((6*7))", "description": "compute"}), Text(answer_b)],
    )


def test_parent_spawns_two_children_waits_and_reports_their_results(
    mock_api: MockAnthropicAPI, overmind: Overmind, start_claude: StartClaude, claude_cwd: Path
) -> None:
    # (`overmind` before `start_claude`: teardown kills the parent first, then checks for leftovers.)
    clocks: dict[str, ExitClock] = {}
    script_parent(mock_api)
    script_children(mock_api, overmind, clocks)

    started = time.monotonic()
    parent = start_claude(*overmind.parent_args(f"{PARENT}: run two children and report what they said"))
    returncode = parent.wait(timeout=60)
    wall_time = time.monotonic() - started

    # The parent's final answer carries both children's results.
    assert returncode == 0, parent.describe()
    final = parent.result
    assert final["is_error"] is False and final["subtype"] == "success", parent.describe()
    assert final["result"] == f"children said: child-a={ANSWER_A} | child-b=beta-42"
    [init] = parent.of_type("system", "init")
    assert {"name": "overmind", "status": "connected"}.items() <= init["mcp_servers"][0].items()
    assert parent.of_type("system", "permission_denied") == []

    # The mission table: two top-level missions that succeeded, with what their CLIs reported.
    a, b = overmind.missions()
    assert (a.name, b.name) == ("child-a", "child-b")
    for row, text, turns in [(a, ANSWER_A, 1), (b, "beta-42", 2)]:
        assert row.status == "succeeded", row
        assert row.exit_code == 0 and row.end_reason is None
        assert row.parent_id is None and row.depth == 0 and row.root_id == row.id  # the parent is the client
        assert row.provider == "claude" and row.session_id
        assert row.cost_usd is not None and row.cost_usd > 0
        assert row.num_turns == turns
        assert row.result is not None and row.result["text"] == text and row.result["is_error"] is False
        assert row.cwd == str(claude_cwd)  # the server's cwd, which the CLI gives its MCP servers
    assert b.spec.task.allowed_tools == ["Bash"]
    assert a.session_id != b.session_id

    # What the mock received: the children's prompts, and the parent's tool calls with their results.
    requests = mock_api.messages_requests
    assert [r.step for r in requests if r.rule == CHILD_A] == [0]
    assert [r.step for r in requests if r.rule == CHILD_B] == [0, 1]
    assert [r.step for r in requests if r.rule == PARENT] == [0, 1, 2, 3, 4, 5]
    assert {r.headers["x-api-key"] for r in requests} == {"sk-ant-api03-mock"}  # the children got the env
    parent_requests = [r for r in requests if r.rule == PARENT]
    overmind_tools = {f"{TOOLS}{tool}" for tool in ("spawn", "wait", "result", "kill", "ps", "logs")}
    assert set(parent_requests[0].tool_names) >= overmind_tools
    # Each child reaches the same server too (delegation: an HTTP --mcp-config entry named overmind).
    for request in (r for r in requests if r.rule in (CHILD_A, CHILD_B)):
        assert set(request.tool_names) >= overmind_tools | {"Bash"}, request.tool_names

    calls = parent_requests[-1].tool_calls
    assert [c.name.removeprefix(TOOLS) for c in calls] == ["spawn", "spawn", "wait", "result", "result"]
    assert not any(c.is_error for c in calls), calls
    spawned = [json.loads(c.result) for c in calls[:2]]
    assert [(s["id"], s["name"], s["status"], s["parent"]) for s in spawned] == [
        (a.id, "child-a", "running", None),
        (b.id, "child-b", "running", None),
    ]
    waited = json.loads(calls[2].result)
    assert waited["timed_out"] is False and waited["pending"] == []
    assert sorted((d["name"], d["status"], d["text"]) for d in waited["done"]) == [
        ("child-a", "succeeded", ANSWER_A),
        ("child-b", "succeeded", "beta-42"),
    ]
    for call, row in zip(calls[3:], (a, b), strict=True):
        answer = json.loads(call.result)
        assert (answer["id"], answer["status"], answer["session_id"]) == (row.id, "succeeded", row.session_id)
        assert answer["cost_usd"] == row.cost_usd and answer["progress"] is None

    # The server's overhead: from child B's exit to the parent asking its model again with wait's answer
    # (an upper bound: it includes the parent CLI's own turnaround). B is the child wait was waiting on.
    exited_at = clocks["child-b"].read()
    after_wait = parent_requests[3]
    assert b.ended_at is not None
    assert exited_at > parent_requests[2].received_at, "wait was not in progress when child-b ended"
    overhead = after_wait.received_at - exited_at
    recorded, answered = b.ended_at - exited_at, after_wait.received_at - b.ended_at
    FIGURES["scenario 1 wall time (parent start → parent exit)"] = f"{wall_time:.2f} s"
    FIGURES["scenario 1 overhead: child-b exit → parent's request carrying wait's answer"] = f"{overhead * 1e3:.0f} ms"
    FIGURES["  child-b exit → server recorded it (ended_at)"] = f"{recorded * 1e3:.0f} ms"
    FIGURES["  ended_at → parent's request (answer, stdio, CLI)"] = f"{answered * 1e3:.0f} ms"
    # A missed wake-up would show as wait's 10 s heartbeat (see test_wait_lost_wakeup.py).
    assert 0 < overhead < 3, f"{overhead:.2f} s from child-b's exit to the parent hearing of it"


# --------------------------------------------------------------------------------------------------
# Edges


def run_parent(start_claude: StartClaude, overmind: Overmind, *, timeout_ms: int | None = None) -> ClaudeProcess:
    parent = start_claude(*overmind.parent_args(f"{PARENT}: edge case", timeout_ms=timeout_ms))
    parent.wait(timeout=60)
    assert parent.returncode == 0 and parent.result["is_error"] is False, parent.describe()
    return parent


def parent_calls(api: MockAnthropicAPI) -> list[ToolCall]:
    """The parent's tool calls and their results, as its model last saw them."""
    *_, last = (r for r in api.messages_requests if r.rule == PARENT)
    return last.tool_calls


def after_child_started(api: MockAnthropicAPI, prompt: str, text: str) -> Text:
    """A final answer given only once a child's first request has arrived: the child is running then."""

    def answer(_request: RecordedRequest) -> str:
        api.wait_for(prompt_contains=prompt, timeout=30)
        return text

    return Text(answer)


def test_parent_exit_ends_the_child_it_left_running_and_refusals_read_well(
    mock_api: MockAnthropicAPI, overmind: Overmind, start_claude: StartClaude
) -> None:
    mock_api.on(
        PARENT,
        steps=[
            ToolUse(f"{TOOLS}spawn", {"prompt": "CHILD-STALLS", "name": "stalled"}),
            ToolUse(f"{TOOLS}spawn", {"prompt": "  ", "name": "never"}),
            after_child_started(mock_api, "CHILD-STALLS", "leaving it running"),
        ],
    )
    mock_api.on("CHILD-STALLS", steps=[Stall()])  # pings forever: the child would never end by itself

    run_parent(start_claude, overmind)
    # The CLI stops its MCP server as it exits, and the server ends its children on the way out.
    overmind.assert_all_ended(within=10)

    spawned, refused = parent_calls(mock_api)
    assert not spawned.is_error and json.loads(spawned.result)["status"] == "running"
    # A refusal has no structuredContent: the model sees the tool error's text, which says what to fix.
    assert refused.is_error
    assert refused.result == "Error executing tool spawn: `prompt` is empty: say what the child should do"
    [row] = overmind.missions()
    assert (row.name, row.status) == ("stalled", "stopped")
    # SIGINT ends a streaming CLI in ~0.2 s; a machine under load may need the SIGTERM that follows.
    assert row.end_reason in ("the server shut down; ended by SIGINT", "the server shut down; ended by SIGTERM")


def test_cli_tool_timeout_cancels_wait_but_not_the_child(
    mock_api: MockAnthropicAPI, overmind: Overmind, start_claude: StartClaude
) -> None:
    mock_api.on(
        PARENT,
        steps=[
            ToolUse(f"{TOOLS}spawn", {"prompt": "CHILD-STALLS", "name": "stalled"}),
            ToolUse(f"{TOOLS}wait", {"ids": ["stalled"], "timeout_s": 60}),
            ToolUse(f"{TOOLS}result", {"id": "stalled"}),
            ToolUse(f"{TOOLS}kill", {"ids": ["stalled"]}),
            Text("gave up on it"),
        ],
    )
    mock_api.on("CHILD-STALLS", steps=[Stall()])

    # The server entry's `timeout` is the CLI's hard limit per tool call: wait(60 s) is cut after 1 s,
    # and the CLI sends notifications/cancelled, which cancels the wait handler on the server.
    started = time.monotonic()
    run_parent(start_claude, overmind, timeout_ms=1000)
    assert time.monotonic() - started < 30

    _spawn, waited, result, killed = parent_calls(mock_api)
    assert waited.is_error and waited.result == 'MCP server "overmind" tool "wait" timed out after 1s'
    # The cancelled wait left the child alone, and the server kept answering.
    assert not result.is_error and json.loads(result.result)["status"] == "running"
    assert json.loads(result.result)["progress"] is not None
    [ended] = json.loads(killed.result)["ended"]
    assert (ended["name"], ended["status"]) == ("stalled", "stopped") and ended["how"] in ("SIGINT", "SIGTERM")
    [row] = overmind.missions()
    assert (row.status, row.end_reason) == ("stopped", f"ended on request; ended by {ended['how']}")


# The CLI gives its MCP servers variables tied to its own session; the server passes its environment on to
# the children. CLAUDECODE, CLAUDE_CODE_ENTRYPOINT and CLAUDE_CODE_SESSION_ID are dropped already.
PARENT_SESSION_VARIABLES = ["CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_CODE_SESSION_ID"]
# The parent session's private messaging channel (a socket and its token): not yet dropped.
PARENT_MESSAGING_VARIABLES = ["CLAUDE_CODE_MESSAGING_SOCKET", "CLAUDE_CODE_MESSAGING_TOKEN"]


def child_environment(api: MockAnthropicAPI, overmind: Overmind, start_claude: StartClaude) -> dict[str, str]:
    """The environment a child of a real Claude Code parent gets (an `env` command: same code path)."""
    api.on(
        PARENT,
        steps=[
            ToolUse(f"{TOOLS}spawn", {"command": ["env", "-0"], "name": "env"}),
            ToolUse(f"{TOOLS}wait", {"ids": ["env"]}),
            Text("done"),
        ],
    )
    run_parent(start_claude, overmind)
    row = overmind.mission("env")
    assert row.status == "succeeded", row
    pairs = Path(row.output_path).read_text().split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def test_children_get_the_clients_environment_without_the_parent_session_markers(
    mock_api: MockAnthropicAPI, overmind: Overmind, start_claude: StartClaude, claude_env: dict[str, str]
) -> None:
    env = child_environment(mock_api, overmind, start_claude)

    assert env["ANTHROPIC_BASE_URL"] == claude_env["ANTHROPIC_BASE_URL"] == mock_api.base_url
    assert env["HOME"] == claude_env["HOME"]
    assert env["OVERMIND_MISSION_NAME"] == "env" and "OVERMIND_PARENT_ID" not in env
    assert [name for name in PARENT_SESSION_VARIABLES if name in env] == []


def test_children_do_not_inherit_the_parent_sessions_messaging_channel(
    mock_api: MockAnthropicAPI, overmind: Overmind, start_claude: StartClaude
) -> None:
    env = child_environment(mock_api, overmind, start_claude)

    assert [name for name in PARENT_MESSAGING_VARIABLES if name in env] == []
