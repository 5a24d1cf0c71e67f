"""Tests of tools/fake_claude.py, run as a real subprocess and compared with transcripts of the real CLI.

The lines the fake prints are checked against `tests/data/transcripts/`, recorded from Claude Code 2.1.332:
every JSON object in a line must have the keys, in the same order, of an object at the same place in a
recorded line of the same kind (an assistant tool_use line, a result of subtype error_max_turns, ...).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

FAKE = Path(__file__).parents[1] / "tools" / "fake_claude.py"
TRANSCRIPTS = Path(__file__).parent / "data" / "transcripts"
STREAM = ("-p", "--output-format=stream-json", "--verbose")
OVERMIND_HTTP = json.dumps({"mcpServers": {"overmind": {"type": "http", "url": "http://127.0.0.1:9/mcp"}}})

Line = dict[str, Any]

if not TRANSCRIPTS.is_dir():
    pytest.skip(f"the recorded transcripts are missing: {TRANSCRIPTS}", allow_module_level=True)


# -------------------------------------------------------------------------------------------------------------
# Shapes of recorded lines

# Values whose inner keys are data (tool input, structured results), not part of the format.
DATA_KEYS = {"input", "tool_input", "structuredContent"}
# Maps from model name to usage entry: only the entries' keys are part of the format.
MODEL_MAPS = {"modelUsage", "model_usage_since_last_result"}


def objects(value: Any, path: str = "") -> Iterator[tuple[str, tuple[str, ...]]]:
    """Every JSON object in `value`, as (where it is, its keys in order)."""
    if isinstance(value, list):
        for item in value:
            yield from objects(item, f"{path}[]")
    elif isinstance(value, dict):
        if path.rsplit(".", 1)[-1] in MODEL_MAPS:
            for entry in value.values():
                yield from objects(entry, f"{path}.*")
            return
        yield path, tuple(value)
        for key, item in value.items():
            if key not in DATA_KEYS:
                yield from objects(item, f"{path}.{key}")


def kind(line: Line) -> str:
    """What a line is; objects are compared with those at the same place in lines of the same kind."""
    match line["type"]:
        case "system":
            return f"system/{line['subtype']}"
        case "stream_event":
            return f"stream_event/{line['event']['type']}"
        case "assistant":
            block_type = line["message"]["content"][0]["type"]
            return "assistant/api_error" if line.get("is_api_error_message") else f"assistant/{block_type}"
        case "user":
            block = line["message"]["content"][0]
            return "user/text" if block["type"] == "text" else f"user/tool_result/error={block.get('is_error', False)}"
        case "result":
            return f"result/{line['subtype']}"
        case other:
            return other


def load_recorded_objects() -> dict[tuple[str, str], set[tuple[str, ...]]]:
    recorded: dict[tuple[str, str], set[tuple[str, ...]]] = {}
    for path in sorted(TRANSCRIPTS.glob("*.jsonl")):
        if path.name.startswith("cli_2.1.197"):  # another version
            continue
        for text in path.read_text(encoding="utf-8").splitlines():
            line = json.loads(text)
            for where, keys in objects(line):
                recorded.setdefault((kind(line), where), set()).add(keys)
    return recorded


RECORDED = load_recorded_objects()


def assert_recorded_shapes(lines: list[Line]) -> None:
    """Every JSON object in the lines has the keys, in the order, of an object at the same place in a line of
    the same kind that the real CLI printed."""
    assert lines
    for line in lines:
        for where, keys in objects(line):
            recorded = RECORDED.get((kind(line), where))
            assert recorded is not None, f"nothing recorded at {where or 'top level'} of {kind(line)}: {line}"
            assert keys in recorded, f"{kind(line)} at {where or 'top level'}: {keys} not in {recorded}"


def test_the_recordings_are_there() -> None:
    kinds = {name for name, _ in RECORDED}
    assert {"system/init", "assistant/text", "result/success", "control_response"} <= kinds


# -------------------------------------------------------------------------------------------------------------
# Running the fake


class Child:
    """A running fake, its stdout read line by line with deadlines (never a fixed sleep)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.lines: list[Line] = []
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        assert process.stdout is not None
        self._selector.register(process.stdout.fileno(), selectors.EVENT_READ)

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: Line) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def say(self, text: str) -> None:
        self.send({"type": "user", "message": {"role": "user", "content": text}, "parent_tool_use_id": None})

    def interrupt(self, request_id: str = "req_1") -> None:
        self.send({"type": "control_request", "request_id": request_id, "request": {"subtype": "interrupt"}})

    def close_stdin(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    def next_line(self, timeout: float = 10) -> Line | None:
        """The next stdout line as JSON; None at end of output."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                raise TimeoutError(f"no line within {timeout} s; got so far: {self.lines}")
            assert self.process.stdout is not None
            data = os.read(self.process.stdout.fileno(), 1 << 16)
            if not data:
                return None
            self._buffer += data
        raw, self._buffer = self._buffer.split(b"\n", 1)
        self.lines.append(json.loads(raw))
        return self.lines[-1]

    def read_until(self, predicate: Callable[[Line], bool], timeout: float = 10) -> Line:
        while (line := self.next_line(timeout)) is not None:
            if predicate(line):
                return line
        raise AssertionError(f"output ended before the expected line; got {self.lines}")

    def finish(self, timeout: float = 10) -> int:
        """Read to the end of output and return the exit code."""
        while self.next_line(timeout) is not None:
            pass
        return self.process.wait(timeout)


class Done:
    """A finished run."""

    def __init__(self, returncode: int, stdout: bytes, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    @cached_property
    def lines(self) -> list[Line]:
        return [json.loads(raw) for raw in self.stdout.splitlines()]

    @property
    def result(self) -> Line:
        assert self.lines[-1]["type"] == "result", self.lines
        return self.lines[-1]

    def of_kind(self, name: str) -> list[Line]:
        return [line for line in self.lines if kind(line) == name]


class Fake:
    """Runs the fake with its own HOME and working directory, and kills every process group it started."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.cwd = tmp_path / "work"
        self.home.mkdir()
        self.cwd.mkdir()
        hidden = {"CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "IS_SANDBOX"}
        self.env = {name: value for name, value in os.environ.items() if name not in hidden} | {"HOME": str(self.home)}
        self.groups: list[int] = []

    def argv(self, args: tuple[str, ...]) -> list[str]:
        return [sys.executable, str(FAKE), *args]

    def run(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> Done:
        done = subprocess.run(
            self.argv(args), input=stdin.encode(), capture_output=True, cwd=self.cwd, env=env or self.env, timeout=30
        )
        return Done(done.returncode, done.stdout, done.stderr.decode())

    def stream(self, prompt: str, *args: str) -> Done:
        return self.run(*STREAM, *args, "--", prompt)

    def start(self, *args: str) -> Child:
        process = subprocess.Popen(
            self.argv(args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # unread, a pipe could fill up and block the fake
            cwd=self.cwd,
            env=self.env,
            start_new_session=True,  # its own process group, which close() kills with grandchildren
        )
        self.groups.append(process.pid)
        return Child(process)

    def session(self, *args: str) -> Child:
        return self.start(*STREAM, "--input-format=stream-json", *args)

    def close(self) -> None:
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    runner = Fake(tmp_path)
    yield runner
    runner.close()


def alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (a container's init may not reap orphans)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -------------------------------------------------------------------------------------------------------------
# The command line


def test_executable_with_shebang(fake: Fake) -> None:
    assert os.access(FAKE, os.X_OK)
    assert FAKE.read_text().startswith("#!/usr/bin/env python3\n")
    env = fake.env | {"PATH": f"{Path(sys.executable).parent}:{fake.env.get('PATH', '')}"}
    done = subprocess.run([str(FAKE), "--version"], capture_output=True, env=env, timeout=10, check=True)
    assert done.stdout == b"2.1.332 (Claude Code)\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-p", "--bogus", "x"), "error: unknown option '--bogus'"),
        (
            ("-p", "--output-format=stream-json", "x"),
            "Error: When using --print, --output-format=stream-json requires --verbose",
        ),
        ((*STREAM, "--session-id=abc", "x"), "Error: Invalid session ID. Must be a valid UUID."),
        (("-p", "--permission-mode=foo", "x"), "error: option '--permission-mode <mode>' argument 'foo' is invalid."),
        (("-p", "--model"), "error: option '--model <model>' argument missing"),
        (("-p",), "Error: Input must be provided either through stdin or as a prompt argument when using --print"),
        # A variadic option swallows the prompt, as commander does.
        (("-p", "--allowedTools", "Bash", "hello"), "Error: Input must be provided"),
    ],
)
def test_usage_errors(fake: Fake, args: tuple[str, ...], message: str) -> None:
    done = fake.run(*args)
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr.startswith(message)


@pytest.mark.skipif(os.geteuid() != 0, reason="the check applies to root only")
def test_bypass_permissions_refused_to_root_outside_a_sandbox(fake: Fake) -> None:
    for flag in ("--dangerously-skip-permissions", "--permission-mode=bypassPermissions"):
        done = fake.run("-p", flag, "x")
        assert done.returncode == 1
        assert done.stderr == (
            "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n"
        )
    sandboxed = fake.run(*STREAM, "--dangerously-skip-permissions", "x", env=fake.env | {"IS_SANDBOX": "1"})
    assert sandboxed.returncode == 0
    assert sandboxed.lines[0]["permissionMode"] == "bypassPermissions"


def test_flag_forms_are_accepted(fake: Fake) -> None:
    done = fake.run(
        *("-p", "--output-format", "stream-json", "--verbose", "--model", "claude-sonnet-9"),
        *("--append-system-prompt=x", "--system-prompt", "y", "--max-turns=3", "--max-budget-usd=5"),
        *("--add-dir", "/tmp", "--settings={}", "--bare", "--strict-mcp-config", "--no-session-persistence"),
        *("--allowed-tools=Read", "--disallowedTools=Write", "--permission-mode", "acceptEdits", "--"),
        "--looks like a flag",
    )
    assert done.returncode == 0, done.stderr
    init = done.lines[0]
    assert (init["model"], init["permissionMode"], init["additional_directories"]) == (
        "claude-sonnet-9",
        "acceptEdits",
        ["/tmp"],
    )
    assert "Write" not in init["tools"]
    assert done.result["result"] == "MOCK REPLY to: --looks like a flag"
    assert not (fake.home / ".claude").exists()  # --no-session-persistence


def test_prompt_from_stdin_and_the_other_output_formats(fake: Fake) -> None:
    assert fake.run("-p", stdin="from stdin\n").stdout == b"MOCK REPLY to: from stdin\n"
    # The CLI's wording for errors in text mode, without a newline.
    assert fake.run("-p", "--max-turns=1", "fake: turns 1").stdout == b"Error: Reached max turns (1)"
    assert fake.run("-p", "--max-budget-usd=0.0001", "hi").stdout == b"Error: Exceeded USD budget (0.0001)"
    assert fake.run("-p", "fake: fail x").stdout == b"Execution error"
    assert fake.run("-p", "fake: error API Error: 500").stdout == b"API Error: 500\n"
    done = fake.run("-p", "--output-format=json", "as json")
    [line] = done.lines
    assert line["result"] == "MOCK REPLY to: as json"
    assert "model_usage_since_last_result" not in line  # the json format leaves it out


# -------------------------------------------------------------------------------------------------------------
# One-shot runs: shapes and behaviours


def test_plain_answer(fake: Fake) -> None:
    done = fake.stream("hello there")
    assert done.returncode == 0
    assert [kind(line) for line in done.lines] == ["system/init", "assistant/text", "result/success"]
    assert_recorded_shapes(done.lines)
    init, answer, result = done.lines
    assert {line["session_id"] for line in done.lines} == {init["session_id"]}
    assert len({init["uuid"], answer["uuid"], result["uuid"]}) == 3
    assert answer["message"]["id"].startswith("msg_")
    assert result["result"] == "MOCK REPLY to: hello there"
    assert (result["is_error"], result["num_turns"], result["result_index"], result["total_cost_usd"]) == (
        False,
        1,
        0,
        0.0008,  # as recorded
    )
    assert result["modelUsage"]["claude-opus-5-5"]["costUSD"] == 0.0008


def test_tools_share_the_request_of_the_text_before_them(fake: Fake) -> None:
    prompt = """\
        Look around.
        fake: say Looking.
        fake: tool Bash {"command": "echo hi there", "description": "greet"}
        fake: tool Read {"file_path": "/etc/hostname"}
        fake: answer Bash said {last}"""
    done = fake.stream(textwrap.dedent(prompt))
    assert_recorded_shapes(done.lines)
    say, bash, bash_result, read, read_result, answer = done.lines[1:-1]
    assert say["message"]["id"] == bash["message"]["id"] != read["message"]["id"] != answer["message"]["id"]
    assert bash["message"]["content"][0]["input"] == {"command": "echo hi there", "description": "greet"}
    assert bash_result["message"]["content"][0]["content"] == "hi there"
    assert bash_result["tool_use_result"]["stdout"] == "hi there"
    assert read_result["message"]["content"][0]["tool_use_id"] == read["message"]["content"][0]["id"]
    assert answer["message"]["content"][0]["text"] == f"Bash said {read_result['message']['content'][0]['content']}"
    assert (done.result["num_turns"], done.result["total_cost_usd"]) == (3, pytest.approx(0.0024))


def test_max_turns(fake: Fake) -> None:
    done = fake.stream("fake: turns 5", "--max-turns=2")
    assert done.returncode == 1
    assert_recorded_shapes(done.lines)
    assert [kind(line) for line in done.lines[1:-1]] == ["assistant/tool_use", "user/tool_result/error=False"] * 2
    result = done.result
    assert (result["subtype"], result["is_error"], result["num_turns"], result["terminal_reason"]) == (
        "error_max_turns",
        True,
        3,
        "max_turns",
    )
    assert result["errors"] == ["Reached maximum number of turns (2)"]
    assert "result" not in result


def test_turns_within_the_limit(fake: Fake) -> None:
    done = fake.stream("fake: turns 3", "--max-turns=4")
    assert (done.returncode, done.result["num_turns"]) == (0, 4)
    assert [line["message"]["content"][0]["content"] for line in done.of_kind("user/tool_result/error=False")] == [
        "turn 1",
        "turn 2",
        "turn 3",
    ]


@pytest.mark.parametrize("allowed", ["mcp__overmind", "mcp__overmind__*", "mcp__overmind__echo", "Bash mcp__overmind"])
def test_allowed_mcp_tool(fake: Fake, allowed: str) -> None:
    prompt = 'fake: tool mcp__overmind__echo {"text": "x"}'
    done = fake.stream(prompt, f"--mcp-config={OVERMIND_HTTP}", f"--allowedTools={allowed}")
    assert_recorded_shapes(done.lines)
    assert done.result["permission_denials"] == []
    tool_use = done.of_kind("assistant/tool_use")[0]
    assert tool_use["tool_use_meta"][0]["tool_name"] == "echo"


def test_mcp_tool_not_allowed_is_denied(fake: Fake) -> None:
    prompt = 'fake: tool mcp__overmind__echo {"text": "x"}'
    done = fake.stream(prompt, f"--mcp-config={OVERMIND_HTTP}", "--allowedTools=mcp__other,Bash(git *)")
    assert done.returncode == 0
    assert_recorded_shapes(done.lines)
    [denied] = done.of_kind("system/permission_denied")
    tool_use_id = done.of_kind("assistant/tool_use")[0]["message"]["content"][0]["id"]
    assert denied["tool_use_id"] == tool_use_id
    assert done.result["permission_denials"] == [
        {"tool_name": "mcp__overmind__echo", "tool_use_id": tool_use_id, "tool_input": {"text": "x"}}
    ]


def test_disallowed_and_unknown_tools_do_not_exist(fake: Fake) -> None:
    prompt = 'fake: tool Bash {"command": "ls"}\nfake: tool Frobnicate {}'
    done = fake.stream(prompt, "--disallowedTools=Bash")
    assert_recorded_shapes(done.lines)
    assert "Bash" not in done.lines[0]["tools"]
    errors = [line["message"]["content"][0]["content"] for line in done.of_kind("user/tool_result/error=True")]
    assert errors == [
        "<tool_use_error>Error: No such tool available: Bash. "
        "Bash is disabled for this session, in subagents as well as here.</tool_use_error>",
        "<tool_use_error>Error: No such tool available: Frobnicate</tool_use_error>",
    ]
    assert done.result["permission_denials"] == []


def test_budget(fake: Fake) -> None:
    done = fake.stream("fake: cost 0.25", "--max-budget-usd=0.1")
    assert done.returncode == 1
    assert_recorded_shapes(done.lines)
    assert (done.result["subtype"], done.result["errors"]) == (
        "error_max_budget_usd",
        ["Reached maximum budget ($0.1)"],
    )
    assert done.result["total_cost_usd"] == 0.25


def test_partial_messages(fake: Fake) -> None:
    done = fake.stream('fake: tool Bash {"command": "echo a"}\nfake: answer done', "--include-partial-messages")
    assert_recorded_shapes(done.lines)
    events = [line["event"]["type"] for line in done.lines if line["type"] == "stream_event"]
    request = ["message_start", "content_block_start", "content_block_delta", "content_block_stop"]
    assert events == [*request, "message_delta", "message_stop"] * 2
    assert len(done.of_kind("system/status")) == 2


def test_api_errors(fake: Fake) -> None:
    done = fake.stream("fake: api_retry 3\nfake: error API Error: Connection refused")
    assert done.returncode == 1
    assert_recorded_shapes(done.lines)
    assert [line["attempt"] for line in done.of_kind("system/api_retry")] == [1, 2, 3]
    result = done.result
    assert (result["subtype"], result["is_error"], result["terminal_reason"]) == ("success", True, "api_error")
    assert result["result"] == "API Error: Connection refused"


def test_fail_and_bad_scripts_are_error_results(fake: Fake) -> None:
    failed = fake.stream("fake: fail it broke")
    assert_recorded_shapes(failed.lines)
    assert (failed.returncode, failed.result["errors"]) == (1, ["it broke"])
    assert "result" not in failed.result
    for script, problem in [("fake: frobnicate", "unknown directive 'frobnicate'"), ("fake: sleep soon", "sleep")]:
        bad = fake.stream(f"fake: say never printed\n{script}")
        assert bad.returncode == 1
        assert [kind(line) for line in bad.lines] == ["system/init", "result/error_during_execution"]
        assert problem in bad.result["errors"][0]
        assert "Traceback" not in bad.stderr


def test_crash_stderr_env_and_malformed_output(fake: Fake) -> None:
    fake.env |= {"OVERMIND_MISSION_ID": "m-42"}
    prompt = "fake: stderr oops\nfake: env OVERMIND_MISSION_ID\nfake: env CLAUDECODE\nfake: malformed\nfake: say x"
    done = fake.run(*STREAM, prompt)
    assert (done.returncode, done.stderr) == (0, "oops\n")
    raw = done.stdout.decode().splitlines()
    assert raw[1:4] == ["this is not json", "Warning: [fake_claude] a stray log line", raw[3]]
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw[3])
    result = json.loads(raw[-1])
    assert result["result"] == "Done.\nOVERMIND_MISSION_ID=m-42\nCLAUDECODE=<unset>"

    crashed = fake.stream("fake: say about to crash\nfake: exit 7")
    assert crashed.returncode == 7
    assert [kind(line) for line in crashed.lines] == ["system/init", "assistant/text"]


