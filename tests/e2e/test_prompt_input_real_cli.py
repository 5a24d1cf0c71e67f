"""Prompts reach the real CLI on stdin and in files, never in argv, whatever their size.

The kernel refuses a single argv string over 128 KiB (E2BIG), and `ps` shows argv to every
user. A 600 KiB prompt and a 300 KiB system prompt go through overmind to the real
``claude -p`` (2.1.332): the mock must receive both whole, the child's argv must hold
neither, and the run must end like any task, with its result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread
import psutil
import pytest
from mcp import Client

from tests.e2e.conftest import Overmind, call_tool
from tests.mockapi import MockAnthropicAPI, RecordedRequest, Stall, Text

pytestmark = pytest.mark.anyio

PROMPT_MARK = "BIG-PROMPT"
SYSTEM_MARK = "BIG-SYSTEM"


@pytest.fixture
async def client(overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path) -> AsyncIterator[Client]:
    async with Client(overmind.stdio_server(claude_env, claude_cwd), mode="legacy") as connected:
        yield connected


async def test_a_huge_prompt_and_system_prompt_reach_the_real_cli_off_argv(
    mock_api: MockAnthropicAPI, client: Client
) -> None:
    def answer(request: RecordedRequest) -> str:
        return f"prompt {len(request.turn_prompt or '')} system {SYSTEM_MARK in request.system}"

    mock_api.on(PROMPT_MARK, steps=[Stall()])
    mock_api.default(Text(answer))
    prompt = f"{PROMPT_MARK} " + "p" * (600 * 1024)
    system = f"{SYSTEM_MARK} " + "s" * (300 * 1024)
    stalled = await call_tool(client, "spawn", prompt=prompt, append_system_prompt=system, name="stalled")
    # While the model "thinks", the child's argv is there to read, as `ps` shows it to anyone.
    request = await anyio.to_thread.run_sync(lambda: mock_api.wait_for(prompt_contains=PROMPT_MARK, timeout=60))
    assert request.turn_prompt == prompt
    assert SYSTEM_MARK in request.system and "s" * (300 * 1024) in request.system
    argv = psutil.Process(stalled["pid"]).cmdline()
    assert sum(map(len, argv)) < 4096, argv
    assert not any(PROMPT_MARK in arg or SYSTEM_MARK in arg for arg in argv)
    await call_tool(client, "kill", ids=["stalled"])

    done = await call_tool(client, "spawn", prompt="x" * (600 * 1024), append_system_prompt=system, name="done")
    waited = await call_tool(client, "wait", ids=[done["id"]], timeout_s=90)
    result = waited["done"][0]
    assert result["status"] == "succeeded", result
    assert result["text"] == f"prompt {600 * 1024} system True"
