"""Processes that leave their mission's process group (setsid) end with it, also after a server crash."""

from __future__ import annotations

import os
import sys

import anyio
import pytest

from overmind_mcp.models import SpawnRequest
from overmind_mcp.supervision.supervisor import Supervisor
from tests.conftest import processes_of

pytestmark = pytest.mark.anyio

# Three that escape the group in different ways: a setsid child, a setsid child's own child, and a
# double fork whose middle process exits (its child is orphaned, in a session of its own).
ESCAPE = """
import os, subprocess, sys, time
subprocess.Popen(["sleep", "300"], start_new_session=True)
subprocess.Popen([sys.executable, "-c", "import subprocess; subprocess.Popen(['sleep', '300']).wait()"],
                 start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(300)
    os._exit(0)
print("escaped", flush=True)
{tail}
"""


async def _escapees(supervisor: Supervisor, mission_id: str, count: int) -> list[int]:
    """Wait (on the mission's output, then the process table) until `count` processes left its group."""
    with anyio.fail_after(10):
        while not any("escaped" in line for line in (await supervisor.logs(mission_id)).lines):
            await supervisor.wait([mission_id], timeout_s=0.2)
    row = await supervisor.ctx.store.get(mission_id)
    outside = [p.pid for p in processes_of({mission_id}) if p.pid != row.pid and _group(p.pid) != row.pgid]
    assert len(outside) >= count, outside
    return outside


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@pytest.mark.parametrize("ending", ["kill", "exit"])
async def test_processes_that_leave_the_group_end_with_the_mission(supervisor: Supervisor, ending: str) -> None:
    tail = "import time; time.sleep(300)" if ending == "kill" else ""
    spawned = await supervisor.spawn(SpawnRequest(command=[sys.executable, "-c", ESCAPE.format(tail=tail)]))
    if ending == "kill":
        await _escapees(supervisor, spawned.id, 3)
        await supervisor.kill([spawned.id])
    done = await supervisor.wait([spawned.id], timeout_s=20)
    assert not done.timed_out
    assert processes_of({spawned.id}) == []