def test_flood(fake: Fake) -> None:
    started = time.monotonic()
    done = fake.stream("fake: flood 20")
    elapsed = time.monotonic() - started
    flood = done.lines[1:-1]
    assert sum(len(raw) + 1 for raw in done.stdout.splitlines()[1:-1]) >= 20_000_000
    assert 900 < len(done.stdout.splitlines()[1]) < 1200
    assert len({line["uuid"] for line in flood}) == len({line["message"]["id"] for line in flood}) == len(flood)
    assert_recorded_shapes([flood[0], flood[-1], done.result])
    print(f"flood: 20 MB in {elapsed:.2f} s")
    assert elapsed < 10


def test_write_exit_time(fake: Fake, tmp_path: Path) -> None:
    path = tmp_path / "exit_ns"
    before = time.time_ns()
    done = fake.stream(f"fake: write_exit_time {path}\nfake: exit 3")
    after = time.time_ns()
    assert done.returncode == 3
    assert before < int(path.read_text()) < after


# -------------------------------------------------------------------------------------------------------------
# Signals


def test_sigint_mid_turn_prints_an_aborted_result_and_exits_0(fake: Fake) -> None:
    child = fake.start(*STREAM, "fake: say thinking\nfake: sleep 30")
    child.read_until(lambda line: kind(line) == "assistant/text")
    started = time.monotonic()
    os.kill(child.pid, signal.SIGINT)
    assert child.finish() == 0
    assert time.monotonic() - started < 2
    assert_recorded_shapes(child.lines)
    interrupted, result = child.lines[-2:]
    assert interrupted["message"]["content"] == [{"type": "text", "text": "[Request interrupted by user]"}]
    assert (result["subtype"], result["is_error"], result["terminal_reason"]) == (
        "error_during_execution",
        True,
        "aborted_streaming",
    )


