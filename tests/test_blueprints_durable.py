"""Blueprints through real `python -m overmind_mcp` servers: the MCP tools, the console, and a SIGKILL mid-run.

Every agent of the crash test appends its name to one file when it runs, so the file counts
executions: after the server is SIGKILLed and a new one resumes the run, each agent must
have run exactly once (the one that was running is re-adopted, not started again).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest
from mcp import Client

from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import Store
from tests.conftest import assert_no_leftovers
from tests.helpers import call, server_env, stdio_server, until_printed

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

RESUMABLE = """
name = "resume"

[agents.a]
command = 'echo a >> ran.log'

[agents.b]
prompt = "fake: append ran.log b\\nfake: say ready\\nfake: sleep 6\\nfake: answer b-done"
depends_on = ["a"]

[agents.c]
command = 'echo c >> ran.log'
depends_on = ["a"]

[agents.each]
foreach = ["x", "y", "z"]
command = 'echo "each-$1" >> ran.log'
args = ["{{ item }}"]
depends_on = ["a"]

[agents.d]
prompt = "fake: append ran.log d\\nfake: answer d-done after {{ nodes.b.result }}"
depends_on = ["b", "c", "each"]
"""


async def test_a_run_resumes_after_a_sigkill_of_the_server_and_nothing_runs_twice(
    settings: Settings, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    blueprint = work / "resume.toml"
    blueprint.write_text(RESUMABLE)
    async with stdio_server(settings) as (client, process):
        started = await call(client, "blueprint_run", path=str(blueprint))
        assert started["layers"] == [["a"], ["b", "c", "each"], ["d"]]
        with anyio.fail_after(30):
            while f"{started['name']}.b" not in await _children(client, started["id"]):
                await call(client, "wait", ids=[started["id"]], timeout_s=0.2)
        await until_printed(client, f"{started['name']}.b", "ready")
        # b is running, a, c and each have finished, d waits for b.
        process.kill()
        process.wait()

    ran = work / "ran.log"
    before = Counter(ran.read_text().split())
    assert before == Counter(["a", "b", "c", "each-x", "each-y", "each-z"])

    async with stdio_server(settings) as (client, _process):
        waited = await call(client, "wait", ids=[started["id"]], timeout_s=60)
        assert not waited["timed_out"]
        [result] = waited["done"]
        assert result["status"] == "succeeded", result
        nodes = result["output"]["nodes"]
        assert nodes["d"]["result"] == "d-done after b-done"
        assert nodes["each"]["status"] == "succeeded" and nodes["each"]["attempts"] == 3
    after = Counter(ran.read_text().split())
    # Every agent ran exactly once: nothing finished ran again, the running one was re-adopted.
    assert after == Counter(["a", "b", "c", "each-x", "each-y", "each-z", "d"])
    store = await Store.open(settings.database_path)
    try:
        children = await store.missions(parent_id=started["id"])
        events = await store.events(next(row.id for row in children if row.name.endswith(".b")))
    finally:
        await store.close()
    assert sorted(row.name.removeprefix(f"{started['name']}.") for row in children) == [
        "a",
        "b",
        "c",
        "d",
        "each.0",
        "each.1",
        "each.2",
    ]
    # b was adopted by the new server, or (on a slow machine) ended in the moment between the kill and
    # the new server's start and was recorded from its output; either way it never started again (above).
    assert [kind for _at, kind, _data in events] in (["adopted"], [])
    await assert_no_leftovers(settings)


async def test_the_mcp_tools_validate_run_and_report(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _process):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert {"blueprint_run", "blueprint_validate"} <= set(tools)
        checked = await call(client, "blueprint_validate", path=str(EXAMPLES / "research_write_review.toml"))
        assert checked["valid"] and checked["plan"]["layers"] == [["research"], ["write"], ["review"]]
        bad = await call(client, "blueprint_validate", toml='[agents.a]\nprompt = "x"\ndepends_on = ["a", "b"]\n')
        assert not bad["valid"]
        assert bad["problems"] == [
            "line 3, agents.a.depends_on: unknown agent 'b'",
            "line 3, agents.a.depends_on: cycle: a → a",
        ]
        refused = await client.call_tool("blueprint_run", {"toml": '[agents.a]\nprompt = "x"\nmodle = "y"\n'})
        assert refused.is_error
        assert "line 3, agents.a.modle: unknown key (did you mean 'model'?)" in refused.content[0].text
        neither = await client.call_tool("blueprint_run", {})
        assert neither.is_error and "give exactly one of `path`" in neither.content[0].text

        started = await call(
            client,
            "blueprint_run",
            toml='[vars]\nwho = "x"\n[agents.hi]\ncommand = ["echo", "hi {{ vars.who }}"]\n',
            vars={"who": "there"},
        )
        [result] = (await call(client, "wait", ids=[started["id"]], timeout_s=30))["done"]
        assert result["status"] == "succeeded"
        assert result["output"]["nodes"]["hi"]["result"] == "hi there"
        assert result["text"] == "done (1 succeeded)"
        tree = (await call(client, "ps", tree=True))["missions"]
        assert [entry["name"] for entry in tree] == [started["name"], f"{started['name']}.hi"]

        # The console asks this live server to run a blueprint (the control mailbox), and waits for it.
        applied = await anyio.run_process(
            [*CONSOLE, "apply", str(EXAMPLES / "blueprint.toml"), "--wait"], env=server_env(settings), check=False
        )
        assert applied.returncode == 0, applied.stderr.decode()
        assert "blueprint-" in applied.stderr.decode() and "done (3 succeeded)" in applied.stdout.decode()
        listed = await anyio.run_process([*CONSOLE, "ps", "--tree"], env=server_env(settings), check=False)
        for name in (started["name"], f"{started['name']}.hi", ".setup", ".build", ".deploy"):
            assert name in listed.stdout.decode()
    await assert_no_leftovers(settings)


def test_overmind_agents_prints_the_plan_and_apply_needs_a_server(settings: Settings) -> None:
    agents = _console(settings, "agents", str(EXAMPLES / "fan_out.toml"))
    assert agents.returncode == 0
    assert agents.stdout.splitlines() == [
        "fan-out: 2 agents in 2 layers",
        "  1. summarize",
        "  2. overview  (after summarize)",
    ]
    as_json = json.loads(_console(settings, "agents", str(EXAMPLES / "blueprint.toml"), "--json").stdout)
    assert as_json["layers"] == [["setup"], ["build"], ["deploy"]]
    bad = _console(settings, "agents", str(EXAMPLES / "fan_out.toml").replace("fan_out", "nope"))
    assert bad.returncode == 3 and "no blueprint file" in bad.stderr
    apply = _console(settings, "apply", str(EXAMPLES / "blueprint.toml"))
    assert apply.returncode == 1
    assert "no overmind-mcp server is running" in apply.stderr and "start one with" in apply.stderr
    unknown = _console(settings, "apply", str(EXAMPLES / "blueprint.toml"), "--var", "topic=x")
    assert unknown.returncode == 2 and "vars.topic: not declared" in unknown.stderr


async def _children(client: Client, run_id: str) -> list[str]:
    return [entry["name"] for entry in (await call(client, "ps", parent=run_id))["missions"]]


CONSOLE = [sys.executable, "-m", "overmind_mcp.console"]


def _console(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONSOLE, *args],
        env=server_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
