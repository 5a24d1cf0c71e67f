"""The scheduler on a fake clock: catch-up, grace, the cap, each overlap policy, two servers over 100 slots.

Time is the scheduler's only fake part: it runs its real loop against a real rituals.db, and
every fire spawns a real mission through a real supervisor. The tests move the clock and wait,
on commits to the databases, for what the scheduler does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

import anyio
import pytest

from overmind_mcp.models import SpawnRequest
from overmind_mcp.rituals import service
from overmind_mcp.rituals.models import RitualRun, RitualSpec
from overmind_mcp.rituals.scheduler import CATCH_UP_CAP
from overmind_mcp.rituals.service import Rituals
from overmind_mcp.rituals.store import FILENAME
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.settings import Settings
from overmind_mcp.storage.changes import relay_commits
from overmind_mcp.supervision.supervisor import Supervisor
from tests.conftest import assert_no_leftovers

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 2, 8, 0, 0, tzinfo=ZoneInfo("UTC")).timestamp()
HOUR = 3600.0


class FakeClock:
    """Wall-clock time that moves only when a test moves it; records every sleep the scheduler asks for."""

    def __init__(self, now: float) -> None:
        self._now = now
        self._moved = anyio.Event()
        self._slept = anyio.Event()
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def set(self, instant: float) -> None:
        self._now = instant
        self._moved.set()
        self._moved = anyio.Event()

    async def asleep_until(self, instants: list[float], within: float = 20) -> None:
        """Wait until the scheduler sleeps until one of `instants`."""
        with anyio.fail_after(within):
            while not (self.sleeps and self.sleeps[-1] in instants):
                await self._slept.wait()

    async def sleep_until(self, instant: float, wakeup: Wakeup) -> None:
        self.sleeps.append(instant)
        self._slept.set()
        self._slept = anyio.Event()
        async with anyio.create_task_group() as task_group:

            async def woken() -> None:
                await wakeup.wait()
                task_group.cancel_scope.cancel()

            task_group.start_soon(woken)
            while self._now < instant:
                await self._moved.wait()
            task_group.cancel_scope.cancel()


@pytest.fixture
async def quiet(settings: Settings) -> AsyncIterator[Supervisor]:
    """A supervisor whose own scheduler does not fire: the tests fire with a fake clock instead."""
    async with Supervisor.running(settings.model_copy(update={"fire_rituals": False})) as supervisor:
        yield supervisor
    await assert_no_leftovers(settings)


@asynccontextmanager
async def fake_rituals(supervisor: Supervisor, clock: FakeClock, *, fire: bool = True) -> AsyncIterator[Rituals]:
    """The rituals service of `supervisor`, on the fake clock (firing, or only keeping rituals)."""
    watcher = FileWatcher()
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(watcher.run)
        rituals = await task_group.start(functools.partial(service.serve, supervisor, watcher, clock=clock, fire=fire))
        yield rituals
        task_group.cancel_scope.cancel()


async def until(settings: Settings, check: Callable[[], Awaitable[bool]], within: float = 30) -> None:
    """Wait until `check()` holds, looking again at every commit to rituals.db or the mission table."""
    watcher, wakeup = FileWatcher(), Wakeup()
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(watcher.run)
        for path in (settings.home / FILENAME, settings.database_path):
            await task_group.start(relay_commits, watcher, path, wakeup)
        with anyio.fail_after(within):
            while not await check():
                await wakeup.wait()
        task_group.cancel_scope.cancel()


async def runs(rituals: Rituals, name: str) -> list[RitualRun]:
    """Every fire of the ritual, oldest first."""
    return (await rituals.history(name, limit=10_000)).runs[::-1]


def command(*argv: str, **fields: object) -> dict[str, object]:
    return {"spawn": SpawnRequest(command=list(argv)), "tz": "UTC", **fields}


async def test_no_tick_it_sleeps_until_the_next_slot_and_wakes_when_rituals_change(quiet: Supervisor) -> None:
    clock = FakeClock(T0 + 10)
    async with fake_rituals(quiet, clock) as rituals:
        await clock.asleep_until([math.inf])
        await rituals.schedule(RitualSpec(name="nine", cron="0 9 * * *", **command("true")))
        await rituals.schedule(RitualSpec(name="half", cron="30 8 * * *", **command("true")))
        # Each change wakes it; it then sleeps until exactly the earliest slot, never a moment sooner.
        await clock.asleep_until([T0 + 30 * 60])
        assert set(clock.sleeps) <= {math.inf, T0 + HOUR, T0 + 30 * 60}
        asked = len(clock.sleeps)
        clock.set(T0 + 30 * 60)
        await until(quiet.settings, lambda: _history_is(rituals, "half", ["succeeded"]))
        await clock.asleep_until([T0 + HOUR])
        # One slot, one pass: woken for it (and by its own commits), it asked for no sleeps in between.
        assert all(instant in (T0 + 30 * 60, T0 + HOUR) for instant in clock.sleeps[asked:])
        assert (await runs(rituals, "nine")) == []


async def _history_is(rituals: Rituals, name: str, statuses: list[str]) -> bool:
    return [run.status for run in await runs(rituals, name)] == statuses


async def create_then_go_down(supervisor: Supervisor, clock: FakeClock, spec: RitualSpec, down_s: float) -> None:
    """Create a ritual while no server fires; the clock then moves on by `down_s`."""
    async with fake_rituals(supervisor, clock, fire=False) as rituals:
        await rituals.schedule(spec)
    clock.set(clock.now() + down_s)


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        ("latest", ["missed", "missed", "missed", "missed", "succeeded"]),
        ("none", ["missed", "missed", "missed", "missed", "missed"]),
        ("all", ["succeeded", "succeeded", "succeeded", "succeeded", "succeeded"]),
    ],
)
async def test_slots_missed_while_no_server_ran_follow_catch_up(
    quiet: Supervisor, catch_up: str, expected: list[str]
) -> None:
    clock = FakeClock(T0 + 30)
    spec = RitualSpec(name="hourly", cron="0 * * * *", catch_up=catch_up, overlap="allow", **command("true"))
    await create_then_go_down(quiet, clock, spec, 5 * HOUR)
    async with fake_rituals(quiet, clock) as rituals:
        await until(quiet.settings, lambda: _history_is(rituals, "hourly", expected))
        history = await runs(rituals, "hourly")
    assert [run.slot for run in history] == [f"2026-03-02T{hour:02d}:00:00+00:00" for hour in range(9, 14)]
    for run in history:
        if run.status == "missed":
            assert run.reason is not None and f"catch_up={catch_up}" in run.reason
        else:
            assert run.exit_code == 0 and run.mission is not None and run.duration_s is not None


async def test_misfire_grace_bounds_how_late_a_slot_may_start(quiet: Supervisor) -> None:
    clock = FakeClock(T0 + 30)
    spec = RitualSpec(
        name="hourly", cron="0 * * * *", catch_up="all", misfire_grace_s=2.5 * HOUR, overlap="allow", **command("true")
    )
    await create_then_go_down(quiet, clock, spec, 5 * HOUR)
    async with fake_rituals(quiet, clock) as rituals:
        expected = ["missed", "missed", "succeeded", "succeeded", "succeeded"]
        await until(quiet.settings, lambda: _history_is(rituals, "hourly", expected))
        history = await runs(rituals, "hourly")
    assert history[0].reason == "14430s late, beyond misfire_grace_s=9000"
    assert history[2].late_s == 2 * HOUR + 30  # fake time: started the moment the server came back


async def test_a_long_outage_is_summed_up_past_the_cap(quiet: Supervisor) -> None:
    clock = FakeClock(T0)
    # overlap=allow: the two runs start together (the latest missed slot and the one now due).
    spec = RitualSpec(name="second", cron="* * * * * *", overlap="allow", **command("true"))
    await create_then_go_down(quiet, clock, spec, 1000)
    async with fake_rituals(quiet, clock) as rituals:
        await until(quiet.settings, lambda: _history_is_long(rituals, "second", CATCH_UP_CAP + 1))
        await until(quiet.settings, lambda: _last_two_settled(rituals, "second"))
        history = await runs(rituals, "second")
    summary, *recent = history
    assert summary.status == "missed" and summary.reason is not None
    assert summary.reason.startswith("900 slots from 2026-03-02T08:00:01+00:00 to this one came due")
    assert summary.slot == "2026-03-02T08:15:00+00:00"
    # The latest slot missed while down (catch_up=latest), and the one due as the server came back.
    assert [run.status for run in recent] == ["missed"] * (CATCH_UP_CAP - 2) + ["succeeded", "succeeded"]
    assert [run.slot for run in recent[-2:]] == ["2026-03-02T08:16:39+00:00", "2026-03-02T08:16:40+00:00"]


async def _history_is_long(rituals: Rituals, name: str, length: int) -> bool:
    return len(await runs(rituals, name)) == length


async def _last_two_settled(rituals: Rituals, name: str) -> bool:
    history = await runs(rituals, name)
    return all(run.status not in ("starting", "running", "queued") for run in history[-2:])


# -- overlap ---------------------------------------------------------------------------------------


async def started_runs(rituals: Rituals, name: str) -> list[RitualRun]:
    return [run for run in await runs(rituals, name) if run.mission is not None]


async def test_overlap_forbid_skips_a_slot_while_the_last_run_goes_on(quiet: Supervisor) -> None:
    clock = FakeClock(T0)
    async with fake_rituals(quiet, clock) as rituals:
        await rituals.schedule(RitualSpec(name="slow", cron="* * * * *", overlap="forbid", **command("sleep", "60")))
        clock.set(T0 + 60)
        await until(quiet.settings, lambda: _history_is(rituals, "slow", ["running"]))
        clock.set(T0 + 120)
        await until(quiet.settings, lambda: _history_is(rituals, "slow", ["running", "skipped"]))
        first, skipped = await runs(rituals, "slow")
        assert skipped.reason == f"the earlier run {first.name} was still running (overlap=forbid)"
        await quiet.kill([first.mission or ""])
        clock.set(T0 + 180)
        await until(quiet.settings, lambda: _history_is(rituals, "slow", ["stopped", "skipped", "running"]))
        await quiet.kill([run.mission or "" for run in await started_runs(rituals, "slow")])


async def test_overlap_allow_runs_side_by_side(quiet: Supervisor) -> None:
    clock = FakeClock(T0)
    async with fake_rituals(quiet, clock) as rituals:
        await rituals.schedule(RitualSpec(name="slow", cron="* * * * *", overlap="allow", **command("sleep", "60")))
        clock.set(T0 + 60)
        await until(quiet.settings, lambda: _history_is(rituals, "slow", ["running"]))
        clock.set(T0 + 120)
        await until(quiet.settings, lambda: _history_is(rituals, "slow", ["running", "running"]))
        await quiet.kill([run.mission or "" for run in await started_runs(rituals, "slow")])


async def test_overlap_replace_ends_the_last_run_first(quiet: Supervisor) -> None:
    clock = FakeClock(T0)
    async with fake_rituals(quiet, clock) as rituals:
        await rituals.schedule(RitualSpec(name="slow", cron="* * * * *", overlap="replace", **command("sleep", "60")))
        clock.set(T0 + 60)
        await until(quiet.settings, lambda: _history_is(rituals, "slow", ["running"]))
        clock.set(T0 + 120)
        await until(quiet.settings, lambda: _history_is(rituals, "slow", ["stopped", "running"]))
        first, second = await runs(rituals, "slow")
        ended = await quiet.result(first.mission or "")
        assert ended.ended_at is not None and ended.ended_at <= (await quiet.result(second.mission or "")).started_at
        await quiet.kill([second.mission or ""])


async def test_overlap_queue_starts_each_slot_in_order_after_the_last_run(quiet: Supervisor) -> None:
    clock = FakeClock(T0)
    async with fake_rituals(quiet, clock) as rituals:
        await rituals.schedule(RitualSpec(name="slow", cron="* * * * *", overlap="queue", **command("sleep", "60")))
        for minute in (1, 2, 3):
            clock.set(T0 + 60 * minute)
            await until(quiet.settings, functools.partial(_history_is_long, rituals, "slow", minute))
        await until(quiet.settings, lambda: _history_is(rituals, "slow", ["running", "waiting", "waiting"]))
        first, second, third = await runs(rituals, "slow")
        assert second.reason == third.reason == f"waits for the earlier run {first.name} to end"
        await quiet.kill([first.mission or ""])
        await until(quiet.settings, lambda: _history_is(rituals, "slow", ["stopped", "running", "waiting"]))
        second = (await runs(rituals, "slow"))[1]
        await quiet.kill([second.mission or ""])
        await until(quiet.settings, lambda: _history_is(rituals, "slow", ["stopped", "stopped", "running"]))
        await quiet.kill([run.mission or "" for run in await started_runs(rituals, "slow")])


# -- two servers -----------------------------------------------------------------------------------


async def test_two_servers_on_one_directory_fire_each_of_100_slots_once(settings: Settings) -> None:
    quiet = settings.model_copy(update={"fire_rituals": False})
    clock = FakeClock(T0)
    async with Supervisor.running(quiet) as one, Supervisor.running(quiet) as two:
        async with fake_rituals(one, clock) as first, fake_rituals(two, clock) as second:
            await first.schedule(RitualSpec(name="tick", cron="* * * * * *", overlap="allow", **command("true")))
            for second_number in range(1, 101):
                clock.set(T0 + second_number)
                await until(settings, functools.partial(_all_ended, second, "tick", second_number))
            history = await runs(first, "tick")
            fires = await first.store.fires((await first.store.ritual("tick")).id, limit=1000)  # type: ignore[union-attr]
        missions = (await one.ps(limit=1000)).missions
    assert [run.slot for run in history] == [
        datetime.fromtimestamp(T0 + number, ZoneInfo("UTC")).isoformat() for number in range(1, 101)
    ]
    assert {run.status for run in history} == {"succeeded"}
    assert sorted(mission.name for mission in missions) == sorted(run.name for run in history if run.name)
    assert len(missions) == 100
    assert {fire.claimed_by for fire in fires} <= {one.server_id, two.server_id}
    await assert_no_leftovers(settings)


async def _all_ended(rituals: Rituals, name: str, count: int) -> bool:
    history = await runs(rituals, name)
    return len(history) == count and all(run.status == "succeeded" for run in history)