def test_sigterm_exits_143_without_a_result(fake: Fake) -> None:
    child = fake.start(*STREAM, "fake: hang")
    child.read_until(lambda line: kind(line) == "system/init")
    os.kill(child.pid, signal.SIGTERM)
    assert child.finish() == 143
    assert [kind(line) for line in child.lines] == ["system/init"]


def test_ignored_signals_leave_sigkill(fake: Fake) -> None:
    child = fake.start(*STREAM, "fake: ignore SIGTERM\nfake: ignore SIGINT\nfake: say ready\nfake: hang")
    child.read_until(lambda line: kind(line) == "assistant/text")
    os.kill(child.pid, signal.SIGTERM)
    os.kill(child.pid, signal.SIGINT)
    with pytest.raises(subprocess.TimeoutExpired):  # a bounded wait for something that must not happen
        child.process.wait(0.3)
    os.kill(child.pid, signal.SIGKILL)
    assert child.finish() == -signal.SIGKILL
    assert [kind(line) for line in child.lines] == ["system/init", "assistant/text"]


def test_grandchild_survives_the_fake_until_its_group_is_killed(fake: Fake) -> None:
    child = fake.start(*STREAM, "fake: grandchild")
    said = child.read_until(lambda line: kind(line) == "assistant/text")["message"]["content"][0]["text"]
    grandchild = int(said.removeprefix("grandchild pid "))
    assert child.finish() == 0
    assert os.getpgid(grandchild) == child.pid  # same process group as the fake
    os.killpg(child.pid, signal.SIGTERM)
    os.killpg(child.pid, signal.SIGINT)
    time.sleep(0.2)  # time for the signals to (not) act
    assert alive(grandchild)
    os.killpg(child.pid, signal.SIGKILL)
    wait_for(lambda: not alive(grandchild))


