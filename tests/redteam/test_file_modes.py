"""State files are the user's alone: 0700 directories, 0600 files, nothing followed through a link.

The server runs with umask 000 here, so nothing it creates is private by accident.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from overmind_mcp.settings import Settings
from tests.conftest import assert_no_leftovers
from tests.helpers import call, server_env, stdio_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Every process started meanwhile (the server included) creates files as loosely as it can."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def loose_paths(home: Path) -> list[str]:
    """Everything under the state directory that someone else could read (or a link)."""
    found = [] if mode(home) == 0o700 else [f"{home}: {mode(home):o}"]
    for path in home.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        if path.is_symlink() or mode(path) != expected:
            found.append(f"{path.relative_to(home)}: {mode(path):o}")
    return found


async def exercise(settings: Settings) -> None:
    """A server that has run a command, a Claude child with a system prompt, and written a memory."""
    async with stdio_server(settings) as (client, _process):
        ran = await call(client, "spawn", command=["echo", "hi"])
        claude = await call(client, "spawn", prompt="A task.\nfake: answer ok", append_system_prompt="Be brief.")
        await call(client, "wait", ids=[ran["id"], claude["id"]], timeout_s=30)
        await call(client, "remember", content="a finding", key="finding")
        # While the server runs the WAL and shared-memory files exist: they must be private too.
        wal = {path.name for path in settings.home.glob("*-wal")} | {path.name for path in settings.home.glob("*-shm")}
        assert {"overmind.db-wal", "overmind.db-shm", "akasha.db-wal", "akasha.db-shm"} <= wal, wal
        assert loose_paths(settings.home) == []
    await assert_no_leftovers(settings)


async def test_a_new_state_directory_is_private_whatever_the_umask(settings: Settings, open_umask: None) -> None:
    await exercise(settings)
    assert loose_paths(settings.home) == []
    names = {path.name for path in settings.home.rglob("*")}
    assert {"overmind.db", "akasha.db", "prompt.jsonl", "append-system-prompt.md", "output.jsonl"} <= names


async def test_an_existing_loose_state_directory_is_tightened(settings: Settings, open_umask: None) -> None:
    home = settings.home
    home.mkdir(mode=0o755)
    (home / "missions").mkdir(mode=0o777)
    for name in ("overmind.db", "akasha.db"):
        sqlite3.connect(home / name).close()
        (home / name).chmod(0o644)
    (home / "overmind.db-wal").write_bytes(b"")
    (home / "overmind.db-wal").chmod(0o666)
    await exercise(settings)
    assert loose_paths(home) == []


def test_a_state_file_is_never_followed_through_a_symlink(settings: Settings, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    settings.home.mkdir()
    (settings.home / "overmind.db").symlink_to(elsewhere)
    done = subprocess.run(
        [sys.executable, "-m", "overmind_mcp"],
        env=server_env(settings),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "overmind.db is a symbolic link" in done.stderr
    assert "Traceback" not in done.stderr
    assert not elsewhere.exists(), "the link's target was not created"


@pytest.mark.parametrize("kind", ["loose", "dangling symlink"])
def test_the_http_token_file_is_refused_when_loose_or_a_link(settings: Settings, tmp_path: Path, kind: str) -> None:
    settings.home.mkdir(mode=0o700)
    token = settings.home / "http-token"
    target = tmp_path / "attacker-reads-this"
    if kind == "loose":
        token.write_text("a-token-others-could-read\n")
        token.chmod(0o644)
    else:
        token.symlink_to(target)
    done = subprocess.run(
        [sys.executable, "-m", "overmind_mcp", "serve", "--http", "--port", "0"],
        env=server_env(settings),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert re.search(r"readable by other users \(mode 0644\)|is a symbolic link", done.stderr), done.stderr
    assert not target.exists(), "no token was written through the link"
    if kind == "loose":
        assert token.read_text() == "a-token-others-could-read\n", "the file is left for the person to remove"
