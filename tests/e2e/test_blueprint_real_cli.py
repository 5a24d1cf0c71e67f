"""A blueprint whose agents are the real Claude Code CLI: one agent's answer feeds the next.

    SDK client ──stdio──▶ overmind-mcp ──▶ claude -p (research, --json-schema) ──▶ mock Messages API
                              │                  answer: {"facts": [...]} through StructuredOutput
                              └──────────▶ claude -p (write), its prompt built from research's output

The research agent has an output_schema, which the server passes to the CLI as --json-schema: the
mock's model answers through the CLI's own StructuredOutput tool, and the CLI's result line carries
the answer as structured_output. The writer's prompt is rendered from it, and the mock sees it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from tests.e2e.conftest import Overmind, call_tool
from tests.mockapi import MockAnthropicAPI, RecordedRequest, Text, ToolUse

pytestmark = pytest.mark.anyio

FACTS = ["wal-mode-17", "fsync-on-commit"]

BLUEPRINT = """
name = "real"

[defaults]
delegate = false

[agents.research]
prompt = "RESEARCH-STEP: list two facts"
[agents.research.output_schema]
type = "object"
required = ["facts"]
properties = { facts = { type = "array", items = { type = "string" } } }

[agents.write]
prompt = "WRITE-STEP: write one sentence from these facts: {{ nodes.research.output.facts }}"
depends_on = ["research"]
"""


async def test_one_real_agents_answer_feeds_the_next(
    mock_api: MockAnthropicAPI, overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path
) -> None:
    def sentence(request: RecordedRequest) -> str:
        return f"article built on {request.turn_prompt}"

    mock_api.on("RESEARCH-STEP", steps=[ToolUse("StructuredOutput", {"facts": FACTS}), Text("listed")])
    mock_api.on("WRITE-STEP", steps=[Text(sentence)])
    async with Client(overmind.stdio_server(claude_env, claude_cwd), mode="legacy") as client:
        started = await call_tool(client, "blueprint_run", toml=BLUEPRINT)
        waited = await call_tool(client, "wait", ids=[started["id"]], timeout_s=120)
        assert not waited["timed_out"]
        [run] = waited["done"]
        research = await call_tool(client, "result", id=f"{started['name']}.research")
    assert run["status"] == "succeeded", run
    nodes = run["output"]["nodes"]
    # The CLI checked the answer against --json-schema and gave it back as structured_output.
    assert research["output"] == {"facts": FACTS}
    assert nodes["research"]["output"] == {"facts": FACTS}
    [research_request] = [r for r in mock_api.messages_requests if r.rule == "RESEARCH-STEP"][:1]
    assert "StructuredOutput" in research_request.tool_names
    # The writer's prompt was made from research's output, and its answer is the run's.
    expected_prompt = f"WRITE-STEP: write one sentence from these facts: {json.dumps(FACTS, separators=(',', ':'))}"
    write_requests = [r for r in mock_api.messages_requests if r.rule == "WRITE-STEP"]
    assert write_requests and write_requests[0].turn_prompt == expected_prompt
    assert nodes["write"]["result"] == f"article built on {expected_prompt}"
    names = [row.name for row in overmind.missions()]
    assert names == [started["name"], f"{started['name']}.research", f"{started['name']}.write"]
