"""The supervisor: starts missions, follows them, restarts or ends them, and answers questions about them.

It knows nothing of MCP. Data flows one way: a request starts a process; the process
writes its output file; the follower parses each new line into events; events update
the mission in memory and, at the moments that matter, in the store; every change
wakes whoever waits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.abc
import anyio.lowlevel

from overmind_mcp import __version__
from overmind_mcp.akasha import FILENAME as AKASHA_FILENAME
from overmind_mcp.akasha import Akasha
from overmind_mcp.core.events import note_line, parse_note
from overmind_mcp.errors import AccessDenied, Conflict, InvalidRequest, NotFound, OvermindError, Refused
from overmind_mcp.identity import ROOT, Caller, Credentials
from overmind_mcp.models import (
    LIVE,
    KillOutcome,
    KillResult,
    LogPage,
    MissionResult,
    PsResult,
    ServerStatus,
    Spawned,
    SpawnRequest,
    TurnResult,
    WaitResult,
)
from overmind_mcp.names import check_name, new_id, new_name
from overmind_mcp.providers import claude, command
from overmind_mcp.readside import views
from overmind_mcp.runners.local.output import LineReader, tail_bytes
from overmind_mcp.runners.local.process import (
    ChildProcess,
    ExitStatus,
    kill_leftovers,
    process_start_time,
    spawn,
)
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import MissionRow, Store
from overmind_mcp.supervision import foreign, limits
from overmind_mcp.supervision.mission import Broadcast, Mission
from overmind_mcp.supervision.recovery import find_orphans
from overmind_mcp.supervision.restarts import RestartPolicy
from overmind_mcp.supervision.session import SessionChannel, Turn

logger = logging.getLogger("overmind_mcp")

ProgressCallback = Callable[[float, float | None, str], Awaitable[None]]

# Variables a child must not inherit: the CLI refuses to start nested under them, and
# the mission identity (and its token) is ours to set.
_HIDDEN_ENV = frozenset(
    {
        "CLAUDECODE",
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAUDE_CODE_SESSION_ID",
        # The parent session's private channel to its own UI: never a child's.
        "CLAUDE_CODE_MESSAGING_SOCKET",
        "CLAUDE_CODE_MESSAGING_TOKEN",
        "CLAUDE_CODE_CHILD_NOTES_DIR",
        "CLAUDE_CODE_LAUNCHED_BY_SESSION_IDS",
        "OVERMIND_MISSION_ID",
        "OVERMIND_MISSION_NAME",
        "OVERMIND_PARENT_ID",
        "OVERMIND_TOKEN",
    }
)
_TOKEN_VARIABLE = "OVERMIND_TOKEN"
_STDERR_EXCERPT_BYTES = 2000
_WAIT_REPORT_INTERVAL_S = 1.0
_RECENT_FINISHED = 1024
_CONTINUE = (
    "Continue the task from where you left off; your previous attempt ended early ({reason}). "
    "Check what is already done before you redo anything."
)
# Stop reasons a restart policy may act on; every other one is a stop on request.
_RESTARTABLE = frozenset({None, "stalled"})


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        watcher: FileWatcher,
        task_group: anyio.abc.TaskGroup,
        akasha: Akasha,
    ) -> None:
        self.settings = settings
        # Shared memory; the supervisor only uses it for `recall_into_prompt` and `remember_result`.
        self.akasha = akasha
        self.server_id = new_id()
        self.credentials = Credentials()
        # Where delegating children call back in; set by whoever serves the HTTP endpoint.
        self.delegation_url: str | None = None
        self._store = store
        self._watcher = watcher
        self._tasks = task_group
        self._live: dict[str, Mission] = {}
        # Spawned beyond max_concurrent: started in order as running missions end.
        self._queue: deque[Mission] = deque()
        # Recently finished missions stay in memory so `wait` and `result` answer without a query.
        self._finished: dict[str, Mission] = {}
        self._changed = Broadcast()
        self._started = time.monotonic()
        self._closing = False

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
            mission = self._track(row)
            mission.process = ChildProcess.adopt(row.pid or 0, row.proc_start or 0.0, row.id)
            # Its stdin went with the server that started it: an adopted session takes no more turns.
            mission.session = None
            mission.reader = LineReader(Path(row.output_path))
            await self._store.add_event(row.id, time.time(), "adopted", {"server": self.server_id})
            self._tasks.start_soon(self._supervise, mission)
        for row in orphans.queued:
            self._queue.append(self._track(row))
        for row in orphans.ended:
            await self._settle(row)
        if self.settings.retention_days:
            pruned = await self._store.prune(time.time() - self.settings.retention_days * 86400)
            for row in pruned:
                shutil.rmtree(Path(row.output_path).parent, ignore_errors=True)
        await self._admit()

    def _track(self, row: MissionRow) -> Mission:
        mission = Mission(row, deque(maxlen=self.settings.tail_lines))
        options = row.options
        if options.get("session"):
            mission.session = SessionChannel()
            if options.get("prompt"):
                mission.session.submit(options["prompt"])
        self._live[row.id] = mission
        return mission

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
            while _ingest(mission, reader, final=True) is not None:
                pass
        return max(path.stat().st_mtime for path in (output, stderr) if path.exists())

    # -- spawn -------------------------------------------------------------------------------

    async def spawn(self, request: SpawnRequest, caller: Caller = ROOT) -> Spawned:
        provider = limits.provider_of(request)
        parent = await self._parent_for(request.parent, caller)
        siblings = len(await self._store.missions(parent_id=parent.id)) if parent else 0
        subtree_cost = await self._subtree_cost(parent) if parent else 0.0
        request = limits.within_parent(request, parent, self.settings, siblings=siblings, subtree_cost=subtree_cost)
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
            status="queued" if self._full() else "running",
            output_path=str(directory / "output.jsonl"),
            stderr_path=str(directory / "stderr.log"),
            created_at=time.time(),
            server_id=self.server_id,
        )
        for _attempt in range(3):
            try:
                await self._store.insert(row)
                break
            except Conflict:
                if request.name:
                    raise
                row.name = new_name()
        mission = self._track(row)
        if row.status == "queued":
            self._queue.append(mission)
            self._changed.fire()
            return Spawned(id=row.id, name=row.name, status="queued", parent=row.parent_id, pid=None)
        await self._begin(mission)
        return Spawned(id=row.id, name=row.name, status="running", parent=row.parent_id, pid=row.pid)

    def _full(self) -> bool:
        """Whether max_concurrent missions already hold a process (or are between two runs)."""
        return sum(mission.row.status != "queued" for mission in self._live.values()) >= self.settings.max_concurrent

    async def _admit(self) -> None:
        """Start queued missions, oldest first, while there is room (and the server is not closing)."""
        while self._queue and not self._full() and not self._closing:
            mission = self._queue.popleft()
            # Holds its slot from here: another _admit running meanwhile must not count it as free.
            mission.row.status = "running"
            if await self._stopped_elsewhere(mission):
                await self._finish(mission, ExitStatus(code=None, signal=None))
                continue
            with contextlib.suppress(Exception):  # a mission that cannot start is recorded as failed
                await self._begin(mission)

    async def _begin(self, mission: Mission) -> None:
        """Start a mission's first run and supervise it; a failure to start is recorded, then raised."""
        try:
            await self._launch(mission)
        except Exception as exc:
            mission.launch_error = str(exc) if isinstance(exc, OvermindError) else f"{type(exc).__name__}: {exc}"
            await self._finish(mission, ExitStatus(code=None, signal=None))
            raise
        self._tasks.start_soon(self._supervise, mission)
        self._changed.fire()

    async def _launch(self, mission: Mission, *, prompt: str | None = None, resume: str | None = None) -> None:
        """Start (or restart) the mission's process."""
        row = mission.row
        request = SpawnRequest.model_validate(row.options)
        secrets: dict[str, str] = {}
        if row.provider == "raw":
            argv = list(request.command or [])
        else:
            argv, secrets = self._claude_argv(request, row, prompt=prompt, resume=resume)
        process = spawn(
            argv,
            cwd=Path(row.cwd),
            env=self._child_env(row, {**request.env, **secrets}),
            stdout_path=Path(row.output_path),
            stderr_path=Path(row.stderr_path),
            stdin_pipe=request.session,
        )
        mission.process = process
        mission.run_started = mission.activity.last_output_at = time.monotonic()
        if mission.reader is None:
            mission.reader = LineReader(Path(row.output_path))
        row.status = "running"
        row.pid, row.pgid, row.proc_start = process.pid, process.pgid, process.start_time
        row.started_at = row.started_at or time.time()
        # Stored by the mission's own task (_record_run), not awaited here: the caller of spawn
        # need not wait for it, and that task's later writes then land after it, in order.
        if mission.session is not None:
            await self._pump(mission)

    def _claude_argv(
        self, request: SpawnRequest, row: MissionRow, *, prompt: str | None, resume: str | None
    ) -> tuple[list[str], dict[str, str]]:
        """The child's argv, and the secrets its environment must carry."""
        allowed_tools, mcp_config, secrets = list(request.allowed_tools), [], {}
        if self._delegates(request, row):
            # The child reaches this very server, under its own identity, as `overmind`.
            assert self.delegation_url is not None
            secrets[_TOKEN_VARIABLE] = self.credentials.mint(row.id)
            mcp_config.append(claude.mcp_server_config("overmind", self.delegation_url, _TOKEN_VARIABLE))
            allowed_tools.append("mcp__overmind")
        options = claude.ClaudeOptions(
            prompt=prompt or request.prompt,
            model=request.model,
            allowed_tools=allowed_tools,
            disallowed_tools=request.disallowed_tools,
            permission_mode=request.permission_mode,
            max_turns=request.max_turns,
            max_budget_usd=request.max_budget_usd,
            append_system_prompt=request.append_system_prompt,
            resume=resume or request.resume,
            mcp_config=mcp_config,
            session=request.session,
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

    async def _subtree_cost(self, row: MissionRow) -> float:
        """What a mission and everything under it have cost so far (live missions included)."""
        total = 0.0
        for member in [row, *await self._store.descendants(row.id)]:
            mission = self._live.get(member.id)
            total += (mission.activity.cost_usd if mission else member.cost_usd) or 0.0
        return total

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
        """Follow the mission through every run of its process, restarting it as its policy says.

        Each mission is a fault domain: whatever raises while it is followed ends that mission
        as failed, with the reason, and never reaches the task group that holds every other
        mission (which would stop them all and leave the server deaf).
        """
        try:
            await self._follow_through(mission)
        except Exception as exc:
            logger.exception("supervising %s failed", mission.id)
            await self._fail(mission, exc)

    async def _fail(self, mission: Mission, exc: Exception) -> None:
        """End a mission whose supervision raised: its processes go, its end is recorded as a failure."""
        mission.launch_error = f"the server failed while supervising it ({type(exc).__name__}: {exc})"
        process = mission.process
        if process is not None and process.running:
            process.signal_group(signal.SIGKILL)
            with anyio.move_on_after(self.settings.kill_grace_s), contextlib.suppress(Exception):
                await process.wait()
        exit_status = (process.exit_status if process else None) or ExitStatus(code=None, signal=None)
        try:
            await self._finish(mission, exit_status)
        except Exception:
            logger.exception("recording the failure of %s failed", mission.id)
            self._forget_live(mission)
            with contextlib.suppress(Exception):
                await self._store.update(mission.id, status="failed", end_reason=mission.launch_error)
            with contextlib.suppress(Exception):
                await self._admit()

    async def _follow_through(self, mission: Mission) -> None:
        timeout_s = mission.row.options.get("timeout_s")
        # Shielded: a cancellation from outside (the server being stopped) must not stop us
        # from reaping the child and recording how it ended; `shutdown` ends the child
        # instead, or cancels this scope for a detached mission it leaves running.
        with mission.scope, self._watcher.watch(Path(mission.row.output_path)) as wakeup:
            async with anyio.create_task_group() as guards:
                if timeout_s:
                    # Counted from the first start: restarts and server restarts do not reset it.
                    left = timeout_s - (time.time() - (mission.row.started_at or time.time()))
                    guards.start_soon(self._enforce_timeout, mission, max(left, 0.0))
                while True:
                    await self._record_run(mission)
                    exit_status = await self._run_once(mission, wakeup)
                    if not await self._maybe_restart(mission, exit_status):
                        break
                guards.cancel_scope.cancel()
            await self._finish(mission, exit_status)

    async def _record_run(self, mission: Mission) -> None:
        """Store which process runs the mission now (a server that dies before this is covered by
        recovery, which finds the process by the mission id in its environment)."""
        row = mission.row
        await self._store.update(
            row.id, status=row.status, pid=row.pid, pgid=row.pgid, proc_start=row.proc_start, started_at=row.started_at
        )

    async def _run_once(self, mission: Mission, wakeup: Wakeup) -> ExitStatus:
        process = mission.process
        assert process is not None
        activity_timeout = mission.row.options.get("activity_timeout_s")
        async with anyio.create_task_group() as guards:
            if activity_timeout:
                guards.start_soon(self._watch_for_stall, mission, activity_timeout)
            async with anyio.create_task_group() as follow:
                follow.start_soon(self._follow, mission, wakeup)
                exit_status = await process.wait()
                wakeup.set()
            guards.cancel_scope.cancel()
        return exit_status

    async def _follow(self, mission: Mission, wakeup: Wakeup) -> None:
        assert mission.process is not None and mission.reader is not None
        while True:
            # Checked before reading, so the read that follows sees everything the child wrote.
            exited = not mission.process.running
            while (changed := _ingest(mission, mission.reader, final=exited)) is not None:
                mission.output.fire()
                if changed:
                    await self._on_progress(mission)
                await anyio.lowlevel.checkpoint()
            if exited:
                return
            await wakeup.wait()

    async def _on_progress(self, mission: Mission) -> None:
        activity = mission.activity
        if activity.session_id and activity.session_id != mission.row.session_id:
            # Stored at once: it is what a restart resumes and what a person takes over.
            mission.row.session_id = activity.session_id
            await self._store.update(mission.id, session_id=activity.session_id)
        if activity.result is not None and activity.results > mission.results_seen:
            # A new result line: a session's turn is done, and the cost has moved.
            mission.results_seen = activity.results
            if mission.session is not None:
                mission.session.complete(activity.result)
                await self._pump(mission)
            await self._enforce_budgets(mission)
        max_turns = mission.row.options.get("max_turns")
        if max_turns and mission.session is None and activity.turns > max_turns + 1:
            # A backstop: the CLI counts and stops at --max-turns itself.
            self._end_soon(mission, "max_turns")
        self._changed.fire()

    async def _enforce_timeout(self, mission: Mission, timeout_s: float) -> None:
        await anyio.sleep(timeout_s)
        if mission.request_stop("timed_out"):
            await self._terminate(mission, force=False)

    async def _watch_for_stall(self, mission: Mission, timeout_s: float) -> None:
        """End a run that has printed nothing for `timeout_s` while not inside a tool call.

        Sleeps until the moment the mission would become stalled and wakes on any output,
        so a stall is seen `timeout_s` after the last line, not up to twice that.
        """
        activity = mission.activity
        while True:
            waiting_on_tool = activity.in_tool
            idle_session = mission.session is not None and mission.session.current is None
            quiet = time.monotonic() - activity.last_output_at
            if not (waiting_on_tool or idle_session) and quiet >= timeout_s:
                break
            with anyio.move_on_after(None if waiting_on_tool or idle_session else timeout_s - quiet):
                await mission.output.wait()
            if idle_session and mission.session is not None and mission.session.current is not None:
                # A turn just started: the clock starts now.
                activity.last_output_at = time.monotonic()
        await self._append_note(mission, "stall", f"no output for {timeout_s:g}s: stalled")
        if mission.request_stop("stalled"):
            await self._terminate(mission, force=False)

    def _end_soon(self, mission: Mission, reason: str) -> None:
        if mission.request_stop(reason):
            self._tasks.start_soon(self._terminate_quietly, mission)

    async def _enforce_budgets(self, mission: Mission) -> None:
        """A budget caps the cost of a mission's whole subtree: stop what runs under a spent one."""
        ancestor: MissionRow | None = mission.row
        while ancestor is not None:
            budget = ancestor.options.get("max_budget_usd")
            if budget is not None and ancestor.id != mission.id:
                spent = await self._subtree_cost(ancestor)
                if spent >= budget:
                    for member in [ancestor, *await self._store.descendants(ancestor.id)]:
                        live = self._live.get(member.id)
                        if live is not None and live.process is not None and live.process.running:
                            self._end_soon(live, "budget")
            ancestor = await self._row(ancestor.parent_id) if ancestor.parent_id else None

    async def _maybe_restart(self, mission: Mission, exit_status: ExitStatus) -> bool:
        """Start the mission again if its policy says so; False when it stays ended."""
        options = mission.row.options
        policy = RestartPolicy(
            mode=options.get("restart", "never"),
            max_restarts=options.get("max_restarts", 3),
            window_s=options.get("restart_window_s", 300.0),
            backoff_s=self.settings.restart_backoff_s,
            backoff_max_s=self.settings.restart_backoff_max_s,
            stable_s=self.settings.restart_stable_s,
        )
        if policy.mode == "never" or mission.stop_reason not in _RESTARTABLE or await self._stopped_elsewhere(mission):
            return False
        status, reason = self._outcome(mission, exit_status)
        run_s = time.monotonic() - mission.run_started
        delay = mission.restarts.next_delay(policy, failed=status != "succeeded", run_s=run_s)
        if delay is None:
            return False
        row = mission.row
        row.status, row.restarts = "restarting", mission.restarts.count
        why = f"{status}: {reason}" if reason else status
        await self._append_note(
            mission, "restart", f"restart #{row.restarts} in {delay:g}s ({why})", number=row.restarts, delay_s=delay
        )
        await self._store.update(row.id, status=row.status, restarts=row.restarts)

        if mission.session is not None and mission.session.current is not None:
            # The turn in flight died with the process: it goes first on the next one.
            mission.session.queue.appendleft(mission.session.current)
            mission.session.current = None
        self._changed.fire()
        with anyio.move_on_after(delay):
            await mission.stopping.wait()
        if mission.stop_reason not in _RESTARTABLE or await self._stopped_elsewhere(mission):
            return False  # ended on request during the backoff
        session_id = mission.activity.session_id
        mission.resume_after_restart()
        if row.provider == "claude" and session_id:
            # Resume the conversation, so the work done so far is not repeated.
            prompt = None if mission.session else _CONTINUE.format(reason=why)
            launch = self._launch(mission, prompt=prompt, resume=session_id)
        else:
            launch = self._launch(mission)
        try:
            await launch
        except Exception as exc:
            mission.launch_error = f"restart failed: {exc}"
            return False
        return True

    async def _stopped_elsewhere(self, mission: Mission) -> bool:
        """Whether another process (the overmind command, a second server) asked for it to stop."""
        stored = await self._store.get(mission.id)
        if stored is None or not stored.stop_request:
            return False
        mission.request_stop("stopped")
        mission.ended_by = mission.ended_by or stored.stop_request
        return True

    async def _append_note(self, mission: Mission, kind: str, text: str, **data: Any) -> None:
        """A supervision event: in the store, and in the log too unless the process could be mid-line."""
        await self._store.add_event(mission.id, time.time(), kind, {"text": text, **data})
        if mission.process is None or not mission.process.running:
            _append_line(Path(mission.row.output_path), note_line(kind, text))

    async def _finish(self, mission: Mission, exit_status: ExitStatus, *, ended_at: float | None = None) -> None:
        row = mission.row
        row.status, row.end_reason = self._outcome(mission, exit_status)
        # Asked only now, since a stop requested by another process can only turn a failure into a stop.
        if mission.stop_reason is None and row.status != "succeeded" and await self._stopped_elsewhere(mission):
            row.status, row.end_reason = self._outcome(mission, exit_status)
        row.exit_code = exit_status.returncode
        row.ended_at = ended_at or time.time()
        row.result = self._result_record(mission)
        row.cost_usd = mission.activity.cost_usd
        row.num_turns = mission.activity.turns
        row.session_id = mission.activity.session_id or row.session_id
        self.credentials.revoke(row.id)
        if mission.reader is not None:
            mission.reader.close()
            mission.reader = None
        if mission.session is not None:
            mission.session.abandon(f"the session ended ({row.status})")
        if row.options.get("remember_result"):
            # Before the end is announced: whoever waited for it may recall it at once.
            try:
                await self.akasha.remember_result(row)
            except Exception:
                # A memory that failed to save must not keep the mission from ending.
                logger.exception("could not remember the result of %s", row.id)
        # Waiters next: the output file already holds everything the store would say.
        self._forget_live(mission)
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
        await self._admit()

    def _forget_live(self, mission: Mission) -> None:
        """Move an ended mission out of the live set and wake whoever waits for it."""
        if mission.row.status in LIVE:
            mission.row.status = "failed"
        self._live.pop(mission.id, None)
        with contextlib.suppress(ValueError):
            self._queue.remove(mission)
        self._finished[mission.id] = mission
        if len(self._finished) > _RECENT_FINISHED:
            del self._finished[next(iter(self._finished))]
        mission.ended.set()
        self._changed.fire()

    def _outcome(self, mission: Mission, exit_status: ExitStatus) -> tuple[str, str | None]:
        if mission.launch_error is not None:
            return "failed", mission.launch_error
        if mission.stop_reason == "timed_out":
            return "timed_out", f"timeout_s passed; ended by {mission.ended_by}"
        if mission.stop_reason == "stalled":
            timeout = mission.row.options.get("activity_timeout_s")
            return "failed", f"stalled: no output for {timeout}s; ended by {mission.ended_by}"
        if mission.stop_reason is not None:
            killed = mission.ended_by == "SIGKILL" or exit_status.signal == signal.SIGKILL
            why = _STOP_REASONS.get(mission.stop_reason, "ended on request")
            return ("killed" if killed else "stopped"), f"{why}; ended by {mission.ended_by or 'never started'}"
        result = mission.activity.result
        if not exit_status.known:
            # Adopted after a server crash: whoever reaped it took its exit status along.
            if mission.row.provider == "claude" and result is not None:
                verdict = "failed" if result.is_error else "succeeded"
                return verdict, "it ended after a server restart: its outcome is its result line (exit code unknown)"
            return "lost", "it ended while no server could see its exit status, and left no result"
        how = views.describe_exit(exit_status)
        if mission.row.provider == "raw":
            return ("succeeded", None) if exit_status.code == 0 else ("failed", how)
        if result is None:
            return "failed", f"{how} without a result"
        if result.is_error:
            kind = result.terminal_reason if result.subtype == "success" and result.terminal_reason else result.subtype
            return "failed", f"the CLI reported an error ({kind}, {how})"
        if exit_status.code != 0:
            return "failed", how
        return "succeeded", None

    def _result_record(self, mission: Mission) -> dict[str, Any]:
        """What `result` shows once the mission has ended, kept with the mission in the store."""
        result = mission.activity.result
        # A command's result is the end of its output.
        record = views.record_of(result) if result else {"text": "\n".join(mission.tail) or None, "errors": []}
        if mission.row.status == "failed" and not record["errors"]:
            stderr = tail_bytes(Path(mission.row.stderr_path), _STDERR_EXCERPT_BYTES).strip()
            if stderr:
                record["errors"] = [stderr]
        return record

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
            if (mission := self._live.get(mission_id)) is not None:
                # Marked before any signal, so none of them can take new children meanwhile.
                mission.request_stop("stopped")
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
            outcomes.append(
                KillOutcome(id=row.id, name=row.name, status=current.status, how=how[row.id])  # type: ignore[arg-type]
            )
        return KillResult(ended=outcomes)

    async def _kill_one(self, row: MissionRow, force: bool, how: dict[str, str]) -> None:
        mission = self._live.get(row.id)
        if mission is not None:
            how[row.id] = await self._terminate(mission, force=force)
        elif row.status in LIVE:
            how[row.id] = await foreign.terminate_foreign(
                self._store,
                self._watcher,
                self.settings.database_path,
                row,
                force=force,
                grace_s=self.settings.kill_grace_s,
            )
        else:
            how[row.id] = f"already {row.status}"

    def _wal_path(self) -> Path:
        return foreign.change_signal(self.settings.database_path)

    async def _terminate(self, mission: Mission, *, force: bool) -> str:
        """End a mission's whole process group: SIGINT, then SIGTERM, then SIGKILL (or SIGKILL at once).

        A live session is first asked to end by closing its stdin, as a person ends one.
        """
        if mission in self._queue:
            self._queue.remove(mission)
            await self._finish(mission, ExitStatus(code=None, signal=None))
            return "never started (it was queued)"
        process = mission.process
        if process is None or not process.running:
            mission.stopping.set()  # cuts a restart's backoff short
            await mission.ended.wait()
            return f"already {mission.row.status}"
        if mission.session is not None and not force and process.stdin is not None:
            mission.ended_by = "end of input"
            process.close_stdin()
            with anyio.move_on_after(self.settings.kill_grace_s):
                await mission.ended.wait()
                return "end of input"
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
        self._closing = True
        staying = [m for m in self._live.values() if m.row.options.get("detach")]
        going = [m for m in self._live.values() if m not in staying]
        for mission in staying:
            # Left running (or queued), and so in the store: the next server re-adopts it.
            mission.scope.cancel()
        for mission in going:
            mission.request_stop("shutdown")
        async with anyio.create_task_group() as task_group:
            for mission in going:
                task_group.start_soon(self._terminate_quietly, mission)
        await self._store.server_stopped(self.server_id, time.time())

    async def _terminate_quietly(self, mission: Mission) -> None:
        # Runs in the server's task group: a failure here must stay with this mission.
        try:
            await self._terminate(mission, force=False)
        except Exception:
            logger.exception("ending %s failed", mission.id)

    # -- live sessions -------------------------------------------------------------------------

    async def send(
        self, ref: str, message: str, *, wait: bool = True, timeout_s: float = 120.0, caller: Caller = ROOT
    ) -> TurnResult:
        """Give a live session its next turn; with `wait`, return that turn's result."""
        if not message.strip():
            raise InvalidRequest("the message is empty: say what the session should do next")
        mission = await self._session(ref, caller)
        assert mission.session is not None
        turn = mission.session.submit(message)
        await self._pump(mission)
        self._changed.fire()
        if wait:
            with anyio.move_on_after(timeout_s):
                await turn.done.wait()
        return self._turn_result(mission, turn, timed_out=wait and not turn.done.is_set())

    async def interrupt(self, ref: str, *, caller: Caller = ROOT) -> TurnResult:
        """End a live session's current turn the way the CLI does, keeping the session."""
        mission = await self._session(ref, caller)
        assert mission.session is not None and mission.process is not None
        turn = mission.session.current
        if turn is None:
            raise Conflict(f"session {mission.name!r} is idle: there is no turn to interrupt")
        turn.interrupted = True
        await mission.process.write_stdin(claude.interrupt_request(f"req_{turn.number}"))
        with anyio.move_on_after(self.settings.kill_grace_s):
            await turn.done.wait()
        return self._turn_result(mission, turn, timed_out=not turn.done.is_set())

    async def _session(self, ref: str, caller: Caller) -> Mission:
        row = await self._resolve(ref)
        await self._check_visible(caller, row)
        mission = self._live.get(row.id)
        if not row.options.get("session"):
            raise InvalidRequest(f"{row.name!r} is a task, not a session: spawn one with session=true to talk to it")
        if mission is None:
            raise Conflict(
                f"session {row.name!r} has ended ({row.status}); spawn a new one with resume={row.session_id!r}"
                " to continue its conversation"
            )
        if mission.session is None:
            raise Conflict(
                f"session {row.name!r} lost its input when the server that started it stopped; spawn a new one "
                f"with resume={row.session_id!r}"
            )
        return mission

    async def _pump(self, mission: Mission) -> None:
        """Write the session's next turn to its stdin when it is ready for one."""
        process = mission.process
        if mission.session is None or process is None or not process.running:
            return
        turn = mission.session.take_next()
        if turn is None:
            return
        mission.activity.last_output_at = time.monotonic()
        try:
            await process.write_stdin(claude.user_message(turn.message))
        except OSError:
            mission.session.queue.appendleft(turn)  # the process is going; a restart sends it again
            mission.session.current = None

    def _turn_result(self, mission: Mission, turn: Turn, *, timed_out: bool) -> TurnResult:
        assert mission.session is not None
        result = turn.result
        state: Literal["queued", "working", "done", "interrupted", "abandoned"]
        if turn.abandoned:
            state = "abandoned"
        elif result is not None:
            state = "interrupted" if turn.interrupted else "done"
        else:
            state = "working" if mission.session.current is turn else "queued"
        errors = list(result.errors) if result else ([turn.abandoned] if turn.abandoned else [])
        return TurnResult(
            id=mission.id,
            name=mission.name,
            turn=turn.number,
            state=state,
            queue_position=mission.session.position(turn),
            text=result.text if result else None,
            is_error=result.is_error if result else None,
            errors=errors,
            cost_usd=mission.activity.cost_usd,
            session_id=mission.activity.session_id or mission.row.session_id,
            timed_out=timed_out,
        )

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
            # Taken before anything in this pass awaits: a mission that ends while we look
            # (or while progress is being reported) must still wake the next wait.
            changed = self._changed.watch()
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
                await changed.wait()
        return WaitResult(
            done=[await self.result(mission_id) for mission_id in done],
            pending=[self._summary(await self._row(mission_id)) for mission_id in ids if mission_id not in done],
            timed_out=not satisfied,
        )

    def _is_done(self, mission_id: str) -> bool:
        mission = self._live.get(mission_id)
        # A mission not live here has ended (or belongs to another server; see the store). A live
        # session counts as done when it is idle: it has answered everything it was sent.
        return mission is None or mission.ended.is_set() or mission.session_state() == "idle"

    def _describe_wait(self, ids: list[str], done: int) -> str:
        parts = [f"{done}/{len(ids)} done"]
        for mission_id in ids:
            mission = self._live.get(mission_id)
            if mission is not None and not mission.ended.is_set():
                activity = mission.activity
                cost = f", ${activity.cost_usd:.4f}" if activity.cost_usd else ""
                doing = activity.doing() or "starting"
                if mission in self._queue:
                    doing = f"queued (#{self._queue.index(mission) + 1})"
                parts.append(f"{mission.name}: {doing}{cost}")
        return " · ".join(parts)

    async def result(self, ref: str, *, caller: Caller = ROOT) -> MissionResult:
        row = await self._resolve(ref)
        await self._check_visible(caller, row)
        return views.result_of(row, self._live.get(row.id), text_limit=self.settings.result_text_chars)

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
                rows = await self._store.missions(parent_id=root.id)
        else:
            rows = await self._store.missions()
        if tree:
            rows = views.depth_first(rows)
        if status is not None:
            rows = [row for row in rows if row.status == status]
        answer, _kept = views.ps_result(rows, self._summary, self._cost, limit=limit, tree=tree)
        return answer

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
        return views.log_page(row, cursor=cursor, limit=limit, format=format)

    async def status(self) -> ServerStatus:
        counts = await self._store.counts_by_status()
        return ServerStatus(
            version=__version__,
            server_id=self.server_id,
            uptime_s=round(time.monotonic() - self._started, 1),
            missions_by_status=counts,
            children_running=sum(
                mission.process is not None and mission.process.running for mission in self._live.values()
            ),
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

    def _summary(self, row: MissionRow) -> views.MissionSummary:
        mission = self._live.get(row.id)
        position = self._queue.index(mission) + 1 if mission is not None and mission in self._queue else None
        return views.summary_of(row, mission, queue_position=position)


_STOP_REASONS = {
    "shutdown": "the server shut down",
    "budget": "its tree's budget is spent",
    "max_turns": "it went past max_turns",
    "stopped": "ended on request",
}


def _append_line(path: Path, line: bytes) -> None:
    with path.open("ab") as output:
        output.write(line)


def _ingest(mission: Mission, reader: LineReader, *, final: bool) -> bool | None:
    """Fold the next chunk of output into the mission; None when there is nothing more to read."""
    lines = reader.read_chunk(final=final)
    if lines is None:
        return None
    parse = claude.parse_line if mission.row.provider == "claude" else command.parse_line
    changed = False
    for _end, line in lines:
        note = parse_note(line)
        changed |= mission.ingest([note] if note is not None else parse(line))
    return changed
