"""Unattended runs with the real CLI: a quest from the terminal and a ritual's fire, both with nobody at the prompt.

The real Claude Code 2.1.332 must accept `--permission-prompts=none` and, asked for something that
would prompt (a Bash command that writes), deny it and carry on; the run succeeds, and its result
names the denial. The quest goes through the real console (`overmind run --wait`), the ritual
through the MCP `schedule` tool, against one real stdio server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.e2e.conftest import JSON, Overmind, call_tool
from tests.mockapi import MockAnthropicAPI, Text, ToolUse

pytestmark = pytest.mark.anyio

WRITE = "touch written-unattended"


@pytest.fixture
async def client(overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path) -> AsyncIterator[Client]:
    async with Client(overmind.stdio_server(claude_env, claude_cwd), mode="legacy") as connected:
        yield connected


def script(api: MockAnthropicAPI, prompt: str) -> None:
    api.on(
        prompt,
        steps=[
            ToolUse("Bash", {"command": WRITE, "description": "write a file"}),
            Text(lambda req: f"could not: {req.last_tool_result}"),
        ],
    )


def assert_denied_and_done(result: JSON, claude_cwd: Path) -> None:
    assert (result["status"], result["exit_code"], result["is_error"]) == ("succeeded", 0, False), result
    [denial] = result["permission_denials"]
    assert denial["tool_name"] == "Bash" and denial["tool_input"]["command"] == WRITE
    assert not (claude_cwd / "written-unattended").exists()


async def test_a_quest_and_a_fire_with_the_real_cli_deny_what_would_prompt(
    mock_api: MockAnthropicAPI,
    overmind: Overmind,
    client: Client,
    claude_env: dict[str, str],
    claude_cwd: Path,
) -> None:
    script(mock_api, "QUEST")
    script(mock_api, "FIRE")
    env = {**claude_env, **overmind.server_env}
    with anyio.fail_after(60):
        quest = await anyio.run_process(
            [sys.executable, "-m", "overmind_mcp.console", "run", "--wait", "--json", "--prompt", "QUEST"],
            env=env,
            cwd=claude_cwd,
            check=False,
        )
    assert quest.returncode == 0, quest.stderr.decode()
    started = json.loads(quest.stdout)["started"]
    assert_denied_and_done(await call_tool(client, "result", id=started["id"]), claude_cwd)
    # What the CLI was started with (argv from options: tests/test_rituals.py reads it off a live child).
    assert overmind.mission(started["name"]).spec.task.permission_prompts == "none"

    ritual = await call_tool(
        client, "schedule", name="unattended", cron="* * * * * *", spawn={"prompt": "FIRE"}, tz="UTC"
    )
    first_slot = datetime.fromisoformat(ritual["next_fires"][0])
    run_name = f"unattended-{first_slot:%Y%m%dT%H%M%SZ}"
    # The first run exists once its slot has come; wait for the slot itself, then for the run.
    await anyio.sleep(max(0.0, first_slot.timestamp() + 0.5 - datetime.now().timestamp()))
    await call_tool(client, "pause_schedule", name="unattended")
    waited = await call_tool(client, "wait", ids=[run_name], timeout_s=60)
    assert waited["timed_out"] is False
    assert_denied_and_done(await call_tool(client, "result", id=run_name), claude_cwd)
    assert overmind.mission(run_name).spec.task.permission_prompts == "none"
    [last] = (await call_tool(client, "schedules"))["rituals"][0]["last_runs"][-1:]
    assert (last["name"], last["status"], last["exit_code"]) == (run_name, "succeeded", 0)
    assert last["cost_usd"] is not None and last["cost_usd"] > 0
