"""The seams are real: a second, tiny implementation of each runs missions through the public supervisor.

- a runner with no processes at all (each "child" is a task that writes its output file);
- a provider that answers a prompt with a program of its own;
- a workspace that gives each mission a scratch directory and removes it at the end.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from overmind_mcp.bus import MissionEnded, MissionSpawned, MissionStarted
from overmind_mcp.core.events import Event, PlainText, Result
from overmind_mcp.core.exits import UNKNOWN_EXIT, ExitStatus
from overmind_mcp.core.spec import ClaudeTask, CommandTask
from overmind_mcp.core.status import Status
from overmind_mcp.models import SpawnRequest
from overmind_mcp.providers import Providers
from overmind_mcp.providers.base import Delegation, LaunchPlan, Restart
from overmind_mcp.providers.command import CommandProvider
from overmind_mcp.runners.base import Launch, RunRecord
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor
from overmind_mcp.workspaces.base import Placement, Prepared

pytestmark = pytest.mark.anyio


class TaskHandle:
    """A "child" that is an anyio task: it prints its argv, one word a line, then exits with their count."""

    def __init__(self, launch: Launch, task_group: anyio.abc.TaskGroup) -> None:
        self.launch = launch
        self.exit_status: ExitStatus | None = None
        self._ended = anyio.Event()
        self._cancel = anyio.CancelScope()
        task_group.start_soon(self._run)

    async def _run(self) -> None:
        with self._cancel:
            for word in self.launch.argv:
                with self.launch.stdout_path.open("ab") as output:
                    output.write(word.encode() + b"\n")
                await anyio.sleep(0.01 if word != "hang" else 3600)
            self.exit_status = ExitStatus(code=len(self.launch.argv) % 256, signal=None)
        if self.exit_status is None:
            self.exit_status = ExitStatus(code=None, signal=signal.SIGTERM)
        self._ended.set()

    @property
    def running(self) -> bool:
        return not self._ended.is_set()

    @property
    def accepts_input(self) -> bool:
        return False

    def record(self) -> RunRecord:
        return RunRecord(pid=None, pgid=None, start_time=None, extra={"in": "memory"})

    async def identify(self) -> RunRecord:
        return self.record()

    async def wait(self) -> ExitStatus:
        await self._ended.wait()
        assert self.exit_status is not None
        return self.exit_status

    def signal_group(self, sig: signal.Signals) -> bool:
        if not self.running:
            return False
        self._cancel.cancel()
        return True

    async def write_stdin(self, data: bytes) -> None:
        raise BrokenPipeError("no input")

    def close_stdin(self) -> None:
        pass


class MemoryRunner:
    name = "local"  # stands in for the local runner
    takes_slot = True

    def __init__(self, task_group: anyio.abc.TaskGroup) -> None:
        self.task_group = task_group
        self.started: list[Launch] = []

    async def start(self, launch: Launch) -> TaskHandle:
        self.started.append(launch)
        return TaskHandle(launch, self.task_group)

    async def adopt(self, mission_id: str, record: RunRecord) -> None:
        return None

    async def find(self, mission_id: str) -> None:
        return None

    async def settle(self, mission_id: str, record: RunRecord, mission_dir: Path) -> ExitStatus:
        return UNKNOWN_EXIT


class EchoAgent:
    """An "agent" whose answer to a prompt is the prompt, said back by `echo`."""

    kind = "claude"
    label = "echo agent"
    result_is_output_end = False
    structured_output = False
    plain_text = False
    sessions = None

    def handles(self, task: ClaudeTask | CommandTask) -> bool:
        return isinstance(task, ClaudeTask)

    def can_delegate(self, task: ClaudeTask | CommandTask) -> bool | None:
        return False

    def plan(
        self,
        task: ClaudeTask | CommandTask,
        *,
        delegation: Delegation | None = None,
        restart: Restart | None = None,
        inputs: Path | None = None,
    ) -> LaunchPlan:
        assert isinstance(task, ClaudeTask)
        return LaunchPlan(argv=["echo", f"said: {task.prompt}"])

    def parse_line(self, line: bytes) -> list[Event]:
        text = line.decode().rstrip("\n")
        result = Result("success", False, text, [], None, 0.5, None, 1, {}, [], None, None)
        return [PlainText(text), result]

    def outcome(self, exit_status: ExitStatus, result: Result | None) -> tuple[Status, str | None]:
        return (Status.SUCCEEDED, None) if result is not None else (Status.FAILED, "it said nothing")


class ScratchWorkspace:
    name = "plain"  # stands in for the plain workspace

    def __init__(self) -> None:
        self.made: dict[str, Path] = {}
        self.released: dict[str, Status | None] = {}

    async def prepare(self, placement: Placement) -> Prepared:
        path = Path(tempfile.mkdtemp(prefix=f"{placement.name}-"))
        self.made[placement.mission_id] = path
        return Prepared(path)

    async def release(self, mission_id: str, cwd: Path, status: Status | None) -> None:
        shutil.rmtree(cwd)
        self.released[mission_id] = status


@pytest.fixture
async def task_group() -> AsyncIterator[anyio.abc.TaskGroup]:
    async with anyio.create_task_group() as group:
        yield group
        group.cancel_scope.cancel()


async def test_a_runner_without_processes_runs_missions(settings: Settings, task_group: anyio.abc.TaskGroup) -> None:
    runner = MemoryRunner(task_group)
    async with Supervisor.running(settings, runners=[runner]) as supervisor:
        with supervisor.bus.subscribe() as events:
            spawned = await supervisor.spawn(SpawnRequest(command=["one", "two", "three"]))
            [done] = (await supervisor.wait([spawned.id], timeout_s=10)).done
            seen = []
            while not any(isinstance(event, MissionEnded) for event in seen):
                seen.append(await events.next())
        assert (done.status, done.exit_code, done.text) == ("failed", 3, "one\ntwo\nthree")
        assert runner.started[0].mission_id == spawned.id
        assert [type(event) for event in seen][:2] == [MissionSpawned, MissionStarted]
        assert (await supervisor.logs(spawned.id)).lines == ["one", "two", "three"]
        # Kill reaches it through the handle, the same ladder as for a process.
        hanging = await supervisor.spawn(SpawnRequest(command=["hang"]))
        outcome = await supervisor.kill([hanging.id])
        assert [(o.status, o.how) for o in outcome.ended] == [("stopped", "SIGINT")]


async def test_a_provider_of_its_own_answers_prompts(settings: Settings) -> None:
    providers = Providers([EchoAgent(), CommandProvider()])
    async with Supervisor.running(settings, providers=providers) as supervisor:
        spawned = await supervisor.spawn(SpawnRequest(prompt="hello"))
        [done] = (await supervisor.wait([spawned.id], timeout_s=10)).done
        assert (done.status, done.text, done.cost_usd) == ("succeeded", "said: hello", 0.5)
        # Commands still run with the built-in provider.
        command = await supervisor.spawn(SpawnRequest(command=["echo", "plain"]))
        [done] = (await supervisor.wait([command.id], timeout_s=10)).done
        assert (done.status, done.text) == ("succeeded", "plain")


async def test_a_workspace_of_its_own_places_and_releases_missions(settings: Settings) -> None:
    workspace = ScratchWorkspace()
    async with Supervisor.running(settings, workspaces=[workspace]) as supervisor:
        spawned = await supervisor.spawn(SpawnRequest(command=["sh", "-c", "pwd; touch made-here"]))
        [done] = (await supervisor.wait([spawned.id], timeout_s=10)).done
        directory = workspace.made[spawned.id]
        assert done.text == str(directory)
        assert done.cwd == str(directory)
        assert workspace.released == {spawned.id: Status.SUCCEEDED}
        assert not directory.exists()
