"""The ray runner: each run of a mission is a detached, named actor on a node that Ray chooses.

The server (the coordinator) is a Ray driver. For each run it creates an actor named after
the mission (`<mission id>.<run token>`) in a namespace of the state directory, on a node
that has the resources the mission asked for (spread over the nodes otherwise). The actor
starts the child there (actor.py, keeper.py); the coordinator's handle pulls its output and
appends it to the mission's own files, so the follower, `logs`, `result` and the console read
a Ray child exactly as a local one. Signals and session input go through the actor. The actor
outlives the coordinator: a later server finds it by the mission's record (or by its name)
and pulls on from where the mission's files end, up to the child's real exit status. An actor
that dies with its node ends its run as lost, with the node's death as the reason.

`ray` is imported only when a Ray mission is first started or adopted: a server that has the
runner but no Ray mission pays nothing for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import secrets
import signal
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from overmind_mcp.core.exits import UNKNOWN_EXIT, ExitStatus
from overmind_mcp.errors import InvalidRequest, SpawnError
from overmind_mcp.runners.base import NODE_KEY, Handle, Launch, RunRecord
from overmind_mcp.runners.ray.protocol import ActorLaunch, ActorState, Chunk, Exit, Started, StartFailed
from overmind_mcp.storage import files

logger = logging.getLogger("overmind_mcp")

# Ray's names for what it counts itself; anything else a mission asks for is a custom resource.
_CPU, _GPU, _MEMORY = "CPU", "GPU", "memory"
# A transient loss of contact with an actor (Ray retries the connection): how long to wait before asking again.
_UNAVAILABLE_RETRY_S = 0.5


def namespace_for(home: Path) -> str:
    """The Ray namespace of a state directory: servers sharing one see the same actors, others none."""
    return "overmind-" + hashlib.sha256(str(home.expanduser().resolve()).encode()).hexdigest()[:16]


class _Driver:
    """This process's connection to the cluster: Ray allows one per process, so runners share it."""

    _lock = threading.Lock()
    _users = 0
    _ours = False
    _address: str | None = None

    @classmethod
    def acquire(cls, address: str, namespace: str) -> None:
        import ray

        with cls._lock:
            if not ray.is_initialized():
                ray.init(
                    address=address,
                    namespace=namespace,
                    # Nothing from the workers reaches this process's output: on stdio that is the MCP channel.
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
                cls._ours, cls._address = True, address
            elif cls._address not in (None, address):
                raise SpawnError(f"this process is already connected to the Ray cluster at {cls._address}")
            cls._users += 1

    @classmethod
    def release(cls) -> None:
        import ray

        with cls._lock:
            cls._users -= 1
            if cls._users == 0 and cls._ours:
                ray.shutdown()
                cls._ours, cls._address = False, None


class RayRunner:
    name = "ray"
    # Its child holds no process here: the cluster's resources, not max_concurrent, bound how many run.
    takes_slot = False

    def __init__(self, address: str | None, namespace: str, *, start_timeout_s: float = 60.0) -> None:
        # "auto": the cluster this machine is a node of; never a new local cluster.
        self.address = address or "auto"
        self.namespace = namespace
        self.start_timeout_s = start_timeout_s
        self._connected = False
        self._connecting = anyio.Lock()
        self._remote_class: Any = None
        self._coordinator_ip: str | None = None

    # -- connection ------------------------------------------------------------------------------

    async def _connect(self) -> None:
        async with self._connecting:
            if self._connected:
                return
            try:
                with anyio.fail_after(self.start_timeout_s):
                    await anyio.to_thread.run_sync(
                        _Driver.acquire, self.address, self.namespace, abandon_on_cancel=True
                    )
            except TimeoutError:
                raise SpawnError(
                    f"the Ray cluster at {self.address} did not answer within {self.start_timeout_s:g}s "
                    "(OVERMIND_RAY_ADDRESS; `overmind doctor` checks it)"
                ) from None
            except SpawnError:
                raise
            except Exception as exc:
                raise SpawnError(
                    f"cannot connect to the Ray cluster at {self.address}: {exc} (OVERMIND_RAY_ADDRESS; "
                    "`overmind doctor` checks it)"
                ) from None
            import ray

            from overmind_mcp.runners.ray.actor import MissionActor

            self._remote_class = ray.remote(MissionActor)
            self._coordinator_ip = ray.util.get_node_ip_address()
            self._connected = True

    async def aclose(self) -> None:
        """Leave the cluster (the actors stay: they outlive their server by design)."""
        if self._connected:
            self._connected = False
            await anyio.to_thread.run_sync(_Driver.release)

    # -- the runner seam ---------------------------------------------------------------------

    async def start(self, launch: Launch) -> Handle:
        await self._connect()
        options = await self._placement(launch.resources)
        actor_launch = ActorLaunch(
            mission_id=launch.mission_id,
            actor_name=f"{launch.mission_id}.{secrets.token_hex(4)}",
            namespace=self.namespace,
            argv=list(launch.argv),
            cwd=str(launch.cwd),
            env_set={key: value for key, value in launch.env.items() if os.environ.get(key) != value},
            env_unset=frozenset(os.environ) - frozenset(launch.env),
            stdin_pipe=launch.stdin_pipe,
            stdin_data=await anyio.Path(launch.stdin_path).read_bytes() if launch.stdin_path is not None else None,
            stdout_path=str(launch.stdout_path),
            stderr_path=str(launch.stderr_path),
            stdout_base=_size(launch.stdout_path),
            stderr_base=_size(launch.stderr_path),
            loopback_callback=launch.callback_url if _is_loopback_url(launch.callback_url) else None,
            coordinator_ip=self._coordinator_ip,
        )
        actor = self._remote_class.options(
            name=actor_launch.actor_name,
            namespace=self.namespace,
            lifetime="detached",
            max_restarts=0,
            max_task_retries=0,
            scheduling_strategy="SPREAD",
            **options,
        ).remote(actor_launch)
        started: Started | StartFailed | None = None
        try:
            with anyio.move_on_after(self.start_timeout_s):
                started = await actor.start.remote()
        except Exception as exc:
            started = StartFailed(f"its actor failed on its node: {_first_line(exc)}")
        finally:
            if not isinstance(started, Started):
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_kill, actor)
        if started is None:
            raise SpawnError(
                f"no node of the Ray cluster took it within {self.start_timeout_s:g}s: "
                f"those with the resources it asks for ({_describe(launch.resources)}) are busy"
            )
        if isinstance(started, StartFailed):
            raise SpawnError(started.reason)
        return RayHandle(actor, actor_launch, started, stdout_at=0, stderr_at=0, exited=None, accepts_input=True)

    async def adopt(self, mission_id: str, record: RunRecord) -> Handle | None:
        """The run an earlier server started, if its actor is still there, even if its child has ended
        meanwhile: the actor kept the child's output and real exit status for whoever comes next.

        While the cluster does not answer, the run is followed on as it was, and re-attached once it does.
        """
        if not isinstance(record.extra.get("actor"), str):
            return None
        try:
            return await self.reattach(mission_id, record)
        except SpawnError as unreachable:
            logger.warning("re-attaching %s later: %s", mission_id, unreachable)
            return _Reattaching(self, mission_id, record)

    async def reattach(self, mission_id: str, record: RunRecord) -> RayHandle | None:
        name, namespace = record.extra.get("actor"), record.extra.get("namespace", self.namespace)
        if not isinstance(name, str) or not isinstance(namespace, str):
            return None
        await self._connect()
        found = await self._state(name, namespace)
        if found is None:
            return None
        actor, state = found
        if state.launch.mission_id != mission_id or state.started is None:
            return None
        launch = state.launch
        return RayHandle(
            actor,
            launch,
            state.started,
            # What the mission's files already hold of this run: pulled on from there, never twice.
            stdout_at=_size(Path(launch.stdout_path)) - launch.stdout_base,
            stderr_at=_size(Path(launch.stderr_path)) - launch.stderr_base,
            exited=state.exit,
            accepts_input=state.accepts_input,
        )

    async def find(self, mission_id: str) -> RunRecord | None:
        """The run of a mission whose server died before storing its record: its actor, by its name."""
        await self._connect()
        import ray

        names = await anyio.to_thread.run_sync(ray.util.list_named_actors, True)
        runs = []
        for entry in names:
            if entry.get("namespace") == self.namespace and str(entry.get("name", "")).startswith(f"{mission_id}."):
                found = await self._state(entry["name"], self.namespace)
                if found is not None and found[1].started is not None:
                    runs.append(found[1])
        if not runs:
            return None
        state = max(runs, key=lambda run: run.started.start_time if run.started else 0.0)
        assert state.started is not None
        return _record(state.launch, state.started)

    async def settle(self, mission_id: str, record: RunRecord, mission_dir: Path) -> ExitStatus:
        """Nothing to end from here (a child's keeper kills its whole group when its actor goes), and nobody
        left to say how it ended: an actor that still knew would have been re-attached."""
        return UNKNOWN_EXIT

    # -- placement ---------------------------------------------------------------------------

    async def _placement(self, resources: Mapping[str, float]) -> dict[str, Any]:
        """Ray's actor options for what the mission asks; refused at once if no node could ever satisfy it."""
        import ray

        nodes = [node for node in await anyio.to_thread.run_sync(ray.nodes) if node.get("Alive")]
        if resources and not any(_fits(resources, node.get("Resources", {})) for node in nodes):
            offered = sorted(
                {key for node in nodes for key in node.get("Resources", {}) if not key.startswith("node:")}
            )
            raise InvalidRequest(
                f"resources {_describe(resources)}: no live node of the Ray cluster has that much "
                f"(its nodes offer: {', '.join(offered) or 'nothing'})"
            )
        custom = {key: value for key, value in resources.items() if key not in (_CPU, _GPU, _MEMORY)}
        # A child's own CPU use is not Ray's to count unless the mission says so.
        options: dict[str, Any] = {"num_cpus": resources.get(_CPU, 0)}
        if _GPU in resources:
            options["num_gpus"] = resources[_GPU]
        if _MEMORY in resources:
            options["memory"] = resources[_MEMORY]
        if custom:
            options["resources"] = custom
        return options

    async def _state(self, name: str, namespace: str) -> tuple[Any, ActorState] | None:
        import ray

        try:
            actor = await anyio.to_thread.run_sync(ray.get_actor, name, namespace)
            state: ActorState = await actor.state.remote()
        except (ValueError, ray.exceptions.RayActorError):
            return None
        return actor, state


