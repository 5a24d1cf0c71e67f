"""What the coordinator and a mission's actor say to each other (plain dataclasses, pickled by Ray)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# One pull returns at most this much of each stream; a chatty child is read in several pulls.
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ActorLaunch:
    """Everything an actor needs to start its mission's child, and to be found again by a later server."""

    mission_id: str
    actor_name: str
    namespace: str
    argv: list[str]
    cwd: str
    # The child's environment is its node's, changed as the server changed its own for the child.
    env_set: Mapping[str, str]
    env_unset: frozenset[str]
    stdin_pipe: bool
    # What the child reads on stdin when it has no pipe (a Claude task's prompt): the coordinator's
    # file does not exist on the node, so its bytes travel with the launch. None: /dev/null.
    stdin_data: bytes | None
    # The mission's own files, on the coordinator, that this run's output is appended to.
    stdout_path: str
    stderr_path: str
    # Where the child's output already ended in the mission's files when this run started: the
    # coordinator's file size minus these is how much of this run it has (exact after a crash).
    stdout_base: int
    stderr_base: int
    # The loopback endpoint the child calls back to, if any, and the coordinator's node address:
    # a child on another host could not reach it, and is refused rather than left to fail.
    loopback_callback: str | None = None
    coordinator_ip: str | None = None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    ip: str
    hostname: str

    @property
    def label(self) -> str:
        """How results and `ps` name the node: its address and the head of its Ray node id."""
        return f"{self.ip} {self.node_id[:8]}"


@dataclass(frozen=True, slots=True)
class Started:
    node: NodeInfo
    pid: int
    start_time: float


@dataclass(frozen=True, slots=True)
class StartFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class Exit:
    code: int | None
    signal: int | None
    # Why nobody saw how it ended, when nobody did.
    lost: str | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """New output since the offsets asked for; `exit` once the child has ended and this is the last of it."""

    stdout: bytes = b""
    stderr: bytes = b""
    exit: Exit | None = None


@dataclass(frozen=True, slots=True)
class ActorState:
    """What a re-attaching server asks an actor: its launch, its child, and whether it has ended."""

    launch: ActorLaunch
    started: Started | None
    exit: Exit | None
    accepts_input: bool
