"""`spawn`: a request checked against the limits and its parent, placed, stored, then queued or started."""

from __future__ import annotations

import time
from pathlib import Path

import anyio

from overmind_mcp.bus import MissionSpawned
from overmind_mcp.core.spec import MissionSpec
from overmind_mcp.core.status import Status
from overmind_mcp.errors import Conflict, ShuttingDown
from overmind_mcp.identity import Caller
from overmind_mcp.models import Spawned, SpawnRequest
from overmind_mcp.names import check_name, new_id, new_name
from overmind_mcp.readside.queries import ReadSide
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision import limits
from overmind_mcp.supervision.context import Context
from overmind_mcp.supervision.lifecycle import Lifecycle
from overmind_mcp.supervision.tree import Tree
from overmind_mcp.workspaces.base import Placement, Prepared


class Spawning:
    def __init__(self, ctx: Context, tree: Tree, life: Lifecycle, read: ReadSide) -> None:
        self._ctx = ctx
        self._tree = tree
        self._life = life
        self._read = read

    async def spawn(self, request: SpawnRequest, caller: Caller) -> Spawned:
        ctx = self._ctx
        if ctx.admission.closing:
            # Shutdown has listed what it ends: a mission started now would outlive the server.
            raise ShuttingDown("this server is shutting down and starts nothing new; ask another one")
        limits.task_kind(request)  # a request of the wrong shape is refused before anything is looked up
        parent = await self._parent_for(request.parent, caller)
        chain = [parent, *await self._tree.ancestors(parent)] if parent else []
        siblings = len(await ctx.store.missions(parent_id=parent.id)) if parent else 0
        spent = {row.id: await self._tree.subtree_cost(row) for row in chain if row.spec.max_budget_usd is not None}
        request = limits.within_parent(
            request, chain, ctx.settings, siblings=siblings, spent=spent, by_mission=caller.mission_id is not None
        )
        limits.check_cwd(request.cwd, chain)
        if request.recall_into_prompt and request.prompt:
            request = await self._with_memories(request, parent)
        spec = limits.spec_of(request, default_runner=ctx.settings.runner)
        return await self._place(spec, request.name, request.cwd, parent)

    async def start(
        self, spec: MissionSpec, *, name: str | None, cwd: str | None, parent: str | None, caller: Caller
    ) -> Spawned:
        """A mission from a spec made by the server itself (a blueprint run), under the caller or `parent`."""
        row = await self._parent_for(parent, caller)
        siblings = len(await self._ctx.store.missions(parent_id=row.id)) if row else 0
        limits.room_for_child(row, self._ctx.settings, siblings=siblings)
        return await self._place(spec, name, cwd, row)

    async def _place(self, spec: MissionSpec, name: str | None, cwd: str | None, parent: MissionRow | None) -> Spawned:
        """Place, store and start (or queue) a mission whose spec has passed every check."""
        ctx = self._ctx
        mission_id, chosen = new_id(), check_name(name) if name else new_name()
        provider = ctx.providers.for_task(spec.task)
        ctx.runner(spec.runner)  # refuses an unknown runner before anything is made
        workspace = ctx.workspace(spec.workspace)
        parent_cwd, parent_id = (Path(parent.cwd), parent.id) if parent else (None, None)
        prepared = await workspace.prepare(Placement(mission_id, chosen, cwd, parent_cwd, spec, parent_id))
        try:
            row = await self._store_row(mission_id, chosen, name, spec, prepared, parent, provider.kind)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await workspace.release(mission_id, prepared.cwd, None)  # nothing of it may outlive the spawn
            raise
        mission = self._life.track(row)
        ctx.bus.publish(MissionSpawned(row.id, row.name, row.parent_id, row.status))
        if row.status == Status.QUEUED:
            ctx.admission.enqueue(mission)
        else:
            await self._life.begin(mission)
        return Spawned(id=row.id, name=row.name, status=row.status, parent=row.parent_id, pid=row.pid)

    async def _store_row(
        self,
        mission_id: str,
        chosen: str,
        asked: str | None,
        spec: MissionSpec,
        prepared: Prepared,
        parent: MissionRow | None,
        provider: str,
    ) -> MissionRow:
        ctx = self._ctx
        if prepared.env:
            # Kept in the spec: every run of the mission (restarts, a later server's) gets the same.
            spec = spec.model_copy(update={"env": {**prepared.env, **spec.env}})
        directory = ctx.settings.missions_dir / mission_id
        directory.mkdir(mode=0o700)
        # The mission's files exist before any runner starts: every runner's output lands in them.
        for path in (directory / "output.jsonl", directory / "stderr.log"):
            path.touch(mode=0o600)
        row = MissionRow(
            id=mission_id,
            name=chosen,
            parent_id=parent.id if parent else None,
            root_id=parent.root_id if parent else mission_id,
            depth=parent.depth + 1 if parent else 0,
            provider=provider,
            spec=spec,
            cwd=str(prepared.cwd),
            status=Status.QUEUED if ctx.admission.must_queue(spec) else Status.RUNNING,
            output_path=str(directory / "output.jsonl"),
            stderr_path=str(directory / "stderr.log"),
            created_at=time.time(),
            server_id=ctx.server_id,
        )
        for _attempt in range(3):
            try:
                await ctx.store.insert(row)
                break
            except Conflict:
                if asked:
                    raise
                row.name = new_name()
        return row

    async def _with_memories(self, request: SpawnRequest, parent: MissionRow | None) -> SpawnRequest:
        """The request with the memories most relevant to its prompt added to the system prompt."""
        # Under a parent, the child reads as its tree does: other trees' writers are not named.
        scope = self._ctx.akasha.scope(root_id=parent.root_id if parent else None, confined=parent is not None)
        block = await self._ctx.akasha.context_for_prompt(request.prompt or "", scope.visible(), scope=scope)
        if not block:
            return request
        system = "\n\n".join(part for part in (request.append_system_prompt, block) if part)
        return request.model_copy(update={"append_system_prompt": system})

    async def _parent_for(self, ref: str | None, caller: Caller) -> MissionRow | None:
        """The new mission's parent: the one named (within the caller's subtree), else the caller."""
        ref = ref if ref is not None else caller.mission_id
        if ref is None:
            return None
        parent = await self._read.resolve(ref)
        await self._tree.check_visible(caller, parent)
        live = self._ctx.roster.live(parent.id)
        if live is not None and live.stop_reason is not None:
            raise Conflict(f"parent {parent.name!r} is being stopped; it cannot take new children")
        return parent
