"""The supervisor: the one object the MCP layer and the servers talk to, over the parts that do the work.

It knows nothing of MCP. Each verb checks who may do what (the tree), then hands off:
a mission's life to `Lifecycle`, the queue to `Admission`, questions to the `ReadSide`
and `WaitEngine`, turns to `sessions`. What runs, where and in which directory are the
seams it was built with: `Providers`, runners and workspaces.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio

from overmind_mcp import __version__
from overmind_mcp.akasha import FILENAME as AKASHA_FILENAME
from overmind_mcp.akasha import Akasha
from overmind_mcp.bus import EventBus, ProgressMade
from overmind_mcp.core.approvals import PermissionAnswer
from overmind_mcp.core.spec import ClaudeTask, MissionSpec
from overmind_mcp.core.status import LIVE, Status
from overmind_mcp.errors import Conflict, InvalidRequest, OvermindError
from overmind_mcp.identity import ROOT, Caller, Credentials
from overmind_mcp.models import (
    ApprovalOutcome,
    Approvals,
    AttachGrant,
    ConflictPair,
    ConflictsResult,
    DiscardResult,
    KillResult,
    LogPage,
    MergeResult,
    MissionResult,
    PsResult,
    Released,
    ServerStatus,
    Spawned,
    SpawnRequest,
    TurnResult,
    WaitResult,
    WorktreeChange,
)
from overmind_mcp.names import new_id
from overmind_mcp.permissions.broker import CLIENT, Who, request_of
from overmind_mcp.permissions.journal import FILENAME as PERMISSIONS_FILENAME
from overmind_mcp.permissions.journal import Journal
from overmind_mcp.permissions.rules import ToolCall
from overmind_mcp.providers import Providers
from overmind_mcp.readside.queries import ReadSide
from overmind_mcp.readside.waiting import ProgressCallback, WaitEngine
from overmind_mcp.runners.base import Runner
from overmind_mcp.runners.local import LocalRunner
from overmind_mcp.runners.local.kept import KeeperClient
from overmind_mcp.runners.local.process import same_process
from overmind_mcp.runners.local.watch import FileWatcher
from overmind_mcp.runners.ray import RayRunner, namespace_for, ray_installed
from overmind_mcp.settings import Settings
from overmind_mcp.storage import files
from overmind_mcp.storage.missions import MissionRow, Store
from overmind_mcp.supervision import holds, sessions
from overmind_mcp.supervision.context import Context
from overmind_mcp.supervision.ending import Ending
from overmind_mcp.supervision.holds import Hold, Holder
from overmind_mcp.supervision.lifecycle import Lifecycle
from overmind_mcp.supervision.mission import Mission
from overmind_mcp.supervision.recovery import recover
from overmind_mcp.supervision.spawning import Spawning
from overmind_mcp.supervision.tree import Tree
from overmind_mcp.workspaces.base import Workspace
from overmind_mcp.workspaces.git import GitWorktreeWorkspace
from overmind_mcp.workspaces.plain import PlainWorkspace


class Supervisor:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.tree = Tree(ctx.store, ctx.roster)
        self.life = Lifecycle(ctx, self.tree)
        self.read = ReadSide(ctx.store, _ServerLive(ctx), text_limit=ctx.settings.result_text_chars)
        self.waits = WaitEngine(
            self.read, ctx.bus, ctx.watcher, ctx.settings.database_path, heartbeat_s=ctx.settings.wait_heartbeat_s
        )
        self.spawning = Spawning(ctx, self.tree, self.life, self.read)
        self.ending = Ending(ctx, self.tree, self.life, self.read)
        self._started = time.monotonic()

    @classmethod
    @asynccontextmanager
    async def running(
        cls,
        settings: Settings,
        *,
        providers: Providers | None = None,
        runners: Sequence[Runner] = (),
        workspaces: Sequence[Workspace] = (),
    ) -> AsyncIterator[Supervisor]:
        """A supervisor for the duration of the block; its children are ended when it closes.

        `providers`, `runners` and `workspaces` add to (or replace, by name) the built-in ones.
        """
        files.private_directory(settings.home)
        files.private_directory(settings.missions_dir)
        ray_runner = _ray_runner(settings)
        # Its children's exit status and input outlive this server, with the state directory's keeper.
        local_runner = LocalRunner(KeeperClient(settings.home))
        store = await Store.open(settings.database_path)
        worktrees = GitWorktreeWorkspace(settings.home)
        akasha: Akasha | None = None
        journal: Journal | None = None
        try:
            akasha = await Akasha.open(settings.home / AKASHA_FILENAME, project_dir=settings.project)
            journal = await Journal.open(settings.home / PERMISSIONS_FILENAME)
            if settings.retention_days:
                await journal.prune(time.time() - settings.retention_days * 86400)
            async with anyio.create_task_group() as task_group:
                watcher = FileWatcher()
                task_group.start_soon(watcher.run)
                ctx = Context(
                    settings=settings,
                    server_id=new_id(),
                    store=store,
                    akasha=akasha,
                    watcher=watcher,
                    tasks=task_group,
                    providers=providers or Providers.default(settings.claude_bin),
                    runners={runner.name: runner for runner in (local_runner, *ray_runner, *runners)},
                    workspaces={workspace.name: workspace for workspace in (PlainWorkspace(), worktrees, *workspaces)},
                    journal=journal,
                )
                await task_group.start(ctx.broker.run)
                supervisor = cls(ctx)
                await supervisor._start()
                try:
                    yield supervisor
                finally:
                    with anyio.CancelScope(shield=True):
                        await supervisor.shutdown()
                    task_group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                if journal is not None:
                    await journal.close()
                await local_runner.aclose()
                for runner in ray_runner:
                    await runner.aclose()
                if akasha is not None:
                    await akasha.close()
                await worktrees.close()
                await store.close()

    # What the layers above use directly.
    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def akasha(self) -> Akasha:
        return self.ctx.akasha

    @property
    def credentials(self) -> Credentials:
        return self.ctx.credentials

    @property
    def bus(self) -> EventBus:
        return self.ctx.bus

    @property
    def server_id(self) -> str:
        return self.ctx.server_id

    @property
    def delegation_url(self) -> str | None:
        return self.ctx.delegation_url

    @delegation_url.setter
    def delegation_url(self, url: str | None) -> None:
        self.ctx.delegation_url = url

    async def _start(self) -> None:
        """Register this server, take over what crashed servers left behind, prune old missions."""
        await recover(self.ctx, self.life)
        # What the missions that have ended (here or anywhere) left of their worktrees, ports and services.
        live = {row.id for row in await self.ctx.store.missions(statuses=tuple(LIVE))}
        await self.worktrees.reconcile(live)

    # -- spawn and kill --------------------------------------------------------------------------

    async def spawn(self, request: SpawnRequest, caller: Caller = ROOT) -> Spawned:
        return await self.spawning.spawn(request, caller)

    async def start(
        self,
        spec: MissionSpec,
        *,
        name: str | None = None,
        cwd: str | None = None,
        parent: str | None = None,
        caller: Caller = ROOT,
    ) -> Spawned:
        """A mission from a spec made by the server itself (a blueprint run): placed, stored, started."""
        return await self.spawning.start(spec, name=name, cwd=cwd, parent=parent, caller=caller)

    async def kill(
        self, refs: Sequence[str], *, cascade: bool = True, force: bool = False, caller: Caller = ROOT
    ) -> KillResult:
        if not refs:
            raise InvalidRequest("give at least one mission id or name to kill")
        targets = [await self.read.resolve(ref) for ref in refs]
        for target in targets:
            await self.tree.check_visible(caller, target, strictly_below=True)
        return await self.ending.kill(targets, cascade=cascade, force=force)

    async def shutdown(self) -> None:
        """End every mission this server runs, except detached ones (the server is going away)."""
        await self.ending.shutdown()

    # -- live sessions -------------------------------------------------------------------------

    async def send(
        self, ref: str, message: str, *, wait: bool = True, timeout_s: float = 120.0, caller: Caller = ROOT
    ) -> TurnResult:
        """Give a live session its next turn; with `wait`, return that turn's result."""
        mission = await self._session(ref, caller)
        return await sessions.send(mission, message, self.ctx.bus, wait=wait, timeout_s=timeout_s)

    async def interrupt(self, ref: str, *, caller: Caller = ROOT) -> TurnResult:
        mission = await self._session(ref, caller)
        return await sessions.interrupt(mission, grace_s=self.ctx.settings.kill_grace_s)

    # -- a person takes a session over (overmind attach; see holds.py) --------------------------

    async def attach(self, ref: str, holder: Holder) -> AttachGrant:
        """Hand a live session to a person: once it is between turns, its headless process is ended.

        From now until `release` (or until the holder's process ends) agents' messages are refused.
        Cancelling this call before it returns gives the session back at once.
        """
        ctx = self.ctx
        mission = await self._session(ref, ROOT)
        if mission.hold is not None:
            raise Conflict(mission.hold.refusal(mission.name))
        hold = mission.hold = Hold(holder)
        ctx.tasks.start_soon(holds.release_when_gone, hold, mission, ctx.bus)
        ctx.bus.publish(ProgressMade(mission.id))
        try:
            session_id = await holds.park(mission, hold, ctx.bus, grace_s=ctx.settings.kill_grace_s)
        except BaseException:
            hold.released.set()
            if not hold.parking:
                # Its process still runs: the session simply goes on.
                mission.hold = None
                hold.scope.cancel()
                ctx.bus.publish(ProgressMade(mission.id))
            raise
        return AttachGrant(id=mission.id, name=mission.name, session_id=session_id, cwd=mission.row.cwd)

    async def release(self, ref: str) -> Released:
        """Give a held session back to its server: it resumes the conversation, the person's turns included."""
        row = await self.read.resolve(ref)
        mission = self.ctx.roster.live(row.id)
        hold = mission.hold if mission is not None else None
        if mission is None or hold is None:
            raise Conflict(f"{row.name!r} is not attached ({row.status}): there is nothing to release")
        hold.released.set()
        self.ctx.bus.publish(ProgressMade(mission.id))
        if hold.parking:
            await holds.first_of(hold.resumed, mission.ended)
        return Released(
            id=mission.id,
            name=mission.name,
            status=mission.row.status,
            pid=mission.row.pid if mission.running else None,
            session_id=mission.row.session_id,
        )

    async def _session(self, ref: str, caller: Caller) -> Mission:
        row = await self.read.resolve(ref)
        await self.tree.check_visible(caller, row)
        if not row.spec.session:
            raise InvalidRequest(f"{row.name!r} is a task, not a session: spawn one with session=true to talk to it")
        return sessions.check_session(self.ctx.roster.live(row.id), row.name, row.status, row.session_id)

    # -- questions -----------------------------------------------------------------------------

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
        rows = [await self.mission(ref, caller=caller) for ref in refs]
        inbox = self.ctx.broker.inbox(caller.mission_id)
        answer = await self.waits.wait(rows, mode=mode, timeout_s=timeout_s, on_progress=on_progress, inbox=inbox)
        rows_by_id = {row.id: row for row in rows}
        answer.done = [await self._completed(result, rows_by_id.get(result.id)) for result in answer.done]
        return answer

    async def result(self, ref: str, *, caller: Caller = ROOT) -> MissionResult:
        row = await self.mission(ref, caller=caller)
        return await self._completed(self.read.result(row), row)

    async def _completed(self, answer: MissionResult, row: MissionRow | None) -> MissionResult:
        """A result with what its mission's kind can add: a Claude mission's permission decisions, an isolated
        mission's change. Each is a read of the store, made only for a mission that can have one."""
        if row is None or row.spec.workspace == "worktree":
            change = await self.worktrees.change(answer.id)
            if change is not None:
                answer.change = WorktreeChange.model_validate(change, from_attributes=True)
        if row is None or isinstance(row.spec.task, ClaudeTask):
            answer.approvals = await self.ctx.broker.decisions(answer.id)
        return answer

    @property
    def worktrees(self) -> GitWorktreeWorkspace:
        workspace = self.ctx.workspace("worktree")
        assert isinstance(workspace, GitWorktreeWorkspace)
        return workspace

    async def merge(
        self,
        ref: str,
        *,
        strategy: Literal["merge", "squash", "rebase"] = "merge",
        into: str | None = None,
        check_only: bool = False,
        caller: Caller = ROOT,
    ) -> MergeResult:
        row = await self.mission(ref, caller=caller)
        if row.status.live:
            raise Conflict(f"{row.name!r} is still {row.status}: wait for it before merging its branch")
        outcome = await self.worktrees.merge(row.id, strategy=strategy, into=into, check_only=check_only)
        return MergeResult.model_validate(outcome, from_attributes=True)

    async def conflicts(self, refs: Sequence[str], *, caller: Caller = ROOT) -> ConflictsResult:
        rows = [await self.mission(ref, caller=caller) for ref in refs]
        found = await self.worktrees.conflicts([row.id for row in rows])
        return ConflictsResult(conflicts=[ConflictPair(a=a, b=b, paths=paths) for a, b, paths in found])

    async def discard(self, ref: str, *, caller: Caller = ROOT) -> DiscardResult:
        row = await self.mission(ref, caller=caller)
        return DiscardResult(id=row.id, note=await self.worktrees.discard(row.id))

    async def ps(
        self,
        *,
        parent: str | None = None,
        status: Status | None = None,
        tree: bool = False,
        limit: int = 100,
        caller: Caller = ROOT,
    ) -> PsResult:
        if parent is None and caller.mission_id is not None:
            parent, tree = caller.mission_id, True  # a mission sees its own subtree
        root = await self.mission(parent, caller=caller) if parent is not None else None
        answer, _kept = self.read.ps(
            await self.read.select(root=root, tree=tree, status=status), limit=limit, tree=tree
        )
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
        return self.read.logs(await self.mission(ref, caller=caller), cursor=cursor, limit=limit, format=format)

    async def status(self) -> ServerStatus:
        ctx = self.ctx
        return ServerStatus(
            version=__version__,
            server_id=ctx.server_id,
            uptime_s=round(time.monotonic() - self._started, 1),
            missions_by_status=await ctx.store.counts_by_status(),
            children_running=sum(mission.running for mission in ctx.roster),
            total_cost_usd=round(await ctx.store.total_cost(), 6),
            state_dir=str(ctx.settings.home),
            claude_bin=ctx.settings.claude_bin,
            admission=ctx.admission.limit,
            queued=ctx.admission.queued,
        )

    # -- permissions ---------------------------------------------------------------------------

    async def ask_permission(
        self, caller: Caller, tool_name: str, tool_input: dict[str, Any], *, tool_use_id: str | None = None
    ) -> PermissionAnswer:
        """A child's CLI asks whether it may run a tool call; the answer, once someone has given it."""
        if caller.mission_id is None:
            raise InvalidRequest("only a mission's CLI asks for permissions")
        return await self.ctx.broker.ask(caller.mission_id, ToolCall(tool_name, tool_input), tool_use_id=tool_use_id)

    def approvals(self, *, caller: Caller = ROOT) -> Approvals:
        """The permission requests waiting for the caller's answer."""
        return Approvals(requests=self.ctx.broker.inbox(caller.mission_id).take())

    async def approve(
        self,
        request_id: str,
        decision: Literal["allow", "deny"],
        *,
        updated_input: dict[str, Any] | None = None,
        message: str | None = None,
        remember: bool = False,
        caller: Caller = ROOT,
        person: str | None = None,
    ) -> ApprovalOutcome:
        """Answer a request as the caller (an ancestor mission, or the client), or as `person` (the console)."""
        who = (
            Who("person", person)
            if person
            else CLIENT
            if caller.mission_id is None
            else Who("mission", caller.mission_id)
        )
        return await self.ctx.broker.answer(
            request_id, decision, who=who, updated_input=updated_input, message=message, remember=remember
        )

    async def every_approval(self) -> Approvals:
        """Every request that waits for an answer on this state directory, whichever live server holds it."""
        ctx = self.ctx
        rows = await ctx.journal.pending()
        owners = await ctx.store.servers({row.server_id for row in rows})
        live = {
            server_id
            for server_id, (pid, start, stopped_at) in owners.items()
            if server_id == ctx.server_id or (stopped_at is None and same_process(pid, start))
        }
        requests = []
        for row in rows:
            if row.server_id in live:
                mission = await ctx.store.get(row.mission_id)
                requests.append(request_of(row, mission.name if mission is not None else row.mission_id))
        return Approvals(requests=requests)

    def next_form(self) -> str | None:
        """The oldest request for the client that its user has not been shown as a form."""
        pending = self.ctx.broker.next_to_elicit()
        return pending.row.id if pending is not None else None

    def form_question(self, request_id: str) -> str | None:
        """What the form asks (the same words each time it is rendered: the client may ask twice)."""
        pending = self.ctx.broker.get(request_id)
        if pending is None:
            return None
        return (
            f"Mission {pending.mission.name!r} asks to use {pending.call.describe(400)} ({pending.row.why}). Allow it?"
        )

    async def answer_form(
        self, request_id: str, decision: Literal["allow", "deny"] | None, *, message: str | None
    ) -> None:
        """What the client's user answered in the form; None: put away unanswered (it stays open)."""
        self.ctx.broker.elicited(request_id)
        if decision is None:
            return
        with contextlib.suppress(OvermindError):  # answered or ended meanwhile: the first answer stands
            await self.ctx.broker.answer(request_id, decision, who=Who("elicitation"), message=message or None)

    async def mission(self, ref: str, *, caller: Caller = ROOT) -> MissionRow:
        """A mission's row, by id or name, if the caller may see it; raises NotFound or AccessDenied."""
        row = await self.read.resolve(ref)
        await self.tree.check_visible(caller, row)
        return row


def _ray_runner(settings: Settings) -> list[RayRunner]:
    """The ray runner, wherever Ray is installed (it connects at its first mission), else none."""
    if settings.runner != "ray" and settings.ray_address is None and not ray_installed():
        return []
    return [RayRunner(settings.ray_address, namespace_for(settings.home), start_timeout_s=settings.ray_start_timeout_s)]


class _ServerLive:
    """The read side's view of what this server holds in memory."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def mission(self, mission_id: str) -> Mission | None:
        return self._ctx.roster.live(mission_id)

    def recent(self, mission_id: str) -> Mission | None:
        return self._ctx.roster.recent(mission_id)

    def named(self, name: str) -> Mission | None:
        return self._ctx.roster.named(name)

    def queue_position(self, mission_id: str) -> int | None:
        mission = self._ctx.roster.live(mission_id)
        return self._ctx.admission.position(mission) if mission is not None else None
