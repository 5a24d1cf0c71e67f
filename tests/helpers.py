"""What tests that drive a real `python -m overmind_mcp` stdio server share."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil
from mcp import Client, StdioServerParameters

from overmind_mcp.settings import Settings
from tests.conftest import new_child_running


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a server (or an `overmind` command) on the test's state directory."""
    return {
        **os.environ,
        "OVERMIND_HOME": str(settings.home),
        "OVERMIND_CLAUDE_BIN": settings.claude_bin,
        "OVERMIND_KILL_GRACE_S": "1",
        **extra,
    }


def server_params(settings: Settings, *, cwd: Path | None = None, **extra: str) -> StdioServerParameters:
    env = server_env(settings, **extra)
    return StdioServerParameters(command=sys.executable, args=["-m", "overmind_mcp"], env=env, cwd=cwd)


@asynccontextmanager
async def stdio_server(
    settings: Settings, *, cwd: Path | None = None, **extra: str
) -> AsyncIterator[tuple[Client, psutil.Process]]:
    """A real stdio server driven by the SDK's client, and its process; `extra` adds OVERMIND_* settings,
    `cwd` is where it runs (and so where its children run by default)."""
    before = {child.pid for child in psutil.Process().children()}
    async with Client(server_params(settings, cwd=cwd, **extra), mode="legacy") as client:
        await client.list_tools()
        yield client, new_child_running("overmind_mcp", before)


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's structured answer; fails the test on a tool error."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return result.structured_content


def script(*directives: str) -> str:
    """A prompt for the stand-in claude: one `fake:` directive a line (say, sleep, hang, answer…)."""
    return "\n".join(["A task.", *(f"fake: {directive}" for directive in directives)])


async def until_printed(client: Client, mission_id: str, text: str, within: float = 20) -> None:
    """Wait (on `wait`, not sleeps) until a mission's log has a line containing `text`."""
    with anyio.fail_after(within):
        while not any(text in line for line in (await call(client, "logs", id=mission_id))["lines"]):
            await call(client, "wait", ids=[mission_id], timeout_s=0.2)
