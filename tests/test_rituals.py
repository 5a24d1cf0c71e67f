"""Rituals and quests through real server processes, the MCP tools and the real console, on the wall clock.

Seconds-resolution schedules fire for real; a server is SIGKILLed and another catches up; the
history says exactly what happened to every slot.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from overmind_mcp.rituals.store import FILENAME
from overmind_mcp.settings import Settings
from tests.conftest import assert_no_leftovers
from tests.helpers import call, script, server_env, stdio_server
from tests.test_control import overmind
from tests.test_rituals_scheduler import until

pytestmark = pytest.mark.anyio


def fires(settings: Settings, ritual: str) -> list[sqlite3.Row]:
    """The ritual's fires as stored, oldest first, with their missions' status."""
    with sqlite3.connect(settings.home / FILENAME) as db:
        db.row_factory = sqlite3.Row
        db.execute("ATTACH DATABASE ? AS overmind", (str(settings.database_path),))
        return db.execute(
            """
            SELECT f.slot, f.state, f.mission_id, f.due, f.started_at, f.claimed_by, m.status, m.pid, m.name
            FROM fires f JOIN rituals r ON r.id = f.ritual_id LEFT JOIN overmind.missions m ON m.id = f.mission_id
            WHERE r.name = ? ORDER BY f.slot
            """,
            (ritual,),
        ).fetchall()


def count_ended(settings: Settings, ritual: str, at_least: int) -> Any:
    async def check() -> bool:
        rows = fires(settings, ritual) if (settings.home / FILENAME).exists() else []
        ended = [row for row in rows if row["status"] not in (None, "queued", "running")]
        return len(ended) >= at_least

    return check


async def history(settings: Settings, ritual: str) -> list[dict[str, Any]]:
    """`overmind ritual history --json`, oldest first."""
    done = await overmind(settings, "ritual", "history", ritual, "--json", "--limit", "1000")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["runs"][::-1]


def seconds(slot: str) -> float:
    return datetime.fromisoformat(slot).timestamp()


async def test_a_seconds_schedule_fires_each_slot_on_time_and_the_history_says_so(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _server):
        created = await call(
            client, "schedule", name="tick", cron="* * * * * *", spawn={"command": ["sh", "-c", "echo tick"]}, tz="UTC"
        )
        upcoming = [seconds(slot) for slot in created["next_fires"]]
        assert upcoming == [upcoming[0], upcoming[0] + 1, upcoming[0] + 2]
        await until(settings, count_ended(settings, "tick", 3))
        paused = await call(client, "pause_schedule", name="tick")
        assert paused["enabled"] is False and paused["next_fires"] == []
        listed = (await call(client, "schedules"))["rituals"]
        runs = await history(settings, "tick")
        # The MCP tool and the console say the same about the latest runs.
        assert listed[0]["last_runs"] == runs[::-1][:3]
        slots = [seconds(run["slot"]) for run in runs]
        assert slots == [slots[0] + index for index in range(len(slots))]  # not one second missed or repeated
        for run in runs:
            assert run["status"] == "succeeded" and run["exit_code"] == 0
            assert run["name"] == f"tick-{datetime.utcfromtimestamp(seconds(run['slot'])):%Y%m%dT%H%M%SZ}"
            assert 0 <= run["late_s"] < 1.0
        assert (await call(client, "result", id=runs[0]["mission"]))["text"] == "tick"
        assert (await call(client, "unschedule", name="tick")) == {"name": "tick", "fires_kept": 0}
    await assert_no_leftovers(settings)


async def test_catch_up_after_a_sigkilled_server_misses_and_repeats_nothing(settings: Settings) -> None:
    async with stdio_server(settings) as (client, server):
        await call(
            client,
            "schedule",
            name="beat",
            cron="* * * * * *",
            spawn={"command": ["true"]},
            tz="UTC",
            catch_up="all",
            overlap="allow",
        )
        await until(settings, count_ended(settings, "beat", 2))
        os.kill(server.pid, signal.SIGKILL)
        # Slots come due while no server runs: time itself is what this waits for.
        await anyio.sleep(3)
    async with stdio_server(settings) as (client, server):
        # Slots before the new server's process started came due while none ran.
        back_at, back = server.create_time(), (await call(client, "status"))["server_id"]
        await until(settings, count_ended(settings, "beat", len(fires(settings, "beat")) + 2))
        await call(client, "pause_schedule", name="beat")
        await until(settings, count_ended(settings, "beat", len(fires(settings, "beat"))))
        rows = fires(settings, "beat")
        runs = await history(settings, "beat")
    slots = [row["slot"] for row in rows]
    assert slots == list(range(slots[0], slots[0] + len(slots)))  # every second, once
    assert len({row["mission_id"] for row in rows}) == len(rows)
    assert {run["status"] for run in runs} == {"succeeded"}
    late = {run["slot"]: run["late_s"] for run in runs}
    caught_up = [row for row in rows if row["claimed_by"] == back and row["due"] < back_at]
    assert len(caught_up) >= 2  # three seconds down
    assert all(late[datetime.fromtimestamp(row["slot"], UTC).isoformat()] > 0.5 for row in caught_up)
    assert len({row["claimed_by"] for row in rows}) == 2
    await assert_no_leftovers(settings)


async def test_the_history_is_truthful_about_every_kind_of_end(settings: Settings) -> None:
    rituals = {
        "exits-3": {"command": ["sh", "-c", "echo broken; exit 3"]},
        "no-result": {"prompt": script("exit 1")},
        "answers": {"prompt": script("answer all good")},
        "still-going": {"command": ["sleep", "60"]},
    }
    async with stdio_server(settings) as (client, _server):
        for name, spawn in rituals.items():
            await call(client, "schedule", name=name, cron="* * * * * *", spawn=spawn, tz="UTC", overlap="forbid")
        for name in ("exits-3", "no-result", "answers"):
            await until(settings, count_ended(settings, name, 1))
        for name in rituals:
            await call(client, "pause_schedule", name=name)
        first = {name: (await history(settings, name))[0] for name in rituals}
        await call(client, "kill", ids=[first["still-going"]["mission"]])
    assert (first["exits-3"]["status"], first["exits-3"]["exit_code"]) == ("failed", 3)
    assert first["no-result"]["status"] == "failed" and "without a result" in first["no-result"]["reason"]
    assert first["answers"]["status"] == "succeeded" and first["answers"]["cost_usd"] > 0
    assert first["answers"]["exit_code"] == 0 and first["answers"]["duration_s"] > 0
    going = first["still-going"]
    assert (going["status"], going["exit_code"], going["cost_usd"]) == ("running", None, None)
    await assert_no_leftovers(settings)


async def test_unattended_claude_runs_answer_no_permission_prompt(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _server):
        await call(client, "schedule", name="careful", cron="* * * * * *", spawn={"prompt": script("hang")}, tz="UTC")
        await until(settings, _first_fire_running(settings, "careful"))
        await call(client, "pause_schedule", name="careful")
        fire = fires(settings, "careful")[0]
        assert "--permission-prompts=none" in psutil.Process(fire["pid"]).cmdline()

        quest = await overmind(settings, "run", "--prompt", script("hang"), "--json")
        assert quest.returncode == 0, quest.stderr
        spawned = json.loads(quest.stdout)
        with sqlite3.connect(settings.database_path) as db:
            [(pid,)] = db.execute("SELECT pid FROM missions WHERE id = ?", (spawned["id"],)).fetchall()
        assert "--permission-prompts=none" in psutil.Process(pid).cmdline()
        # A spawn from a session is attended: its prompts go to the host, as before.
        attended = await call(client, "spawn", prompt=script("say up", "hang"))
        await until(settings, _running(settings, attended["id"]))
        with sqlite3.connect(settings.database_path) as db:
            [(pid,)] = db.execute("SELECT pid FROM missions WHERE id = ?", (attended["id"],)).fetchall()
        assert not any(arg.startswith("--permission-prompts") for arg in psutil.Process(pid).cmdline())

        quests = json.loads((await overmind(settings, "quest", "list", "--json")).stdout)["quests"]
        by_origin = {entry["origin"]: entry for entry in quests}
        assert by_origin["terminal"]["mission"] == spawned["id"]
        assert by_origin["ritual"]["ritual"] == "careful" and by_origin["ritual"]["mission"] == fire["mission_id"]
        assert by_origin["ritual"]["slot"] == datetime.utcfromtimestamp(fire["slot"]).strftime("%Y-%m-%dT%H:%M:%SZ")
        await call(client, "kill", ids=[fire["mission_id"], spawned["id"], attended["id"]])
    await assert_no_leftovers(settings)


def _first_fire_running(settings: Settings, ritual: str) -> Any:
    async def check() -> bool:
        rows = fires(settings, ritual) if (settings.home / FILENAME).exists() else []
        return bool(rows) and rows[0]["pid"] is not None and rows[0]["status"] == "running"

    return check


def _running(settings: Settings, mission_id: str) -> Any:
    async def check() -> bool:
        with sqlite3.connect(settings.database_path) as db:
            [(pid,)] = db.execute("SELECT pid FROM missions WHERE id = ?", (mission_id,)).fetchall()
        return pid is not None

    return check


async def test_the_console_changes_rituals_through_a_live_server(settings: Settings, tmp_path: Path) -> None:
    refused = await overmind(settings, "ritual", "create", "nightly", "0 3 * * *", "--", "true")
    assert refused.returncode == 1 and "no overmind-mcp server is running" in refused.stderr
    async with stdio_server(settings) as (client, _server):
        created = await overmind(
            settings, "ritual", "create", "nightly", "0 3 * * *", "--tz", "Europe/Berlin", "--", "make", "backup",
            cwd=tmp_path,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        assert "ritual nightly: 0 3 * * * (Europe/Berlin), active; runs make backup" in created.stdout
        [ritual] = (await call(client, "schedules"))["rituals"]
        assert ritual["spawn"] == {"command": ["make", "backup"], "cwd": str(tmp_path)}
        assert ritual["next_fires"][0].endswith("T03:00:00+01:00")

        again = await overmind(settings, "ritual", "create", "nightly", "@daily", "--", "true")
        assert again.returncode == 1 and "a ritual named 'nightly' exists" in again.stderr
        bad = await overmind(settings, "ritual", "create", "other", "0 25 * * *", "--", "true")
        assert bad.returncode == 2 and "cron '0 25 * * *' is not valid" in bad.stderr
        zone = await overmind(settings, "ritual", "create", "other", "@daily", "--tz", "Moon/Base", "--", "true")
        assert zone.returncode == 2 and "not an IANA time zone" in zone.stderr
        session = await overmind(settings, "ritual", "create", "other", "@daily", "--prompt", "hi")
        assert session.returncode == 0, session.stderr

        paused = await overmind(settings, "ritual", "pause", "nightly")
        assert paused.returncode == 0 and "paused" in paused.stdout
        listing = await overmind(settings, "ritual", "list")
        assert listing.returncode == 0
        nightly = next(line for line in listing.stdout.splitlines() if line.startswith("nightly"))
        assert "paused" in nightly and "make backup" in nightly
        assert (await overmind(settings, "ritual", "pause", "nightly")).returncode == 1
        assert (await overmind(settings, "ritual", "resume", "nightly")).returncode == 0
        deleted = await overmind(settings, "ritual", "delete", "nightly")
        assert deleted.returncode == 0 and "deleted ritual nightly" in deleted.stdout
        gone = await overmind(settings, "ritual", "history", "nightly")
        assert gone.returncode == 3 and "no ritual is named 'nightly'" in gone.stderr
        assert (await overmind(settings, "ritual", "delete", "nightly")).returncode == 3
    # Listings read the files: they work with no server running.
    listed = await overmind(settings, "ritual", "list", "--json")
    assert [entry["name"] for entry in json.loads(listed.stdout)["rituals"]] == ["other"]


async def test_serve_headless_answers_the_console_and_ends_its_children_on_sigterm(settings: Settings) -> None:
    env = server_env(settings)
    command = [sys.executable, "-m", "overmind_mcp", "serve", "--headless"]
    async with await anyio.open_process(command, env=env) as server:
        assert server.stderr is not None
        with anyio.fail_after(30):
            said = b""
            while b"serving headless" not in said:
                said += await server.stderr.receive()
        done = await overmind(settings, "run", "--wait", "--", "sh", "-c", "echo from the service")
        assert done.returncode == 0, done.stderr
        assert "from the service" in done.stdout
        left = await overmind(settings, "run", "--json", "--", "sleep", "600")
        assert left.returncode == 0, left.stderr
        server.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            assert await server.wait() == 0
    rows = json.loads((await overmind(settings, "ps", "--all", "--json")).stdout)["missions"]
    assert {row["status"] for row in rows} == {"succeeded", "stopped"}
    await assert_no_leftovers(settings)


def test_install_service_writes_a_user_unit_for_a_headless_server(settings: Settings, tmp_path: Path) -> None:
    env = {**server_env(settings), "XDG_CONFIG_HOME": str(tmp_path / "config")}

    def install(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "overmind_mcp.console", "install", "--service", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)

    unit = tmp_path / "config" / "systemd" / "user" / "overmind-mcp.service"
    dry = install("--dry-run")
    assert dry.returncode == 0 and not unit.exists()
    assert "[Service]" in dry.stdout
    written = install()
    assert written.returncode == 0, written.stderr
    content = unit.read_text()
    lines = content.splitlines()
    server = Path(sys.executable).parent / "overmind-mcp"
    assert f'ExecStart="{server}" serve --headless' in lines
    assert f'Environment="OVERMIND_HOME={settings.home}"' in lines
    assert f'Environment="OVERMIND_CLAUDE_BIN={settings.claude_bin}"' in lines
    assert any(line.startswith('Environment="PATH=') for line in lines)
    assert {"Type=exec", "Restart=on-failure", "KillMode=process", "WantedBy=default.target"} <= set(lines)
    assert "TimeoutStopSec=17" in lines  # 1 s grace (server_env) per gentle signal, and a margin
    assert "systemctl --user enable --now overmind-mcp.service" in written.stderr
    assert install().stdout.startswith("service up to date")
    unit.write_text(content + "# changed by hand\n")
    refused = install()
    assert refused.returncode == 1 and "differs; --force replaces it" in refused.stderr
    assert install("--force").returncode == 0 and unit.read_text() == content
