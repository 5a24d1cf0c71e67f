"""The tool surface as the model sees it stays small while tools are added."""

from __future__ import annotations

import json

import pytest

from overmind_mcp.settings import Settings
from tests.helpers import stdio_server

pytestmark = pytest.mark.anyio

SURFACE_LIMIT_BYTES = 16 * 1024
"""Names, descriptions and input schemas of every tool together: each byte is context the model pays for."""


async def test_the_tool_surface_stays_under_16_kb(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _process):
        tools = (await client.list_tools()).tools
    sizes = {
        tool.name: len(
            json.dumps(
                {"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema},
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode()
        )
        for tool in tools
    }
    total = sum(sizes.values())
    largest = ", ".join(f"{name} {size}" for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:5])
    assert total <= SURFACE_LIMIT_BYTES, (
        f"the tools' names, descriptions and input schemas take {total} bytes, over {SURFACE_LIMIT_BYTES}; "
        f"largest: {largest}"
    )
    assert len(tools) >= 12  # the count covers the whole surface, not an empty list


async def test_compact_schemas_still_take_an_explicit_null(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _process):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        ps_schema = tools["ps"].input_schema
        answer = await client.call_tool("ps", {"parent": None, "status": None})
    assert "title" not in json.dumps(ps_schema)
    assert ps_schema["properties"]["parent"]["type"] == "string"  # no null alternative: it may be left out
    assert "parent" not in ps_schema.get("required", [])
    assert not answer.is_error, answer.content


async def test_output_schemas_drop_titles_and_still_take_every_answer(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _process):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        # The client checks each structured answer against its tool's output schema: nulls included.
        answer = await client.call_tool("status", {})
        spawned = await client.call_tool("spawn", {"command": ["true"]})
        waited = await client.call_tool("wait", {"ids": [spawned.structured_content["id"]], "timeout_s": 30})
    assert not answer.is_error and not spawned.is_error and not waited.is_error, (answer, spawned, waited)
    assert '"title"' not in json.dumps([tool.output_schema for tool in tools.values()])
    assert waited.structured_content["done"][0]["status"] == "succeeded"
    assert {"type": "null"} in tools["result"].output_schema["properties"]["cost_usd"]["anyOf"]
