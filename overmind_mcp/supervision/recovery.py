"""What a starting server does with missions that an earlier server left live in the store.

Policy, applied to every mission the store says is live (queued, running, restarting) whose server is gone
(its pid no longer names the process that started at its recorded start time):

- Its process still runs (same pid **and** same kernel start time; a process whose pid was never
  recorded is found by the mission id in its environment): it is re-adopted. A
  server that stopped cleanly has already ended its children, except those spawned with
  `detach`; anything else still running was orphaned by a crash. Either way the work in
  progress (and the money spent on it) is worth keeping: its output is followed on, and
  `wait`, `kill` and `result` work as before. What its timeout has left still applies.
- Its process has ended: its final status comes from its durable output. A Claude task's
  `result` line says whether it succeeded (its exit status went with the server that
  reaped it); a mission that left no result, or a command (whose only outcome is its exit
  status), is marked `lost`, with the reason.
- Whatever its process group left behind is killed, found by group id and mission id.
- It was still queued: it joins this server's queue, in its original order.

A mission another live server supervises is left alone: that server owns it. Two servers
starting at once cannot both take over a mission: the store's `claim` lets only one win.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from overmind_mcp.core.status import LIVE, Status
from overmind_mcp.runners.base import Runner
from overmind_mcp.runners.local.process import process_start_time, same_process
from overmind_mcp.storage.missions import MissionRow, Store
from overmind_mcp.supervision.context import Context
from overmind_mcp.supervision.lifecycle import Lifecycle


@dataclass(frozen=True, slots=True)
class Orphans:
    """Live missions whose server has gone, sorted by what is to be done with them."""

    running: list[MissionRow]
    queued: list[MissionRow]
    ended: list[MissionRow]


async def find_orphans(store: Store, server_id: str, runners: dict[str, Runner]) -> Orphans:
    """Claim every live mission whose server has gone; split them by whether their process may still run.

    `running` are only candidates: the mission's runner says, when it adopts one, whether it still runs.
    """
    rows = [row for row in await store.missions(statuses=tuple(LIVE)) if row.server_id != server_id]
    owners = await store.servers({row.server_id for row in rows if row.server_id})
    running, queued, ended = [], [], []
    for row in rows:
        owner = owners.get(row.server_id or "")
        if owner is not None and owner[2] is None and same_process(owner[0], owner[1]):
            continue  # another server is alive and supervises it
        if not await store.claim(row.id, row.server_id, server_id):
            continue  # another starting server took it first
        row.server_id = server_id
        runner = runners.get(row.spec.runner)
        if row.status == Status.RUNNING and row.pid is None and runner is not None:
            found = await runner.find(row.id)
            if found is not None:
                # Its server died between starting it and recording its pid.
                row.pid, row.pgid, row.proc_start = found.pid, found.pgid, found.start_time
                await store.update(row.id, pid=row.pid, pgid=row.pgid, proc_start=row.proc_start)
        if row.status == Status.QUEUED:
            queued.append(row)
        elif runner is not None and (row.pid is not None or row.runner_state):
            running.append(row)
        else:
            ended.append(row)
    return Orphans(running=running, queued=queued, ended=ended)


async def recover(ctx: Context, life: Lifecycle) -> None:
    """Register this server, take over what crashed servers left behind, prune old missions."""
    me = os.getpid()
    await ctx.store.register_server(ctx.server_id, me, process_start_time(me) or 0.0, time.time())
    orphans = await find_orphans(ctx.store, ctx.server_id, ctx.runners)
    for row in orphans.running:
        if not await life.adopt(row):
            await life.settle(row)
    for row in orphans.queued:
        ctx.admission.enqueue(life.track(row))
    for row in orphans.ended:
        await life.settle(row)
    if ctx.settings.retention_days:
        for row in await ctx.store.prune(time.time() - ctx.settings.retention_days * 86400):
            shutil.rmtree(Path(row.output_path).parent, ignore_errors=True)
    await ctx.admission.admit(life.begin_admitted)
