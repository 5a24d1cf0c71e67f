"""Privilege laundering: a child with few permissions tries to get more by spawning.

Each probe is made with a real child's token over the server's loopback HTTP endpoint. A
probe that should be refused and is accepted counts as a privilege gained.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from tests.helpers import call
from tests.redteam.conftest import Tally, acting_as, looks_internal, text_of

pytestmark = pytest.mark.anyio

QUIET = {"prompt": "A task.\nfake: answer done"}


async def refused(tally: Tally, client: Client, what: str, must_say: str, **spawn: Any) -> None:
    tally.calls += 1
    result = await client.call_tool("spawn", spawn)
    text = text_of(result)
    if not result.is_error:
        tally.privileges_gained.append(f"{what}: accepted as {result.structured_content}")
    elif looks_internal(text):
        tally.internal_errors.append(f"{what}: {text}")
    else:
        assert must_say in text, (what, text)


async def test_a_read_only_planner_cannot_launder_its_way_to_a_shell(root: Client) -> None:
    tally = Tally()
    limits = {"allowed_tools": ["Read"], "permission_mode": "plan", "max_turns": 5, "max_budget_usd": 1.0}
    async with acting_as(root, name="planner", timeout_s=300, **limits) as (planner, me):
        # A raw child of its own, to stand between it and a grandchild: the chain.
        await refused(tally, planner, "a shell", "would not let your own Bash tool run it", command=["sh", "-c", "id"])
        await refused(tally, planner, "a sleeper", "Bash(sleep:*)", command=["sleep", "60"])
        # The top-level client may still put a raw mission under it (its own freedom) …
        sleeper = await call(root, "spawn", command=["sleep", "60"], parent="planner", name="sleeper")
        # … but a Claude grandchild under that raw mission still gets the planner's limits.
        chain = {"parent": "sleeper", **QUIET}
        await refused(tally, planner, "Bash under a raw parent", "go beyond", allowed_tools=["Bash"], **chain)
        await refused(tally, planner, "acceptEdits", "more than", permission_mode="acceptEdits", **chain)
        await refused(tally, planner, "bypass", "bypassPermissions", permission_mode="bypassPermissions", **chain)
        await refused(tally, planner, "1000 turns", "max_turns 1000", max_turns=1000, **chain)
        await refused(tally, planner, "$100", "max_budget_usd 100", max_budget_usd=100.0, **chain)
        await refused(tally, planner, "more time", "has left of its timeout_s", timeout_s=10_000, **chain)
        await refused(tally, planner, "HOME", "may not set ['HOME']", env={"HOME": "/tmp"}, **chain)
        await refused(
            tally, planner, "CLAUDE_CONFIG_DIR", "CLAUDE_CONFIG_DIR", env={"CLAUDE_CONFIG_DIR": "/x"}, **QUIET
        )
        await refused(tally, planner, "any env", "leave env out", env={"PYTHONPATH": "/tmp"}, **QUIET)
        await refused(tally, planner, "cwd outside", "is outside", cwd="/", **QUIET)
        # What it is allowed: a grandchild with its limits, inherited in full.
        grandchild = await call(planner, "spawn", **chain)
        row = await call(root, "result", id=grandchild["id"])
        assert row["status"] in ("running", "succeeded"), row
        # Killing itself gets a clear answer, not "not in your subtree".
        suicide = await planner.call_tool("kill", {"ids": [me["id"]]})
        assert suicide.is_error and "is you" in text_of(suicide), text_of(suicide)
        await call(root, "kill", ids=[sleeper["id"]])
    print(tally.summary())
    tally.assert_clean()


async def test_a_narrow_bash_rule_runs_its_program_and_nothing_else(root: Client) -> None:
    tally = Tally()
    async with acting_as(root, name="tester", allowed_tools=["Read", "Bash(pytest:*)"]) as (tester, _me):
        ran = await call(tester, "spawn", command=["pytest", "--version"], name="pytest-version")
        waited = await call(tester, "wait", ids=[ran["id"]], timeout_s=60)
        assert waited["done"][0]["status"] == "succeeded", waited
        await refused(tally, tester, "a lookalike", "Bash(pytestx:*)", command=["pytestx"])
        await refused(tally, tester, "through a shell", "would not", command=["sh", "-c", "pytest"])
        await refused(tally, tester, "by path", "would not", command=["/bin/sh", "-c", "pytest"])
        await refused(tally, tester, "with env", "leave env out", command=["pytest"], env={"PYTHONPATH": "/tmp"})
        await refused(tally, tester, "the whole Bash", "go beyond", allowed_tools=["Bash"], **QUIET)
    print(tally.summary())
    tally.assert_clean()


async def test_the_whole_bash_tool_may_run_anything_but_not_move_the_settings(root: Client) -> None:
    tally = Tally()
    async with acting_as(root, name="builder", allowed_tools=["Bash"], permission_mode="acceptEdits") as (builder, _):
        ran = await call(builder, "spawn", command=["sh", "-c", "echo $GREETING"], env={"GREETING": "hello"})
        waited = await call(builder, "wait", ids=[ran["id"]], timeout_s=60)
        assert waited["done"][0]["text"] == "hello", waited
        narrower = await call(builder, "spawn", allowed_tools=["Bash(git status:*)"], **QUIET)
        assert (await call(root, "result", id=narrower["id"]))["status"] in ("running", "succeeded")
        for variable in ("HOME", "CLAUDE_CONFIG_DIR", "XDG_CONFIG_HOME", "PATH", "LD_PRELOAD", "NODE_OPTIONS"):
            await refused(tally, builder, variable, "may not set", env={variable: "/tmp/x"}, **QUIET)
    print(tally.summary())
    tally.assert_clean()


async def test_the_top_level_client_keeps_its_freedom(root: Client) -> None:
    spawned = await call(root, "spawn", command=["sh", "-c", "echo $HOME"], env={"HOME": "/elsewhere"}, cwd="/")
    waited = await call(root, "wait", ids=[spawned["id"]], timeout_s=30)
    assert waited["done"][0]["text"] == "/elsewhere"


async def test_a_blueprint_is_no_way_round_a_missions_own_permissions(root: Client) -> None:
    tally = Tally()
    blueprint = """
name = "laundry"

[agents.shell]
command = 'touch laundered'

[agents.argv]
command = ["sh", "-c", "touch laundered"]

[agents.agent]
prompt = "A task.\\nfake: answer done"
allowed_tools = ["Bash"]
"""
    async with acting_as(root, name="reader", allowed_tools=["Read"]) as (reader, _me):
        run = await call(reader, "blueprint_run", toml=blueprint)
        done = (await call(reader, "wait", ids=[run["id"]], timeout_s=60))["done"][0]
        nodes = done["output"]["nodes"]
        for node, must_say in (("shell", "would not"), ("argv", "would not"), ("agent", "go beyond")):
            tally.calls += 1
            if nodes[node]["status"] == "succeeded":
                tally.privileges_gained.append(f"blueprint node {node}: {nodes[node]}")
            else:
                assert must_say in nodes[node]["error"], nodes[node]
    print(tally.summary())
    tally.assert_clean()
