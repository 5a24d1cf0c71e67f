"""`overmind-mcp demo`: a real MCP client drives the server over stdio, with no API key.

The children are the stand-in `claude` from tools/ (same flags, same stream-json as the
real CLI), scripted by their prompts. The demo spawns a small tree, waits with progress,
kills a stuck child, and prints the tree and every result.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp_types import TextContent


class DemoError(Exception):
    pass


STAND_IN = Path(__file__).resolve().parent.parent / "tools" / "fake_claude.py"


async def run_demo(claude_bin: str | None = None) -> int:
    claude = claude_bin or str(STAND_IN)
    if claude_bin is None and not STAND_IN.exists():
        print("the stand-in claude (tools/fake_claude.py) ships with the source checkout; pass --claude-bin")
        return 2
    with tempfile.TemporaryDirectory(prefix="overmind-demo-") as home:
        env = {
            **os.environ,
            "OVERMIND_HOME": home,
            "OVERMIND_CLAUDE_BIN": claude,
            "OVERMIND_KILL_GRACE_S": "1",
            # The stand-in runs on this interpreter.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        server = StdioServerParameters(command=sys.executable, args=["-m", "overmind_mcp"], env=env)
        async with Client(server, mode="legacy") as client:
            try:
                return await _scenario(client)
            except DemoError as exc:
                print(f"demo failed: {exc}", file=sys.stderr)
                return 1


async def _scenario(client: Client) -> int:
    started = time.monotonic()
    tools = [tool.name for tool in (await client.list_tools()).tools]
    print(f"connected over stdio; tools: {', '.join(tools)}\n")

    lead_prompt = "Plan the release.\nfake: sleep 1.5\nfake: answer Plan ready."
    # Children inherit the lead's permissions and can only narrow them; write-tests runs lint
    # as a command, which its own Bash permission must allow.
    lead = await _call(client, "spawn", name="lead", prompt=lead_prompt, allowed_tools=["Read", "Bash"])
    lint = json.dumps({"name": "lint", "command": [sys.executable, "-c", "print('ruff: 0 problems')"]})
    children = [
        ("research-api", "Survey the API.\nfake: turns 3\nfake: answer The API has 12 endpoints; 2 lack tests."),
        # This child delegates in turn: it calls overmind's own spawn and wait through its MCP config.
        (
            "write-tests",
            "Write the missing tests, then lint them.\nfake: turns 2\n"
            f"fake: mcp spawn {lint}\n"
            'fake: mcp wait {"ids": ["lint"], "timeout_s": 30}\n'
            "fake: answer Added 2 test files; lint ran as my own child.",
        ),
        ("flaky", "Check the flaky suite.\nfake: sleep 0.3\nfake: error API Error: 529 overloaded"),
    ]
    for name, prompt in children:
        await _call(client, "spawn", name=name, parent="lead", prompt=prompt)
    stuck = await _call(client, "spawn", name="stuck", parent="lead", prompt="Hang forever.\nfake: hang")
    print(f"spawned {lead['name']} ({lead['id']}) and four children; write-tests will spawn its own child\n")

    async def show_progress(progress: float, total: float | None, message: str | None) -> None:
        print(f"  [{progress:5.1f}s] {message}")

    names = ["research-api", "write-tests", "flaky", "lead"]
    print("wait(all) with progress notifications:")
    waited = await client.call_tool("wait", {"ids": names, "timeout_s": 30}, progress_callback=show_progress)
    done = (waited.structured_content or {}).get("done", [])

    killed = await _call(client, "kill", ids=[stuck["id"]])
    print(f"\nkill {stuck['name']}: " + ", ".join(f"{k['name']} {k['status']} by {k['how']}" for k in killed["ended"]))

    tree = await _call(client, "ps", tree=True)
    print("\nps(tree=true):")
    for line in _draw_tree(tree["missions"]):
        print(f"  {line}")
    print(f"  total: {tree['totals']['missions']} missions, ${tree['totals']['cost_usd']:.4f}")

    print("\nresults:")
    for result in done:
        cost = f"${result['cost_usd']:.4f}" if result.get("cost_usd") is not None else "-"
        outcome = result["text"] or "; ".join(result["errors"])
        print(f"  {result['name']:<13} {result['status']:<10} {cost:>8}  {outcome}")
    await _blueprint(client)
    print(f"\ndemo finished in {time.monotonic() - started:.1f}s; the server ends its children when the client leaves")
    return 0


PIPELINE = """
name = "pipeline"
[agents.research]
prompt = "Research structured concurrency."
[agents.lint]
command = ["echo", "lint: clean"]
[agents.write]
prompt = "Write it up from: {{ nodes.research.result }} ({{ nodes.lint.result }})"
depends_on = ["research", "lint"]
"""


async def _blueprint(client: Client) -> None:
    """A blueprint: research and lint at once, then write from both; the run is a mission of its own."""
    plan = await _call(client, "blueprint_validate", toml=PIPELINE)
    print(f"\nblueprint_validate: layers {plan['plan']['layers']}")
    run = await _call(client, "blueprint_run", toml=PIPELINE)
    waited = await _call(client, "wait", ids=[run["id"]], timeout_s=30)
    [result] = waited["done"]
    print(f"blueprint_run {run['name']}: {result['status']}, {result['text']}")
    for name, node in result["output"]["nodes"].items():
        print(f"  {name:<9} {node['status']:<10} {node.get('result')}")


async def _call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if result.is_error or result.structured_content is None:
        text = " ".join(block.text for block in result.content if isinstance(block, TextContent)) or "no text"
        raise DemoError(f"{tool} failed: {text}")
    return result.structured_content


def _draw_tree(missions: list[dict[str, Any]]) -> list[str]:
    """Tree lines with connectors, from missions already in depth-first order."""
    lines = []
    for index, mission in enumerate(missions):
        depth = mission["depth"]
        prefix = ""
        for level in range(1, depth + 1):
            later_sibling = any(other["depth"] == level for other in _until_shallower(missions[index + 1 :], level))
            if level == depth:
                prefix += "├─ " if later_sibling else "└─ "
            else:
                prefix += "│  " if later_sibling else "   "
        cost = f"${mission['cost_usd']:.4f}" if mission.get("cost_usd") is not None else ""
        lines.append(f"{prefix}{mission['name']} [{mission['status']}] {cost}".rstrip())
    return lines


def _until_shallower(rest: list[dict[str, Any]], level: int) -> list[dict[str, Any]]:
    taken = []
    for mission in rest:
        if mission["depth"] < level:
            break
        taken.append(mission)
    return taken