class RayHandle:
    """One run of a mission on its node, seen from the coordinator."""

    def __init__(
        self,
        actor: Any,
        launch: ActorLaunch,
        started: Started,
        *,
        stdout_at: int,
        stderr_at: int,
        exited: Exit | None,
        accepts_input: bool,
    ) -> None:
        self._actor = actor
        self._launch = launch
        self._started = started
        self._stdout_at = stdout_at
        self._stderr_at = stderr_at
        self._accepts_input = accepts_input and launch.stdin_pipe and exited is None
        self._ended = False

    @property
    def running(self) -> bool:
        return not self._ended

    @property
    def accepts_input(self) -> bool:
        return self._accepts_input and not self._ended

    def record(self) -> RunRecord:
        return _record(self._launch, self._started)

    async def identify(self) -> RunRecord:
        return self.record()

    async def wait(self) -> ExitStatus:
        """Pull the child's output into the mission's files until it ends; then let its actor go."""
        import ray

        while True:
            try:
                chunk: Chunk = await self._actor.pull.remote(self._stdout_at, self._stderr_at)
            except ray.exceptions.ActorUnavailableError:
                await anyio.sleep(_UNAVAILABLE_RETRY_S)
                continue
            except ray.exceptions.RayActorError as exc:
                status = ExitStatus(code=None, signal=None, lost=await self._why_lost(exc))
                break
            self._stdout_at += files.append_private(Path(self._launch.stdout_path), chunk.stdout)
            self._stderr_at += files.append_private(Path(self._launch.stderr_path), chunk.stderr)
            if chunk.exit is not None:
                lost = f"{chunk.exit.lost} (node {self._started.node.label})" if chunk.exit.lost else None
                status = ExitStatus(code=chunk.exit.code, signal=chunk.exit.signal, lost=lost)
                break
        self._ended = True
        with anyio.CancelScope(shield=True):
            await self._release()
        return status

    async def _release(self) -> None:
        with contextlib.suppress(Exception):
            await self._actor.finish.remote()
        await anyio.to_thread.run_sync(_kill, self._actor)

    async def _why_lost(self, error: Exception) -> str:
        import ray

        node = self._started.node
        with contextlib.suppress(Exception):
            for info in await anyio.to_thread.run_sync(ray.nodes):
                if info.get("NodeID") == node.node_id and not info.get("Alive"):
                    why = info.get("DeathReasonMessage") or "no reason given"
                    return f"its Ray node {node.label} ({node.hostname}) died: {why}"
        return f"its actor on Ray node {node.label} died: {_first_line(error)}"

    def signal_group(self, sig: signal.Signals) -> bool:
        if self._ended:
            return False
        # Sent, not awaited (the ladder awaits the end instead); the future still collects the answer.
        self._actor.signal.remote(int(sig)).future()
        return True

    async def write_stdin(self, data: bytes) -> None:
        if not self.accepts_input:
            raise BrokenPipeError("the child's input is closed")
        try:
            await self._actor.write_stdin.remote(data)
        except Exception as exc:
            raise BrokenPipeError(f"the child's input is gone: {_first_line(exc)}") from None

    def close_stdin(self) -> None:
        if self._accepts_input and not self._ended:
            self._actor.close_stdin.remote().future()
        self._accepts_input = False


