"""Ending missions on request: kills (children before parents, own missions and other servers' alike), shutdown."""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio

from overmind_mcp.core.status import LIVE, StopReason
from overmind_mcp.models import KillOutcome, KillResult
from overmind_mcp.readside.queries import ReadSide
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision import foreign
from overmind_mcp.supervision.context import Context
from overmind_mcp.supervision.lifecycle import Lifecycle
from overmind_mcp.supervision.tree import Tree


class Ending:
    def __init__(self, ctx: Context, tree: Tree, life: Lifecycle, read: ReadSide) -> None:
        self._ctx = ctx
        self._tree = tree
        self._life = life
        self._read = read

    async def kill(self, targets: Sequence[MissionRow], *, cascade: bool, force: bool) -> KillResult:
        """End `targets` (and, with `cascade`, their subtrees), deepest first."""
        levels = await self._tree.kill_order(targets, cascade=cascade)
        for level in levels:
            for row in level:
                if (mission := self._ctx.roster.live(row.id)) is not None:
                    # Marked before any signal, so none of them can take new children meanwhile.
                    mission.request_stop(StopReason.STOPPED)
        how: dict[str, str] = {}
        for level in levels:  # deepest first: children end before their parents
            async with anyio.create_task_group() as task_group:
                for row in level:
                    task_group.start_soon(self._kill_one, row, force, how)
        return KillResult(
            ended=[
                KillOutcome(id=row.id, name=row.name, status=(await self._read.row(row.id)).status, how=how[row.id])
                for level in levels
                for row in level
            ]
        )

    async def _kill_one(self, row: MissionRow, force: bool, how: dict[str, str]) -> None:
        ctx = self._ctx
        if (mission := ctx.roster.live(row.id)) is not None:
            how[row.id] = await self._life.terminate(mission, force=force)
        elif row.status in LIVE:
            how[row.id] = await foreign.terminate_foreign(
                ctx.store, ctx.watcher, ctx.settings.database_path, row, force=force, grace_s=ctx.settings.kill_grace_s
            )
        else:
            how[row.id] = f"already {row.status}"

    async def shutdown(self) -> None:
        """End every mission this server runs, except detached ones (the server is going away)."""
        ctx = self._ctx
        ctx.admission.closing = True
        missions = list(ctx.roster)
        for mission in missions:
            if mission.spec.detach:
                # Left running (or queued), and so in the store: the next server re-adopts it.
                mission.scope.cancel()
            else:
                mission.request_stop(StopReason.SHUTDOWN)
        async with anyio.create_task_group() as task_group:
            for mission in missions:
                if not mission.spec.detach:
                    task_group.start_soon(self._life.terminate_quietly, mission)
        await ctx.store.server_stopped(ctx.server_id, time.time())
