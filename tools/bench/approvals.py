"""Benchmark: permission decisions, from a child's request to its answer, at each step of the chain.

The children are the stand-in claude, hanging, so that they live; the benchmark plays their
CLIs: it reads a child's bearer token and the server's URL from the child's own environment and
command line (as a CLI finds them) and calls the `permission_prompt` tool over loopback HTTP, as
`--permission-prompt-tool` makes the real CLI do. Each sample is timed in the benchmark process
from the call sent to the answer received:

- policy: the child's own rules allow it;
- parent: a parent mission (also played here, with its own token) is in `wait` on the child;
  the request wakes it, it answers with `approve`, the child gets the answer;
- client: the same, with the top-level client over stdio answering;
- person: the request waits for the client; a commit to the permission journal wakes a watcher
  here, which answers as `overmind approve` does: through the control mailbox, to the server that
  holds the request.

The baseline is the child's cheapest call on the same connection (`status`): one loopback
HTTP round trip through the SDK, with nothing decided. The children here speak MCP 2025-11-25:
through the SDK's client, calls of 2026-07-28 (Claude Code 2.1.332's version) made back to back
on one connection wait about 40 ms more each on this machine, a trivial call as much as a
decision, which would hide what is measured here. Steps are interleaved sample by sample, the
order rotating, so that each sees the same load.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import psutil
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from overmind_mcp.control.approvals import APPROVE, ApproveRequest
from overmind_mcp.control.client import call
from overmind_mcp.permissions.journal import FILENAME, Journal
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.storage.changes import relay_commits
from tools.bench.common import Config, McpServer, median, overmind_env, overmind_server, row, summary

HANG = "A task.\nfake: hang"


class Child:
    """A mission's MCP connection, as its CLI holds it: the server's URL and the mission's bearer token."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        result = await self.client.call_tool(tool, arguments)
        if result.is_error:
            raise RuntimeError(f"{tool}: {result.content}")
        if result.structured_content is not None:
            return result.structured_content
        return json.loads("".join(getattr(block, "text", "") for block in result.content))

    async def ask(self, command: str) -> dict[str, Any]:
        answer = await self.call("permission_prompt", {"tool_name": "Bash", "input": {"command": command}})
        return dict(answer)


@asynccontextmanager
async def connected(stack: AsyncExitStack, server: McpServer, spawn: dict[str, Any]) -> AsyncIterator[Child]:
    spawned = await server.call("spawn", {"prompt": HANG, **spawn})
    # Its environment is its own once it has started: its first line says so.
    while not (await server.call("logs", {"id": spawned["id"]}))["lines"]:
        await server.call("wait", {"ids": [spawned["id"]], "timeout_s": 0.1})
    process = psutil.Process(spawned["pid"])
    token = process.environ()["OVERMIND_TOKEN"]
    config = next(arg for arg in process.cmdline() if arg.startswith("--mcp-config="))
    url = json.loads(config.removeprefix("--mcp-config="))["mcpServers"]["overmind"]["url"]
    # A request waits as long as its answer takes: not the client's default five seconds.
    http = await stack.enter_async_context(
        httpx.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=httpx.Timeout(60))
    )
    client = await stack.enter_async_context(Client(streamable_http_client(url, http_client=http), mode="legacy"))
    yield Child(client)


async def timed(call: Awaitable[dict[str, Any]], expect_allow: bool = True) -> float:
    started = time.perf_counter()
    answer = await call
    elapsed = (time.perf_counter() - started) * 1000
    if (answer.get("behavior") == "allow") != expect_allow:
        raise RuntimeError(f"unexpected answer: {answer}")
    return elapsed


async def answered_by(
    waiter: Callable[[], Awaitable[dict[str, Any]]],
    approve: Callable[[str], Awaitable[Any]],
    child: Child,
    command: str,
) -> float:
    """One request answered by whoever `waiter` waits as: it sees the request in its wait, and approves."""
    async with anyio.create_task_group() as task_group:

        async def answer() -> None:
            waited = await waiter()
            [request] = waited["needs_approval"]
            await approve(request["id"])

        # Whether the request comes before the wait or during it, the wait returns with it.
        task_group.start_soon(answer)
        return await timed(child.ask(command))


