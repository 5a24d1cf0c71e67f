"""A blueprint run as a provider: the server runs it itself, and its output is a log of what its nodes did.

The run's output file holds one JSON line per step (a node started, ended, was retried or
skipped), shown as readable text, and a last `result` line in the shape of the Claude CLI's:
its verdict, a summary, and every node's outcome and output as `structured_output`. It has
no cost of its own: its nodes are its children, and their costs roll up the tree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from overmind_mcp.core.events import Event, PlainText, Result
from overmind_mcp.core.exits import ExitStatus
from overmind_mcp.core.spec import AnyTask, BlueprintTask
from overmind_mcp.core.status import Status
from overmind_mcp.providers import claude
from overmind_mcp.providers.base import Delegation, LaunchPlan, Restart

_LOG_TYPE = "blueprint"


def log_line(text: str, **fields: Any) -> bytes:
    """One step of a run, for its output file."""
    return _line({"type": _LOG_TYPE, "text": text, **fields})


def result_line(
    *, ok: bool, text: str, errors: list[str], nodes: dict[str, Any], turns: int, duration_ms: int
) -> bytes:
    """The run's verdict and every node's outcome, as the last line of its output file."""
    return _line(
        {
            "type": "result",
            "subtype": "success" if ok else "error_during_execution",
            "is_error": not ok,
            "result": text,
            "errors": errors,
            "num_turns": turns,
            "duration_ms": duration_ms,
            "structured_output": {"nodes": nodes},
        }
    )


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class BlueprintProvider:
    kind = "blueprint"
    label = "blueprint run"
    result_is_output_end = False
    structured_output = False
    plain_text = False
    sessions = None

    def handles(self, task: AnyTask) -> bool:
        return isinstance(task, BlueprintTask)

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
        assert isinstance(task, BlueprintTask)
        # Nothing is executed: the blueprint runner runs the task it finds in the mission's spec.
        return LaunchPlan(argv=["blueprint", task.source or "<inline>"])

    def parse_line(self, line: bytes) -> list[Event]:
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("type") == _LOG_TYPE:
            return [PlainText(str(data.get("text", "")))]
        return claude.parse_line(line)

    def outcome(self, exit_status: ExitStatus, result: Result | None) -> tuple[Status, str | None]:
        if result is None:
            if not exit_status.known:
                return Status.LOST, "it ended while no server could run it, and left no result"
            return Status.FAILED, f"it {exit_status.describe()} without a result"
        if result.is_error:
            return Status.FAILED, "; ".join(result.errors) or result.text or "the run failed"
        return Status.SUCCEEDED, None
