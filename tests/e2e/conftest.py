"""Fixtures for end-to-end tests: the real, pinned Claude Code CLI against ``tests.mockapi``.

Every test gets its own mock API, its own ``HOME`` and working directory, and an environment
scrubbed of the outside world's Claude/Anthropic settings. Processes started through
``start_claude``/``run_claude`` run in their own session and are killed (process group) at teardown.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.mockapi import MockAnthropicAPI
from tools.install_claude_cli import InstallError, ensure_claude_cli

JSON = dict[str, Any]

#: Prepended to the arguments of every process started by the fixtures below.
STREAM_JSON_ARGS = ("-p", "--output-format=stream-json", "--verbose")

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items, not just this directory's.
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.e2e)


# --------------------------------------------------------------------------------------------------
# A running CLI


class ClaudeProcess:
    """A ``claude -p --output-format stream-json`` process whose stdout is parsed as it arrives.

    Background threads drain stdout and stderr, so the process never blocks on a full pipe and every
    wait below can time out instead of hanging a test.
    """

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, stdin: bool) -> None:
        self.argv = list(argv)
        self._cond = threading.Condition()
        self._messages: list[JSON] = []
        self._unparsed: list[str] = []
        self._stderr: list[str] = []
        self._stdout_closed = False
        self.proc = subprocess.Popen(
            self.argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            start_new_session=True,  # own process group: teardown can kill the CLI and all it started
        )
        self._readers = [
            threading.Thread(target=self._read_stdout, name=f"claude-{self.pid}-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name=f"claude-{self.pid}-stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    @property
    def messages(self) -> list[JSON]:
        """The stream-json messages printed so far."""
        with self._cond:
            return list(self._messages)

    @property
    def unparsed(self) -> list[str]:
        """Non-empty stdout lines that were not JSON (there should be none)."""
        with self._cond:
            return list(self._unparsed)

    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(self._stderr)

    def of_type(self, type_: str, subtype: str | None = None) -> list[JSON]:
        return [m for m in self.messages if m.get("type") == type_ and (subtype is None or m.get("subtype") == subtype)]

    @property
    def results(self) -> list[JSON]:
        return self.of_type("result")

    @property
    def result(self) -> JSON:
        """The last ``result`` message; fails the test if there is none."""
        results = self.results
        if not results:
            pytest.fail(f"claude printed no result line\n{self.describe()}", pytrace=False)
        return results[-1]

    # -- talking to it -----------------------------------------------------------------------------

    def send(self, message: JSON) -> None:
        """Write one stream-json line to stdin (needs ``stdin=True``)."""
        if self.proc.stdin is None:
            raise RuntimeError("started without stdin=True")
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def send_user(self, text: str) -> None:
        """Start a new turn of an ``--input-format=stream-json`` session."""
        self.send(
            {
                "type": "user",
                "message": {"role": "user", "content": text},
                "parent_tool_use_id": None,
                "session_id": "",
            }
        )

    def close_stdin(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the CLI itself (not its group), as a supervisor stopping it gently would."""
        self.proc.send_signal(sig)

    # -- waiting -----------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[JSON], bool], *, timeout: float = 30.0) -> JSON:
        """The first message (already printed or still to come) satisfying ``predicate``."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for message in self._messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self._messages)
                if self._stdout_closed:
                    raise EOFError(f"claude ended its output without the awaited message\n{self.describe()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no awaited message within {timeout} s\n{self.describe()}")
                self._cond.wait(remaining)

    def wait_for_result(self, index: int = 0, *, timeout: float = 30.0) -> JSON:
        """The ``index``-th result line (one per turn in a session)."""
        count = 0

        def nth_result(message: JSON) -> bool:
            nonlocal count
            if message.get("type") != "result":
                return False
            count += 1
            return count > index

        return self.wait_for(nth_result, timeout=timeout)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for exit (``subprocess.TimeoutExpired`` after ``timeout``) and for the last output."""
        returncode = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            # Bounded: a grandchild that inherited the pipes could keep them open after the CLI exits.
            reader.join(timeout=5)
        return returncode

    def kill(self) -> None:
        """Kill the process group (the CLI and anything it started), reap the CLI and close the pipes."""
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with suppress(OSError):  # stdin may hold unflushed data for a dead reader
                    pipe.close()

    def describe(self) -> str:
        lines = [json.dumps(m)[:400] for m in self.messages]
        return (
            f"argv: {self.argv[1:]}\nexit code: {self.returncode}\nstdout:\n  "
            + "\n  ".join(lines + self.unparsed)
            + f"\nstderr:\n{self.stderr}"
        )

    # -- pipe readers ------------------------------------------------------------------------------

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not (line := line.strip()):
                continue
            with self._cond:
                try:
                    self._messages.append(json.loads(line))
                except ValueError:
                    self._unparsed.append(line)
                self._cond.notify_all()
        with self._cond:
            self._stdout_closed = True
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self._stderr.append(line)


