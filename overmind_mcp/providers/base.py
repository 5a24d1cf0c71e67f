"""The provider seam: *what* runs. A provider turns a task into a launch and reads what the child prints.

A provider knows nothing of processes, storage or MCP: the supervisor hands it a task
and the facts of the moment (the CLI to use, whether the child may call back in, whether
this is a restart), and gets back an argv and environment to start; it hands the provider
every output line and, at the end, asks it what the exit status and the last result mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from overmind_mcp.core.approvals import PermissionAnswer
from overmind_mcp.core.events import Event, Result
from overmind_mcp.core.exits import ExitStatus
from overmind_mcp.core.spec import AnyTask
from overmind_mcp.core.status import Status


@dataclass(frozen=True, slots=True)
class Delegation:
    """How a child reaches this server under its own identity: for its tools, and to ask for permissions."""

    url: str
    token: str
    # Whether it may use the server's tools (spawn and the rest); if not, it only asks for permissions.
    tools: bool = True
    # The server's tool that answers the child's permission prompts (None: the child asks nobody).
    permission_tool: str | None = None


@dataclass(frozen=True, slots=True)
class Restart:
    """What a restarted run knows of the one before it."""

    session_id: str | None
    why: str


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    argv: list[str]
    # Set in the child's environment only (secrets never go in argv, which anyone can read).
    env: Mapping[str, str] = field(default_factory=dict)
    # A live session reads its turns on stdin.
    stdin_pipe: bool = False
    # Files the child reads (its prompt, its system prompt), by their paths in the input directory
    # the plan was given: written privately before the start, so that no prompt goes in argv.
    files: Mapping[Path, bytes] = field(default_factory=dict)
    # The one of `files` the child reads on stdin (a task's prompt).
    stdin_file: Path | None = None


class SessionCodec(Protocol):
    """How a provider's live sessions take their turns on stdin."""

    def user_message(self, text: str) -> bytes: ...

    def interrupt_request(self, request_id: str) -> bytes: ...

    def permission_answer(self, request_id: str, answer: PermissionAnswer) -> bytes:
        """The answer to a `PermissionRequest` the session printed."""
        ...


class Provider(Protocol):
    kind: str
    """The name stored with each mission ("claude", "command")."""
    label: str
    """What a person calls one of its missions ("claude task", "command")."""
    result_is_output_end: bool
    """Whether its final answer is the end of its output (a command's) rather than a result line."""
    structured_output: bool
    """Whether it prints stream-json (an agent's turns, tools, tokens) rather than plain text."""
    plain_text: bool
    """Whether every line it prints is a `PlainText` and nothing more (a command's): then of many lines
    read at once only the last few, those a mission keeps, need parsing."""
    sessions: SessionCodec | None
    """How its live sessions take turns; None if it has none."""

    def handles(self, task: AnyTask) -> bool: ...

    def can_delegate(self, task: AnyTask) -> bool | None:
        """Whether the task asked to call back in (None: by default, if allowed); False if it cannot."""
        ...

    def plan(
        self,
        task: AnyTask,
        *,
        delegation: Delegation | None = None,
        restart: Restart | None = None,
        inputs: Path | None = None,
    ) -> LaunchPlan:
        """How to start the task; `inputs` is a private directory of the mission's for `LaunchPlan.files`."""
        ...

    def parse_line(self, line: bytes) -> list[Event]: ...

    def outcome(self, exit_status: ExitStatus, result: Result | None) -> tuple[Status, str | None]:
        """The status of a run that ended by itself, and why (None for a plain success)."""
        ...
