"""Children that call back into the same server: identity by token, subtrees, limits, privileges.

The server here listens on a real loopback HTTP port, exactly as `overmind-mcp` does for
its children; the children are the stand-in claude, whose `mcp` directive makes real MCP
calls through the `--mcp-config` the server gave it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2 as httpx
import psutil
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from overmind_mcp.errors import AccessDenied, InvalidRequest, Refused
from overmind_mcp.models import SpawnRequest
from overmind_mcp.rituals.models import RitualSpec
from overmind_mcp.rituals.service import rituals_of
from overmind_mcp.server import http
from overmind_mcp.server.app import create_server
from overmind_mcp.server.lifetime import rooms
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor
from tests.conftest import assert_no_leftovers
from tests.test_supervisor_raw import until_output

pytestmark = pytest.mark.anyio


@pytest.fixture
async def delegating(settings: Settings) -> AsyncIterator[Supervisor]:
    """A supervisor whose children reach it over loopback HTTP, as under `overmind-mcp`."""
    async with Supervisor.running(settings) as supervisor, anyio.create_task_group() as task_group:
        sock = http.bind("127.0.0.1", 0)
        supervisor.delegation_url = http.url_of(sock)
        app = http.http_app(create_server(supervisor=supervisor), supervisor.credentials, "127.0.0.1")
        task_group.start_soon(http.serve, app, sock)
        yield supervisor
        task_group.cancel_scope.cancel()
    await assert_no_leftovers(settings)


def script(*directives: str) -> str:
    return "\n".join(["A delegated task.", *(f"fake: {directive}" for directive in directives)])


def mcp(tool: str, **arguments: Any) -> str:
    return f"mcp {tool} {json.dumps(arguments)}"


async def test_three_levels_deep_and_the_root_sees_it_all(delegating: Supervisor) -> None:
    leaf = script("cost 0.01", "answer deepest")
    middle = script(
        mcp("spawn", name="level-c", prompt=leaf), mcp("wait", ids=["level-c"], timeout_s=30), "answer B saw {last}"
    )
    top = script(
        mcp("spawn", name="level-b", prompt=middle), mcp("wait", ids=["level-b"], timeout_s=30), "answer A saw {last}"
    )
    root = await delegating.spawn(SpawnRequest(prompt=top, name="level-a"))
    answer = await delegating.wait([root.id], timeout_s=60)
    result = answer.done[0]
    assert result.status == "succeeded", result
    assert "deepest" in (result.text or "")
    tree = await delegating.ps(tree=True)
    assert [(m.name, m.depth) for m in tree.missions] == [("level-a", 0), ("level-b", 1), ("level-c", 2)]
    by_name = {m.name: m for m in tree.missions}
    assert by_name["level-b"].parent == root.id
    assert by_name["level-c"].parent == by_name["level-b"].id
    # Cost rolls up the tree.
    assert by_name["level-a"].tree_cost_usd == pytest.approx(sum(m.cost_usd or 0 for m in tree.missions))
    assert by_name["level-a"].tree_cost_usd > by_name["level-a"].cost_usd


async def test_kill_cascades_from_the_root_through_delegated_children(delegating: Supervisor) -> None:
    leaf = script("say leaf up", "grandchild", "hang")
    middle = script(mcp("spawn", name="mid-leaf", prompt=leaf), "say middle up", "hang")
    top = script(mcp("spawn", name="mid", prompt=middle), "say top up", "hang")
    root = await delegating.spawn(SpawnRequest(prompt=top, name="top"))
    await until_output(delegating, "top", "top up")
    await until_output(delegating, "mid", "middle up")
    await until_output(delegating, "mid-leaf", "grandchild pid")
    outcome = await delegating.kill([root.id])
    assert [o.name for o in outcome.ended] == ["mid-leaf", "mid", "top"]
    assert all(o.status in {"stopped", "killed"} for o in outcome.ended)


async def test_a_child_cannot_touch_its_sibling(delegating: Supervisor) -> None:
    sibling = await delegating.spawn(SpawnRequest(command=["sleep", "600"], name="sibling"))
    meddler = await delegating.spawn(
        SpawnRequest(
            prompt=script(
                mcp("kill", ids=["sibling"]),
                "say kill said {last}",
                mcp("result", id="sibling"),
                "answer result said {last}",
            ),
            name="meddler",
        )
    )
    answer = await delegating.wait([meddler.id], timeout_s=30)
    text = answer.done[0].text or ""
    assert "not in your subtree" in text
    assert (await delegating.result(sibling.id)).status == "running"
    log = (await delegating.logs(meddler.id)).lines
    assert any("kill said" in line and "not in your subtree" in line for line in log)
    await delegating.kill([sibling.id])


async def test_a_childs_spawns_become_its_children_and_ps_shows_its_subtree(delegating: Supervisor) -> None:
    other = await delegating.spawn(SpawnRequest(command=["sleep", "600"], name="unrelated"))
    parent = await delegating.spawn(
        SpawnRequest(
            prompt=script(
                mcp("spawn", command=["echo", "mine"], name="my-child"),
                mcp("wait", ids=["my-child"], timeout_s=20),
                mcp("ps"),
                "answer {last}",
            ),
            name="parent-agent",
            # Its own Bash tool could run `echo`, so it may start it as a command.
            allowed_tools=["Bash(echo:*)"],
        )
    )
    answer = await delegating.wait([parent.id], timeout_s=30)
    listing = json.loads(answer.done[0].text or "{}")
    assert [m["name"] for m in listing["missions"]] == ["parent-agent", "my-child"]
    assert (await delegating.result("my-child")).text == "mine"
    await delegating.kill([other.id])


async def test_depth_limit_is_refused_with_a_clear_error(settings: Settings) -> None:
    shallow = settings.model_copy(update={"max_depth": 2})
    async with Supervisor.running(shallow) as supervisor:
        top = await supervisor.spawn(SpawnRequest(command=["sleep", "600"], name="top"))
        middle = await supervisor.spawn(SpawnRequest(command=["sleep", "600"], name="middle", parent="top"))
        with pytest.raises(Refused, match="depth limit"):
            await supervisor.spawn(SpawnRequest(command=["true"], parent=middle.id))
        await supervisor.kill([top.id])
    await assert_no_leftovers(settings)


async def test_delegation_needs_room_and_an_endpoint(supervisor: Supervisor) -> None:
    with pytest.raises(InvalidRequest, match="HTTP endpoint"):
        await supervisor.spawn(SpawnRequest(prompt="x", delegate=True))
    deep = supervisor.settings.max_depth - 1
    assert deep >= 1


async def test_privileges_never_grow_down_the_tree(supervisor: Supervisor) -> None:
    parent = await supervisor.spawn(
        SpawnRequest(
            prompt=script("hang"),
            name="careful",
            allowed_tools=["Read", "Grep"],
            permission_mode="plan",
            max_budget_usd=1.0,
            max_turns=5,
            timeout_s=100,
        )
    )
    with pytest.raises(Refused, match="beyond the parent"):
        await supervisor.spawn(SpawnRequest(prompt="x", parent="careful", allowed_tools=["Bash"]))
    with pytest.raises(Refused, match="more than the parent"):
        await supervisor.spawn(SpawnRequest(prompt="x", parent="careful", permission_mode="acceptEdits"))
    with pytest.raises(Refused, match="max_budget_usd"):
        await supervisor.spawn(SpawnRequest(prompt="x", parent="careful", max_budget_usd=5.0))
    with pytest.raises(Refused, match="bypassPermissions"):
        await supervisor.spawn(SpawnRequest(prompt="x", permission_mode="bypassPermissions"))
    child = await supervisor.spawn(SpawnRequest(prompt=script("answer ok"), parent="careful"))
    row = await supervisor.mission(child.id)
    # What it did not ask for, it inherits.
    assert row.spec.task.allowed_tools == ["Read", "Grep"]
    assert row.spec.task.permission_mode == "plan"
    assert row.spec.task.max_budget_usd == 1.0
    assert row.spec.task.max_turns == 5
    assert 0 < (row.spec.timeout_s or 0) <= 100
    await supervisor.kill([parent.id])


async def test_a_child_outside_the_tree_is_refused_by_identity(delegating: Supervisor) -> None:
    from overmind_mcp.identity import Caller

    outsider = await delegating.spawn(SpawnRequest(command=["sleep", "600"], name="outsider"))
    insider = await delegating.spawn(SpawnRequest(command=["sleep", "600"], name="insider"))
    as_insider = Caller(insider.id)
    with pytest.raises(AccessDenied):
        await delegating.result("outsider", caller=as_insider)
    with pytest.raises(AccessDenied):
        await delegating.spawn(SpawnRequest(command=["true"], parent="outsider"), caller=as_insider)
    with pytest.raises(AccessDenied, match="is you"):
        await delegating.kill([insider.id], caller=as_insider)  # not even itself: only what it started
    await delegating.kill([outsider.id, insider.id])


async def test_http_refuses_without_a_valid_token(delegating: Supervisor) -> None:
    url = delegating.delegation_url
    assert url is not None
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    async with httpx.AsyncClient() as client:
        missing = await client.post(url, json=body, headers=headers)
        wrong = await client.post(url, json=body, headers={**headers, "authorization": "Bearer nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json() == {"error": "unauthorized"}
    assert missing.headers["www-authenticate"].startswith("Bearer")


async def test_serve_http_requires_the_token_and_checks_the_host(settings: Settings) -> None:
    env = {
        **os.environ,
        "OVERMIND_HOME": str(settings.home),
        "OVERMIND_CLAUDE_BIN": settings.claude_bin,
    }
    argv = [sys.executable, "-m", "overmind_mcp", "serve", "--http", "--port", "0"]
    async with await anyio.open_process(argv, env=env, stderr=subprocess.PIPE) as server:
        assert server.stderr is not None
        url, seen = None, ""
        with anyio.fail_after(20):
            async for chunk in server.stderr:
                seen += chunk.decode()
                if match := re.search(r"serving (http://\S+)", seen):
                    url = match.group(1)
                    break
        assert url is not None, seen
        token_file = settings.home / "http-token"
        token = token_file.read_text().strip()
        assert token in seen, "a new token is printed once"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        async with httpx.AsyncClient() as raw:
            unauthorized = await raw.post(url, json=body, headers=headers)
            bad_host = await raw.post(
                url, json=body, headers={**headers, "authorization": f"Bearer {token}", "host": "evil.example:80"}
            )
        assert unauthorized.status_code == 401
        assert bad_host.status_code == 421
        authorized = httpx.AsyncClient(headers={"authorization": f"Bearer {token}"})
        async with Client(streamable_http_client(url, http_client=authorized)) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            assert "spawn" in names
            spawned = await client.call_tool("spawn", {"command": ["echo", "over http"]})
            mission_id = spawned.structured_content["id"]
            waited = await client.call_tool("wait", {"ids": [mission_id], "timeout_s": 20})
            assert waited.structured_content["done"][0]["text"] == "over http"
        await authorized.aclose()
        server.terminate()
        assert await server.wait() in (0, -signal.SIGTERM, 128 + signal.SIGTERM)
    await assert_no_leftovers(settings)


def test_a_public_bind_needs_allow_remote(settings: Settings) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "overmind_mcp", "serve", "--http", "--host", "0.0.0.0", "--port", "0"],
        env={**os.environ, "OVERMIND_HOME": str(settings.home)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--allow-remote" in done.stderr


async def test_a_token_stays_out_of_argv_and_dies_with_its_mission(delegating: Supervisor) -> None:
    child = await delegating.spawn(SpawnRequest(prompt=script("env OVERMIND_TOKEN", "say up", "sleep 30"), name="tok"))
    await until_output(delegating, "tok", "up")
    process = psutil.Process(child.pid)
    cmdline = " ".join(process.cmdline())
    token = process.environ()["OVERMIND_TOKEN"]
    assert token and token not in cmdline
    assert "${OVERMIND_TOKEN}" in cmdline
    url = delegating.delegation_url
    assert url is not None
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "authorization": f"Bearer {token}",
    }
    async with httpx.AsyncClient() as raw:
        assert (await raw.post(url, json=body, headers=headers)).status_code != 401
        await delegating.kill([child.id])
        assert (await raw.post(url, json=body, headers=headers)).status_code == 401


async def test_delegation_through_a_real_stdio_server(settings: Settings) -> None:
    env = {
        **os.environ,
        "OVERMIND_HOME": str(settings.home),
        "OVERMIND_CLAUDE_BIN": settings.claude_bin,
        "OVERMIND_KILL_GRACE_S": "1",
    }
    grandchild = script("answer from the grandchild")
    child = script(mcp("spawn", name="grand", prompt=grandchild), mcp("wait", ids=["grand"]), "answer {last}")
    params = StdioServerParameters(command=sys.executable, args=["-m", "overmind_mcp"], env=env)
    async with Client(params, mode="legacy") as client:
        spawned = await client.call_tool("spawn", {"prompt": child, "name": "child"})
        assert not spawned.is_error, spawned.content[0].text
        waited = await client.call_tool("wait", {"ids": ["child"], "timeout_s": 60})
        done = waited.structured_content["done"][0]
        assert done["status"] == "succeeded", done
        assert "from the grandchild" in done["text"]
        tree = (await client.call_tool("ps", {"tree": True})).structured_content["missions"]
        assert [(m["name"], m["depth"]) for m in tree] == [("child", 0), ("grand", 1)]
    await assert_no_leftovers(settings)


async def test_a_child_cannot_set_up_rituals(delegating: Supervisor) -> None:
    """A ritual's runs are top-level missions, outside the child's subtree and beyond its privileges."""
    async with rooms(delegating):
        rituals = rituals_of(delegating)
        await rituals.schedule(RitualSpec(name="nightly", cron="@daily", spawn=SpawnRequest(command=["true"])))
        schemer = await delegating.spawn(
            SpawnRequest(
                prompt=script(
                    mcp("schedule", name="sneaky", cron="* * * * * *", spawn={"command": ["true"]}),
                    "say schedule said {last}",
                    mcp("unschedule", name="nightly"),
                    "say unschedule said {last}",
                    mcp("schedules"),
                    "answer schedules said {last}",
                )
            )
        )
        answer = (await delegating.wait([schemer.id], timeout_s=30)).done[0]
        log = "\n".join((await delegating.logs(schemer.id)).lines)
        for tool in ("schedule", "unschedule"):
            assert f"{tool} said Error executing tool {tool}: only the top-level client may change rituals" in log
        assert '"name":"nightly"' in (answer.text or "").replace(" ", "")  # reading them is allowed
        assert [ritual.name for ritual in (await rituals.list()).rituals] == ["nightly"]


async def test_the_endpoint_sends_its_answers_at_once() -> None:
    """Nagle is off on each connection the endpoint accepts (asyncio, as uvicorn serves it, turns it off
    only for a socket that says it is TCP): an answer written in parts is not held back until the
    client's delayed ACK, which cost a child's CLI 40 ms a request on its kept-alive connections."""
    accepted: list[socket.socket] = []
    connected = anyio.Event()

    class Accepting(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted.append(transport.get_extra_info("socket"))
            connected.set()

    sock = http.bind("127.0.0.1", 0)
    listener = await asyncio.get_running_loop().create_server(Accepting, sock=sock)
    try:
        async with await anyio.connect_tcp(*sock.getsockname()[:2]):
            with anyio.fail_after(5):
                await connected.wait()
            assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        listener.close()
        await listener.wait_closed()
