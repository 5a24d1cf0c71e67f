"""Any program as a provider: an argv list in, plain text lines out, the exit code its only verdict."""

from __future__ import annotations

from pathlib import Path

from overmind_mcp.core.events import Event, PlainText, Result
from overmind_mcp.core.exits import ExitStatus
from overmind_mcp.core.spec import AnyTask, CommandTask
from overmind_mcp.core.status import Status
from overmind_mcp.providers.base import Delegation, LaunchPlan, Restart


def parse_line(line: bytes) -> list[Event]:
    return [PlainText(line.decode("utf-8", "replace").rstrip("\r\n"))]


class CommandProvider:
    kind = "command"
    label = "command"
    result_is_output_end = True
    structured_output = False
    plain_text = True
    sessions = None

    def handles(self, task: AnyTask) -> bool:
        return isinstance(task, CommandTask)

    def can_delegate(self, task: AnyTask) -> bool | None:
        return False

    def plan(
        self,
        task: AnyTask,
        *,
        delegation: Delegation | None = None,
        restart: Restart | None = None,
        inputs: Path | None = None,
    ) -> LaunchPlan:
        assert isinstance(task, CommandTask)
        # A restart runs the same command again.
        return LaunchPlan(argv=list(task.argv))

    def parse_line(self, line: bytes) -> list[Event]:
        return parse_line(line)

    def outcome(self, exit_status: ExitStatus, result: Result | None) -> tuple[Status, str | None]:
        if not exit_status.known:
            return Status.LOST, "it ended while no server could see its exit status, and left no result"
        if exit_status.code == 0:
            return Status.SUCCEEDED, None
        return Status.FAILED, exit_status.describe()