# -------------------------------------------------------------------------------------------------------------
# Sessions


def test_resume_fork_and_persistence(fake: Fake) -> None:
    session_id = str(uuid.uuid4())
    first = fake.stream("one", f"--session-id={session_id}")
    assert first.result["session_id"] == session_id
    slug = re.sub(r"[^A-Za-z0-9]", "-", str(fake.cwd))  # the real CLI's folder name for a working directory
    assert (fake.home / ".claude" / "projects" / slug / f"{session_id}.jsonl").is_file()

    again = fake.stream("fake: cost 0.5", f"--resume={session_id}")
    assert {line["session_id"] for line in again.lines} == {session_id}
    assert again.result["total_cost_usd"] == 0.5008
    assert again.result["modelUsage"]["claude-opus-5-5"]["costUSD"] == 0.5008
    assert again.result["model_usage_since_last_result"]["claude-opus-5-5"]["costUSD"] == 0.5

    forked = fake.run(*STREAM, "-r", session_id, "--fork-session", "three")
    assert forked.result["session_id"] != session_id
    assert forked.result["total_cost_usd"] == 0.5016

    reused = fake.stream("four", f"--session-id={session_id}")
    assert (reused.returncode, reused.stderr) == (1, f"Error: Session ID {session_id} is already in use.\n")


