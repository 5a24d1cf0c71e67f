"""A lost wake-up in ``wait``, found by scenario 1 with the real CLI, reproduced deterministically.

Under load, ``test_parent_and_children.py`` once measured 10 020 ms between child-b's exit and the
parent's next request, instead of ~20 ms: exactly ``wait_heartbeat_s``. The real CLI sends a
``progressToken`` with every call, so ``wait`` reports progress as soon as it starts; when the child
ends *while that report is being sent*, ``Supervisor._wait_loop`` misses it:

    done = [...]                          # child still running
    await on_progress(...)                # ← the child ends here: _changed.fire() sets the old event
    await self._changed.wait()            # ← waits on the *new* event: nothing wakes it but the heartbeat

This test makes the report slow on purpose (as a busy client or a full pipe does) and lets the mission
end during it. It runs the supervisor in process: the race is in the server, not at its edges.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from overmind_mcp.models import SpawnRequest
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor
from tests.conftest import assert_no_leftovers

pytestmark = pytest.mark.anyio

HEARTBEAT_S = 3.0  # short, so that the failing case costs 3 s, not the default 10


async def test_wait_answers_at_once_when_a_mission_ends_during_a_progress_report(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "overmind", claude_bin="claude", wait_heartbeat_s=HEARTBEAT_S)
    async with Supervisor.running(settings) as supervisor:
        spawned = await supervisor.spawn(SpawnRequest(command=["sleep", "0.2"], name="quick"))

        async def slow_report(progress: float, total: float | None, message: str) -> None:
            # The notification takes until the mission has ended to go out. (A wait without progress
            # reports has no await between its check and its sleep, so it sees the end.)
            await supervisor.wait([spawned.id], timeout_s=30)

        started = time.monotonic()
        answer = await supervisor.wait([spawned.id], timeout_s=30, on_progress=slow_report)
        took = time.monotonic() - started

    await assert_no_leftovers(settings)
    assert [done.status for done in answer.done] == ["succeeded"] and not answer.timed_out
    assert took < HEARTBEAT_S / 2, f"wait answered {took:.2f} s after it began, for a 0.2 s mission"
