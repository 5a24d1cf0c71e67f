"""The MCP surface through the SDK's own client: in memory, and over a real stdio subprocess."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator

import anyio
import pytest
from mcp import Client

from overmind_mcp.server.app import create_server
from overmind_mcp.settings import Settings
from tests.conftest import assert_no_leftovers, new_child_running
from tests.helpers import call, server_params

pytestmark = pytest.mark.anyio

TOOLS = [
    "spawn",
    "wait",
    "result",
    "kill",
    "send",
    "interrupt",
    "ps",
    "logs",
    "status",
    "approvals",
    "approve",
    "remember",
    "recall",
    "forget",
    "merge",
    "conflicts",
    "discard",
    "schedule",
    "schedules",
    "unschedule",
    "pause_schedule",
    "blueprint_run",
    "blueprint_validate",
]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(create_server(settings)) as connected:
        yield connected
    await assert_no_leftovers(settings)


async def test_tools_are_listed_with_output_schemas(client: Client) -> None:
    listed = (await client.list_tools()).tools
    assert [tool.name for tool in listed] == TOOLS
    for tool in listed:
        assert tool.output_schema is not None, tool.name
        assert tool.description and len(tool.description) < 300, tool.name


async def test_spawn_wait_result_by_name(client: Client) -> None:
    spawned = await call(client, "spawn", command=["sh", "-c", "echo built"], name="build")
    assert spawned["status"] == "running"
    assert spawned["pid"] > 0
    waited = await call(client, "wait", ids=["build"], timeout_s=10)
    assert waited["timed_out"] is False
    assert waited["done"][0]["text"] == "built"
    result = await call(client, "result", id="build")
    assert (result["status"], result["exit_code"], result["id"]) == ("succeeded", 0, spawned["id"])


async def test_wait_reports_progress_while_it_waits(client: Client, settings: Settings) -> None:
    reports: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total, message))

    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.6)\n"
    await call(client, "spawn", command=[sys.executable, "-c", code], name="ticker")
    result = await client.call_tool("wait", {"ids": ["ticker"], "timeout_s": 20}, progress_callback=on_progress)
    assert result.structured_content["done"][0]["status"] == "succeeded"
    assert reports, "wait sent no progress notification"
    progresses = [progress for progress, _total, _message in reports]
    assert progresses == sorted(progresses) and len(set(progresses)) == len(progresses)
    assert all("ticker" in (message or "") or "1/1 done" in (message or "") for *_rest, message in reports)


async def test_bad_input_is_a_tool_error_that_says_what_to_fix(client: Client) -> None:
    cases = [
        ({"prompt": ""}, "empty"),
        ({"prompt": "x", "command": ["true"]}, "exactly one of"),
        ({"command": ["true"], "cwd": "/no/such/dir"}, "not an existing directory"),
        ({"command": ["true"], "timeout_s": -5}, "greater than 0"),
    ]
    for arguments, message in cases:
        result = await client.call_tool("spawn", arguments)
        assert result.is_error
        assert message in result.content[0].text
        assert "Traceback" not in result.content[0].text
    missing = await client.call_tool("result", {"id": "no-such-mission"})
    assert missing.is_error and "call ps" in missing.content[0].text
    negative = await client.call_tool("logs", {"id": "x", "cursor": -1})
    assert negative.is_error


async def test_kill_ps_logs_status(client: Client) -> None:
    await call(client, "spawn", command=["sleep", "600"], name="parent")
    await call(client, "spawn", command=["sh", "-c", "echo hi; sleep 600"], name="child", parent="parent")
    tree = await call(client, "ps", tree=True)
    assert [(m["name"], m["depth"]) for m in tree["missions"]] == [("parent", 0), ("child", 1)]
    assert tree["totals"]["running"] == 2
    killed = await call(client, "kill", ids=["parent"])
    assert [entry["name"] for entry in killed["ended"]] == ["child", "parent"]
    logs = await call(client, "logs", id="child")
    assert logs["lines"] == ["hi"]
    status = await call(client, "status")
    assert status["missions_by_status"] == {"stopped": 2}


async def test_a_cancelled_wait_leaves_the_mission_running(client: Client) -> None:
    await call(client, "spawn", command=["sleep", "600"], name="long")
    with anyio.move_on_after(0.3):
        await client.call_tool("wait", {"ids": ["long"], "timeout_s": 60})
    assert (await call(client, "result", id="long"))["status"] == "running"


async def test_stdio_server_end_to_end_and_children_end_at_eof(settings: Settings) -> None:
    async with Client(server_params(settings), mode="legacy") as client:
        assert [tool.name for tool in (await client.list_tools()).tools] == TOOLS
        await call(client, "spawn", command=["sleep", "600"], name="left-running")
        done = await call(client, "spawn", command=["echo", "over stdio"])
        waited = await call(client, "wait", ids=[done["id"]], timeout_s=10)
        assert waited["done"][0]["text"] == "over stdio"
    # The client closed stdin: the server ended its children before exiting.
    await assert_no_leftovers(settings)


async def test_stdio_server_ends_children_on_sigterm(settings: Settings) -> None:
    async with Client(server_params(settings), mode="legacy") as client:
        await call(client, "spawn", command=["sleep", "600"], name="victim")
        assert (await call(client, "status"))["children_running"] == 1
        server = new_child_running("overmind_mcp")
        server_exited = os.pidfd_open(server.pid)
        server.send_signal(signal.SIGTERM)
        with anyio.fail_after(10):
            await anyio.wait_readable(server_exited)
        os.close(server_exited)
        # It ended its children before it went.
        await assert_no_leftovers(settings)


async def test_the_orchestrate_prompt(client: Client, settings: Settings) -> None:
    prompts = (await client.list_prompts()).prompts
    orchestrate = next(prompt for prompt in prompts if prompt.name == "orchestrate")
    assert [argument.name for argument in orchestrate.arguments or []] == ["task"]
    task = "Make the flaky $HOME test pass (costs $5?)"
    text = (await client.get_prompt("orchestrate", {"task": task})).messages[0].content.text
    assert task in text
    assert str(settings.project) in text
    assert "At most 10 children" in text and "At most 3 retries" in text
    for tool in ("spawn", "wait", "result", "logs", "kill", "ps"):
        assert f"mcp__overmind__{tool}" in text
    assert "$task" not in text and "$project_root" not in text
    assert "When not to delegate" in text


async def test_a_session_through_the_tools(client: Client) -> None:
    turn = "fake: answer {}"
    await call(client, "spawn", prompt=turn.format("hello"), session=True, name="talk")
    first = await call(client, "wait", ids=["talk"], timeout_s=20)
    assert first["done"][0]["text"] == "hello" and first["done"][0]["session_state"] == "idle"
    second = await call(client, "send", id="talk", message=turn.format("again"))
    assert (second["turn"], second["state"], second["text"]) == (1, "done", "again")
    idle = await client.call_tool("interrupt", {"id": "talk"})
    assert idle.is_error and "idle" in idle.content[0].text
    task = await call(client, "spawn", command=["sleep", "600"])
    refused = await client.call_tool("send", {"id": task["id"], "message": "hi"})
    assert refused.is_error and "not a session" in refused.content[0].text
    await call(client, "kill", ids=["talk", task["id"]])
