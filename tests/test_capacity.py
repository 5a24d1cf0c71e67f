"""Admission that knows the machine: the default max_concurrent from memory, shown in status."""

from __future__ import annotations

import psutil
import pytest

from overmind_mcp.settings import Settings
from overmind_mcp.supervision.capacity import MIB, RESERVE_FRACTION, admission_limit
from tests.helpers import call, stdio_server

pytestmark = pytest.mark.anyio


def test_the_default_is_what_fits_in_available_memory_less_the_reserve(settings: Settings) -> None:
    limit = admission_limit(settings, available_bytes=10_000 * MIB)
    assert (limit.source, limit.child_rss_estimate_mb, limit.memory_available_mb) == ("memory", 335, 10_000)
    assert limit.max_concurrent == int(10_000 * (1 - RESERVE_FRACTION)) // 335 == 23


def test_a_machine_short_of_memory_still_runs_one_child(settings: Settings) -> None:
    assert admission_limit(settings, available_bytes=100 * MIB).max_concurrent == 1


def test_the_estimate_is_a_setting(settings: Settings) -> None:
    small = Settings.from_env({"OVERMIND_CHILD_RSS_ESTIMATE_MB": "100"}, home=settings.home)
    assert admission_limit(small, available_bytes=1_000 * MIB).max_concurrent == 8


def test_the_setting_overrides_memory(settings: Settings) -> None:
    fixed = Settings.from_env({"OVERMIND_MAX_CONCURRENT": "3"}, home=settings.home)
    limit = admission_limit(fixed, available_bytes=100_000 * MIB)
    assert (limit.max_concurrent, limit.source) == (3, "setting")


async def test_status_shows_the_limit_taken_from_this_machine(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _process):
        status = await call(client, "status")
    admission = status["admission"]
    assert admission["source"] == "memory"
    expected = max(1, int(psutil.virtual_memory().available * (1 - RESERVE_FRACTION)) // (335 * MIB))
    # Memory moves between the server's start and this reading; a tenth either way is the same machine.
    assert abs(admission["max_concurrent"] - expected) <= max(1, expected // 10)
    assert status["queued"] == 0


async def test_spawns_beyond_the_set_limit_queue_with_their_position(settings: Settings) -> None:
    async with stdio_server(settings, OVERMIND_MAX_CONCURRENT="1") as (client, _process):
        first = await call(client, "spawn", command=["sleep", "600"])
        second = await call(client, "spawn", command=["echo", "second"])
        third = await call(client, "spawn", command=["echo", "third"])
        assert (first["status"], second["status"], third["status"]) == ("running", "queued", "queued")
        status = await call(client, "status")
        assert status["admission"] | {"memory_available_mb": 0} == {
            "max_concurrent": 1,
            "source": "setting",
            "memory_available_mb": 0,
            "child_rss_estimate_mb": 335,
        }
        assert status["queued"] == 2
        listing = {mission["id"]: mission for mission in (await call(client, "ps"))["missions"]}
        assert [listing[second["id"]]["queue_position"], listing[third["id"]]["queue_position"]] == [1, 2]
        await call(client, "kill", ids=[first["id"]])
        done = await call(client, "wait", ids=[second["id"], third["id"]], mode="all", timeout_s=20)
        assert sorted(result["text"] for result in done["done"]) == ["second", "third"]
