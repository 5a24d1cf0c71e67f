"""The harness proves itself: the real Claude Code CLI against ``tests.mockapi``.

The first half drives the pinned ``claude`` binary through every kind of scripted step; the second
checks the mock on its own (HTTP surface, shutdown) with a plain HTTP client.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import RunClaude, StartClaude
from tests.mockapi import ApiError, Loop, MockAnthropicAPI, Stall, Text, ToolUse

# --------------------------------------------------------------------------------------------------
# The real CLI


def test_plain_text_answer(mock_api: MockAnthropicAPI, run_claude: RunClaude) -> None:
    mock_api.on("SAY-HELLO", steps=[Text("Hello from the mock")])

    run = run_claude("--", "SAY-HELLO please")

    assert run.returncode == 0, run.describe()
    assert run.messages[0]["type"] == "system" and run.messages[0]["subtype"] == "init"
    result = run.result
    assert result["subtype"] == "success" and result["is_error"] is False
    assert result["result"] == "Hello from the mock"
    assert result["total_cost_usd"] > 0
    [request] = mock_api.requests
    assert request.is_messages and request.stream and request.query == "beta=true"
    assert request.prompt == request.turn_prompt == "SAY-HELLO please"
    assert request.rule == "SAY-HELLO" and request.step == 0
    assert "Bash" in request.tool_names and request.system
    assert request.headers["x-api-key"] == "sk-ant-api03-mock"


def test_prompt_after_double_dash_is_literal(mock_api: MockAnthropicAPI, run_claude: RunClaude) -> None:
    run = run_claude("--", "--version is not a flag here")

    assert run.result["result"] == "MOCK REPLY to: --version is not a flag here"
    assert mock_api.requests[0].rule == "default"


def test_bash_tool_use_then_text(mock_api: MockAnthropicAPI, run_claude: RunClaude) -> None:
    mock_api.on(
        "RUN-BASH",
        steps=[
            ToolUse("Bash", {"command": "echo bash-says-$((6*7))", "description": "compute"}, text="Let me run it."),
            Text(lambda req: f"the tool said {req.last_tool_result}"),
        ],
    )

    run = run_claude("--allowedTools=Bash", "--", "RUN-BASH")

    assert run.returncode == 0, run.describe()
    assert run.result["result"] == "the tool said bash-says-42"
    assert run.result["num_turns"] == 2
    [tool_use] = [b for m in run.of_type("assistant") for b in m["message"]["content"] if b["type"] == "tool_use"]
    assert tool_use["name"] == "Bash" and tool_use["id"].startswith("toolu_")
    first, second = mock_api.requests
    assert (first.step, second.step) == (0, 1)
    assert (first.last_tool_result, second.last_tool_result) == (None, "bash-says-42")


def test_max_turns_with_a_looping_tool(mock_api: MockAnthropicAPI, run_claude: RunClaude) -> None:
    mock_api.on("LOOP", steps=[Loop(ToolUse("Bash", {"command": "echo again", "description": "loop"}))])

    run = run_claude("--allowedTools=Bash", "--max-turns=2", "--", "LOOP forever")

    assert run.returncode == 1, run.describe()
    result = run.result
    assert result["subtype"] == "error_max_turns" and result["is_error"] is True
    assert "result" not in result
    assert [r.step for r in mock_api.requests] == [0, 1]


@pytest.mark.parametrize(
    ("error", "env", "requests", "retries"),
    [
        pytest.param(ApiError(500, "api_error", "boom"), {"CLAUDE_CODE_MAX_RETRIES": "1"}, 2, 1, id="retries-capped"),
        pytest.param(ApiError(500, "api_error", "boom", should_retry=False), {}, 1, 0, id="x-should-retry-false"),
        pytest.param(ApiError(429, "rate_limit_error", "slow down"), {"CLAUDE_CODE_MAX_RETRIES": "0"}, 1, 0, id="429"),
    ],
)
def test_api_error_after_retries(
    mock_api: MockAnthropicAPI,
    run_claude: RunClaude,
    error: ApiError,
    env: dict[str, str],
    requests: int,
    retries: int,
) -> None:
    mock_api.default(error)

    started = time.monotonic()
    run = run_claude("--", "FAIL", env=env)

    assert run.returncode == 1, run.describe()
    assert time.monotonic() - started < 10
    result = run.result
    assert result["is_error"] is True and result["terminal_reason"] == "api_error"
    # The wording differs per status ("API Error: 500 boom…", "API Error: Request rejected (429) · slow down").
    assert result["result"].startswith("API Error:")
    assert str(error.status) in result["result"] and error.message in result["result"]
    assert [m["error_status"] for m in run.of_type("system", "api_retry")] == [error.status] * retries
    assert len(mock_api.requests) == requests


def test_api_error_recovered_by_a_retry(mock_api: MockAnthropicAPI, run_claude: RunClaude) -> None:
    mock_api.on("FLAKY", steps=[ApiError(529, "overloaded_error", "busy", times=1, then=Text("recovered"))])

    run = run_claude("--", "FLAKY")

    assert run.returncode == 0, run.describe()
    assert run.result["result"] == "recovered" and run.result["is_error"] is False
    [retry] = run.of_type("system", "api_retry")
    assert retry["attempt"] == 1 and retry["error_status"] == 529
    assert len(mock_api.requests) == 2


def test_stalled_stream_then_sigint(mock_api: MockAnthropicAPI, start_claude: StartClaude) -> None:
    mock_api.on("STALL", steps=[Stall()])
    claude = start_claude("--", "STALL forever")
    mock_api.wait_for(prompt_contains="STALL")

    # The supervisor's wall-clock limit: the CLI itself would wait on a pinging stream forever.
    with pytest.raises(subprocess.TimeoutExpired):
        claude.wait(timeout=1.0)
    sent = time.monotonic()
    claude.send_signal(signal.SIGINT)
    returncode = claude.wait(timeout=5)

    assert time.monotonic() - sent < 2
    assert returncode == 0, claude.describe()
    result = claude.result
    assert result["subtype"] == "error_during_execution" and result["is_error"] is True
    assert result["terminal_reason"] == "aborted_streaming"


def test_stream_json_session_with_two_turns(mock_api: MockAnthropicAPI, start_claude: StartClaude) -> None:
    mock_api.on(
        "FIRST",
        steps=[
            ToolUse("Bash", {"command": "echo one", "description": "first"}),
            Text(lambda req: f"first turn saw {req.last_tool_result}"),
        ],
    )
    # Steps count from the start of the current turn, so this rule starts at step 0 in turn two.
    mock_api.on("SECOND", steps=[Text(lambda req: f"second turn after {req.assistant_turns} assistant messages")])
    claude = start_claude("--input-format=stream-json", "--allowedTools=Bash", stdin=True)

    claude.send_user("FIRST turn")
    first = claude.wait_for_result(0)
    claude.send_user("SECOND turn")
    claude.close_stdin()
    returncode = claude.wait()

    assert returncode == 0, claude.describe()
    second = claude.result
    assert [r["result_index"] for r in claude.results] == [0, 1]
    assert first["result"] == "first turn saw one"
    assert second["result"] == "second turn after 2 assistant messages"
    assert second["session_id"] == first["session_id"]
    assert second["total_cost_usd"] > first["total_cost_usd"]  # cumulative over the session
    assert [(r.rule, r.step) for r in mock_api.requests] == [("FIRST", 0), ("FIRST", 1), ("SECOND", 0)]
    assert mock_api.requests[-1].prompt == "FIRST turn"


def test_concurrent_processes_share_one_script(mock_api: MockAnthropicAPI, run_claude: RunClaude) -> None:
    mock_api.on(
        "WORKER",
        steps=[
            ToolUse("Bash", lambda req: {"command": f"echo {req.turn_prompt}-ok", "description": "work"}),
            Text(lambda req: req.last_tool_result or ""),
        ],
    )

    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = list(pool.map(lambda n: run_claude("--allowedTools=Bash", "--", f"WORKER-{n}"), range(3)))

    assert [run.result["result"] for run in runs] == ["WORKER-0-ok", "WORKER-1-ok", "WORKER-2-ok"]
    assert len(mock_api.requests) == 6


# --------------------------------------------------------------------------------------------------
# The mock on its own


def _post(api: MockAnthropicAPI, path: str, body: object) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    try:
        conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _user(text: str) -> dict[str, object]:
    return {
        "role": "user",
        "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"}, {"type": "text", "text": text}],
    }


def test_non_streaming_count_tokens_and_unknown_paths(mock_api: MockAnthropicAPI) -> None:
    mock_api.on("TITLE", steps=[ToolUse("Bash", {"command": "true"}, text="thinking")])

    status, message = _post(mock_api, "/v1/messages", {"model": "m", "messages": [_user("TITLE me")]})
    assert status == 200
    assert message["id"].startswith("msg_") and message["stop_reason"] == "tool_use"
    assert [b["type"] for b in message["content"]] == ["text", "tool_use"]

    status, counted = _post(mock_api, "/v1/messages/count_tokens", {"model": "m", "messages": []})
    assert status == 200 and counted["input_tokens"] > 0

    status, error = _post(mock_api, "/v1/nothing", {})
    assert status == 404 and error["type"] == "error" and error["error"]["type"] == "not_found_error"
    assert [r.path for r in mock_api.requests] == ["/v1/messages", "/v1/messages/count_tokens", "/v1/nothing"]


def test_failing_callable_is_reported_not_hung() -> None:
    with MockAnthropicAPI() as api:
        api.default(Text(lambda req: str(1 / 0)))
        status, error = _post(api, "/v1/messages", {"messages": [_user("x")]})
    assert status == 400 and "ZeroDivisionError" in error["error"]["message"]
    assert [type(e) for e in api.errors] == [ZeroDivisionError]


def test_wait_for_times_out_with_what_it_saw(mock_api: MockAnthropicAPI) -> None:
    _post(mock_api, "/v1/messages", {"messages": [_user("something else")]})
    with pytest.raises(TimeoutError, match="something else"):
        mock_api.wait_for(prompt_contains="never sent", timeout=0.1)


def test_stop_cuts_stalled_streams_and_joins_threads() -> None:
    before = set(threading.enumerate())
    api = MockAnthropicAPI(ping_interval=0.05).start()
    api.default(Stall())
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    conn.request("POST", "/v1/messages", json.dumps({"stream": True, "messages": [_user("hang")]}))
    response = conn.getresponse()
    assert response.getheader("content-type", "").startswith("text/event-stream")
    assert response.readline() == b"event: message_start\n"
    idle = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)  # a kept-alive, idle connection
    idle.request("POST", "/v1/messages/count_tokens", "{}")
    idle.getresponse().read()

    started = time.monotonic()
    api.stop()

    assert time.monotonic() - started < 1
    assert set(threading.enumerate()) <= before
    assert b"message_stop" not in response.read()  # the stream was cut, promptly (else: socket timeout)
    conn.close()
    idle.close()
