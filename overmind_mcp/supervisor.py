"""The supervisor: starts missions, follows them, ends them, and answers questions about them.

It knows nothing of MCP. Data flows one way: a request starts a process; the process
writes its output file; the follower parses each new line into events; events update
the mission in memory and, at the moments that matter, in the store; every change
wakes whoever waits.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.abc
import anyio.lowlevel

from overmind_mcp import __version__
from overmind_mcp.akasha import FILENAME as AKASHA_FILENAME
from overmind_mcp.akasha import Akasha
from overmind_mcp.errors import AccessDenied, Conflict, InvalidRequest, NotFound, Refused
from overmind_mcp.events import Event, to_text
from overmind_mcp.identity import ROOT, Caller, Credentials
from overmind_mcp.mission import Mission
from overmind_mcp.models import (
    LIVE,
    KillOutcome,
    KillResult,
    LogPage,
    MissionResult,
    MissionSummary,
    PsResult,
    ServerStatus,
    Spawned,
    SpawnRequest,
    Totals,
    Usage,
    WaitResult,
)
from overmind_mcp.names import check_name, new_id, new_name
from overmind_mcp.output import LineReader, read_page, tail_bytes
from overmind_mcp.process import (
    ChildProcess,
    ExitStatus,
    kill_leftovers,
    process_start_time,
    same_process,
    spawn,
)
from overmind_mcp.providers import claude, raw
from overmind_mcp.recovery import find_orphans
from overmind_mcp.settings import Settings
from overmind_mcp.store import MissionRow, Store
from overmind_mcp.watch import FileWatcher, Wakeup

logger = logging.getLogger("overmind_mcp")

ProgressCallback = Callable[[float, float | None, str], Awaitable[None]]

# Variables a child must not inherit: the CLI refuses to start nested under them, and
# the mission identity is ours to set.
_HIDDEN_ENV = frozenset(
    {
        "CLAUDECODE",
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAUDE_CODE_SESSION_ID",
        "OVERMIND_MISSION_ID",
        "OVERMIND_MISSION_NAME",
        "OVERMIND_PARENT_ID",
        "OVERMIND_TOKEN",
    }
)
_TOKEN_VARIABLE = "OVERMIND_TOKEN"
_STDERR_EXCERPT_BYTES = 2000
_WAIT_REPORT_INTERVAL_S = 1.0
_PAGE_BYTES = 64 * 1024
_RECENT_FINISHED = 1024


class Broadcast:
    """Wakes every current waiter at once; used as "something changed, look again"."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        watcher: FileWatcher,
        task_group: anyio.abc.TaskGroup,
        akasha: Akasha,
    ):
        self.settings = settings
        # Shared memory; the supervisor only uses it for `recall_into_prompt` and `remember_result`.
        self.akasha = akasha
        self.server_id = new_id()
        self._store = store
        self._watcher = watcher
        self._tasks = task_group
        self._live: dict[str, Mission] = {}
        # Recently finished missions stay in memory so `wait` and `result` answer without a query.
        self._finished: dict[str, Mission] = {}
        self._changed = Broadcast()
        self._started = time.monotonic()
        self.credentials = Credentials()
        # Where delegating children call back in; set by whoever serves the HTTP endpoint.
        self.delegation_url: str | None = None

    @classmethod
    @asynccontextmanager
    async def running(cls, settings: Settings) -> AsyncIterator[Supervisor]:
        """A supervisor for the duration of the block; its children are ended when it closes."""
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings.missions_dir.mkdir(exist_ok=True, mode=0o700)
        store = await Store.open(settings.database_path)
        akasha: Akasha | None = None
        try:
            akasha = await Akasha.open(settings.home / AKASHA_FILENAME, project_dir=settings.project)
            async with anyio.create_task_group() as task_group:
                watcher = FileWatcher()
                task_group.start_soon(watcher.run)
                supervisor = cls(settings, store, watcher, task_group, akasha)
                await supervisor._start()
                try:
                    yield supervisor
                finally:
                    with anyio.CancelScope(shield=True):
                        await supervisor.shutdown()
                    task_group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                if akasha is not None:
                    await akasha.close()
                await store.close()

    async def _start(self) -> None:
        """Register this server, take over what crashed servers left behind, prune old missions."""
        me = os.getpid()
        await self._store.register_server(self.server_id, me, process_start_time(me) or 0.0, time.time())
        orphans = await find_orphans(self._store, self.server_id)
        for row in orphans.running:
            mission = Mission(row, deque(maxlen=self.settings.tail_lines))
            mission.process = ChildProcess.adopt(row.pid or 0, row.proc_start or 0.0, row.id)
            self._live[row.id] = mission
            await self._store.add_event(row.id, time.time(), "adopted", {"server": self.server_id})
            self._tasks.start_soon(self._supervise, mission)
        for row in orphans.ended:
            await self._settle(row)
        if self.settings.retention_days:
            pruned = await self._store.prune(time.time() - self.settings.retention_days * 86400)
            for row in pruned:
                shutil.rmtree(Path(row.output_path).parent, ignore_errors=True)

    async def _settle(self, row: MissionRow) -> None:
        """Record the end of a mission whose process ended while no server was watching."""
        mission = Mission(row, deque(maxlen=self.settings.tail_lines))
        ended_at = self._replay(mission)
        if row.pgid is not None:
            kill_leftovers(row.pgid, row.id, signal.SIGKILL)
        await self._finish(mission, ExitStatus(code=None, signal=None), ended_at=ended_at)

    def _replay(self, mission: Mission) -> float | None:
        """Fold a mission's whole output in; returns when its output last changed."""
        output, stderr = Path(mission.row.output_path), Path(mission.row.stderr_path)
        if not output.exists():
            return None
        with LineReader(output) as reader:
            while self._ingest(mission, reader, final=True) is not None:
                pass
        return max(path.stat().st_mtime for path in (output, stderr) if path.exists())

    # -- spawn -------------------------------------------------------------------------------

    async def spawn(self, request: SpawnRequest, caller: Caller = ROOT) -> Spawned:
        provider = _provider_of(request)
        parent = await self._parent_for(request.parent, caller)
        request = await self._within_parent(request, parent)
        if request.recall_into_prompt and request.prompt:
            request = await self._with_memories(request, parent)
        cwd = self._cwd_for(request.cwd, parent)
        mission_id = new_id()
        directory = self.settings.missions_dir / mission_id
        directory.mkdir(mode=0o700)
        row = MissionRow(
            id=mission_id,
            name=check_name(request.name) if request.name else new_name(),
            parent_id=parent.id if parent else None,
            root_id=parent.root_id if parent else mission_id,
            depth=parent.depth + 1 if parent else 0,
            provider=provider,
            options=request.model_dump(exclude_defaults=True),
            cwd=str(cwd),
            status="running",
            output_path=str(directory / "output.jsonl"),
            stderr_path=str(directory / "stderr.log"),
            created_at=time.time(),
            server_id=self.server_id,
        )
        argv, secrets = ([*(request.command or [])], {}) if provider == "raw" else self._claude_argv(request, row)
        for _attempt in range(3):
            try:
                await self._store.insert(row)
                break
            except Conflict:
                if request.name:
                    self.credentials.revoke(row.id)
                    raise
                row.name = new_name()
        mission = Mission(row, deque(maxlen=self.settings.tail_lines))
        try:
            process = spawn(
                argv,
                cwd=cwd,
                env=self._child_env(row, {**request.env, **secrets}),
                stdout_path=Path(row.output_path),
                stderr_path=Path(row.stderr_path),
            )
        except Exception as exc:
            self.credentials.revoke(row.id)
            row.status, row.end_reason, row.ended_at = "failed", str(exc), time.time()
            await self._store.update(row.id, status=row.status, end_reason=row.end_reason, ended_at=row.ended_at)
            raise
        mission.process = process
        row.pid, row.pgid, row.proc_start, row.started_at = process.pid, process.pgid, process.start_time, time.time()
        await self._store.update(
            row.id, pid=row.pid, pgid=row.pgid, proc_start=row.proc_start, started_at=row.started_at
        )
        self._live[row.id] = mission
        if parent and parent.id in self._live:
            self._live[parent.id].children.add(row.id)
        self._tasks.start_soon(self._supervise, mission)
        self._changed.fire()
        return Spawned(id=row.id, name=row.name, status="running", parent=row.parent_id, pid=row.pid)

    def _claude_argv(self, request: SpawnRequest, row: MissionRow) -> tuple[list[str], dict[str, str]]:
        """The child's argv, and the secrets its environment must carry."""
        allowed_tools, mcp_config, secrets = list(request.allowed_tools), [], {}
        if self._delegates(request, row):
            # The child reaches this very server, under its own identity, as `overmind`.
            assert self.delegation_url is not None
            secrets[_TOKEN_VARIABLE] = self.credentials.mint(row.id)
            mcp_config.append(claude.mcp_server_config("overmind", self.delegation_url, _TOKEN_VARIABLE))
            allowed_tools.append("mcp__overmind")
        options = claude.ClaudeOptions(
            prompt=request.prompt,
            model=request.model,
            allowed_tools=allowed_tools,
            disallowed_tools=request.disallowed_tools,
            permission_mode=request.permission_mode,
            max_turns=request.max_turns,
            max_budget_usd=request.max_budget_usd,
            append_system_prompt=request.append_system_prompt,
            mcp_config=mcp_config,
        )
        return claude.build_argv(self.settings.claude_bin, options), secrets

    def _delegates(self, request: SpawnRequest, row: MissionRow) -> bool:
        """Whether a Claude child gets overmind's tools: by default, while its own children would be allowed."""
        room = row.depth + 1 < self.settings.max_depth
        if request.delegate is None:
            return room and self.delegation_url is not None
        if request.delegate and not room:
            raise Refused(
                f"delegate=true: a mission at depth {row.depth} cannot have children "
                f"(max_depth {self.settings.max_depth})"
            )
        if request.delegate and self.delegation_url is None:
            raise InvalidRequest("delegate=true needs the server's HTTP endpoint, and this server has none")
        return request.delegate

    async def _within_parent(self, request: SpawnRequest, parent: MissionRow | None) -> SpawnRequest:
        """The request checked against the server's limits and the parent's own privileges.

        Privilege never grows down the tree: a child inherits what its parent may do and
        may ask for less, never more. Asking for more is refused, not quietly cut.
        """
        if request.permission_mode == "bypassPermissions" and not self.settings.allow_bypass:
            raise Refused(
                "permission_mode bypassPermissions is refused: the server's configuration does not allow it "
                "(OVERMIND_ALLOW_BYPASS); use acceptEdits with allowed_tools instead"
            )
        if parent is None:
            return request
        if parent.depth + 1 >= self.settings.max_depth:
            raise Refused(
                f"depth limit: {parent.name!r} is at depth {parent.depth} and max_depth is "
                f"{self.settings.max_depth}; do this work yourself instead of delegating it"
            )
        children = len(await self._store.list(parent_id=parent.id))
        if children >= self.settings.max_children:
            raise Refused(
                f"fan-out limit: {parent.name!r} already has {children} children "
                f"(max_children {self.settings.max_children})"
            )
        if parent.provider != "claude":
            return request
        granted = parent.options
        inherited: dict[str, Any] = {}
        if granted.get("allowed_tools"):
            extra = set(request.allowed_tools) - set(granted["allowed_tools"])
            if extra:
                raise Refused(f"allowed_tools {sorted(extra)} go beyond the parent's {granted['allowed_tools']}")
            inherited["allowed_tools"] = request.allowed_tools or list(granted["allowed_tools"])
        if granted.get("disallowed_tools"):
            inherited["disallowed_tools"] = sorted({*granted["disallowed_tools"], *request.disallowed_tools})
        parent_mode = granted.get("permission_mode")
        if request.permission_mode is None:
            inherited["permission_mode"] = parent_mode
        elif _MODE_RANK[request.permission_mode] > _MODE_RANK[parent_mode or "default"]:
            raise Refused(
                f"permission_mode {request.permission_mode} is more than the parent's {parent_mode or 'default'}"
            )
        for limit in ("max_budget_usd", "max_turns"):
            ceiling, asked = granted.get(limit), getattr(request, limit)
            if ceiling is not None and asked is not None and asked > ceiling:
                raise Refused(f"{limit} {asked} is more than the parent's {ceiling}")
            if ceiling is not None and asked is None:
                inherited[limit] = ceiling
        if granted.get("timeout_s") and parent.started_at:
            left = granted["timeout_s"] - (time.time() - parent.started_at)
            if request.timeout_s is None or request.timeout_s > left:
                inherited["timeout_s"] = max(left, 0.001)
        return request.model_copy(update=inherited)

    async def _with_memories(self, request: SpawnRequest, parent: MissionRow | None) -> SpawnRequest:
        """The request with the memories most relevant to its prompt added to the system prompt."""
        scope = self.akasha.scope(root_id=parent.root_id if parent else None)
        block = await self.akasha.context_for_prompt(request.prompt or "", scope.visible())
        if not block:
            return request
        system = "\n\n".join(part for part in (request.append_system_prompt, block) if part)
        return request.model_copy(update={"append_system_prompt": system})

    async def _parent_for(self, ref: str | None, caller: Caller) -> MissionRow | None:
        """The new mission's parent: the one named (within the caller's subtree), else the caller."""
        if ref is None:
            if caller.mission_id is None:
                return None
            ref = caller.mission_id
        parent = await self._resolve(ref)
        await self._check_visible(caller, parent)
        live = self._live.get(parent.id)
        if live is not None and live.stop_reason is not None:
            raise Conflict(f"parent {parent.name!r} is being stopped; it cannot take new children")
        return parent

    async def _check_visible(self, caller: Caller, row: MissionRow, *, strictly_below: bool = False) -> None:
        """A mission may act only on its own subtree; the top-level client, on everything."""
        if caller.mission_id is None:
            return
        ancestor: MissionRow | None = row
        if strictly_below:
            ancestor = await self._store.get(row.parent_id) if row.parent_id else None
        while ancestor is not None:
            if ancestor.id == caller.mission_id:
                return
            ancestor = await self._store.get(ancestor.parent_id) if ancestor.parent_id else None
        raise AccessDenied(f"mission {row.name!r} is not in your subtree: you may act only on missions you started")

    def _cwd_for(self, requested: str | None, parent: MissionRow | None) -> Path:
        if requested is None:
            return Path(parent.cwd) if parent else Path.cwd()
        cwd = Path(requested).expanduser()
        if not cwd.is_absolute():
            cwd = (Path(parent.cwd) if parent else Path.cwd()) / cwd
        if not cwd.is_dir():
            raise InvalidRequest(f"cwd {requested!r} is not an existing directory")
        return cwd.resolve()

    def _child_env(self, row: MissionRow, extra: dict[str, str]) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in _HIDDEN_ENV}
        env.update(extra)
        env["OVERMIND_MISSION_ID"] = row.id
        env["OVERMIND_MISSION_NAME"] = row.name
        if row.parent_id:
            env["OVERMIND_PARENT_ID"] = row.parent_id
        return env

    # -- following a mission -------------------------------------------------------------------

    async def _supervise(self, mission: Mission) -> None:
        process = mission.process
        assert process is not None
        timeout_s = mission.row.options.get("timeout_s")
        # Shielded: a cancellation from outside (the server being stopped) must not stop us
        # from reaping the child and recording how it ended; `shutdown` ends the child
        # instead, or cancels this scope for a detached mission it leaves running.
        mission.scope = anyio.CancelScope(shield=True)
        with mission.scope, self._watcher.watch(Path(mission.row.output_path)) as wakeup:
            async with anyio.create_task_group() as guards:
                if timeout_s:
                    # An adopted mission keeps the time it has left.
                    remaining = timeout_s - (time.time() - (mission.row.started_at or time.time()))
                    guards.start_soon(self._enforce_timeout, mission, max(remaining, 0.0))
                async with anyio.create_task_group() as follow:
                    follow.start_soon(self._follow, mission, wakeup)
                    exit_status = await process.wait()
                    wakeup.set()
                guards.cancel_scope.cancel()
            await self._finish(mission, exit_status)

    async def _follow(self, mission: Mission, wakeup: Wakeup) -> None:
        assert mission.process is not None
        with LineReader(Path(mission.row.output_path)) as reader:
            while True:
                # Checked before reading, so the read that follows sees everything the child wrote.
                exited = not mission.process.running
                while (changed := self._ingest(mission, reader, final=exited)) is not None:
                    if changed:
                        await self._on_progress(mission)
                    await anyio.lowlevel.checkpoint()
                if exited:
                    return
                await wakeup.wait()

    @staticmethod
    def _ingest(mission: Mission, reader: LineReader, *, final: bool) -> bool | None:
        """Fold the next chunk of output into the mission; None when there is nothing more to read."""
        lines = reader.read_chunk(final=final)
        if lines is None:
            return None
        parse = claude.parse_line if mission.row.provider == "claude" else raw.parse_line
        changed = False
        for _end, line in lines:
            changed |= mission.ingest(parse(line))
        return changed

    async def _on_progress(self, mission: Mission) -> None:
        session_id = mission.activity.session_id
        if session_id and session_id != mission.row.session_id:
            # Stored at once: it is what a restart resumes and what a person takes over.
            mission.row.session_id = session_id
            await self._store.update(mission.id, session_id=session_id)
        self._changed.fire()

    async def _enforce_timeout(self, mission: Mission, timeout_s: float) -> None:
        await anyio.sleep(timeout_s)
        if mission.stop_reason is None:
            mission.stop_reason = "timed_out"
            await self._terminate(mission, force=False)

    async def _finish(self, mission: Mission, exit_status: ExitStatus, *, ended_at: float | None = None) -> None:
        row = mission.row
        if mission.stop_reason is None:
            # Another process (a second server, the overmind command) may have ended it on request.
            stored = await self._store.get(row.id)
            if stored is not None and stored.stop_request:
                mission.stop_reason = "stopped"
                mission.ended_by = stored.stop_request
        row.status, row.end_reason = self._outcome(mission, exit_status)
        row.exit_code = exit_status.returncode
        row.ended_at = ended_at or time.time()
        row.result = self._result_record(mission)
        row.cost_usd = mission.activity.cost_usd
        row.num_turns = mission.activity.turns
        row.session_id = mission.activity.session_id or row.session_id
        self.credentials.revoke(row.id)
        # Waiters first: the output file already holds everything the store would say.
        self._live.pop(row.id, None)
        self._finished[row.id] = mission
        if len(self._finished) > _RECENT_FINISHED:
            del self._finished[next(iter(self._finished))]
        mission.ended.set()
        self._changed.fire()
        await self._store.update(
            row.id,
            status=row.status,
            end_reason=row.end_reason,
            exit_code=row.exit_code,
            ended_at=row.ended_at,
            result=row.result,
            cost_usd=row.cost_usd,
            num_turns=row.num_turns,
            session_id=row.session_id,
        )
        if row.options.get("remember_result"):
            try:
                await self.akasha.remember_result(row)
            except Exception:
                # The mission's outcome is recorded already; a memory that failed to save must not undo that.
                logger.exception("could not remember the result of %s", row.id)

    def _outcome(self, mission: Mission, exit_status: ExitStatus) -> tuple[str, str | None]:
        if mission.stop_reason == "timed_out":
            return "timed_out", f"timeout_s passed; ended by {mission.ended_by}"
        if mission.stop_reason is not None:
            killed = mission.ended_by == "SIGKILL" or exit_status.signal == signal.SIGKILL
            why = "the server shut down" if mission.stop_reason == "shutdown" else "ended on request"
            return ("killed" if killed else "stopped"), f"{why}; ended by {mission.ended_by}"
        result = mission.activity.result
        if not exit_status.known:
            # Adopted after a server crash: whoever reaped it took its exit status along.
            if mission.row.provider == "claude" and result is not None:
                verdict = "failed" if result.is_error else "succeeded"
                return verdict, "it ended after a server restart: its outcome is its result line (exit code unknown)"
            return "lost", "it ended while no server could see its exit status, and left no result"
        how = _describe_exit(exit_status)
        if mission.row.provider == "raw":
            return ("succeeded", None) if exit_status.code == 0 else ("failed", how)
        if result is None:
            return "failed", f"{how} without a result"
        if result.is_error:
            return "failed", f"the CLI reported an error ({result.subtype}, {how})"
        if exit_status.code != 0:
            return "failed", how
        return "succeeded", None

    def _result_record(self, mission: Mission) -> dict[str, Any]:
        """What `result` shows once the mission has ended, kept with the mission in the store."""
        result = mission.activity.result
        errors = list(result.errors) if result else []
        if mission.row.status == "failed" and not errors:
            stderr = tail_bytes(Path(mission.row.stderr_path), _STDERR_EXCERPT_BYTES).strip()
            if stderr:
                errors.append(stderr)
        if result is None:
            return {"text": "\n".join(mission.tail) or None, "errors": errors}
        return {
            "is_error": result.is_error,
            "text": result.text,
            "subtype": result.subtype,
            "errors": errors,
            "duration_ms": result.duration_ms,
            "num_turns": result.num_turns,
            "usage": result.usage,
            "permission_denials": result.permission_denials,
            "terminal_reason": result.terminal_reason,
        }

    # -- ending missions ---------------------------------------------------------------------

    async def kill(
        self, refs: Sequence[str], *, cascade: bool = True, force: bool = False, caller: Caller = ROOT
    ) -> KillResult:
        if not refs:
            raise InvalidRequest("give at least one mission id or name to kill")
        targets = [await self._resolve(ref) for ref in refs]
        for target in targets:
            await self._check_visible(caller, target, strictly_below=True)
        doomed: dict[str, MissionRow] = {}
        for target in targets:
            if cascade:
                for row in await self._store.descendants(target.id):
                    doomed.setdefault(row.id, row)
            doomed.setdefault(target.id, target)
        for mission_id in doomed:
            if (mission := self._live.get(mission_id)) is not None and mission.stop_reason is None:
                # Marked before any signal, so none of them can take new children meanwhile.
                mission.stop_reason = "stopped"
        how: dict[str, str] = {}
        # Deepest first: children end before their parents.
        for depth in sorted({row.depth for row in doomed.values()}, reverse=True):
            async with anyio.create_task_group() as task_group:
                for row in doomed.values():
                    if row.depth == depth:
                        task_group.start_soon(self._kill_one, row, force, how)
        outcomes = []
        for row in sorted(doomed.values(), key=lambda row: -row.depth):
            current = await self._row(row.id)
            outcomes.append(KillOutcome(id=row.id, name=row.name, status=current.status, how=how[row.id]))
        return KillResult(ended=outcomes)

    async def _kill_one(self, row: MissionRow, force: bool, how: dict[str, str]) -> None:
        mission = self._live.get(row.id)
        if mission is not None:
            how[row.id] = await self._terminate(mission, force=force)
        elif row.status in LIVE:
            how[row.id] = await self._terminate_foreign(row, force=force)
        else:
            how[row.id] = f"already {row.status}"

    async def _terminate_foreign(self, row: MissionRow, *, force: bool) -> str:
        """End a mission another server supervises: signal its verified process, let the owner record it."""
        if row.pid is None or not same_process(row.pid, row.proc_start):
            return "its process had already ended"
        # Recorded first, so the owner reports a stop on request, not a crash.
        await self._store.update(row.id, stop_request="SIGKILL" if force else "SIGINT")
        process = ChildProcess.adopt(row.pid, row.proc_start or 0.0, row.id)
        ended_by = "SIGKILL"
        for sig in [] if force else [signal.SIGINT, signal.SIGTERM]:
            process.signal_group(sig)
            with anyio.move_on_after(self.settings.kill_grace_s):
                await process.wait()
                ended_by = sig.name
                break
        if process.running:
            await self._store.update(row.id, stop_request="SIGKILL")
            process.signal_group(signal.SIGKILL)
            await process.wait()
        await self._until_recorded([row.id], within=self.settings.kill_grace_s + 2)
        return ended_by

    async def _until_recorded(self, mission_ids: list[str], *, within: float) -> None:
        """Wait until the store shows these missions ended (another process records them)."""
        with anyio.move_on_after(within), self._watcher.watch(self._wal_path()) as wakeup:
            while True:
                rows = [await self._store.get(mission_id) for mission_id in mission_ids]
                if all(row is None or row.status not in LIVE for row in rows):
                    return
                await wakeup.wait()

    def _wal_path(self) -> Path:
        # Every commit to the database, by any process, writes to its write-ahead log.
        return self.settings.database_path.with_name(self.settings.database_path.name + "-wal")

    async def _terminate(self, mission: Mission, *, force: bool) -> str:
        """End a mission's whole process group: SIGINT, then SIGTERM, then SIGKILL (or SIGKILL at once)."""
        process = mission.process
        if process is None or not process.running:
            await mission.ended.wait()
            return f"already {mission.row.status}"
        steps = [] if force else [signal.SIGINT, signal.SIGTERM]
        for sig in steps:
            mission.ended_by = sig.name
            if not process.signal_group(sig):
                break
            with anyio.move_on_after(self.settings.kill_grace_s):
                await mission.ended.wait()
                return sig.name
        if process.running:
            mission.ended_by = "SIGKILL"
            process.signal_group(signal.SIGKILL)
        await mission.ended.wait()
        return mission.ended_by or "SIGKILL"

    async def shutdown(self) -> None:
        """End every mission this server runs, except detached ones (the server is going away)."""
        staying = [m for m in self._live.values() if m.row.options.get("detach")]
        going = [m for m in self._live.values() if not m.row.options.get("detach")]
        for mission in staying:
            # Left running, and in the store as running: the next server re-adopts it.
            if mission.scope is not None:
                mission.scope.cancel()
        for mission in going:
            mission.stop_reason = mission.stop_reason or "shutdown"
        async with anyio.create_task_group() as task_group:
            for mission in going:
                task_group.start_soon(self._terminate_quietly, mission)
        await self._store.server_stopped(self.server_id, time.time())

    async def _terminate_quietly(self, mission: Mission) -> None:
        await self._terminate(mission, force=False)

    # -- waiting and reading -------------------------------------------------------------------

    async def wait(
        self,
        refs: Sequence[str],
        *,
        mode: Literal["all", "any"] = "all",
        timeout_s: float = 60.0,
        on_progress: ProgressCallback | None = None,
        caller: Caller = ROOT,
    ) -> WaitResult:
        if not refs:
            raise InvalidRequest("give at least one mission id or name to wait for")
        if timeout_s < 0:
            raise InvalidRequest("timeout_s must be 0 or more (seconds)")
        rows = [await self._resolve(ref) for ref in refs]
        for row in rows:
            await self._check_visible(caller, row)
        ids = list(dict.fromkeys(row.id for row in rows))
        async with anyio.create_task_group() as relay:
            foreign = {
                mission_id
                for mission_id in ids
                if mission_id not in self._live and (await self._row(mission_id)).status in LIVE
            }
            if foreign:
                relay.start_soon(self._relay_store_changes)
            answer = await self._wait_loop(ids, foreign, mode, timeout_s, on_progress)
            relay.cancel_scope.cancel()
        return answer

    async def _relay_store_changes(self) -> None:
        """Wake waiters whenever any process commits to the store (for missions other servers run)."""
        with self._watcher.watch(self._wal_path()) as wakeup:
            while True:
                await wakeup.wait()
                self._changed.fire()

    async def _wait_loop(
        self,
        ids: list[str],
        foreign: set[str],
        mode: Literal["all", "any"],
        timeout_s: float,
        on_progress: ProgressCallback | None,
    ) -> WaitResult:
        started = time.monotonic()
        deadline = started + timeout_s
        last_report, reported_done, last_elapsed = started, -1, -1.0
        while True:
            for mission_id in list(foreign):
                row = await self._store.get(mission_id)
                if row is None or row.status not in LIVE:
                    foreign.discard(mission_id)
            done = [mission_id for mission_id in ids if mission_id not in foreign and self._is_done(mission_id)]
            satisfied = len(done) == len(ids) if mode == "all" else bool(done)
            now = time.monotonic()
            if satisfied or now >= deadline:
                break
            # Report each completion at once, other news at most once a second, and a
            # heartbeat when nothing happens, so the caller always sees the wait is alive.
            if on_progress is not None and (len(done) != reported_done or now - last_report >= _WAIT_REPORT_INTERVAL_S):
                # Progress must grow with every notification, even two in the same millisecond.
                elapsed = max(round(now - started, 3), round(last_elapsed + 0.001, 3))
                last_report, reported_done, last_elapsed = now, len(done), elapsed
                await on_progress(elapsed, timeout_s, self._describe_wait(ids, len(done)))
            with anyio.move_on_after(min(deadline - now, self.settings.wait_heartbeat_s)):
                await self._changed.wait()
        return WaitResult(
            done=[await self.result(mission_id) for mission_id in done],
            pending=[await self._summary(await self._row(mission_id)) for mission_id in ids if mission_id not in done],
            timed_out=not satisfied,
        )

    def _is_done(self, mission_id: str) -> bool:
        mission = self._live.get(mission_id)
        # A mission not live here has ended (or belongs to another server; see the store).
        return mission is None or mission.ended.is_set()

    def _describe_wait(self, ids: list[str], done: int) -> str:
        parts = [f"{done}/{len(ids)} done"]
        for mission_id in ids:
            mission = self._live.get(mission_id)
            if mission is not None and not mission.ended.is_set():
                activity = mission.activity
                cost = f", ${activity.cost_usd:.4f}" if activity.cost_usd else ""
                parts.append(f"{mission.name}: {activity.doing() or 'starting'}{cost}")
        return " · ".join(parts)

    async def result(self, ref: str, *, caller: Caller = ROOT) -> MissionResult:
        row = await self._resolve(ref)
        await self._check_visible(caller, row)
        mission = self._live.get(row.id)
        record = row.result or {}
        text = record.get("text")
        limit = self.settings.result_text_chars
        truncated = text is not None and len(text) > limit
        if truncated:
            text = text[-limit:] if row.provider == "raw" else text[:limit]
        usage = record.get("usage")
        return MissionResult(
            id=row.id,
            name=row.name,
            status=row.status,  # type: ignore[arg-type]
            exit_code=row.exit_code,
            is_error=record.get("is_error"),
            text=text,
            text_truncated=truncated,
            errors=record.get("errors", []),
            session_id=row.session_id,
            cwd=row.cwd,
            cost_usd=row.cost_usd if mission is None else mission.activity.cost_usd,
            duration_ms=record.get("duration_ms"),
            num_turns=record.get("num_turns"),
            usage=Usage.model_validate(usage) if isinstance(usage, dict) else None,
            permission_denials=record.get("permission_denials", []),
            started_at=_iso(row.started_at),
            ended_at=_iso(row.ended_at),
            progress=mission.activity.progress() if mission is not None else None,
        )

    async def ps(
        self,
        *,
        parent: str | None = None,
        status: str | None = None,
        tree: bool = False,
        limit: int = 100,
        caller: Caller = ROOT,
    ) -> PsResult:
        if parent is None and caller.mission_id is not None:
            # A mission sees its own subtree.
            parent, tree = caller.mission_id, True
        if parent is not None:
            root = await self._resolve(parent)
            await self._check_visible(caller, root)
            if tree:
                rows = [root, *await self._store.descendants(root.id)]
            else:
                rows = await self._store.list(parent_id=root.id)
        else:
            rows = await self._store.list()
        if tree:
            rows = _depth_first(rows)
        if status is not None:
            rows = [row for row in rows if row.status == status]
        live_count = sum(row.status in LIVE for row in rows)
        cost = sum(self._cost(row) or 0.0 for row in rows)
        if len(rows) > limit:
            # Keep every live mission and the newest of the rest.
            keep = {row.id for row in rows if row.status in LIVE}
            keep |= {row.id for row in sorted(rows, key=lambda row: row.created_at)[-limit:]}
            rows = [row for row in rows if row.id in keep]
        summaries = [await self._summary(row) for row in rows]
        if tree:
            _roll_up_costs(summaries)
        return PsResult(
            missions=summaries,
            totals=Totals(missions=len(rows), running=live_count, cost_usd=round(cost, 6)),
        )

    async def logs(
        self,
        ref: str,
        *,
        cursor: int = 0,
        limit: int = 200,
        format: Literal["text", "events"] = "text",
        caller: Caller = ROOT,
    ) -> LogPage:
        if cursor < 0:
            raise InvalidRequest("cursor must be 0 or a next_cursor from an earlier page")
        if limit < 1:
            raise InvalidRequest("limit must be at least 1")
        row = await self._resolve(ref)
        await self._check_visible(caller, row)
        path = Path(row.output_path)
        size = _file_size(path)
        lines, next_cursor = read_page(path, min(cursor, size), limit, _PAGE_BYTES) if size else ([], cursor)
        page = LogPage(
            id=row.id,
            name=row.name,
            status=row.status,  # type: ignore[arg-type]
            cursor=cursor,
            next_cursor=next_cursor,
            more=next_cursor < size,
        )
        parse = claude.parse_line if row.provider == "claude" else raw.parse_line
        for line in lines:
            if format == "events":
                page.events.append(_event_dict(line))
            else:
                page.lines.extend(_readable(parse(line)))
        return page

    async def status(self) -> ServerStatus:
        counts = await self._store.counts_by_status()
        return ServerStatus(
            version=__version__,
            server_id=self.server_id,
            uptime_s=round(time.monotonic() - self._started, 1),
            missions_by_status=counts,
            children_running=len(self._live),
            total_cost_usd=round(await self._store.total_cost(), 6),
            state_dir=str(self.settings.home),
            claude_bin=self.settings.claude_bin,
        )

    # -- lookups -------------------------------------------------------------------------------

    async def mission(self, ref: str) -> MissionRow:
        """A mission's stored row, by id or name; raises NotFound."""
        return await self._resolve(ref)

    async def _resolve(self, ref: str) -> MissionRow:
        """A mission by id, else by name (the live one, else the newest)."""
        if not ref:
            raise InvalidRequest("a mission id or name is required")
        mission = self._live.get(ref) or self._finished.get(ref)
        if mission is not None:
            return mission.row
        for live in self._live.values():
            if live.name == ref:
                return live.row
        row = await self._store.get(ref) or await self._store.find_by_name(ref)
        if row is None:
            raise NotFound(f"no mission has the id or name {ref!r}; call ps to list missions")
        return row

    async def _row(self, mission_id: str) -> MissionRow:
        mission = self._live.get(mission_id) or self._finished.get(mission_id)
        if mission is not None:
            return mission.row
        row = await self._store.get(mission_id)
        if row is None:
            raise NotFound(f"mission {mission_id} has been removed")
        return row

    def _cost(self, row: MissionRow) -> float | None:
        mission = self._live.get(row.id)
        return mission.activity.cost_usd if mission is not None else row.cost_usd

    async def _summary(self, row: MissionRow) -> MissionSummary:
        mission = self._live.get(row.id)
        end = row.ended_at or time.time()
        return MissionSummary(
            id=row.id,
            name=row.name,
            status=row.status,  # type: ignore[arg-type]
            parent=row.parent_id,
            depth=row.depth,
            age_s=round(end - row.created_at, 1),
            turns=mission.activity.turns if mission else row.num_turns,
            cost_usd=self._cost(row),
            doing=mission.activity.doing() if mission else None,
        )


