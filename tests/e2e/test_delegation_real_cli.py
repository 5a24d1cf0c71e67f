"""Issue 7, scenario 2: delegation three levels deep, the real Claude Code CLI at every level.

    claude -p (top) ──stdio──▶ overmind-mcp ──▶ claude -p (middle) ──HTTP──▶ the same server ──▶ claude -p (leaf)

The top-level parent spawns ``middle``; ``middle`` reaches the same server through the ``--mcp-config``
the server gave it (a loopback streamable-HTTP endpoint named ``overmind``, bearer token in its
environment), spawns ``leaf``, waits, reads a mission outside its subtree (refused), lists its
subtree, and answers with the leaf's answer. No side is faked but the model.
"""

from __future__ import annotations

import json

import psutil

from tests.e2e.conftest import JSON, Overmind, StartClaude
from tests.mockapi import MockAnthropicAPI, RecordedRequest, Text, ToolCall, ToolUse

TOOLS = "mcp__overmind__"
TOP, MIDDLE, LEAF = "TOP-LEVEL", "MIDDLE-LEVEL", "LEAF-LEVEL"
LEAF_ANSWER = "leaf-answer-99"


def calls_of(api: MockAnthropicAPI, rule: str) -> list[ToolCall]:
    """One agent's tool calls with their results, from the last request its CLI sent."""
    *_, last = (r for r in api.messages_requests if r.rule == rule)
    return last.tool_calls


def done_text(request: RecordedRequest) -> str:
    """The text of the one mission in the newest ``wait`` answer."""
    [waited] = [json.loads(c.result) for c in request.tool_calls if c.name == f"{TOOLS}wait"]
    [done] = waited["done"]
    return done["text"]


def script_three_levels(api: MockAnthropicAPI, overmind: Overmind, seen: dict[str, JSON]) -> None:
    def leaf_answer(_request: RecordedRequest) -> str:
        # The leaf is alive while its model answers: look at its process from outside, as `ps` would.
        process = psutil.Process(overmind.mission("leaf").pid or 0)
        seen["leaf"] = {"cmdline": process.cmdline(), "environ": process.environ()}
        return LEAF_ANSWER

    api.on(
        TOP,
        steps=[
            # A sibling of `middle` at depth 0: not in middle's subtree.
            ToolUse(f"{TOOLS}spawn", {"command": ["true"], "name": "sibling"}),
            ToolUse(f"{TOOLS}spawn", {"prompt": f"{MIDDLE}: delegate to a leaf", "name": "middle"}),
            ToolUse(f"{TOOLS}wait", {"ids": ["middle", "sibling"], "timeout_s": 60}),
            Text(lambda req: f"top heard: {done_text_of(req, 'middle')}"),
        ],
    )
    api.on(
        MIDDLE,
        steps=[
            ToolUse(f"{TOOLS}spawn", {"prompt": f"{LEAF}: answer", "name": "leaf"}),
            ToolUse(f"{TOOLS}wait", {"ids": ["leaf"], "timeout_s": 60}),
            ToolUse(f"{TOOLS}result", {"id": "sibling"}),
            ToolUse(f"{TOOLS}ps", {}),
            Text(lambda req: f"middle heard: {done_text(req)}"),
        ],
    )
    api.on(LEAF, steps=[Text(leaf_answer)])


def done_text_of(request: RecordedRequest, name: str) -> str:
    [waited] = [json.loads(c.result) for c in request.tool_calls if c.name == f"{TOOLS}wait"]
    return next(d["text"] for d in waited["done"] if d["name"] == name)


def test_three_levels_of_real_claude(mock_api: MockAnthropicAPI, overmind: Overmind, start_claude: StartClaude) -> None:
    seen: dict[str, JSON] = {}
    script_three_levels(mock_api, overmind, seen)

    top = start_claude(*overmind.parent_args(f"{TOP}: get it done through a middle manager"))
    top.wait(timeout=90)

    assert top.returncode == 0, top.describe()
    assert top.result["result"] == f"top heard: middle heard: {LEAF_ANSWER}"

    # The tree: the leaf is middle's child, because middle's token says who is calling.
    sibling, middle, leaf = (overmind.mission(name) for name in ("sibling", "middle", "leaf"))
    assert (sibling.parent_id, sibling.depth) == (None, 0)
    assert (middle.parent_id, middle.depth, middle.root_id) == (None, 0, middle.id)
    assert (leaf.parent_id, leaf.depth, leaf.root_id) == (middle.id, 1, middle.id)
    for row in (middle, leaf):
        assert row.status == "succeeded" and row.cost_usd and row.cost_usd > 0 and row.session_id, row

    # Middle's view through its own MCP connection: its spawn answered with itself as the parent,
    # a mission outside its subtree is refused, and ps lists just its subtree.
    spawned, waited, outside, listed = calls_of(mock_api, MIDDLE)
    assert not spawned.is_error and json.loads(spawned.result)["parent"] == middle.id
    assert not waited.is_error and json.loads(waited.result)["done"][0]["text"] == LEAF_ANSWER
    assert outside.is_error and "not in your subtree" in outside.result, outside
    assert [(m["name"], m["depth"]) for m in json.loads(listed.result)["missions"]] == [("middle", 0), ("leaf", 1)]

    # Every Claude level was offered overmind's tools; the top through stdio, the others through HTTP.
    for rule in (TOP, MIDDLE, LEAF):
        first = next(r for r in mock_api.messages_requests if r.rule == rule)
        assert f"{TOOLS}spawn" in first.tool_names, rule
    # The leaf's bearer token is in its environment, never on its command line (readable by any user).
    token = seen["leaf"]["environ"]["OVERMIND_TOKEN"]
    assert len(token) >= 32 and not any(token in arg for arg in seen["leaf"]["cmdline"])
    assert any(arg.startswith("--mcp-config=") and "${OVERMIND_TOKEN}" in arg for arg in seen["leaf"]["cmdline"])