class _Reattaching:
    """A run whose cluster did not answer when this server took it over: followed on once it does.

    Nothing reaches the child meanwhile; a SIGKILL (the end of a kill, or of the server's
    shutdown) gives up on it, and the run ends as lost: its actor may still run it.
    """

    _FIRST_RETRY_S, _LAST_RETRY_S = 1.0, 30.0

    def __init__(self, runner: RayRunner, mission_id: str, record: RunRecord) -> None:
        self._runner = runner
        self._mission_id = mission_id
        self._record = record
        self._attached: RayHandle | None = None
        self._given_up = anyio.Event()
        self._ended = False

    @property
    def running(self) -> bool:
        return self._attached.running if self._attached is not None else not self._ended

    @property
    def accepts_input(self) -> bool:
        return self._attached is not None and self._attached.accepts_input

    def record(self) -> RunRecord:
        return self._attached.record() if self._attached is not None else self._record

    async def identify(self) -> RunRecord:
        return self.record()

    async def wait(self) -> ExitStatus:
        delay = self._FIRST_RETRY_S
        while self._attached is None:
            # No event says that a cluster is back: ask again, less and less often.
            with anyio.move_on_after(delay):
                await self._given_up.wait()
            if self._given_up.is_set():
                self._ended = True
                actor = self._record.extra.get("actor")
                return ExitStatus(
                    code=None,
                    signal=None,
                    lost=f"its Ray cluster ({self._runner.address}) did not answer, so nothing reached it; "
                    f"its actor {actor} may still run it there",
                )
            delay = min(delay * 2, self._LAST_RETRY_S)
            try:
                handle = await self._runner.reattach(self._mission_id, self._record)
            except SpawnError:
                continue
            if handle is None:
                self._ended = True
                return ExitStatus(code=None, signal=None, lost="its actor was gone when its Ray cluster answered again")
            self._attached = handle
        return await self._attached.wait()

    def signal_group(self, sig: signal.Signals) -> bool:
        if self._attached is not None:
            return self._attached.signal_group(sig)
        if self._ended:
            return False
        if sig == signal.SIGKILL:
            self._given_up.set()
        return True

    async def write_stdin(self, data: bytes) -> None:
        if self._attached is None:
            raise BrokenPipeError("its Ray cluster does not answer")
        await self._attached.write_stdin(data)

    def close_stdin(self) -> None:
        if self._attached is not None:
            self._attached.close_stdin()


def _record(launch: ActorLaunch, started: Started) -> RunRecord:
    return RunRecord(
        pid=started.pid,
        pgid=started.pid,
        start_time=started.start_time,
        extra={
            "actor": launch.actor_name,
            "namespace": launch.namespace,
            NODE_KEY: started.node.label,
            "node_id": started.node.node_id,
            "hostname": started.node.hostname,
        },
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _kill(actor: Any) -> None:
    import ray

    with contextlib.suppress(Exception):
        ray.kill(actor, no_restart=True)


def _fits(asked: Mapping[str, float], offered: Mapping[str, float]) -> bool:
    return all(offered.get(key, 0) >= amount for key, amount in asked.items())


def _describe(resources: Mapping[str, float]) -> str:
    return ", ".join(f"{key}={amount:g}" for key, amount in sorted(resources.items())) or "none"


def _is_loopback_url(url: str | None) -> bool:
    if url is None:
        return False
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
