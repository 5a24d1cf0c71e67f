"""One mission's life: launch, follow its output, restart it by policy, end it, record how it ended.

Data flows one way: the runner starts the process; the process writes its output file;
the follower parses each new line (the provider's parser) into events; events update the
mission in memory and, at the moments that matter, in the store; each change is published
on the bus, where waiters and watchers see it.

Each mission is a fault domain: whatever raises while it is followed ends that mission as
failed, with the reason, and never reaches the task group that holds every other mission.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections import deque
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from overmind_mcp.bus import MissionEnded, MissionRestarting, MissionStarted, OutputArrived, ProgressMade, TurnEnded
from overmind_mcp.core.events import may_hold_note, note_line, parse_note
from overmind_mcp.core.exits import UNKNOWN_EXIT, ExitStatus
from overmind_mcp.core.spec import ClaudeTask
from overmind_mcp.core.status import Status, StopReason
from overmind_mcp.errors import InvalidRequest, OvermindError, Refused
from overmind_mcp.permissions.protocol import PROMPT_TOOL
from overmind_mcp.providers.base import Delegation, Restart
from overmind_mcp.readside import views
from overmind_mcp.runners.base import Launch
from overmind_mcp.runners.local.output import LineReader, tail_bytes
from overmind_mcp.runners.local.watch import Wakeup
from overmind_mcp.storage import files
from overmind_mcp.storage.changes import relay_commits
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision import approvals, holds, sessions, termination, watchdogs
from overmind_mcp.supervision.context import Context
from overmind_mcp.supervision.holds import Hold
from overmind_mcp.supervision.mission import Mission
from overmind_mcp.supervision.restarts import RestartPolicy
from overmind_mcp.supervision.session import SessionChannel
from overmind_mcp.supervision.tree import Tree

logger = logging.getLogger("overmind_mcp")

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
_STDERR_EXCERPT_BYTES = 2000


class Lifecycle:
    def __init__(self, ctx: Context, tree: Tree) -> None:
        self.ctx = ctx
        self.tree = tree

    # -- tracking ---------------------------------------------------------------------------

    def track(self, row: MissionRow) -> Mission:
        """A mission this server supervises from now on."""
        mission = Mission(row, self.ctx.providers[row.provider], deque(maxlen=self.ctx.settings.tail_lines))
        if row.spec.session:
            mission.session = SessionChannel()
            prompt = getattr(row.spec.task, "prompt", None)
            if prompt:
                mission.session.submit(prompt)
        self.ctx.roster.add(mission)
        return mission

    # -- starting -----------------------------------------------------------------------------

    async def begin(self, mission: Mission) -> None:
        """Start a mission's first run and supervise it; a failure to start is recorded, then raised."""
        try:
            await self.launch(mission)
        except Exception as exc:
            mission.failure = str(exc) if isinstance(exc, OvermindError) else f"{type(exc).__name__}: {exc}"
            await self.finish(mission, UNKNOWN_EXIT)
            raise
        self.ctx.tasks.start_soon(self.supervise, mission)

    async def begin_admitted(self, mission: Mission) -> None:
        """Start a mission admitted from the queue (unless it was stopped meanwhile); failures are recorded."""
        if await self.stopped_elsewhere(mission):
            await self.finish(mission, UNKNOWN_EXIT)
            return
        with contextlib.suppress(Exception):  # a mission that cannot start is recorded as failed
            await self.begin(mission)

    async def launch(self, mission: Mission, *, restart: Restart | None = None) -> None:
        """Start (or restart) the mission's process."""
        row, ctx = mission.row, self.ctx
        inputs = Path(row.output_path).parent
        delegation = self._delegation(mission)
        plan = mission.provider.plan(row.spec.task, delegation=delegation, restart=restart, inputs=inputs)
        for path, data in plan.files.items():
            files.write_private(path, data)
        runner = ctx.runner(row.spec.runner)
        handle = await runner.start(
            Launch(
                mission_id=row.id,
                argv=plan.argv,
                cwd=Path(row.cwd),
                env=self._child_env(row, {**row.spec.env, **plan.env}),
                stdout_path=Path(row.output_path),
                stderr_path=Path(row.stderr_path),
                stdin_pipe=plan.stdin_pipe,
                stdin_path=plan.stdin_file,
                resources=row.spec.resources,
                callback_url=delegation.url if delegation is not None else None,
            )
        )
        mission.handle = handle
        mission.run_started = mission.activity.last_output_at = time.monotonic()
        if mission.reader is None:
            mission.reader = LineReader(Path(row.output_path))
        mission.move_to(Status.RUNNING)
        record = handle.record()
        row.pid, row.pgid, row.proc_start = record.pid, record.pgid, record.start_time
        row.runner_state = dict(record.extra) or None
        row.started_at = row.started_at or time.time()
        # Stored by the mission's own task (record_run), not awaited here: the caller of spawn
        # need not wait for it, and that task's later writes then land after it, in order.
        ctx.bus.publish(MissionStarted(row.id, run=mission.restarts.count))
        if mission.session is not None:
            await sessions.pump(mission)

    def _delegation(self, mission: Mission) -> Delegation | None:
        """How the child reaches the server: for overmind's tools (by default, while its own children would
        be allowed), and for a Claude child in any case, to ask for permissions."""
        row, ctx = mission.row, self.ctx
        asked = mission.provider.can_delegate(row.spec.task)
        room = row.depth + 1 < ctx.settings.max_depth
        if asked is None:
            wanted = room and ctx.delegation_url is not None
        elif asked and not room:
            raise Refused(
                f"delegate=true: a mission at depth {row.depth} cannot have children "
                f"(max_depth {ctx.settings.max_depth})"
            )
        elif asked and ctx.delegation_url is None:
            raise InvalidRequest("delegate=true needs the server's HTTP endpoint, and this server has none")
        else:
            wanted = asked
        asks = isinstance(row.spec.task, ClaudeTask)
        if not (wanted or asks) or ctx.delegation_url is None:
            return None
        # The child reaches this very server, under its own identity.
        token = ctx.credentials.mint(row.id, tools=wanted)
        row.credential = {"sha256": ctx.credentials.digest(row.id), "tools": wanted}
        return Delegation(
            url=ctx.delegation_url,
            token=token,
            tools=wanted,
            permission_tool=PROMPT_TOOL if asks else None,
        )

    def _child_env(self, row: MissionRow, extra: dict[str, str]) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in _HIDDEN_ENV}
        env.update(extra)
        env["OVERMIND_MISSION_ID"] = row.id
        env["OVERMIND_MISSION_NAME"] = row.name
        if row.parent_id:
            env["OVERMIND_PARENT_ID"] = row.parent_id
        return env

    # -- following ----------------------------------------------------------------------------

    async def supervise(self, mission: Mission) -> None:
        """Follow the mission through every run of its process, restarting it as its policy says."""
        try:
            await self._follow_through(mission)
        except Exception as exc:
            logger.exception("supervising %s failed", mission.id)
            await self._fail(mission, exc)

    async def _fail(self, mission: Mission, exc: Exception) -> None:
        """End a mission whose supervision raised: its processes go, its end is recorded as a failure."""
        mission.failure = f"{StopReason.FAULT.description} ({type(exc).__name__}: {exc})"
        handle = mission.handle
        exit_status = UNKNOWN_EXIT
        if handle is not None and handle.running:
            handle.signal_group(signal.SIGKILL)
            with anyio.move_on_after(self.ctx.settings.kill_grace_s), contextlib.suppress(Exception):
                exit_status = await handle.wait()
        try:
            await self.finish(mission, exit_status)
        except Exception:
            logger.exception("recording the failure of %s failed", mission.id)
            if mission.row.status.live:
                mission.row.status = Status.FAILED
            self._retire(mission)
            with contextlib.suppress(Exception):
                await self.ctx.store.update(mission.id, status=Status.FAILED, end_reason=mission.failure)
            with contextlib.suppress(Exception):
                await self.ctx.admission.admit(self.begin_admitted)

    async def _follow_through(self, mission: Mission) -> None:
        spec = mission.spec
        # Shielded: a cancellation from outside (the server being stopped) must not stop us
        # from reaping the child and recording how it ended; shutdown ends the child
        # instead, or cancels this scope for a detached mission it leaves running.
        with mission.scope, self.ctx.watcher.watch(Path(mission.row.output_path)) as wakeup:
            async with anyio.create_task_group() as guards:
                if spec.timeout_s:
                    # Counted from the first start: restarts and server restarts do not reset it.
                    left = spec.timeout_s - (time.time() - (mission.row.started_at or time.time()))
                    guards.start_soon(watchdogs.enforce_timeout, mission, max(left, 0.0), self.end)
                while True:
                    await self._record_run(mission)
                    exit_status = await self._run_once(mission, wakeup)
                    hold = mission.hold
                    if hold is not None and hold.parking and mission.stop_reason is None:
                        # Ended to be handed to a person, not for good.
                        if await self.sit_out(mission, hold):
                            continue
                        break
                    if not await self._maybe_restart(mission, exit_status):
                        break
                guards.cancel_scope.cancel()
            await self.finish(mission, exit_status)

    async def _record_run(self, mission: Mission) -> None:
        """Store which process runs the mission now (a server that dies before this is covered by
        recovery, which finds the process by the mission id in its environment)."""
        row = mission.row
        assert mission.handle is not None
        row.proc_start = (await mission.handle.identify()).start_time
        await self.ctx.store.update(
            row.id,
            status=row.status,
            pid=row.pid,
            pgid=row.pgid,
            proc_start=row.proc_start,
            started_at=row.started_at,
            runner_state=row.runner_state,
            credential=row.credential,
        )

    async def _run_once(self, mission: Mission, wakeup: Wakeup) -> ExitStatus:
        handle = mission.handle
        assert handle is not None
        async with anyio.create_task_group() as guards:
            if mission.spec.activity_timeout_s:
                guards.start_soon(
                    watchdogs.watch_for_stall,
                    mission,
                    mission.spec.activity_timeout_s,
                    self.ctx.bus,
                    self.note,
                    self.end,
                )
            async with anyio.create_task_group() as follow:
                follow.start_soon(self._follow, mission, wakeup)
                exit_status = await handle.wait()
                wakeup.set()
            guards.cancel_scope.cancel()
        return exit_status

    async def _follow(self, mission: Mission, wakeup: Wakeup) -> None:
        assert mission.handle is not None and mission.reader is not None
        while True:
            # Checked before reading, so the read that follows sees everything the child wrote.
            exited = not mission.handle.running
            while (chunk := ingest(mission, mission.reader, final=exited)) is not None:
                lines, changed = chunk
                self.ctx.bus.publish(OutputArrived(mission.id, lines))
                if changed:
                    await self._on_progress(mission)
                await anyio.lowlevel.checkpoint()
            if exited:
                return
            await wakeup.wait()

    async def _on_progress(self, mission: Mission) -> None:
        activity, ctx = mission.activity, self.ctx
        if activity.session_id and activity.session_id != mission.row.session_id:
            # Stored at once: it is what a restart resumes and what a person takes over.
            mission.row.session_id = activity.session_id
            await ctx.store.update(mission.id, session_id=activity.session_id)
        if activity.result is not None and activity.results > mission.results_seen:
            # A new result line: a session's turn is done, and the cost has moved.
            mission.results_seen = activity.results
            if mission.session is not None:
                mission.session.complete(activity.result)
                await sessions.pump(mission)
            ctx.bus.publish(TurnEnded(mission.id, activity.result.is_error, activity.cost_usd))
            await self._enforce_budgets(mission)
        if activity.permission_requests:
            requests, activity.permission_requests = activity.permission_requests, []
            for request in requests:
                # A session asks on its stdout and reads the answer on its stdin, which this server holds.
                if mission.session is not None:
                    ctx.tasks.start_soon(approvals.answer_session, ctx.broker, mission, request)
        max_turns = mission.spec.max_turns
        if max_turns and mission.session is None and activity.turns > max_turns + 1:
            # A backstop: the CLI counts and stops at --max-turns itself.
            self.end_soon(mission, StopReason.MAX_TURNS)
        ctx.bus.publish(ProgressMade(mission.id))

    async def _enforce_budgets(self, mission: Mission) -> None:
        """A budget caps the cost of a mission's whole subtree: stop what runs under a spent one."""
        for ancestor in await self.tree.ancestors(mission.row):
            budget = ancestor.spec.max_budget_usd
            if budget is None or await self.tree.subtree_cost(ancestor) < budget:
                continue
            for member in [ancestor, *await self.ctx.store.descendants(ancestor.id)]:
                live = self.ctx.roster.live(member.id)
                if live is not None and live.running:
                    self.end_soon(live, StopReason.BUDGET)

    # -- restarts -------------------------------------------------------------------------------

    async def _maybe_restart(self, mission: Mission, exit_status: ExitStatus) -> bool:
        """Start the mission again if its policy says so; False when it stays ended."""
        spec, settings = mission.spec.restart, self.ctx.settings
        policy = RestartPolicy(
            mode=spec.mode,
            max_restarts=spec.max_restarts,
            window_s=spec.window_s,
            backoff_s=settings.restart_backoff_s,
            backoff_max_s=settings.restart_backoff_max_s,
            stable_s=settings.restart_stable_s,
        )
        if policy.mode == "never" or not _restartable(mission) or await self.stopped_elsewhere(mission):
            return False
        status, reason = self.outcome(mission, exit_status)
        run_s = time.monotonic() - mission.run_started
        delay = mission.restarts.next_delay(policy, failed=status != Status.SUCCEEDED, run_s=run_s)
        if delay is None:
            return False
        row = mission.row
        mission.move_to(Status.RESTARTING)
        row.restarts = mission.restarts.count
        why = f"{status}: {reason}" if reason else str(status)
        await self.note(mission, "restart", f"restart #{row.restarts} in {delay:g}s ({why})", delay_s=delay)
        await self.ctx.store.update(row.id, status=row.status, restarts=row.restarts)
        if mission.session is not None and mission.session.current is not None:
            # The turn in flight died with the process: it goes first on the next one.
            mission.session.queue.appendleft(mission.session.current)
            mission.session.current = None
        self.ctx.bus.publish(MissionRestarting(row.id, row.restarts, delay, why))
        with anyio.move_on_after(delay):
            await mission.stopping.wait()
        if not _restartable(mission) or await self.stopped_elsewhere(mission):
            return False  # ended on request during the backoff
        session_id = mission.activity.session_id
        mission.resume_after_restart()
        try:
            await self.launch(mission, restart=Restart(session_id=session_id, why=why))
        except Exception as exc:
            mission.failure = f"restart failed: {exc}"
            return False
        return True

    # -- a person holds the session (see holds.py) ---------------------------------------------

    async def sit_out(self, mission: Mission, hold: Hold) -> bool:
        """Wait while a person holds the session, then run it again with --resume; False if it was stopped."""
        await self.note(
            mission, "attached", f"attached by a person (pid {hold.holder.pid}): agents' messages are refused"
        )
        hold.parked.set()
        self.ctx.bus.publish(ProgressMade(mission.id))
        async with anyio.create_task_group() as waiting:
            waiting.start_soon(self._heed_stop_requests, mission)
            await holds.first_of(hold.released, mission.stopping)
            waiting.cancel_scope.cancel()
        if mission.stop_reason is not None:
            mission.ended_by = mission.ended_by or "its server, while a person held it"
            return False
        mission.hold = None
        hold.scope.cancel()
        await self.note(mission, "released", "the person has left: the session goes on with their turns")
        session_id = mission.activity.session_id or mission.row.session_id
        try:
            await self.launch(mission, restart=Restart(session_id=session_id, why="a person held it"))
        except Exception as exc:
            mission.failure = f"could not resume the session after a person held it: {exc}"
            return False
        hold.resumed.set()
        return True

    async def _heed_stop_requests(self, mission: Mission) -> None:
        """A parked session has no process to signal: a kill from another process is a stop request in the store."""
        commits = Wakeup()
        async with anyio.create_task_group() as relay:
            await relay.start(relay_commits, self.ctx.watcher, self.ctx.settings.database_path, commits)
            while not await self.stopped_elsewhere(mission):
                await commits.wait()
            relay.cancel_scope.cancel()

    async def stopped_elsewhere(self, mission: Mission) -> bool:
        """Whether another process (the overmind command, a second server) asked for it to stop."""
        stored = await self.ctx.store.get(mission.id)
        if stored is None or not stored.stop_request:
            return False
        mission.request_stop(StopReason.STOPPED)
        mission.ended_by = mission.ended_by or stored.stop_request
        return True

    async def note(self, mission: Mission, kind: str, text: str, **data: Any) -> None:
        """A supervision event: in the store, and in the log too unless the process could be mid-line."""
        await self.ctx.store.add_event(mission.id, time.time(), kind, {"text": text, **data})
        if not mission.running:
            _append_line(Path(mission.row.output_path), note_line(kind, text))

    # -- ending ---------------------------------------------------------------------------------

    async def end(self, mission: Mission, reason: StopReason) -> None:
        """End a mission's run for `reason` (a watchdog's), unless something else is ending it already."""
        if mission.request_stop(reason):
            await self.terminate(mission, force=False)

    def end_soon(self, mission: Mission, reason: StopReason) -> None:
        if mission.request_stop(reason):
            self.ctx.tasks.start_soon(self.terminate_quietly, mission)

    async def terminate_quietly(self, mission: Mission) -> None:
        # Runs in the server's task group: a failure here must stay with this mission.
        try:
            await self.terminate(mission, force=False)
        except Exception:
            logger.exception("ending %s failed", mission.id)

    async def terminate(self, mission: Mission, *, force: bool) -> str:
        """End a mission's whole process group: SIGINT, then SIGTERM, then SIGKILL (or SIGKILL at once).

        A live session is first asked to end by closing its stdin, as a person ends one.
        """
        if self.ctx.admission.withdraw(mission):
            await self.finish(mission, UNKNOWN_EXIT)
            return "never started (it was queued)"
        handle = mission.handle
        if handle is None or not handle.running:
            mission.stopping.set()  # cuts a restart's backoff short
            await mission.ended.wait()
            return f"already {mission.row.status}"
        if mission.session is not None and not force and handle.accepts_input:
            mission.ended_by = "end of input"
            handle.close_stdin()
            with anyio.move_on_after(self.ctx.settings.kill_grace_s):
                await mission.ended.wait()
                return "end of input"

        async def record(signal_name: str) -> None:
            mission.ended_by = signal_name

        await termination.ladder(
            handle, mission.ended.wait, force=force, grace_s=self.ctx.settings.kill_grace_s, before=record
        )
        return mission.ended_by or "SIGKILL"

    async def finish(self, mission: Mission, exit_status: ExitStatus, *, ended_at: float | None = None) -> None:
        row, ctx = mission.row, self.ctx
        status, row.end_reason = self.outcome(mission, exit_status)
        # Asked only now, since a stop requested by another process can only turn a failure into a stop.
        if mission.stop_reason is None and status != Status.SUCCEEDED and await self.stopped_elsewhere(mission):
            status, row.end_reason = self.outcome(mission, exit_status)
        mission.move_to(status)
        row.exit_code = exit_status.returncode
        row.ended_at = ended_at or time.time()
        row.result = self._result_record(mission)
        row.cost_usd = mission.activity.cost_usd
        row.num_turns = mission.activity.turns
        row.session_id = mission.activity.session_id or row.session_id
        ctx.credentials.revoke(row.id)
        row.credential = None
        if mission.reader is not None:
            mission.reader.close()
            mission.reader = None
        if mission.session is not None:
            mission.session.abandon(f"the session ended ({row.status})")
        if mission.hold is not None:
            mission.hold.scope.cancel()  # nothing is left to hold
        try:
            # Before the end is announced: whoever waited for it finds its workspace settled.
            await ctx.workspace(row.spec.workspace).release(row.id, Path(row.cwd), row.status)
        except Exception:
            logger.exception("releasing the workspace of %s failed", row.id)
        if row.spec.remember_result:
            # Before the end is announced: whoever waited for it may recall it at once.
            try:
                await ctx.akasha.remember_result(row)
            except Exception:
                # A memory that failed to save must not keep the mission from ending.
                logger.exception("could not remember the result of %s", row.id)
        # Waiters next: the output file already holds everything the store would say.
        self._retire(mission)
        await ctx.store.update(
            row.id,
            status=row.status,
            end_reason=row.end_reason,
            exit_code=row.exit_code,
            ended_at=row.ended_at,
            result=row.result,
            cost_usd=row.cost_usd,
            num_turns=row.num_turns,
            session_id=row.session_id,
            credential=None,
        )
        await ctx.admission.admit(self.begin_admitted)

    def _retire(self, mission: Mission) -> None:
        """Out of the live set, and every waiter told."""
        self.ctx.admission.withdraw(mission)
        self.ctx.roster.retire(mission)
        mission.ended.set()
        self.ctx.bus.publish(MissionEnded(mission.id, mission.row.status, mission.row.end_reason))

    def outcome(self, mission: Mission, exit_status: ExitStatus) -> tuple[Status, str | None]:
        if mission.failure is not None:
            return Status.FAILED, mission.failure
        if exit_status.lost is not None:
            # Even while it was being ended: nobody saw how it ended.
            return Status.LOST, exit_status.lost
        reason = mission.stop_reason
        ended_by = f"ended by {mission.ended_by}" if mission.ended_by else "before it started"
        if reason is StopReason.TIMED_OUT:
            return Status.TIMED_OUT, f"timeout_s passed; {ended_by}"
        if reason is StopReason.STALLED:
            return Status.FAILED, f"stalled: no output for {mission.spec.activity_timeout_s}s; {ended_by}"
        if reason is not None:
            killed = mission.ended_by == "SIGKILL" or exit_status.signal == signal.SIGKILL
            return (Status.KILLED if killed else Status.STOPPED), f"{reason.description}; {ended_by}"
        return mission.provider.outcome(exit_status, mission.activity.result)

    def _result_record(self, mission: Mission) -> dict[str, Any]:
        """What `result` shows once the mission has ended, kept with the mission in the store."""
        result = mission.activity.result
        # A command's result is the end of its output.
        record = views.record_of(result) if result else {"text": "\n".join(mission.tail) or None, "errors": []}
        if mission.row.status == Status.FAILED and not record["errors"]:
            stderr = tail_bytes(Path(mission.row.stderr_path), _STDERR_EXCERPT_BYTES).strip()
            if stderr:
                record["errors"] = [stderr]
        return record