class StartClaude(Protocol):
    def __call__(self, *args: str, stdin: bool = False, env: Mapping[str, str] | None = None) -> ClaudeProcess: ...


class RunClaude(Protocol):
    def __call__(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 30.0) -> ClaudeProcess: ...


# --------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """The pinned CLI in ``.cache/claude-code/``, installed with npm on first use."""
    try:
        return ensure_claude_cli()
    except InstallError as exc:
        reason = f"the pinned Claude Code CLI is unavailable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def mock_api() -> Iterator[MockAnthropicAPI]:
    with MockAnthropicAPI() as api:
        yield api
    if api.errors:
        raise ExceptionGroup("the mock API failed while answering", api.errors)


def _inherited_setting(name: str) -> bool:
    """Outside variables that would change how the CLI behaves or where it connects."""
    upper = name.upper()
    return (
        upper.startswith(("ANTHROPIC_", "CLAUDE", "XDG_"))  # CLAUDECODE, CLAUDE_CODE_*, CLAUDE_CONFIG_DIR, …
        or upper.endswith("_PROXY")  # a proxy could swallow the requests meant for 127.0.0.1
        or upper == "IS_SANDBOX"  # set in some containers; it lifts the root check on bypassPermissions
    )


@pytest.fixture
def claude_env(tmp_path: Path, mock_api: MockAnthropicAPI) -> dict[str, str]:
    """An environment that runs the real CLI isolated and offline, against ``mock_api``.

    ``IS_SANDBOX`` is not set: as root, ``--permission-mode bypassPermissions`` needs it, so a test that
    wants bypass adds ``IS_SANDBOX=1`` itself.
    """
    home = tmp_path / "home"
    home.mkdir()
    env = {name: value for name, value in os.environ.items() if not _inherited_setting(name)}
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=mock_api.base_url,
        ANTHROPIC_API_KEY="sk-ant-api03-mock",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        ENABLE_TOOL_SEARCH="false",
    )
    return env


@pytest.fixture
def claude_cwd(tmp_path: Path) -> Path:
    """An empty working directory, so that no project's CLAUDE.md, settings or .mcp.json leak in."""
    cwd = tmp_path / "project"
    cwd.mkdir()
    return cwd


@pytest.fixture
def start_claude(claude_bin: Path, claude_env: dict[str, str], claude_cwd: Path) -> Iterator[StartClaude]:
    """Start ``claude -p --output-format=stream-json --verbose *args``; killed at teardown if still running."""
    started: list[ClaudeProcess] = []

    def start(*args: str, stdin: bool = False, env: Mapping[str, str] | None = None) -> ClaudeProcess:
        process = ClaudeProcess(
            [str(claude_bin), *STREAM_JSON_ARGS, *args],
            env={**claude_env, **(env or {})},
            cwd=claude_cwd,
            stdin=stdin,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def run_claude(start_claude: StartClaude) -> RunClaude:
    """Run ``claude -p --output-format=stream-json --verbose *args`` to completion (stdin: /dev/null)."""

    def run(*args: str, env: Mapping[str, str] | None = None, timeout: float = 30.0) -> ClaudeProcess:
        process = start_claude(*args, env=env)
        process.wait(timeout=timeout)
        return process

    return run
