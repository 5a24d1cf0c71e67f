"""Fixtures for end-to-end tests: the real, pinned Claude Code CLI against ``tests.mockapi``.

Every test gets its own mock API, its own ``HOME``, ``TMPDIR`` and working directory, and an
environment scrubbed of the outside world's Claude/Anthropic settings. Processes started through
``start_claude``/``run_claude`` run in their own session and are killed (process group) at teardown.

``overmind`` is overmind-mcp itself for one test: its own state directory, children that are the real
CLI, ways to start it (``--mcp-config`` for a real parent, ``StdioServerParameters`` for an SDK
client), the mission table, and a teardown check that nothing it started outlived the test.
``FIGURES`` collects measurements that are printed after the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any, NoReturn, Protocol

import psutil
import pytest
from mcp import Client, StdioServerParameters

from overmind_mcp.storage.missions import MissionRow, Store
from tests.conftest import processes_of
from tests.mockapi import MockAnthropicAPI
from tools.install_claude_cli import InstallError, ensure_claude_cli

JSON = dict[str, Any]

#: Prepended to the arguments of every process started by the fixtures below.
STREAM_JSON_ARGS = ("-p", "--output-format=stream-json", "--verbose")

_HERE = Path(__file__).parent
_ROOT = _HERE.parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items, not just this directory's.
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.e2e)


#: Measurements the tests report (name → value with its unit), printed after the run.
FIGURES: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("end-to-end figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


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


def missing_tool(reason: str) -> NoReturn:
    """Fail in CI (``CI=true``: the tool must be there), skip elsewhere; the reason is printed either way."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """The pinned CLI in ``.cache/claude-code/``, installed with npm on first use."""
    try:
        return ensure_claude_cli()
    except InstallError as exc:
        missing_tool(f"the pinned Claude Code CLI is unavailable: {exc}")


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
    # The CLI keeps per-project scratch folders and its messaging socket under $TMPDIR (/tmp/claude-<uid>/,
    # /tmp/cc-socks/ by default): per test, they neither pile up nor meet another run's.
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {name: value for name, value in os.environ.items() if not _inherited_setting(name)}
    env.update(
        HOME=str(home),
        TMPDIR=str(tmpdir),
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


# --------------------------------------------------------------------------------------------------
# overmind-mcp itself, as the CLI (or another MCP client) starts it


class Overmind:
    """One overmind-mcp state directory and the settings a test's server runs with.

    ``server_env`` is what a stdio server needs on top of the client's environment: ``parent_args``
    (and ``mcp_config``) give it to a real CLI parent, ``stdio_server`` to an SDK client.
    """

    def __init__(self, home: Path, claude_bin: Path) -> None:
        self.home = home
        self.claude_bin = claude_bin
        self.server_env = {
            "OVERMIND_HOME": str(home),
            "OVERMIND_CLAUDE_BIN": str(claude_bin),
            "OVERMIND_KILL_GRACE_S": "1",
            # The checkout under test, whatever copy of overmind_mcp the interpreter has installed.
            "PYTHONPATH": str(_ROOT),
        }
        # The interpreter running the tests: the project's virtualenv, with overmind_mcp's dependencies.
        self.command = [sys.executable, "-m", "overmind_mcp"]

    def stdio_config(self, *, timeout_ms: int | None = None) -> JSON:
        """The server's ``.mcp.json`` entry; ``timeout_ms`` is the CLI's hard limit on each tool call."""
        entry: JSON = {"type": "stdio", "command": self.command[0], "args": self.command[1:], "env": self.server_env}
        if timeout_ms is not None:
            entry["timeout"] = timeout_ms
        return entry

    def mcp_config(self, *, timeout_ms: int | None = None) -> str:
        """An inline ``--mcp-config`` value naming the server ``overmind`` (tools ``mcp__overmind__*``)."""
        return json.dumps({"mcpServers": {"overmind": self.stdio_config(timeout_ms=timeout_ms)}})

    def stdio_server(self, env: Mapping[str, str], cwd: Path) -> StdioServerParameters:
        """How an SDK client starts this server: in ``env`` (the CLI's isolated one, for the children)."""
        return StdioServerParameters(
            command=self.command[0], args=self.command[1:], env={**env, **self.server_env}, cwd=cwd
        )

    def parent_args(self, prompt: str, *, timeout_ms: int | None = None) -> list[str]:
        """``start_claude`` arguments for a real Claude Code parent that uses this server and nothing else.

        In ``-p`` mode a tool that is not allowed is denied, not asked: every overmind tool is allowed.
        """
        return [
            f"--mcp-config={self.mcp_config(timeout_ms=timeout_ms)}",
            "--strict-mcp-config",
            "--allowedTools=mcp__overmind",
            "--",
            prompt,
        ]

    def missions(self) -> list[MissionRow]:
        """The mission table, oldest first (read with the server's own store code).

        Callable from sync tests, async tests and mock answer threads alike: it runs its own event loop
        on a thread of its own.
        """
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, _read_missions(self.home / "overmind.db")).result()

    def mission(self, name: str) -> MissionRow:
        [row] = [row for row in self.missions() if row.name == name]
        return row

    def processes(self) -> list[psutil.Process]:
        """Live processes started for this state directory: the server, its children and theirs.

        Found by their environment: the server's names this home, and every child carries its mission id.
        """
        found = _processes_with_env("OVERMIND_HOME", str(self.home))
        found += processes_of({row.id for row in self.missions()})
        return list({process.pid: process for process in found}.values())

    def assert_all_ended(self, *, within: float = 10.0) -> None:
        """Everything this state directory started ends by itself within ``within`` s; stragglers are killed.

        The server ends its children on the way out, but it may still be doing so when the client
        that started it returns, hence the bounded wait on the processes themselves.
        """
        survivors = self.processes()
        _gone, alive = psutil.wait_procs(survivors, timeout=within)
        for process in alive:
            with suppress(psutil.Error):
                process.kill()
        assert not alive, f"processes outlived the test: {[_describe_process(p) for p in alive]}"