def _append_line(path: Path, line: bytes) -> None:
    with path.open("ab") as output:
        output.write(line)


def _restartable(mission: Mission) -> bool:
    return mission.stop_reason is None or mission.stop_reason.restartable


def ingest(mission: Mission, reader: LineReader, *, final: bool) -> tuple[int, bool] | None:
    """Fold the next chunk of output into the mission: (lines read, whether a watcher would see a change);
    None when there is nothing more to read."""
    lines = reader.read_lines(final=final)
    if lines is None:
        return None
    parse = mission.provider.parse_line
    if lines and mission.provider.plain_text and not may_hold_note(lines):
        # A line of plain text means only itself: the mission keeps the last few, so only they are parsed.
        recent = lines[-max(mission.tail.maxlen or 0, 1) :]
        return len(lines), mission.ingest([event for line in recent for event in parse(line)], len(lines))
    changed = False
    for line in lines:
        note = parse_note(line)
        changed |= mission.ingest([note] if note is not None else parse(line))
    return len(lines), changed


def replay(mission: Mission) -> float | None:
    """Fold a mission's whole output in; returns when its output last changed."""
    output, stderr = Path(mission.row.output_path), Path(mission.row.stderr_path)
    if not output.exists():
        return None
    with LineReader(output) as reader:
        while ingest(mission, reader, final=True) is not None:
            pass
    return max(path.stat().st_mtime for path in (output, stderr) if path.exists())
