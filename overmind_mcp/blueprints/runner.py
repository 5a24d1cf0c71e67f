"""Where a blueprint run runs: inside the server, as a runner whose handle is the run's executor.

A run is a mission like any other (its nodes are its children: the tree, costs rolled up,
kills cascading, `wait` and `result` on it), but no process of its own: `start` hands back
a handle whose `wait` runs the executor, and whose `signal_group` halts it. After a crash,
the next server's recovery `adopt`s the run like a process that still runs, and the
executor goes on from the journal.

The runner is made before the supervisor it serves (recovery needs it), and `bind` gives
it that supervisor; a run waits for it.
"""

from __future__ import annotations

import signal
from pathlib import Path

import anyio

from overmind_mcp.blueprints.executor import Executor
from overmind_mcp.blueprints.journal import Journal, Verdict
from overmind_mcp.blueprints.validate import BlueprintInvalid, load
from overmind_mcp.core.exits import UNKNOWN_EXIT, ExitStatus
from overmind_mcp.core.spec import BlueprintTask
from overmind_mcp.providers.blueprint import result_line
from overmind_mcp.runners.base import Handle, Launch, RunRecord
from overmind_mcp.supervision.supervisor import Supervisor

NAME = "blueprint"


class BlueprintRunner:
    name = NAME
    takes_slot = False  # its nodes take theirs

    def __init__(self, home: Path) -> None:
        self._home = home
        self._supervisor: Supervisor | None = None
        self._bound = anyio.Event()

    def bind(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self._bound.set()

    async def start(self, launch: Launch) -> Handle:
        return RunHandle(self, launch.mission_id, launch.stdout_path)

    async def adopt(self, mission_id: str, record: RunRecord) -> Handle | None:
        # Called during recovery, before `bind`: everything it needs is in the record.
        output = record.extra.get("output")
        return RunHandle(self, mission_id, Path(output)) if isinstance(output, str) else None

    async def find(self, mission_id: str) -> RunRecord | None:
        return None

    async def settle(self, mission_id: str, record: RunRecord, mission_dir: Path) -> ExitStatus:
        return UNKNOWN_EXIT  # its nodes are missions of their own: recovery settles each of them

    async def _ready(self) -> Supervisor:
        await self._bound.wait()
        assert self._supervisor is not None
        return self._supervisor

    async def execute(self, handle: RunHandle) -> Verdict:
        """Run (or go on with) the blueprint of `handle`'s mission, to its verdict."""
        supervisor = await self._ready()
        run = await supervisor.mission(handle.mission_id)
        task = run.spec.task
        assert isinstance(task, BlueprintTask)
        try:
            blueprint = load(task.blueprint, source=task.source, run_vars=task.vars)
        except BlueprintInvalid as invalid:
            verdict = Verdict(ok=False, text="the blueprint is not valid", errors=[str(p) for p in invalid.problems])
            handle.write(
                result_line(ok=False, text=verdict.text, errors=verdict.errors, nodes={}, turns=0, duration_ms=0)
            )
            return verdict
        journal = await Journal.open(self._home, run.id)
        try:
            executor = Executor(supervisor, journal, run, blueprint, handle.output)
            handle.executor = executor
            if handle.stop_signal is not None:
                executor.stop(f"stopped by {handle.stop_signal.name}", force=handle.stop_signal == signal.SIGKILL)
            return await executor.run()
        finally:
            with anyio.CancelScope(shield=True):
                await journal.close()


class RunHandle:
    """A run in progress: `wait` runs it, `signal_group` halts it (SIGKILL: its nodes at once)."""

    def __init__(self, runner: BlueprintRunner, mission_id: str, output: Path) -> None:
        self._runner = runner
        self.mission_id = mission_id
        self.output = output
        self.executor: Executor | None = None
        self.stop_signal: signal.Signals | None = None
        self._ended = False

    @property
    def running(self) -> bool:
        return not self._ended

    @property
    def accepts_input(self) -> bool:
        return False

    def record(self) -> RunRecord:
        # No process: what a later server needs is that the run is one of this runner's, and its log.
        return RunRecord(pid=None, pgid=None, start_time=None, extra={"runner": NAME, "output": str(self.output)})

    async def identify(self) -> RunRecord:
        return self.record()

    async def wait(self) -> ExitStatus:
        try:
            verdict = await self._runner.execute(self)
        finally:
            self._ended = True
        if self.stop_signal is not None:
            return ExitStatus(code=None, signal=self.stop_signal)
        return ExitStatus(code=0 if verdict.ok else 1, signal=None)

    def signal_group(self, sig: signal.Signals) -> bool:
        if self._ended:
            return False
        self.stop_signal = sig
        if self.executor is not None:
            self.executor.stop(f"stopped by {sig.name}", force=sig == signal.SIGKILL)
        return True

    async def write_stdin(self, data: bytes) -> None:
        raise BrokenPipeError("a blueprint run takes no input")

    def close_stdin(self) -> None:
        """Nothing to close: a run has no input."""

    def write(self, line: bytes) -> None:
        with self.output.open("ab") as output:
            output.write(line)