async def answered_by_person(home: Path, journal: Journal, commits: Wakeup, child: Child, command: str) -> float:
    """One request answered as `overmind approve` answers it: found in the journal, answered through the
    control mailbox by the server that holds it."""
    async with anyio.create_task_group() as task_group:

        async def person() -> None:
            while not (pending := [row for row in await journal.pending() if row.input.get("command") == command]):
                await commits.wait()
            answer = ApproveRequest(id=pending[0].id, decision="allow", person="bench")
            await call(home, APPROVE, answer, target=pending[0].server_id)

        task_group.start_soon(person)
        return await timed(child.ask(command))


async def run(config: Config) -> dict[str, Any]:
    rounds, per_round = (1, 3) if config.quick else (3, 20)
    home = config.scratch / "home"
    env = overmind_env(home)
    samples: dict[str, list[list[float]]] = {}
    serial = itertools.count()
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(overmind_server(home, env=env, cwd=config.scratch))
        # Ended after the children's connections close (their tokens die with them).
        stack.push_async_callback(server.call, "kill", {"ids": ["allowed", "parent", "orphan"]})
        watcher = FileWatcher()
        task_group = await stack.enter_async_context(anyio.create_task_group())
        task_group.start_soon(watcher.run)
        stack.callback(task_group.cancel_scope.cancel)
        allowed = await stack.enter_async_context(
            connected(stack, server, {"name": "allowed", "permissions": {"allow": ["Bash(touch:*)"]}})
        )
        parent = await stack.enter_async_context(
            connected(stack, server, {"name": "parent", "permissions": {"allow": ["Bash"]}})
        )
        child = await stack.enter_async_context(connected(stack, server, {"name": "child", "parent": "parent"}))
        orphan = await stack.enter_async_context(connected(stack, server, {"name": "orphan"}))
        journal = await Journal.open(home / FILENAME)
        stack.push_async_callback(journal.close)
        commits = Wakeup()
        await task_group.start(relay_commits, watcher, journal.path, commits)

        def command() -> str:
            return f"touch file-{next(serial)}"

        steps: dict[str, Callable[[], Awaitable[float]]] = {
            "floor": lambda: _floor(allowed),
            "policy": lambda: timed(allowed.ask(command())),
            "parent": lambda: answered_by(
                lambda: parent.call("wait", {"ids": ["child"], "timeout_s": 30}),
                lambda request_id: parent.call("approve", {"request_id": request_id, "decision": "allow"}),
                child,
                command(),
            ),
            "client": lambda: answered_by(
                lambda: server.call("wait", {"ids": ["orphan"], "timeout_s": 30}),
                lambda request_id: server.call("approve", {"request_id": request_id, "decision": "allow"}),
                orphan,
                command(),
            ),
            "person": lambda: answered_by_person(home, journal, commits, orphan, command()),
        }
        for step in steps.values():  # warm up every path once
            await step()
        for number in range(rounds):
            this_round: dict[str, list[float]] = {step: [] for step in steps}
            for sample in range(per_round):
                shift = (number + sample) % len(steps)
                for step in list(steps)[shift:] + list(steps)[:shift]:
                    this_round[step].append(await steps[step]())
            for step, values in this_round.items():
                samples.setdefault(step, []).append(values)
    flat = {step: list(itertools.chain(*values)) for step, values in samples.items()}
    floor = median(flat["floor"])
    labels = {
        "policy": "the child's own policy allows it",
        "parent": "its parent, in wait, answers with approve (over HTTP)",
        "client": "the top-level client, in wait, answers with approve (over stdio)",
        "person": "a person: the journal wakes a watcher, which answers as `overmind approve` does",
    }
    rows = [
        row(
            f"permission decision, {label}: child's request → its answer, p50",
            ours=median(flat[step]),
            baseline=floor,
            unit="ms",
            baseline_name="the child's `status` call on the same connection",
            spread_of="per-round p50 (ms)",
            spread_values=[median(values) for values in samples[step]],
            note=f"p90 {summary(flat[step])['p90']:.2f} ms, {len(flat[step])} samples",
        )
        for step, label in labels.items()
    ]
    return {"rows": rows, "details": {step: summary(values) for step, values in flat.items()} | {"rounds": rounds}}


async def _floor(child: Child) -> float:
    started = time.perf_counter()
    await child.call("status", {})
    return (time.perf_counter() - started) * 1000