def test_resume_unknown_session(fake: Fake) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    done = fake.stream("hi", f"--resume={unknown}")
    assert (done.returncode, done.stderr) == (1, f"No conversation found with session ID: {unknown}\n")
    assert_recorded_shapes(done.lines)
    recorded = json.loads((TRANSCRIPTS / "resume_unknown_session.jsonl").read_text())
    [result] = done.lines
    assert result | {"uuid": recorded["uuid"]} == recorded


def test_session_turns_interrupt_and_queue(fake: Fake) -> None:
    child = fake.session()
    child.say("hello")
    first = child.read_until(lambda line: line["type"] == "result")
    child.say("fake: sleep 30")
    child.read_until(lambda line: kind(line) == "system/init")
    # Sent while a turn runs: answered together, in one turn, after it.
    child.say("queued a")
    child.send({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": "queued b"}]}})
    child.interrupt("req_7")
    response = child.next_line()
    assert response == {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": "req_7", "response": {"still_queued": []}},
    }
    aborted = child.read_until(lambda line: line["type"] == "result")
    queued = child.read_until(lambda line: line["type"] == "result")
    child.close_stdin()
    assert child.finish() == 0
    assert_recorded_shapes(child.lines)
    assert [kind(line) for line in child.lines].count("system/init") == 3
    assert {line["session_id"] for line in child.lines if "session_id" in line} == {first["session_id"]}
    assert [result["result_index"] for result in (first, aborted, queued)] == [0, 1, 2]
    assert (aborted["terminal_reason"], aborted["is_error"]) == ("aborted_streaming", True)
    assert queued["result"] == "MOCK REPLY to: queued a\nqueued b"
    # Cumulative, as recorded: an aborted request costs its input and one output token.
    costs = [result["total_cost_usd"] for result in (first, aborted, queued)]
    assert costs == pytest.approx([0.0008, 0.00122, 0.00202])


def test_session_idle_interrupt_and_exit_codes(fake: Fake) -> None:
    child = fake.session()
    child.interrupt()
    assert child.next_line() == {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": "req_1", "response": {"still_queued": []}},
    }
    child.say("fake: fail no")
    child.read_until(lambda line: line["type"] == "result")
    child.close_stdin()
    assert child.finish() == 1  # the last result was an error

    idle = fake.session()
    idle.say("hi")
    idle.read_until(lambda line: line["type"] == "result")
    os.kill(idle.pid, signal.SIGINT)
    assert idle.finish() == 0
    assert idle.lines[-1]["type"] == "result"

    empty = fake.session()
    empty.close_stdin()
    assert empty.finish() == 0
    bad = fake.run(*STREAM, "--input-format=stream-json", stdin="not json\n")
    assert (bad.returncode, bad.stderr) == (
        1,
        "Error parsing streaming input line (type=unknown, 8 chars): SyntaxError\n",
    )


# -------------------------------------------------------------------------------------------------------------
# MCP


MCP_SERVER = """\
import os, sys
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("overmind-test", version="1.2.3")

@server.tool()
def echo(text: str) -> dict[str, str]:
    return {"echo": text, "claudecode": os.environ.get("CLAUDECODE", "")}

@server.tool()
def header(ctx: Context) -> str:
    return ctx.headers.get("x-token", "") if ctx.headers else ""

@server.tool()
async def slow(seconds: float) -> str:
    import anyio
    await anyio.sleep(seconds)
    return "slept"

if sys.argv[1:2] == ["http"]:
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
else:
    server.run()
"""


@pytest.fixture
def mcp_server(tmp_path: Path) -> Path:
    pytest.importorskip("mcp")
    path = tmp_path / "server.py"
    path.write_text(MCP_SERVER)
    return path


def stdio_config(server: Path) -> str:
    return json.dumps({"mcpServers": {"overmind": {"type": "stdio", "command": sys.executable, "args": [str(server)]}}})


def test_mcp_over_stdio(fake: Fake, mcp_server: Path) -> None:
    prompt = 'fake: mcp echo {"text": "hi"}\nfake: answer child says {last}'
    done = fake.stream(prompt, f"--mcp-config={stdio_config(mcp_server)}", "--allowedTools=mcp__overmind")
    assert done.returncode == 0, done.stderr
    assert_recorded_shapes(done.lines)
    tool_use, tool_result = done.lines[1:3]
    assert tool_use["message"]["content"][0]["name"] == "mcp__overmind__echo"
    assert tool_use["tool_use_meta"][0]["server_display_name"] == "overmind-test"
    text = '{"echo":"hi","claudecode":"1"}'  # compact structuredContent; the server got CLAUDECODE=1
    assert tool_result["message"]["content"][0]["content"] == text
    assert tool_result["tool_use_result"]["_meta"]["io.modelcontextprotocol/serverInfo"] == {
        "name": "overmind-test",
        "version": "1.2.3",
    }
    assert done.result["result"] == f"child says {text}"


def test_mcp_over_http_with_headers(fake: Fake, mcp_server: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(mcp_server), "http", str(port)], stderr=subprocess.DEVNULL, start_new_session=True
    )
    fake.groups.append(server.pid)
    wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, timeout=15)
    server_config = {"type": "http", "url": f"http://127.0.0.1:{port}/mcp", "headers": {"X-Token": "sekrit"}}
    config = json.dumps({"mcpServers": {"overmind": server_config}})
    done = fake.stream("fake: mcp header {}", f"--mcp-config={config}", "--allowedTools=mcp__overmind__header")
    assert done.returncode == 0, done.stderr
    assert done.lines[2]["message"]["content"][0]["content"] == '{"result":"sekrit"}'


