"""Ports and services per mission: leased from the project's range, started for the mission, ended with it.

A port is leased in the room's database (one row per port, across every process on the
state directory) and checked free on the machine, lowest first. A `command` service is a
process-group leader started in the mission's workspace, ready once its port accepts a
connection; a `docker` service is a container started through the docker CLI, when a
daemon answers (and a clear error when none does: never a silent skip). Each is recorded
before it is waited on, so whoever ends the mission (this server, the next one after a
crash) finds and ends it. Setting up is all or nothing: whatever was started or leased
before a failure is ended and released again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Mapping
from pathlib import Path

import anyio

from overmind_mcp.errors import SpawnError
from overmind_mcp.runners.local.output import tail_bytes
from overmind_mcp.runners.local.process import ChildProcess, same_process, spawn
from overmind_mcp.workspaces.project import ProjectFile, Service
from overmind_mcp.workspaces.records import PortsExhausted, Records, ServiceRecord

_STOP_GRACE_S = 3.0
_DOCKER_TIMEOUT_S = 60.0
_READY_POLL_MAX_S = 0.2
_LOG_EXCERPT_BYTES = 1500
# Nothing of the server's own identity, nor of the session that started it, reaches a service.
_PRIVATE_PREFIXES = ("OVERMIND_", "CLAUDE_CODE_")
_PRIVATE = frozenset({"CLAUDECODE"})


def port_is_free(port: int) -> bool:
    """Whether nothing on this machine listens on `port` on the loopback address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers bind: connections of an earlier run still closing (TIME_WAIT) do not make it busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Services:
    def __init__(self, records: Records, logs_dir: Path, *, docker_bin: str = "docker") -> None:
        self._records = records
        self._logs_dir = logs_dir
        self._docker_bin = docker_bin
        # The processes this server started (its children, so its to reap), by (mission, service).
        self._children: dict[tuple[str, str], ChildProcess] = {}

    async def start(self, mission_id: str, project: ProjectFile, cwd: Path, repo: Path) -> dict[str, str]:
        """Lease a port per service and start the services; the variables the mission's environment gets.

        All or nothing: on any failure, what was started is ended and every port released.
        """
        if not project.services:
            return {}
        low, high = project.isolation.port_range
        try:
            ports = await self._records.lease_ports(
                mission_id, str(repo), list(project.services), project.isolation.port_range, port_is_free
            )
        except PortsExhausted as exc:
            raise SpawnError(
                f"no free port left in {low}-{high} for the {len(project.services)} service(s) of {project.path} "
                f"({exc}): widen [isolation] port_range, or end missions that hold ports"
            ) from None
        env = project.port_variables(ports)
        try:
            for name, service in project.services.items():
                if service.kind == "command":
                    await self._start_command(mission_id, name, service, ports[name], cwd, env)
                elif service.kind == "docker":
                    await self._start_container(mission_id, name, service, ports[name], project.path)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.stop(mission_id)
            raise
        return env

    async def stop(self, mission_id: str) -> list[str]:
        """End every service of the mission and release its ports; what could not be ended, said in words."""
        problems = []
        for record in await self._records.services(mission_id):
            try:
                if record.kind == "docker":
                    await self._stop_container(record)
                else:
                    await self._stop_process(record)
            except (OSError, SpawnError) as exc:
                problems.append(f"service {record.service}: {exc}")
                continue
            await self._records.remove_service(mission_id, record.service)
        await self._records.release_ports(mission_id)
        return problems

    # -- programs ------------------------------------------------------------------------------

    async def _start_command(
        self, mission_id: str, name: str, service: Service, port: int, cwd: Path, ports: Mapping[str, str]
    ) -> None:
        assert service.command is not None
        argv = [word.replace("{port}", str(port)) for word in service.command]
        log = self._log_path(mission_id, name)
        env = {key: value for key, value in os.environ.items() if not _private(key)}
        env.update(service.env)
        env.update(ports)
        env.update({"PORT": str(port), "OVERMIND_MISSION_ID": mission_id, "OVERMIND_SERVICE": name})
        try:
            process = spawn(argv, cwd=cwd, env=env, stdout_path=log, stderr_path=log)
        except SpawnError as exc:
            raise SpawnError(f"service {name!r}: {exc}") from None
        self._children[(mission_id, name)] = process
        record = await process.identify()
        await self._records.add_service(
            ServiceRecord(mission_id, name, "command", port, pid=process.pid, start_time=record.start_time)
        )
        exited: list[str] = []

        async def watch_exit() -> None:
            status = await process.wait()
            exited.append(f"exit code {status.code}" if status.code is not None else f"signal {status.signal}")
            ready.cancel_scope.cancel()

        accepted = False
        async with anyio.create_task_group() as ready:
            ready.start_soon(watch_exit)
            accepted = await _accepts(port, service.ready_timeout_s)
            ready.cancel_scope.cancel()
        if accepted:
            return
        output = tail_bytes(log, _LOG_EXCERPT_BYTES).strip() or "(no output)"
        if exited:
            raise SpawnError(f"service {name!r} ended ({exited[0]}) before it listened on port {port}: {output}")
        raise SpawnError(
            f"service {name!r} did not accept connections on port {port} within {service.ready_timeout_s:g}s "
            f"(it must listen on $PORT or {{port}}): {output}"
        )

    async def _stop_process(self, record: ServiceRecord) -> None:
        process = self._children.pop((record.mission_id, record.service), None)
        if process is None:
            # Started by a server that is gone: found again by pid and start time, never by a bare pid.
            if record.pid is None or not same_process(record.pid, record.start_time):
                return
            process = ChildProcess.adopt(record.pid, record.start_time or 0.0, record.mission_id)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not process.signal_group(sig):
                break
            with anyio.move_on_after(_STOP_GRACE_S):
                await process.wait()
                return

    def _log_path(self, mission_id: str, name: str) -> Path:
        directory = self._logs_dir / mission_id
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return directory / f"{name}.log"

    # -- containers ----------------------------------------------------------------------------

    async def _start_container(self, mission_id: str, name: str, service: Service, port: int, source: Path) -> None:
        assert service.docker is not None and service.port is not None
        answered, detail = await self._docker("info", "--format", "{{.ServerVersion}}")
        if not answered:
            raise SpawnError(
                f"service {name!r} runs in Docker ({service.docker}), but {detail}: start the Docker daemon, "
                f"or take the service out of {source}"
            )
        container = f"overmind-{mission_id}-{name}".lower()
        # Recorded first: a server that dies while the image downloads leaves a name to remove.
        await self._records.add_service(ServiceRecord(mission_id, name, "docker", port, container=container))
        arguments = ["run", "--detach", "--rm", "--name", container, "--label", f"overmind.mission={mission_id}"]
        arguments += ["--publish", f"127.0.0.1:{port}:{service.port}"]
        for key, value in service.env.items():
            arguments += ["--env", f"{key}={value}"]
        started, detail = await self._docker(*arguments, service.docker)
        if not started:
            raise SpawnError(f"service {name!r}: docker run {service.docker} failed: {detail}")
        if not await _accepts(port, service.ready_timeout_s):
            raise SpawnError(
                f"service {name!r} ({service.docker}) did not accept connections on port {port} "
                f"within {service.ready_timeout_s:g}s"
            )

    async def _stop_container(self, record: ServiceRecord) -> None:
        assert record.container is not None
        removed, detail = await self._docker("rm", "--force", record.container)
        if not removed and "no such container" not in detail.lower():
            raise SpawnError(f"docker rm {record.container} failed: {detail}")

    async def _docker(self, *arguments: str) -> tuple[bool, str]:
        """Run the docker CLI; whether it succeeded, and what it said (or why it could not run)."""
        try:
            with anyio.fail_after(_DOCKER_TIMEOUT_S):
                done = await anyio.run_process([self._docker_bin, *arguments], check=False)
        except FileNotFoundError:
            return False, f"the {self._docker_bin} command is not installed"
        except TimeoutError:
            return False, f"{self._docker_bin} {arguments[0]} did not answer within {_DOCKER_TIMEOUT_S:g}s"
        said = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
        if done.returncode != 0 and arguments[0] == "info":
            first = said.splitlines()[-1] if said else f"exit code {done.returncode}"
            return False, f"no Docker daemon answers ({first})"
        return done.returncode == 0, said


async def _accepts(port: int, timeout_s: float) -> bool:
    """Whether something accepts connections on the loopback `port` within `timeout_s`.

    Asked again with a growing pause: nothing announces that a program has begun to listen.
    """
    pause = 0.01
    with anyio.move_on_after(timeout_s):
        while True:
            with contextlib.suppress(OSError):
                stream = await anyio.connect_tcp("127.0.0.1", port)
                await stream.aclose()
                return True
            await anyio.sleep(pause)
            pause = min(pause * 2, _READY_POLL_MAX_S)
    return False


def _private(key: str) -> bool:
    return key in _PRIVATE or key.startswith(_PRIVATE_PREFIXES)
