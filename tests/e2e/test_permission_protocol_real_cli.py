"""Pins what overmind_mcp/permissions/protocol.py says of the pinned CLI: what a permission prompt sends,
what answer it takes, and how a live session asks on stdout and reads the answer on stdin.

The prompt tool here is `tests/e2e/permission_probe.py`, answering with overmind's own encodings
(`mcp_answer`, the provider's `permission_answer`), so a CLI that changes its protocol fails here
first, with the message that says how.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from overmind_mcp.core.approvals import PermissionAnswer
from overmind_mcp.core.events import PermissionRequest
from overmind_mcp.permissions.protocol import mcp_answer
from overmind_mcp.providers.claude import parse_line, permission_answer
from tests.e2e.conftest import JSON, ClaudeProcess, RunClaude, StartClaude
from tests.mockapi import MockAnthropicAPI, Text, ToolUse

PROBE = Path(__file__).with_name("permission_probe.py")
PROMPT_TOOL = "--permission-prompt-tool=mcp__probe__answer"


def probe_config(log: Path, answer: str, *, structured: bool = False) -> str:
    env = {"PROBE_LOG": str(log), "PROBE_ANSWER": answer, "PROBE_STRUCTURED": "1" if structured else "0"}
    server = {"type": "stdio", "command": sys.executable, "args": [str(PROBE)], "env": env}
    return f"--mcp-config={json.dumps({'mcpServers': {'probe': server}})}"


def script(api: MockAnthropicAPI, tool: str, tool_input: dict[str, Any]) -> None:
    api.on("PROBE", steps=[ToolUse(tool, tool_input), Text(lambda request: f"TOOL SAID: {request.last_tool_result}")])


def asked(log: Path) -> list[JSON]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_with_probe(
    run_claude: RunClaude, tmp_path: Path, answer: str, *extra: str, structured: bool = False
) -> tuple[ClaudeProcess, list[JSON]]:
    log = tmp_path / "asked.jsonl"
    run = run_claude(probe_config(log, answer, structured=structured), "--strict-mcp-config", *extra, "--", "PROBE")
    assert run.returncode == 0, run.describe()
    return run, asked(log)


def test_the_prompt_tool_gets_the_call_and_an_allow_runs_it(
    mock_api: MockAnthropicAPI, run_claude: RunClaude, tmp_path: Path, claude_cwd: Path
) -> None:
    script(mock_api, "Bash", {"command": "touch made.txt", "description": "make a file"})
    run, calls = run_with_probe(run_claude, tmp_path, mcp_answer(PermissionAnswer(True)), PROMPT_TOOL)

    [call] = calls
    assert call["tool_name"] == "Bash"
    assert call["input"] == {"command": "touch made.txt", "description": "make a file"}
    assert call["tool_use_id"].startswith("toolu_")
    assert (claude_cwd / "made.txt").exists()
    assert run.result["permission_denials"] == []
    # Hidden from the model; the server's other tools are not.
    tools = mock_api.messages_requests[0].tool_names
    assert "mcp__probe__visible" in tools and "mcp__probe__answer" not in tools
    [init] = run.of_type("system", "init")
    assert "mcp__probe__answer" not in init["tools"]


def test_an_edited_input_runs_instead_of_the_asked_one(
    mock_api: MockAnthropicAPI, run_claude: RunClaude, tmp_path: Path, claude_cwd: Path
) -> None:
    script(mock_api, "Bash", {"command": "touch asked.txt"})
    edited = mcp_answer(PermissionAnswer(True, updated_input={"command": "touch edited.txt && echo edited"}))
    run, _calls = run_with_probe(run_claude, tmp_path, edited, PROMPT_TOOL)

    assert run.result["result"] == "TOOL SAID: edited"
    assert (claude_cwd / "edited.txt").exists() and not (claude_cwd / "asked.txt").exists()


def test_a_deny_is_the_tool_error_the_model_reads(
    mock_api: MockAnthropicAPI, run_claude: RunClaude, tmp_path: Path, claude_cwd: Path
) -> None:
    script(mock_api, "Write", {"file_path": "new.txt", "content": "x"})
    run, [call] = run_with_probe(
        run_claude, tmp_path, mcp_answer(PermissionAnswer(False, message="NOT-TODAY")), PROMPT_TOOL
    )

    # File paths reach the prompt tool absolute.
    assert call["input"]["file_path"] == str(claude_cwd / "new.txt")
    assert run.result["result"] == "TOOL SAID: NOT-TODAY"
    [tool_result] = [m for m in run.of_type("user") if "tool_use_result" in m]
    assert tool_result["message"]["content"][0]["is_error"] is True
    assert [denial["tool_name"] for denial in run.result["permission_denials"]] == ["Write"]
    assert run.of_type("system", "permission_denied") == []
    assert not (claude_cwd / "new.txt").exists()


def test_what_the_cli_decides_itself_never_reaches_the_prompt_tool(
    mock_api: MockAnthropicAPI, run_claude: RunClaude, tmp_path: Path
) -> None:
    script(mock_api, "Bash", {"command": "echo read-only"})
    run, calls = run_with_probe(run_claude, tmp_path, mcp_answer(PermissionAnswer(False, message="no")), PROMPT_TOOL)

    assert calls == [] and run.result["result"] == "TOOL SAID: read-only"


def test_a_structured_answer_or_a_wrong_shape_is_refused(
    mock_api: MockAnthropicAPI, run_claude: RunClaude, tmp_path: Path, claude_cwd: Path
) -> None:
    script(mock_api, "Bash", {"command": "touch a.txt"})
    structured, _ = run_with_probe(
        run_claude, tmp_path, mcp_answer(PermissionAnswer(True)), PROMPT_TOOL, structured=True
    )
    assert "Expected a single text block" in structured.result["result"]
    wrong, _ = run_with_probe(run_claude, tmp_path, json.dumps({"behavior": "maybe"}), PROMPT_TOOL)
    assert "Expected {behavior: 'allow', updatedInput?: object} or {behavior: 'deny'" in wrong.result["result"]
    assert not (claude_cwd / "a.txt").exists()


def test_permission_prompts_none_denies_even_with_a_prompt_tool(
    mock_api: MockAnthropicAPI, run_claude: RunClaude, tmp_path: Path
) -> None:
    script(mock_api, "Bash", {"command": "touch a.txt"})
    run, calls = run_with_probe(
        run_claude, tmp_path, mcp_answer(PermissionAnswer(True)), PROMPT_TOOL, "--permission-prompts=none"
    )

    assert calls == []
    [denied] = run.of_type("system", "permission_denied")
    assert denied["decision_reason_type"] == "asyncAgent"


def test_a_session_asks_on_stdout_and_reads_the_answer_on_stdin(
    mock_api: MockAnthropicAPI, start_claude: StartClaude, claude_cwd: Path
) -> None:
    mock_api.on(
        "ASK-ONE", steps=[ToolUse("Bash", {"command": "touch one.txt"}), Text(lambda r: f"1: {r.last_tool_result}")]
    )
    mock_api.on(
        "ASK-TWO", steps=[ToolUse("Bash", {"command": "touch two.txt"}), Text(lambda r: f"2: {r.last_tool_result}")]
    )
    session = start_claude("--input-format=stream-json", "--permission-prompt-tool=stdio", stdin=True)

    session.send_user("ASK-ONE")
    request = session.wait_for(lambda m: m.get("type") == "control_request")
    [parsed] = parse_line(json.dumps(request).encode())
    assert isinstance(parsed, PermissionRequest)
    assert (parsed.tool_name, parsed.input) == ("Bash", {"command": "touch one.txt"})
    assert parsed.blocked_path == str(claude_cwd / "one.txt") and parsed.tool_use_id
    assert request["request"]["subtype"] == "can_use_tool"
    edited = PermissionAnswer(True, updated_input={"command": "touch edited.txt && echo edited"})
    session.send(json.loads(permission_answer(parsed.request_id, edited)))
    assert session.wait_for_result(0)["result"] == "1: edited"

    session.send_user("ASK-TWO")
    second = session.wait_for(lambda m: m.get("type") == "control_request" and m["request_id"] != parsed.request_id)
    session.send(json.loads(permission_answer(second["request_id"], PermissionAnswer(False, message="NO-TWO"))))
    assert session.wait_for_result(1)["result"] == "2: NO-TWO"
    session.close_stdin()
    assert session.wait() == 0
    assert (claude_cwd / "edited.txt").exists() and not (claude_cwd / "two.txt").exists()
