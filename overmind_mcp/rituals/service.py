"""Rituals (scheduled runs) and quests (one-shot runs from outside a session), beside a supervisor.

`serve` runs for the server's lifetime: it opens rituals.db, relays its changes (inotify on
its WAL) to the scheduler, and runs the scheduler unless the server was told not to fire
(OVERMIND_FIRE_RITUALS=0). Every server on a state directory may fire; each slot is fired by
exactly one of them (see scheduler.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from overmind_mcp.errors import Conflict, InvalidRequest, NotFound
from overmind_mcp.models import Spawned
from overmind_mcp.names import check_name, new_id
from overmind_mcp.rituals import views
from overmind_mcp.rituals.cron import Cron, host_zone
from overmind_mcp.rituals.models import (
    History,
    Origin,
    QuestList,
    QuestRequest,
    Ritual,
    RitualList,
    RitualSpec,
    Unscheduled,
)
from overmind_mcp.rituals.scheduler import Broadcast, Clock, Scheduler, SystemClock
from overmind_mcp.rituals.store import FILENAME, QuestRow, RitualRow, RitualStore
from overmind_mcp.rituals.targets import MAX_NAME, check_blueprints_available, check_spawn, unattended
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.storage.changes import relay_commits
from overmind_mcp.storage.missions import MissionRow

if TYPE_CHECKING:
    from overmind_mcp.supervision.supervisor import Supervisor


class Rituals:
    def __init__(self, supervisor: Supervisor, store: RitualStore, scheduler: Scheduler) -> None:
        self.supervisor = supervisor
        self.store = store
        self.scheduler = scheduler

    @property
    def clock(self) -> Clock:
        return self.scheduler.clock

    async def schedule(self, spec: RitualSpec) -> Ritual:
        name = check_name(spec.name)
        if len(name) > MAX_NAME:
            raise InvalidRequest(f"name: at most {MAX_NAME} characters (each run is named <name>-<slot>)")
        tz = spec.tz or host_zone()
        cron = Cron(spec.cron, tz)
        if (spec.spawn is None) == (spec.blueprint is None):
            raise InvalidRequest("give exactly one of spawn={prompt|command, …} or blueprint=NAME")
        spawn = None
        if spec.spawn is not None:
            request = check_spawn(spec.spawn)
            # Frozen now: a run must not depend on where the server that fires it was started.
            request = request.model_copy(update={"cwd": str(_directory(request.cwd))})
            spawn = request.model_dump(exclude_defaults=True)
        if spec.blueprint is not None:
            check_blueprints_available(spec.blueprint)
        now = self.clock.now()
        row = RitualRow(
            id=new_id(),
            name=name,
            cron=cron.expression,
            tz=tz,
            spawn=spawn,
            blueprint=spec.blueprint,
            catch_up=spec.catch_up,
            misfire_grace_s=spec.misfire_grace_s,
            overlap=spec.overlap,
            jitter_s=spec.jitter_s,
            enabled=spec.enabled,
            created_at=now,
            anchor=now,
        )
        await self.store.insert(row)
        return await self.describe(row)

    async def unschedule(self, name: str) -> Unscheduled:
        row = await self._ritual(name)
        running = await self.scheduler.live_runs(row)
        await self.store.delete(row.id)
        return Unscheduled(name=row.name, fires_kept=len(running))

    async def pause(self, name: str, *, paused: bool = True) -> Ritual:
        row = await self._ritual(name)
        if row.enabled == (not paused):
            raise Conflict(f"ritual {name!r} is already {'paused' if paused else 'running'}")
        # Resumed, it owes nothing for the time it was paused: slots count from now.
        anchor = row.anchor if paused else self.clock.now()
        await self.store.set_enabled(row.id, not paused, anchor)
        row.enabled, row.anchor = not paused, anchor
        return await self.describe(row)

    async def list(self) -> RitualList:
        return RitualList(rituals=[await self.describe(row) for row in await self.store.rituals()])

    async def history(self, name: str, *, limit: int = 50) -> History:
        if limit < 1:
            raise InvalidRequest("limit must be at least 1")
        row = await self._ritual(name)
        now = self.clock.now()
        fires = await self.store.fires(row.id, limit=limit)
        return History(name=row.name, runs=[await views.run_of(fire, row.tz, self._lookup, now) for fire in fires])

    async def describe(self, row: RitualRow) -> Ritual:
        fires = await self.store.fires(row.id, limit=views.LAST_RUNS)
        return await views.ritual_of(row, fires, self._lookup, self.clock.now())

    async def quest(self, request: QuestRequest, *, origin: Origin) -> Spawned:
        """A one-shot run with its provenance: started unattended, recorded as a quest."""
        spawned = await self.supervisor.spawn(unattended(request.spawn))
        await self.store.add_quest(QuestRow(spawned.id, spawned.name, origin, None, None, self.clock.now()))
        return spawned

    async def quests(self, *, limit: int = 50) -> QuestList:
        now = self.clock.now()
        return QuestList(
            quests=[await views.quest_of(row, self._lookup, now) for row in await self.store.quests(limit=limit)]
        )

    async def _ritual(self, name: str) -> RitualRow:
        row = await self.store.ritual(name)
        if row is None:
            raise NotFound(f"no ritual is named {name!r}; schedules lists them")
        return row

    async def _lookup(self, mission_id: str) -> MissionRow | None:
        try:
            return await self.supervisor.mission(mission_id)
        except NotFound:
            return None


_RUNNING: dict[str, Rituals] = {}
"""The rituals service beside each supervisor of this process, by server id (while `serve` runs)."""


def rituals_of(supervisor: Supervisor) -> Rituals:
    found = _RUNNING.get(supervisor.server_id)
    if found is None:
        raise Conflict("this server runs without its rituals service; start it with `overmind-mcp serve`")
    return found


async def serve(
    supervisor: Supervisor,
    watcher: FileWatcher,
    *,
    clock: Clock | None = None,
    fire: bool | None = None,
    task_status: anyio.abc.TaskStatus[Rituals] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Keep rituals for as long as the task runs, and fire them if `fire` (default: the server's setting)."""
    store = await RitualStore.open(supervisor.settings.home)
    changed, wakeup = Broadcast(), Wakeup()
    scheduler = Scheduler(supervisor, store, clock or SystemClock(), server_id=supervisor.server_id, changed=changed)
    rituals = Rituals(supervisor, store, scheduler)
    try:
        async with anyio.create_task_group() as task_group:
            await task_group.start(_relay, watcher, supervisor.settings.home / FILENAME, wakeup, changed)
            if supervisor.settings.fire_rituals if fire is None else fire:
                await task_group.start(scheduler.run, wakeup)
            # The first one started is what the MCP tools of this server reach (tests may start more).
            _RUNNING.setdefault(supervisor.server_id, rituals)
            task_status.started(rituals)
            await anyio.sleep_forever()
    finally:
        if _RUNNING.get(supervisor.server_id) is rituals:
            del _RUNNING[supervisor.server_id]
        with anyio.CancelScope(shield=True):
            await store.close()


async def _relay(
    watcher: FileWatcher,
    database_path: Path,
    wakeup: Wakeup,
    changed: Broadcast,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Wake the scheduler and every drain at each commit to rituals.db, once it is visible."""
    commits = Wakeup()
    async with anyio.create_task_group() as task_group:
        await task_group.start(relay_commits, watcher, database_path, commits)
        task_status.started()
        while True:
            await commits.wait()
            wakeup.set()
            changed.fire()


def _directory(requested: str | None) -> Path:
    cwd = Path(requested).expanduser() if requested else Path.cwd()
    if not cwd.is_absolute():
        cwd = Path.cwd() / cwd
    if not cwd.is_dir():
        raise InvalidRequest(f"spawn.cwd {requested!r} is not an existing directory")
    return cwd.resolve()
