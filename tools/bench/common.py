"""What every benchmark shares: statistics, result rows, the server under test, and the bare loop.

Absolute times on a shared 2-core machine are noise, so every figure is reported next to a
baseline measured in the same run, interleaved with it (the order alternates every round so
that drift in the machine's load falls on both sides alike), as a median with the spread of
the per-round medians.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import psutil
from mcp import Client, StdioServerParameters

from overmind_mcp.providers import claude

ROOT = Path(__file__).resolve().parents[2]
FAKE_CLAUDE = ROOT / "tools" / "fake_claude.py"
RESULTS_DIR = ROOT / "tools" / "bench" / "results"
NODE_DIR = ROOT / ".cache" / "bench-node"
# The stand-in's shebang is `env python3`: children must find this interpreter first on PATH.
VENV_BIN = Path(sys.executable).parent


@dataclass
class Config:
    """What a benchmark is asked to do: tiny sizes (`quick`), and where to put scratch files."""

    quick: bool
    scratch: Path
    # Benchmarks that need npm or the network run in quick mode only when named explicitly.
    explicit: bool = False


# -- statistics -------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), inclusive method; the single value for one sample."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[min(98, max(0, round(q) - 1))]


def summary(values: Sequence[float], digits: int = 3) -> dict[str, float]:
    return {
        "p50": round(median(values), digits),
        "p90": round(percentile(values, 90), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "n": len(values),
    }


def spread(values: Sequence[float], digits: int = 3) -> list[float]:
    """[min, max] of per-round figures: how much a figure moved between rounds of the same run."""
    return [round(min(values), digits), round(max(values), digits)]


def row(
    metric: str,
    *,
    ours: float,
    baseline: float | None,
    unit: str,
    baseline_name: str,
    spread_of: str,
    spread_values: Sequence[float] | None = None,
    target: str | None = None,
    met: bool | None = None,
    digits: int = 3,
    note: str | None = None,
) -> dict[str, Any]:
    """One line of the results table.

    `diff` is ours − baseline and `ratio` ours / baseline; `spread` is [min, max] over rounds
    of whatever `spread_of` names (usually the per-round difference or ratio).
    """
    entry: dict[str, Any] = {
        "metric": metric,
        "ours": round(ours, digits),
        "baseline": None if baseline is None else round(baseline, digits),
        "baseline_name": baseline_name,
        "unit": unit,
        "diff": None if baseline is None else round(ours - baseline, digits),
        "ratio": None if not baseline else round(ours / baseline, 3),
        "spread_of": spread_of,
        "spread": spread(spread_values, digits) if spread_values else None,
        "target": target,
        "met": met,
    }
    if note:
        entry["note"] = note
    return entry


def alternate(round_number: int, first: str, second: str) -> tuple[str, str]:
    """The two variants of a comparison, in the order for this round (ABBA...: drift hits both)."""
    return (first, second) if round_number % 2 == 0 else (second, first)


# -- environments -------------------------------------------------------------------------------------


def child_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment children see: this interpreter's bin first on PATH, plus `extra`."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # Variables that would make a child (or the real CLI) behave differently from a clean run.
    for name in ("CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_CODE_SESSION_ID", "IS_SANDBOX"):
        env.pop(name, None)
    env.update(extra)
    return env


def overmind_env(home: Path, *, claude_bin: str | Path = FAKE_CLAUDE, base: Mapping[str, str] | None = None) -> dict:
    # The benchmarks measure supervision, not admission: no child may wait in the queue.
    return child_env(
        base,
        OVERMIND_HOME=str(home),
        OVERMIND_CLAUDE_BIN=str(claude_bin),
        OVERMIND_KILL_GRACE_S="1",
        OVERMIND_MAX_CONCURRENT="1000",
    )


# -- the server under test ---------------------------------------------------------------------------


class ToolFailed(RuntimeError):
    pass


class McpServer:
    """A server process over stdio, its MCP client, and its psutil handle (CPU time, memory)."""

    def __init__(self, client: Client, process: psutil.Process) -> None:
        self.client = client
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        if result.is_error:
            text = result.content[0].text if result.content else "?"  # type: ignore[union-attr]
            raise ToolFailed(f"{tool}: {text}")
        return result.structured_content or {}

    async def call_text(self, tool: str, arguments: dict[str, Any]) -> str:
        result = await self.client.call_tool(tool, arguments)
        text = "".join(getattr(block, "text", "") for block in result.content)
        if result.is_error:
            raise ToolFailed(f"{tool}: {text}")
        return text

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process itself (not of its children)."""
        times = self.process.cpu_times()
        return times.user + times.system

    def rss(self) -> int:
        return self.process.memory_info().rss

    def reset_peak_rss(self) -> bool:
        """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where not allowed."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def peak_rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM in /proc status")


def _server_child(marker: str, known: set[int]) -> psutil.Process:
    """Our newest direct child whose command line contains `marker` and that we have not seen before."""
    for child in sorted(psutil.Process().children(), key=lambda p: -p.create_time()):
        with contextlib.suppress(psutil.Error):
            if child.pid not in known and marker in " ".join(child.cmdline()):
                return child
    raise RuntimeError(f"no server process matching {marker!r} among our children")


@asynccontextmanager
async def mcp_server(
    command: str, args: Sequence[str], env: Mapping[str, str], *, marker: str, cwd: Path | None = None
) -> AsyncIterator[McpServer]:
    """Start a stdio MCP server, initialize it, and yield it; it is stopped (stdin closed) on exit."""
    known = {child.pid for child in psutil.Process().children()}
    params = StdioServerParameters(command=command, args=list(args), env=dict(env), cwd=str(cwd) if cwd else None)
    async with Client(params, mode="legacy") as client:
        yield McpServer(client, _server_child(marker, known))


def trivial_server():  # the MCP floor: see trivial_server.py
    return mcp_server(sys.executable, ["-m", "tools.bench.trivial_server"], child_env(), marker="trivial_server")


def overmind_server(home: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None):
    env = env if env is not None else overmind_env(home)
    return mcp_server(sys.executable, ["-m", "overmind_mcp"], env, marker="overmind_mcp", cwd=cwd)


# -- the bare loop: the limit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Child:
    """A child as overmind starts it: its argv, and what it reads on stdin (a Claude child's prompt)."""

    argv: list[str]
    stdin: bytes = b""

    @classmethod
    def claude(cls, claude_bin: Path | str, prompt: str) -> Child:
        """The stand-in (or real) claude with the argv and stdin overmind gives a task with this prompt."""
        options = claude.ClaudeOptions(prompt=prompt)
        return cls(claude.build_argv(str(claude_bin), options), claude.task_input(options) or b"")


@dataclass
class BareLoop:
    """The same processes, started and reaped by a bare anyio loop: no MCP, no storage, no parsing.

    Each child is started as overmind's are (`subprocess.Popen`, own session, stdin a file with
    its prompt or /dev/null, stdout and stderr to files, close_fds), its exit awaited on a pidfd, it is reaped, and its
    stdout is read back whole. That is the least any supervisor that keeps a child's output
    must do, so it is the physical limit the server is measured against.
    """

    directory: Path
    env: dict[str, str]
    _serial: int = 0
    live: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, child: Child) -> tuple[subprocess.Popen[bytes], Path]:
        self._serial += 1
        stdout_path = self.directory / f"{self._serial}.out"
        stdin_path = self.directory / f"{self._serial}.in"
        if child.stdin:
            stdin_path.write_bytes(child.stdin)
        with (
            stdout_path.open("wb") as stdout,
            (self.directory / f"{self._serial}.err").open("wb") as stderr,
            stdin_path.open("rb") if child.stdin else contextlib.nullcontext(subprocess.DEVNULL) as stdin,
        ):
            process = subprocess.Popen(
                child.argv,
                env=self.env,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                close_fds=True,
                start_new_session=True,
            )
        self.live[process.pid] = process
        return process, stdout_path

    async def reap(self, process: subprocess.Popen[bytes]) -> int:
        pidfd = os.pidfd_open(process.pid)
        try:
            await anyio.wait_readable(pidfd)
        finally:
            os.close(pidfd)
        _, status = os.waitpid(process.pid, 0)  # noqa: ASYNC222 - the pidfd said it has exited
        process.returncode = os.waitstatus_to_exitcode(status)
        self.live.pop(process.pid, None)
        return process.returncode

    async def run(self, child: Child) -> bytes:
        """Start, await, reap, and collect the output of one child."""
        process, stdout_path = self.start(child)
        code = await self.reap(process)
        output = stdout_path.read_bytes()
        if code != 0:
            raise RuntimeError(f"bare child {child.argv[0]} exited {code}: {output[-300:]!r}")
        return output

    def kill_all(self) -> None:
        for process in list(self.live.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.live.clear()


def wall() -> float:
    return time.perf_counter()


def cpu_percent(cpu_seconds: float, wall_seconds: float) -> float:
    return 100.0 * cpu_seconds / wall_seconds if wall_seconds > 0 else 0.0


def mib(value: float) -> float:
    return value / 2**20
