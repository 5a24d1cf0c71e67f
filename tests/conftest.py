"""Shared fixtures: a supervisor on a fresh state directory, the stand-in claude, and a leak check.

Every test that starts missions ends by proving that no process carrying one of its
mission ids is still alive: children, grandchildren and strays included.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Collection, Iterator
from pathlib import Path

import psutil
import pytest

from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import Store
from overmind_mcp.supervision.supervisor import Supervisor

ROOT = Path(__file__).resolve().parent.parent
FAKE_CLAUDE = ROOT / "tools" / "fake_claude.py"
TRANSCRIPTS = Path(__file__).resolve().parent / "data" / "transcripts"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _children_find_our_python(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stand-in's shebang is `env python3`: make that the interpreter running the tests.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "overmind", claude_bin=str(FAKE_CLAUDE), kill_grace_s=1.0)


@pytest.fixture
async def supervisor(settings: Settings) -> AsyncIterator[Supervisor]:
    async with Supervisor.running(settings) as running:
        yield running
    await assert_no_leftovers(settings)


async def mission_ids(settings: Settings) -> set[str]:
    if not settings.database_path.exists():
        return set()
    store = await Store.open(settings.database_path)
    try:
        return {row.id for row in await store.missions()}
    finally:
        await store.close()


def processes_of(ids: set[str]) -> list[psutil.Process]:
    """Live processes whose environment names one of these missions (children inherit it)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get("OVERMIND_MISSION_ID") in ids:
                found.append(process)
        except psutil.Error:
            continue
    return found


def new_child_running(module: str, known: Collection[int] = ()) -> psutil.Process:
    """The one child of this process (not in `known`) whose command line runs `module`."""
    for child in psutil.Process().children():
        try:
            if child.pid not in known and module in child.cmdline():
                return child
        except psutil.Error:  # a child that has just ended
            continue
    raise LookupError(f"no child process runs {module}")


async def assert_no_leftovers(settings: Settings) -> None:
    ids = await mission_ids(settings)
    leftovers = processes_of(ids)
    for process in leftovers:
        process.kill()
    assert not leftovers, f"processes outlived their missions: {[p.pid for p in leftovers]}"


@pytest.fixture
def transcripts() -> Iterator[Path]:
    yield TRANSCRIPTS
