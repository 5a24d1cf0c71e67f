"""What a starting server does with missions that an earlier server left live in the store.

Policy, applied to every mission the store says is live (queued, running, restarting) whose server is gone
(its pid no longer names the process that started at its recorded start time):

- Its process still runs (same pid **and** same kernel start time; a process whose pid was never
  recorded is found by the mission id in its environment): it is re-adopted. A
  server that stopped cleanly has already ended its children, except those spawned with
  `detach`; anything else still running was orphaned by a crash. Either way the work in
  progress (and the money spent on it) is worth keeping: its output is followed on, and
  `wait`, `kill` and `result` work as before. What its timeout has left still applies.
- Its process has ended: its runner says how (`Runner.settle`: the local runner's keeper wrote
  the exit status beside the output the moment it ended), and whatever it left behind is
  ended. Where nobody could see how it ended, a Claude task's `result` line still says
  whether it succeeded; a mission with neither is marked `lost`, with the reason.
- It was still queued: it joins this server's queue, in its original order.

A mission another live server supervises is left alone: that server owns it. Two servers
starting at once cannot both take over a mission: the store's `claim` lets only one win.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from overmind_mcp.core.exits import UNKNOWN_EXIT
from overmind_mcp.core.status import LIVE, Status
from overmind_mcp.runners.base import Runner, RunRecord
from overmind_mcp.runners.local.output import LineReader
from overmind_mcp.runners.local.process import process_start_time, same_process
from overmind_mcp.storage.missions import MissionRow, Store
from overmind_mcp.supervision import sessions
from overmind_mcp.supervision.context import Context
from overmind_mcp.supervision.lifecycle import Lifecycle, replay
from overmind_mcp.supervision.mission import Mission


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
        if not await adopt(life, row):
            await settle(life, row)
    for row in orphans.queued:
        ctx.admission.enqueue(life.track(row))
    for row in orphans.ended:
        await settle(life, row)
    if ctx.settings.retention_days:
        for row in await ctx.store.prune(time.time() - ctx.settings.retention_days * 86400):
            shutil.rmtree(Path(row.output_path).parent, ignore_errors=True)
    await ctx.admission.admit(life.begin_admitted)


async def adopt(life: Lifecycle, row: MissionRow) -> bool:
    """Follow on a mission an earlier server left running; False if its process has ended meanwhile."""
    ctx = life.ctx
    record = _run_record(row)
    handle = await ctx.runner(row.spec.runner).adopt(row.id, record)
    if handle is None:
        return False
    mission = life.track(row)
    mission.handle = handle
    credential = row.credential or {}
    if isinstance(credential.get("sha256"), str):
        # Its token is in its own memory only: let it back in, by the digest kept with it.
        ctx.credentials.restore(row.id, credential["sha256"], tools=bool(credential.get("tools")))
    if mission.session is not None and handle.accepts_input:
        # Its keeper held its input: the conversation goes on from where its output has got to.
        mission.reader = sessions.catch_up(mission)
    else:
        # Its stdin went with the server that started it: an adopted session takes no more turns.
        mission.session = None
        mission.reader = LineReader(Path(row.output_path))
    await ctx.store.add_event(row.id, time.time(), "adopted", {"server": ctx.server_id})
    ctx.tasks.start_soon(life.supervise, mission)
    return True


async def settle(life: Lifecycle, row: MissionRow) -> None:
    """Record the end of a mission whose process ended while no server was watching."""
    ctx = life.ctx
    mission = Mission(row, ctx.providers[row.provider], deque(maxlen=ctx.settings.tail_lines))
    ended_at = replay(mission)
    try:
        exit_status = await ctx.runner(row.spec.runner).settle(row.id, _run_record(row), Path(row.output_path).parent)
    except Exception:
        exit_status = UNKNOWN_EXIT
    await life.finish(mission, exit_status, ended_at=ended_at)


def _run_record(row: MissionRow) -> RunRecord:
    return RunRecord(pid=row.pid, pgid=row.pgid, start_time=row.proc_start, extra=row.runner_state or {})