# How much a permission mode lets a child do unasked, for "never more than the parent".
_MODE_RANK = {"plan": 0, "default": 1, "manual": 1, "dontAsk": 1, "acceptEdits": 2, "auto": 3, "bypassPermissions": 4}
_CLAUDE_ONLY = ("model", "permission_mode", "max_turns", "max_budget_usd", "append_system_prompt")


def _provider_of(request: SpawnRequest) -> str:
    """Which provider runs the request ("claude" or "raw"); raises if its shape is wrong."""
    if (request.prompt is None) == (request.command is None):
        raise InvalidRequest("give exactly one of `prompt` (a Claude task) or `command` (an argv list to run)")
    for key in request.env:
        if key.startswith("OVERMIND_") or not key or "=" in key:
            raise InvalidRequest(f"env: {key!r} cannot be set (names with '=' and OVERMIND_* are reserved)")
    if request.command is not None:
        if not request.command or not request.command[0]:
            raise InvalidRequest('`command` must be a non-empty argv list, e.g. ["pytest", "-q"]')
        claude_only = [name for name in _CLAUDE_ONLY if getattr(request, name) is not None]
        claude_only += [
            name
            for name in ("allowed_tools", "disallowed_tools", "recall_into_prompt", "delegate")
            if getattr(request, name)
        ]
        if claude_only:
            raise InvalidRequest(f"{', '.join(claude_only)} only apply to Claude tasks (`prompt`), not `command`")
        return "raw"
    if not (request.prompt or "").strip():
        raise InvalidRequest("`prompt` is empty: say what the child should do")
    return "claude"


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _describe_exit(exit_status: ExitStatus) -> str:
    if exit_status.signal is not None:
        return f"killed by {signal.Signals(exit_status.signal).name}"
    return f"exited with code {exit_status.code}"


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _readable(events: list[Event]) -> list[str]:
    return [text for event in events if (text := to_text(event)) is not None]


def _event_dict(line: bytes) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data
    return {"type": "plain", "text": line.decode("utf-8", "replace").rstrip("\r\n")}


def _roll_up_costs(summaries: list[MissionSummary]) -> None:
    """Give each mission of a depth-first listing the cost of its whole subtree."""
    totals = {summary.id: summary.cost_usd or 0.0 for summary in summaries}
    for summary in reversed(summaries):
        if summary.parent in totals:
            totals[summary.parent] += totals[summary.id]
    for summary in summaries:
        summary.tree_cost_usd = round(totals[summary.id], 6)


def _depth_first(rows: list[MissionRow]) -> list[MissionRow]:
    """Rows in tree order: each mission followed by its subtree, oldest first."""
    by_parent: dict[str | None, list[MissionRow]] = {}
    ids = {row.id for row in rows}
    for row in sorted(rows, key=lambda row: row.created_at):
        parent = row.parent_id if row.parent_id in ids else None
        by_parent.setdefault(parent, []).append(row)
    ordered: list[MissionRow] = []
    stack = list(reversed(by_parent.get(None, [])))
    while stack:
        row = stack.pop()
        ordered.append(row)
        stack.extend(reversed(by_parent.get(row.id, [])))
    return ordered
