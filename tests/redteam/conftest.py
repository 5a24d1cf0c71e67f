"""The red team's tools: a real stdio server, and real MCP clients that act as one of its missions.

A mission is impersonated the way an attacker inside a child would do it: with the bearer
token the server put in that child's environment, over the loopback HTTP endpoint named
in the child's own `--mcp-config`. Every probe is a real MCP call over a real transport.

`Tally` counts what the issue asks to count: internal errors, hangs, privileges gained and
processes left behind; each test asserts its own counts are zero.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import psutil
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from overmind_mcp.settings import Settings
from tests.conftest import assert_no_leftovers
from tests.helpers import call, script, stdio_server, until_printed

CALL_TIMEOUT_S = 30.0
"""Longest any probe may take: an answer later than this counts as a hang."""


@dataclass
class Tally:
    """What the probes found, by kind, with a few examples of each."""

    calls: int = 0
    internal_errors: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    privileges_gained: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.calls} probes: {len(self.internal_errors)} internal errors, {len(self.hangs)} hangs, "
            f"{len(self.privileges_gained)} privileges gained"
        )

    def assert_clean(self) -> None:
        assert not self.internal_errors, self.internal_errors[:5]
        assert not self.hangs, self.hangs[:5]
        assert not self.privileges_gained, self.privileges_gained[:5]


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def looks_internal(text: str) -> bool:
    """An answer that is a crash rather than a reason: what no input may ever produce."""
    lowered = text.lower()
    return "internal error" in lowered or "traceback" in lowered or text.rstrip().endswith("Error executing tool")


@pytest.fixture
async def root(settings: Settings) -> AsyncIterator[Client]:
    """The top-level client of a real `python -m overmind_mcp` over stdio; nothing it started may outlive it.

    It runs in a scratch directory, so what a probe manages to write lands there, not in the checkout.
    """
    scratch = settings.home.parent / "work"
    scratch.mkdir(parents=True, exist_ok=True)
    async with stdio_server(settings, cwd=scratch) as (client, _process):
        yield client
    await assert_no_leftovers(settings)


@asynccontextmanager
async def acting_as(root: Client, **spawn: Any) -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    """A Claude child spawned by `root` with `spawn`'s arguments, and an MCP client holding its identity."""
    spawned = await call(root, "spawn", prompt=script("say up", "hang"), **spawn)
    await until_printed(root, spawned["id"], "up")
    child = psutil.Process(spawned["pid"])
    token = child.environ()["OVERMIND_TOKEN"]
    config = next(arg.partition("=")[2] for arg in child.cmdline() if arg.startswith("--mcp-config="))
    url = json.loads(config)["mcpServers"]["overmind"]["url"]
    try:
        async with (
            httpx.AsyncClient(headers={"authorization": f"Bearer {token}"}) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            yield client, spawned
    finally:
        await root.call_tool("kill", {"ids": [spawned["id"]], "force": True})
