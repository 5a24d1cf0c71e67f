"""A child's signal state is the keeper's clean slate, not whatever its server was started with."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator

import pytest

from overmind_mcp.models import SpawnRequest
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor

pytestmark = pytest.mark.anyio

# The child prints the masks of the signals it blocks and ignores (hexadecimal, from /proc).
REPORT = "print(*[line for line in open('/proc/self/status') if line.startswith(('SigBlk', 'SigIgn'))], sep='')"


@pytest.fixture
def careless_parent() -> Iterator[None]:
    """This process, as a server started by a careless parent: SIGINT ignored, SIGTERM blocked."""
    ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGINT, ignored)


async def test_children_neither_block_nor_ignore_the_signals_kill_sends(
    settings: Settings, careless_parent: None
) -> None:
    async with Supervisor.running(settings) as supervisor:
        spawned = await supervisor.spawn(SpawnRequest(command=[sys.executable, "-c", REPORT]))
        done = await supervisor.wait([spawned.id], timeout_s=20)
        assert not done.timed_out
        page = await supervisor.logs(spawned.id)
    masks = dict(line.split(":\t") for line in page.lines if ":\t" in line)
    for number in (signal.SIGINT, signal.SIGTERM):
        bit = 1 << (number - 1)
        assert not int(masks["SigBlk"], 16) & bit, f"the child blocks {number.name}"
        assert not int(masks["SigIgn"], 16) & bit, f"the child ignores {number.name}"
