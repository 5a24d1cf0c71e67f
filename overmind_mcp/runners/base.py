"""The runner seam: *where* a mission's process runs.

A runner starts a launch and hands back a handle; the handle is the only way the
supervisor touches the running child: await its exit status, signal its whole process
group, write or close its input. Its output always lands in the mission's files
(`Launch.stdout_path`, `Launch.stderr_path`), whatever the runner, so reading output,
logs and results are the same for every runner. `record()` is what the store keeps so
that a later server can `adopt` the child after a crash.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from overmind_mcp.core.exits import ExitStatus


@dataclass(frozen=True, slots=True)
class Launch:
    mission_id: str
    argv: list[str]
    cwd: Path
    env: Mapping[str, str]
    stdout_path: Path
    stderr_path: Path
    stdin_pipe: bool = False
    # A file the child reads on stdin (its prompt); None: /dev/null, or the pipe.
    stdin_path: Path | None = None
    # What the mission asks of the machine it runs on, e.g. {"GPU": 1}: for runners that place
    # children on machines (spawn refuses it for the others).
    resources: Mapping[str, float] = field(default_factory=dict)
    # The endpoint the child calls back to for overmind's tools, if it does: a runner that
    # puts it on another machine must make sure it can reach it.
    callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What identifies a started child for good: the store keeps it, a later server adopts by it."""

    pid: int | None
    pgid: int | None
    start_time: float | None
    # Anything else a runner needs to find the child again (a node, an actor's name). Under
    # NODE_KEY, the machine it runs on, as results and `ps` name it (absent: this one).
    extra: Mapping[str, Any] = field(default_factory=dict)


NODE_KEY = "node"


def node_of(runner_state: Mapping[str, Any] | None) -> str | None:
    """The machine a mission's child runs on, from what its runner recorded; None for this one."""
    node = (runner_state or {}).get(NODE_KEY)
    return node if isinstance(node, str) else None


class Handle(Protocol):
    @property
    def running(self) -> bool: ...

    @property
    def accepts_input(self) -> bool:
        """Whether the child's stdin is open for `write_stdin`."""
        ...

    def record(self) -> RunRecord: ...

    async def identify(self) -> RunRecord:
        """`record()` once it names the child for good (a local child's start time, read off the event loop:
        reading it while the child is still starting blocks for milliseconds). Awaited before `wait`."""
        ...

    async def wait(self) -> ExitStatus:
        """The child's exit status once it has ended (and whatever it left in its group is gone).

        Awaited by exactly one task; everyone else waits for the mission's end.
        """
        ...

    def signal_group(self, sig: signal.Signals) -> bool:
        """Send `sig` to the child's whole process group; False once it has ended."""
        ...

    async def write_stdin(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...


class Runner(Protocol):
    name: str
    takes_slot: bool
    """Whether its missions count against max_concurrent (a run inside the server holds no process)."""

    async def start(self, launch: Launch) -> Handle: ...

    async def adopt(self, mission_id: str, record: RunRecord) -> Handle | None:
        """The child an earlier server started, if it still runs; None if it has ended."""
        ...

    async def find(self, mission_id: str) -> RunRecord | None:
        """A child whose record was never stored (its server died right after starting it)."""
        ...

    async def settle(self, mission_id: str, record: RunRecord, mission_dir: Path) -> ExitStatus:
        """How a child that ended unwatched ended (`UNKNOWN_EXIT` if nobody could see), once whatever
        it left behind is ended."""
        ...
