"""Issue 7, scenario 5: the ``orchestrate`` prompt, fetched by the real CLI as a slash command, runs the loop.

``claude -p "/mcp__overmind__orchestrate <args>"`` makes the CLI call ``prompts/get`` on overmind and send
the prompt's text as the user's message (after a ``<command-args>`` block holding the raw arguments).
The mock recognises the orchestrator's instructions and plays an orchestrator that follows them:
spawn a child in the project root the prompt names, wait, read the result, report.

How the CLI (2.1.332) fills a prompt's arguments, read from its source and seen here: the text after the
command is split on whitespace (quotes mean nothing) and the words are given to the arguments in order;
words beyond the last argument are dropped. The raw text also reaches the model, in a
``<command-message>…<command-args>TEXT</command-args>`` block just before the prompt's own text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import ClaudeProcess, Overmind, StartClaude
from tests.mockapi import MockAnthropicAPI, RecordedRequest, Text, ToolUse

TOOLS = "mcp__overmind__"
ORCHESTRATOR = "You are the orchestrator of this task."  # the template's first line


def prompt_section(prompt: str, heading: str) -> str:
    """The text under ``# heading`` of the orchestrate prompt, up to the next line that starts a field."""
    match = re.search(rf"^# {heading}\n\n(.*?)\n\n", prompt, re.MULTILINE | re.DOTALL)
    assert match, f"no '# {heading}' section in:\n{prompt[:500]}"
    return match.group(1)


def project_root_of(request: RecordedRequest) -> str:
    match = re.search(r"^Project root: (.*)$", request.turn_prompt or "", re.MULTILINE)
    assert match, request.turn_prompt
    return match.group(1)


def script_orchestrator(api: MockAnthropicAPI) -> None:
    """An orchestrator that does what the prompt says, in the smallest loop: one subtask."""
    api.on(
        ORCHESTRATOR,
        steps=[
            ToolUse(f"{TOOLS}recall", {"query": "flaky test"}),
            ToolUse(
                f"{TOOLS}spawn",
                lambda req: {
                    "prompt": "SUBTASK: fix the flaky test; done when it passes 10 times",
                    "name": "fix-flaky-test",
                    "cwd": project_root_of(req),
                },
            ),
            ToolUse(f"{TOOLS}wait", {"ids": ["fix-flaky-test"], "mode": "any", "timeout_s": 45}),
            ToolUse(f"{TOOLS}ps", {"tree": True}),
            Text(lambda req: "report: " + json.dumps(json.loads(req.last_tool_result or "{}")["totals"])),
        ],
    )
    api.on("SUBTASK", steps=[Text("fixed: the test passes 10 times")])


def run_command(start_claude: StartClaude, overmind: Overmind, command: str) -> ClaudeProcess:
    parent = start_claude(*overmind.parent_args(command))
    parent.wait(timeout=60)
    assert parent.returncode == 0 and parent.result["is_error"] is False, parent.describe()
    return parent


def test_orchestrate_slash_command_runs_the_loop(
    mock_api: MockAnthropicAPI, overmind: Overmind, start_claude: StartClaude, claude_cwd: Path
) -> None:
    script_orchestrator(mock_api)

    parent = run_command(start_claude, overmind, "/mcp__overmind__orchestrate fix-the-flaky-test")

    [init] = parent.of_type("system", "init")
    assert f"{TOOLS}orchestrate" in init["slash_commands"]
    # The prompt arrived filled in: the task, the project root (the server's: the CLI's cwd), the limits.
    first = next(r for r in mock_api.messages_requests if r.rule == ORCHESTRATOR)
    prompt = first.turn_prompt or ""
    assert prompt.startswith(ORCHESTRATOR)
    assert prompt_section(prompt, "The task") == "fix-the-flaky-test"
    assert project_root_of(first) == str(claude_cwd)
    assert "At most 10 children in total" in prompt and "$" not in prompt_section(prompt, "Limits")

    # The loop ran through the real CLI: every call succeeded, and the child worked in the project root.
    *_, last = (r for r in mock_api.messages_requests if r.rule == ORCHESTRATOR)
    calls = last.tool_calls
    assert [c.name.removeprefix(TOOLS) for c in calls] == ["recall", "spawn", "wait", "ps"]
    assert not any(c.is_error for c in calls), calls
    [child] = overmind.missions()
    assert (child.name, child.status, child.cwd) == ("fix-flaky-test", "succeeded", str(claude_cwd))
    assert child.result and child.result["text"] == "fixed: the test passes 10 times"
    report = parent.result["result"]
    assert report.startswith("report: ")
    totals = json.loads(report.removeprefix("report: "))
    assert (totals["missions"], totals["running"]) == (1, 0)
    assert totals["cost_usd"] == pytest.approx(child.cost_usd)


def test_orchestrate_with_a_task_of_several_words_keeps_its_project_root_and_limits(
    mock_api: MockAnthropicAPI, overmind: Overmind, start_claude: StartClaude, claude_cwd: Path
) -> None:
    mock_api.on(ORCHESTRATOR, steps=[Text("understood")])

    run_command(start_claude, overmind, "/mcp__overmind__orchestrate Fix the flaky test in tests/test_x.py")

    [request] = mock_api.messages_requests
    # No server can get the whole task from this CLI as an argument (it only ever gets the first word), but
    # the model sees the raw text anyway, in the block the CLI puts before the prompt:
    assert "<command-args>Fix the flaky test in tests/test_x.py</command-args>" in json.dumps(request.messages)
    # What the prompt itself says must not be made of the task's other words.
    prompt = request.turn_prompt or ""
    assert project_root_of(request) == str(claude_cwd)
    assert "At most 10 children in total" in prompt and "At most 3 retries of any one subtask" in prompt
