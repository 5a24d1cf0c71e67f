"""What `overmind tui` shows, read through the console's own read code, and when to read it again.

The tree is read again only when something changed: a commit to the store by any process (the
WAL change signal), a write to a live mission's output file (what it is doing, its cost), or the
end of a process whose server has gone (nobody commits that). Bursts are read once per
`MIN_GAP_S`. CPU and memory are sampled on a timer (a rate needs two samples), and only while
something runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.abc

from overmind_mcp.console import answers, ps
from overmind_mcp.console.state import State
from overmind_mcp.console.top import Top, TopEntry
from overmind_mcp.models import LIVE, MissionSummary, Totals
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.storage.changes import relay, relay_commits
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision.foreign import live_owners, orphan_state, watch_process

# The most often the tree is read again while missions write a lot.
MIN_GAP_S = 0.2
# Missions the tree lists at most (live ones always are).
LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The mission tree at one moment: rows in tree order and what the tools would say of each."""

    rows: list[MissionRow]
    summaries: dict[str, MissionSummary]
    totals: Totals
    orphans: dict[str, str]
    hidden: int

    def matching(self, needle: str) -> list[MissionRow]:
        """Rows whose id, name, status or activity contains `needle` (any case)."""
        needle = needle.casefold()
        if not needle:
            return self.rows
        return [
            row
            for row in self.rows
            if needle in " ".join([row.id, row.name, row.status, self.summaries[row.id].doing or ""]).casefold()
        ]


@dataclass
class Feed:
    state: State
    watcher: FileWatcher
    every: bool = False  # --all: ended missions of any age too
    top: Top = field(init=False)
    changed: Wakeup = field(default_factory=Wakeup)
    _followed: dict[str, anyio.CancelScope] = field(default_factory=dict)
    _watched: set[tuple[int, float | None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.top = Top(self.state)

    async def snapshot(self) -> Snapshot:
        store = self.state.store
        rows, hidden = await ps.listed(self.state, tree=True, every=self.every)
        live = [row for row in rows if row.status in LIVE]
        lives = self.top.follow(live)
        positions = answers.queue_positions(rows, [row for row in live if row.status == "queued"])
        answer, rows = answers.ps_result(rows, lives, positions, limit=LIMIT, tree=True)
        owners = await live_owners(store, live)
        orphans = {row.id: kind for row in live if (kind := orphan_state(row, owners))}
        return Snapshot(
            rows=rows,
            summaries={summary.id: summary for summary in answer.missions},
            totals=answer.totals,
            orphans=orphans,
            hidden=hidden,
        )

    async def run(
        self,
        show: Callable[[Snapshot], None],
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Call `show` with a snapshot now and after every change, until cancelled."""
        async with anyio.create_task_group() as task_group:
            await task_group.start(relay_commits, self.watcher, self.state.database_path, self.changed)
            started = False
            while True:
                read_at = time.monotonic()
                snapshot = await self.snapshot()
                show(snapshot)
                if not started:
                    task_status.started()
                    started = True
                await self._watch(task_group, snapshot)
                await self.changed.wait()
                await anyio.sleep(max(0.0, read_at + MIN_GAP_S - time.monotonic()))

    async def sample(self) -> list[TopEntry]:
        """CPU and memory of each running mission's process tree since the last sample."""
        return await self.top.sample()

    async def _watch(self, task_group: anyio.abc.TaskGroup, snapshot: Snapshot) -> None:
        """Follow the output files of the live missions, and the processes of those whose server is gone."""
        live = {row.id: row for row in snapshot.rows if row.status in LIVE}
        for gone in set(self._followed) - set(live):
            self._followed.pop(gone).cancel()
        for mission_id, row in live.items():
            if mission_id not in self._followed:
                # An output file not created yet is followed from the next look.
                with contextlib.suppress(FileNotFoundError):
                    self._followed[mission_id] = await task_group.start(
                        relay, self.watcher, Path(row.output_path), self.changed
                    )
            process = (row.pid, row.proc_start)
            if mission_id in snapshot.orphans and row.pid is not None and process not in self._watched:
                self._watched.add(process)
                task_group.start_soon(watch_process, row.pid, row.proc_start, self.changed)

    def close(self) -> None:
        self.top.close()
