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

from dataclasses import dataclass

from overmind_mcp.core.status import LIVE, Status
from overmind_mcp.runners.base import Runner
from overmind_mcp.runners.local.process import same_process
from overmind_mcp.storage.missions import MissionRow, Store


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