def test_mcp_call_interrupted(fake: Fake, mcp_server: Path) -> None:
    child = fake.session(f"--mcp-config={stdio_config(mcp_server)}", "--allowedTools=mcp__overmind")
    child.say('fake: mcp slow {"seconds": 60}')
    child.read_until(lambda line: kind(line) == "assistant/tool_use")  # connected; the call is under way
    child.interrupt()
    aborted = child.read_until(lambda line: line["type"] == "result")
    assert (aborted["terminal_reason"], aborted["is_error"]) == ("aborted_tools", True)
    child.say('fake: mcp echo {"text": "still here"}')
    echoed = child.read_until(lambda line: kind(line) == "user/tool_result/error=False")
    assert json.loads(echoed["message"]["content"][0]["content"])["echo"] == "still here"
    assert child.read_until(lambda line: line["type"] == "result")["is_error"] is False
    child.close_stdin()
    assert child.finish() == 0


def test_mcp_denied_or_unreachable(fake: Fake, tmp_path: Path) -> None:
    config_file = tmp_path / "mcp.json"  # --mcp-config also takes files, several at once
    config_file.write_text(OVERMIND_HTTP)
    empty_file = tmp_path / "none.json"
    empty_file.write_text('{"mcpServers": {}}')
    denied = fake.stream("fake: mcp spawn {}", "--mcp-config", str(empty_file), str(config_file))
    assert_recorded_shapes(denied.lines)
    assert denied.lines[0]["mcp_servers"] == [{"name": "overmind", "status": "connected", "source": "dynamic"}]
    assert denied.result["permission_denials"][0]["tool_name"] == "mcp__overmind__spawn"
    pytest.importorskip("mcp")
    unreachable = fake.stream("fake: mcp spawn {}", f"--mcp-config={OVERMIND_HTTP}", "--allowedTools=mcp__overmind")
    error = unreachable.of_kind("user/tool_result/error=True")[0]["message"]["content"][0]["content"]
    assert error.startswith("MCP server 'overmind' failed: ConnectError")


# -------------------------------------------------------------------------------------------------------------
# Speed


def test_startup_time(fake: Fake, record_property: Callable[[str, object], None]) -> None:
    """Measured, not tightly asserted: the target is under 40 ms from exec to the result line."""
    timings = []
    for _ in range(10):
        started = time.perf_counter()
        child = fake.start(*STREAM, "hi")
        child.read_until(lambda line: line["type"] == "result")
        timings.append(time.perf_counter() - started)
        child.finish()
    median_ms = statistics.median(timings) * 1000
    record_property("fake_claude_result_ms", round(median_ms, 1))
    print(f"fake_claude: median {median_ms:.1f} ms from exec to the result line")
    assert median_ms < 1000
