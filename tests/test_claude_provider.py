"""The Claude provider: argv from typed options, and the real CLI's stream-json parsed into events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from overmind_mcp.core.events import (
    ApiError,
    ApiRetry,
    AssistantText,
    Init,
    PermissionDenied,
    PlainText,
    Result,
    ToolResult,
    ToolUse,
    Unknown,
    to_text,
)
from overmind_mcp.providers.claude import (
    ClaudeOptions,
    build_argv,
    interrupt_request,
    parse_line,
    task_input,
    user_message,
)

TRANSCRIPTS = Path(__file__).parent / "data" / "transcripts"


def test_minimal_argv_holds_no_prompt_the_prompt_goes_to_stdin() -> None:
    options = ClaudeOptions(prompt="do it")
    argv = build_argv("claude", options)
    assert argv == ["claude", "-p", "--output-format=stream-json", "--verbose", "--input-format=stream-json"]
    assert task_input(options) == user_message("do it")


def test_every_option_is_one_argv_element_and_no_prompt_is_in_argv() -> None:
    options = ClaudeOptions(
        prompt="--help; rm -rf / $(whoami)",
        model="--evil",
        allowed_tools=["Read", "Bash(git *)"],
        disallowed_tools=["Write"],
        permission_mode="acceptEdits",
        max_turns=4,
        max_budget_usd=0.5,
        append_system_prompt_file="/state/missions/1/append-system-prompt.md",
        session_id="6d7c1a0c-5e3b-4b9e-8d35-5b8f8c0b6d11",
        mcp_config=['{"mcpServers": {}}'],
        strict_mcp_config=True,
    )
    argv = build_argv("/opt/claude", options)
    assert argv == [
        "/opt/claude",
        "-p",
        "--output-format=stream-json",
        "--verbose",
        "--input-format=stream-json",
        "--model=--evil",
        "--allowedTools=Read,Bash(git *)",
        "--disallowedTools=Write",
        "--permission-mode=acceptEdits",
        "--max-turns=4",
        "--max-budget-usd=0.5",
        "--append-system-prompt-file=/state/missions/1/append-system-prompt.md",
        "--session-id=6d7c1a0c-5e3b-4b9e-8d35-5b8f8c0b6d11",
        '--mcp-config={"mcpServers": {}}',
        "--strict-mcp-config",
    ]
    assert json.loads(task_input(options) or b"")["message"]["content"] == "--help; rm -rf / $(whoami)"


def test_resume_is_written_with_equals_so_a_dash_cannot_inject_a_flag() -> None:
    argv = build_argv("claude", ClaudeOptions(prompt="continue", resume="-x"))
    assert "--resume=-x" in argv


def test_a_session_reads_its_turns_from_its_pipe_not_from_a_prompt_file() -> None:
    options = ClaudeOptions(prompt="sent as the first turn", session=True)
    assert "--input-format=stream-json" in build_argv("claude", options)
    assert task_input(options) is None


def test_session_messages() -> None:
    message = json.loads(user_message("hello\nthere"))
    assert message == {
        "type": "user",
        "message": {"role": "user", "content": "hello\nthere"},
        "parent_tool_use_id": None,
        "session_id": "",
    }
    assert json.loads(interrupt_request("req_1")) == {
        "type": "control_request",
        "request_id": "req_1",
        "request": {"subtype": "interrupt"},
    }


def events_of(name: str) -> list:
    return [event for line in (TRANSCRIPTS / name).read_bytes().splitlines() for event in parse_line(line)]


@pytest.mark.parametrize("path", sorted(TRANSCRIPTS.glob("*.jsonl")), ids=lambda path: path.stem)
def test_every_recorded_transcript_parses_without_loss(path: Path) -> None:
    lines = path.read_bytes().splitlines()
    events = [event for line in lines for event in parse_line(line)]
    assert events
    assert not any(isinstance(event, PlainText) for event in events)
    results = [event for event in events if isinstance(event, Result)]
    assert results, "every transcript ends with a result"
    for event in events:
        to_text(event)  # renders without raising


def test_success_text() -> None:
    events = events_of("success_text.jsonl")
    init, text, result = events
    assert isinstance(init, Init) and init.session_id == "1fe64a32-f14f-4795-96e5-fb256bae4599"
    assert isinstance(text, AssistantText) and text.text.startswith("MOCK REPLY")
    assert isinstance(result, Result)
    assert (result.subtype, result.is_error, result.cost_usd, result.num_turns) == ("success", False, 0.0008, 1)
    assert result.text == text.text
    assert result.usage["input_tokens"] == 100


def test_tool_call_and_result() -> None:
    events = events_of("mcp_tool_call.jsonl")
    tool_use = next(event for event in events if isinstance(event, ToolUse))
    tool_result = next(event for event in events if isinstance(event, ToolResult))
    assert tool_use.name == "mcp__overmind__spawn"
    assert tool_use.input == {"req": {"prompt": "sub task"}, "steps": 2}
    assert tool_result.tool_use_id == tool_use.tool_use_id
    assert json.loads(tool_result.content)["agent_id"] == "a1"


def test_is_error_is_the_authority_even_with_subtype_success() -> None:
    events = events_of("no_api_key.jsonl")
    assert any(isinstance(event, ApiError) and event.error == "authentication_failed" for event in events)
    result = events[-1]
    assert isinstance(result, Result)
    assert (result.subtype, result.is_error) == ("success", True)


def test_error_results_have_errors_and_no_text() -> None:
    result = events_of("max_turns.jsonl")[-1]
    assert isinstance(result, Result)
    assert (result.subtype, result.is_error, result.text) == ("error_max_turns", True, None)
    assert result.errors
    unknown_session = events_of("resume_unknown_session.jsonl")[-1]
    assert isinstance(unknown_session, Result)
    assert unknown_session.errors == ["No conversation found with session ID: 00000000-0000-4000-8000-000000000000"]


def test_retries_and_denials() -> None:
    retries = [event for event in events_of("network_down_retries.jsonl") if isinstance(event, ApiRetry)]
    assert [retry.attempt for retry in retries] == list(range(1, 11))
    denied = events_of("permission_denied.jsonl")
    assert any(isinstance(event, PermissionDenied) and event.tool_name == "mcp__overmind__echo" for event in denied)
    result = denied[-1]
    assert isinstance(result, Result) and result.permission_denials[0]["tool_name"] == "mcp__overmind__echo"


def test_multi_turn_session_has_a_result_per_turn() -> None:
    events = events_of("multi_turn_interrupt.jsonl")
    results = [event for event in events if isinstance(event, Result)]
    assert [result.result_index for result in results] == [0, 1, 2]
    assert results[-1].terminal_reason == "aborted_streaming"
    assert sum(isinstance(event, Init) for event in events) == 3


def test_unknown_types_are_kept_and_odd_lines_never_fail() -> None:
    progress = events_of("long_tool_with_progress.jsonl")
    assert any(isinstance(event, Unknown) and event.type == "tool_progress" for event in progress)
    assert parse_line(b'{"type": "brand_new", "subtype": "x", "n": 1}') == [
        Unknown("brand_new", "x", {"type": "brand_new", "subtype": "x", "n": 1})
    ]
    assert parse_line(b"not json at all\n") == [PlainText("not json at all")]
    assert parse_line(b'{"type": "assistant", "message": ') == [PlainText('{"type": "assistant", "message": ')]
    assert parse_line(b"[1, 2]") == [PlainText("[1, 2]")]
    assert parse_line(b'{"type": "result", "is_error": "yes", "usage": 5}')[0].is_error is True
    assert isinstance(parse_line(b'{"type": "assistant", "message": {"content": "plain string"}}')[0], AssistantText)
    assert isinstance(parse_line(b'{"type": "user", "message": {"content": "plain string"}}')[0], Unknown)
    assert isinstance(parse_line(b'{"type": "assistant", "message": {"content": [5]}}')[0], Unknown)
    assert isinstance(parse_line("\xff\xfe invalid utf-8".encode("latin-1"))[0], PlainText)
