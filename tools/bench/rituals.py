"""Rituals: how late fires are against their scheduled instant, and whether any slot fires twice or not at all.

Lateness. One server fires a ritual every second (`* * * * * *`, the command `true`); a fire's
lateness is the moment its process had been started (the mission's `started_at`, taken right
after the spawn) minus the slot, and the scheduler's own share is the moment the fire was
claimed minus the slot. The limit: a bare anyio loop in this process that sleeps until each
half second and starts the same process the same way (BareLoop), at the same time as the
server, so both see the same load.

Duplicates and misses. Two `serve --headless` servers share one state directory while a
ritual fires every second, with catch_up=all; every few slots one of them is SIGKILLed and
a new one started, and once both are down for a while. Over the slots from the first fire
on, a duplicate is a slot with more than one mission; a silent miss is a slot with no row at
all (a slot the scheduler passed over has a row saying why). Both must be 0.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from tools.bench.common import BareLoop, Config, child_env, overmind_env, overmind_server, percentile, row, summary

RITUAL = "tick"


def _fires(home: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(home / "rituals.db") as db:
        db.row_factory = sqlite3.Row
        db.execute("ATTACH DATABASE ? AS overmind", (str(home / "overmind.db"),))
        return db.execute(
            """
            SELECT f.slot, f.due, f.state, f.claimed_at, f.claimed_by, m.started_at, m.status
            FROM fires f JOIN rituals r ON r.id = f.ritual_id LEFT JOIN overmind.missions m ON m.id = f.mission_id
            WHERE r.name = ? ORDER BY f.slot
            """,
            (RITUAL,),
        ).fetchall()


def _missions_per_slot(home: Path) -> dict[str, int]:
    with sqlite3.connect(home / "overmind.db") as db:
        rows = db.execute(
            "SELECT name, count(*) FROM missions WHERE name LIKE ? GROUP BY name", (f"{RITUAL}-%",)
        ).fetchall()
    return dict(rows)


async def _until_second(offset: float) -> float:
    """Sleep until the next whole second plus `offset`; that instant."""
    now = time.time()
    target = int(now) + 1 + offset
    await anyio.sleep(target - now)
    return target


async def _bare_fires(bare: BareLoop, count: int, lateness: list[float]) -> None:
    for _ in range(count):
        target = await _until_second(0.5)
        process, _ = bare.start(["true"])
        lateness.append((time.time() - target) * 1000)
        await bare.reap(process)


async def lateness(config: Config, slots: int) -> dict[str, Any]:
    home = config.scratch / "lateness"
    bare_lateness: list[float] = []
    bare = BareLoop(config.scratch / "bare", child_env())
    bare.directory.mkdir(parents=True)
    async with overmind_server(home) as server:
        await server.call(
            "schedule",
            {"name": RITUAL, "cron": "* * * * * *", "spawn": {"command": ["true"]}, "tz": "UTC", "overlap": "allow"},
        )
        try:
            await _bare_fires(bare, slots, bare_lateness)
        finally:
            bare.kill_all()
        await server.call("pause_schedule", {"name": RITUAL})
        fires = [fire for fire in _fires(home) if fire["started_at"] is not None]
    started = [(fire["started_at"] - fire["due"]) * 1000 for fire in fires]
    claimed = [(fire["claimed_at"] - fire["due"]) * 1000 for fire in fires]
    return {"started_ms": started, "claimed_ms": claimed, "bare_ms": bare_lateness}


async def _headless(home: Path, task_group: anyio.abc.TaskGroup) -> anyio.abc.Process:
    """A `serve --headless` server, once it says it serves (its stderr is drained from then on)."""
    command = [sys.executable, "-m", "overmind_mcp", "serve", "--headless"]
    process = await anyio.open_process(command, env=overmind_env(home), stdout=subprocess.DEVNULL)
    assert process.stderr is not None
    said = b""
    with anyio.fail_after(60):
        while b"serving headless" not in said:
            said += await process.stderr.receive()
    task_group.start_soon(_drain, process.stderr)
    return process


async def _drain(stream: anyio.abc.ByteReceiveStream) -> None:
    async for _chunk in stream:
        pass


async def _console(home: Path, *args: str) -> str:
    done = await anyio.run_process(
        [sys.executable, "-m", "overmind_mcp.console", *args], env=overmind_env(home), check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"overmind {' '.join(args)}: {done.stderr.decode().strip()}")
    return done.stdout.decode()


async def duplicates_and_misses(config: Config, slots: int) -> dict[str, Any]:
    """Two servers, killed and restarted now and then, over `slots` one-second slots."""
    home = config.scratch / "restarts"
    async with anyio.create_task_group() as drains:
        outcome = await _with_restarts(home, slots, drains)
        drains.cancel_scope.cancel()
    return outcome


async def _with_restarts(home: Path, slots: int, drains: anyio.abc.TaskGroup) -> dict[str, Any]:
    servers = [await _headless(home, drains), await _headless(home, drains)]
    restarts = 0
    try:
        await _console(home, "ritual", "create", RITUAL, "* * * * * *", "--tz", "UTC", "--catch-up", "all",
                       "--overlap", "allow", "--", "true")  # fmt: skip
        created = time.time()
        end = int(created) + slots + 1
        turn = 0
        # Every few slots one server dies (SIGKILL, nothing saved) and another takes its place; once, both.
        while time.time() < end - 3:
            await anyio.sleep(min(max(slots / 8, 2.0), end - 3 - time.time()))
            victims = [0, 1] if turn == 3 else [turn % 2]
            for index in victims:
                servers[index].send_signal(signal.SIGKILL)
                await servers[index].wait()
            await anyio.sleep(2.5 if len(victims) == 2 else 0.5)
            for index in victims:
                servers[index] = await _headless(home, drains)
                restarts += 1
            turn += 1
        await anyio.sleep(max(0.0, end + 1.5 - time.time()))
        await _console(home, "ritual", "pause", RITUAL)
        running = _running(home)
        if running:
            await _console(home, "wait", *running, "--timeout", "60")
        fires = _fires(home)
        per_slot = _missions_per_slot(home)
    finally:
        for server in servers:
            if server.returncode is None:
                server.send_signal(signal.SIGTERM)
                await server.wait()
    window = [fire["slot"] for fire in fires if fire["slot"] <= end]
    first, last = (min(window), max(window)) if window else (0, -1)
    recorded = {fire["slot"] for fire in fires}
    silent = [slot for slot in range(first, last + 1) if slot not in recorded]
    duplicates = sum(count - 1 for count in per_slot.values() if count > 1)
    explicit = [dict(fire) for fire in fires if fire["state"] != "started"]
    claimers = {fire["claimed_by"] for fire in fires}
    return {
        "slots": last - first + 1,
        "restarts": restarts,
        "duplicates": duplicates,
        "silent_misses": len(silent),
        "recorded_not_run": len(explicit),
        "not_succeeded": sum(1 for fire in fires if fire["status"] not in ("succeeded", None)),
        "servers_that_fired": len(claimers),
        "late_after_outage_s": max(((fire["started_at"] or 0) - fire["due"] for fire in fires), default=0.0),
    }


def _running(home: Path) -> list[str]:
    with sqlite3.connect(home / "overmind.db") as db:
        rows = db.execute("SELECT id FROM missions WHERE status IN ('queued', 'running', 'restarting')").fetchall()
    return [mission_id for (mission_id,) in rows]


async def run(config: Config) -> dict[str, Any]:
    slots = 8 if config.quick else 100
    measured = await lateness(config, slots)
    restarts = await duplicates_and_misses(config, 12 if config.quick else 100)
    started, claimed, bare = measured["started_ms"], measured["claimed_ms"], measured["bare_ms"]
    rows = [
        row(
            "fire lateness p50: slot → its process started",
            ours=percentile(started, 50),
            baseline=percentile(bare, 50),
            unit="ms",
            baseline_name="bare loop: sleep to the instant, start the process",
            spread_of="",
        ),
        row(
            "fire lateness p99",
            ours=percentile(started, 99),
            baseline=percentile(bare, 99),
            unit="ms",
            baseline_name="bare loop",
            spread_of="",
        ),
        row(
            "scheduler's share p50: slot → fire claimed",
            ours=percentile(claimed, 50),
            baseline=None,
            unit="ms",
            baseline_name="",
            spread_of="",
        ),
        row(
            f"duplicates over {restarts['slots']} slots, {restarts['restarts']} server restarts (SIGKILL)",
            ours=restarts["duplicates"],
            baseline=None,
            unit="",
            baseline_name="",
            spread_of="",
            target="0",
            met=restarts["duplicates"] == 0,
        ),
        row(
            "silent misses over the same slots",
            ours=restarts["silent_misses"],
            baseline=None,
            unit="",
            baseline_name="",
            spread_of="",
            target="0",
            met=restarts["silent_misses"] == 0,
        ),
    ]
    notes = [
        f"lateness over {len(started)} fires: {json.dumps(summary(started))} ms",
        f"bare loop: {json.dumps(summary(bare))} ms",
        f"restarts: {json.dumps(restarts)}",
    ]
    return {"rows": rows, "notes": notes, "lateness": measured, "restarts": restarts}