class ExitClock:
    """When a process that is not our child (the server's) exits: its pidfd turns readable right then.

    Start it while the process is surely alive; ``read`` gives the wall-clock time (``time.time()``) of
    the exit, comparable with the mission table and the mock's ``received_at``, give or take the
    watching thread's wake-up (about a millisecond).
    """

    def __init__(self, pid: int) -> None:
        self.exited_at: float | None = None
        self._pidfd = os.pidfd_open(pid)
        self._thread = threading.Thread(target=self._watch, name=f"exit-clock-{pid}", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        try:
            select.select([self._pidfd], [], [])
            self.exited_at = time.time()
        finally:
            os.close(self._pidfd)

    def read(self, timeout: float = 10.0) -> float:
        self._thread.join(timeout)
        assert self.exited_at is not None, "the watched process did not exit"
        return self.exited_at


async def call_tool(client: Client, tool: str, **arguments: Any) -> JSON:
    """Call one of overmind's tools through an SDK client; its structuredContent, or the test fails."""
    answer = await client.call_tool(tool, arguments)
    assert not answer.is_error, f"{tool} failed: {answer.content}"
    assert answer.structured_content is not None, tool
    return answer.structured_content


async def _read_missions(path: Path) -> list[MissionRow]:
    if not path.exists():  # noqa: ASYNC240 (a test helper on its own event loop: nothing else to block)
        return []
    store = await Store.open(path)
    try:
        return sorted(await store.missions(), key=lambda row: row.created_at)
    finally:
        await store.close()


def _processes_with_env(name: str, value: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        with suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE and process.environ().get(name) == value:
                found.append(process)
    return found


def _describe_process(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline())[:200]}"
    except psutil.Error:
        return str(process.pid)


@pytest.fixture
def overmind(tmp_path: Path, claude_bin: Path) -> Iterator[Overmind]:
    """A fresh overmind state directory whose children are the real CLI; checked for leftovers at teardown.

    Ask for it before ``start_claude``: fixtures are torn down in reverse order, so a parent CLI that is
    still running (a failed test) is killed before this checks what outlived it.
    """
    state = Overmind(tmp_path / "overmind", claude_bin)
    yield state
    state.assert_all_ended()
