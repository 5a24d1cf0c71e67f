"""A run nobody attends decides by its rules alone: a ritual's child with permission rules asks the bridge,
which allows what they allow and denies the rest at once, never waiting for an answer.

The child is the stand-in claude, asking the way the real CLI does (the server's `permission_prompt`
tool over its `--mcp-config`); the server is a real stdio server firing a real ritual.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from overmind_mcp.settings import Settings
from tests.conftest import assert_no_leftovers
from tests.helpers import call, script, stdio_server
from tests.test_rituals import count_ended, fires
from tests.test_rituals_scheduler import until

pytestmark = pytest.mark.anyio


def ask(command: str) -> str:
    return f"mcp permission_prompt {json.dumps({'tool_name': 'Bash', 'input': {'command': command}})}"


async def test_a_rituals_child_with_rules_is_answered_by_them_alone(settings: Settings) -> None:
    spawn = {
        "prompt": script(ask("touch allowed"), ask("rm -rf build"), "answer {last}"),
        "permissions": {"allow": ["Bash(touch:*)"]},
    }
    async with stdio_server(settings) as (client, _server):
        await call(client, "schedule", name="ruled", cron="* * * * * *", spawn=spawn, tz="UTC")
        await until(settings, count_ended(settings, "ruled", 1))
        await call(client, "pause_schedule", name="ruled")
        first = fires(settings, "ruled")[0]
        result = await call(client, "result", id=first["mission_id"])
        await call(client, "kill", ids=[row["mission_id"] for row in fires(settings, "ruled") if row["mission_id"]])

    assert result["status"] == "succeeded", result
    allowed, denied = result["approvals"]
    assert (allowed["decision"], allowed["by"], allowed["rule"]) == ("allow", "policy", "Bash(touch:*)")
    assert (denied["decision"], denied["by"]) == ("deny", "policy")
    assert "runs unattended (approvals=policy)" in json.loads(result["text"])["message"]
    assert denied["latency_ms"] < 5000  # answered at once, not after approval_timeout_s
    with sqlite3.connect(settings.database_path) as db:
        [(options,)] = db.execute("SELECT options FROM missions WHERE id = ?", (first["mission_id"],)).fetchall()
    task = json.loads(options)["task"]
    # Its CLI asks the bridge (no --permission-prompts=none), which answers by the rules alone.
    assert (task["approvals"], task.get("permission_prompts")) == ("policy", None)
    await assert_no_leftovers(settings)
