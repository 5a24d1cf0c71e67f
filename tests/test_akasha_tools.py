"""The memory tools and resources through the SDK's in-memory client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from overmind_mcp.identity import ROOT, Caller
from overmind_mcp.server.app import create_server
from overmind_mcp.server.toolset import _memory
from overmind_mcp.settings import Settings
from tests.conftest import assert_no_leftovers
from tests.test_akasha import HOSTILE

pytestmark = pytest.mark.anyio

MEMORY_FIELDS = {
    "id",
    "namespace",
    "key",
    "content",
    "tags",
    "mission_id",
    "mission_name",
    "session_id",
    "created_at",
    "updated_at",
}


@pytest.fixture
async def client(settings: Settings, tmp_path: Path) -> AsyncIterator[Client]:
    server = create_server(settings.model_copy(update={"project_dir": tmp_path}))
    async with Client(server) as connected:
        yield connected
    await assert_no_leftovers(settings)


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return result.structured_content


async def refusal(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    text = result.content[0].text
    assert "Traceback" not in text and "internal error" not in text, text
    return text


async def test_the_memory_tools_are_listed_with_output_schemas(client: Client) -> None:
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in ("remember", "recall", "forget"):
        tool = listed[name]
        assert tool.output_schema is not None, name
        assert tool.description and len(tool.description) < 300, name
    assert set(listed["recall"].input_schema["properties"]) == {"query", "key", "tags", "namespace", "limit"}
    assert listed["recall"].annotations is not None and listed["recall"].annotations.read_only_hint


async def test_remember_recall_forget(client: Client) -> None:
    stored = await call(
        client, "remember", content="Staging deploys need the VPN.", key="staging-vpn", tags=["ops", "Deploy"]
    )
    assert set(stored) == MEMORY_FIELDS | {"replaced"}
    assert stored["namespace"].startswith("project:/")
    assert (stored["tags"], stored["replaced"], stored["mission_id"]) == (["ops", "deploy"], False, None)
    await call(client, "remember", content="Production deploys need two approvals.", namespace="global")

    found = await call(client, "recall", query="deploy* VPN")
    assert (found["mode"], found["expression"]) == ("all_terms", '"deploy"* AND "VPN"')
    assert found["namespaces"] == [stored["namespace"], "global"]
    [hit] = found["hits"]
    assert set(hit) == MEMORY_FIELDS | {"snippet", "score", "content_truncated"}
    assert hit["id"] == stored["id"] and hit["score"] > 0 and "**VPN**" in hit["snippet"]

    by_key = await call(client, "recall", key="staging-vpn")
    assert (by_key["mode"], [hit["id"] for hit in by_key["hits"]]) == ("key", [stored["id"]])
    tagged = await call(client, "recall", tags=["deploy"])
    assert [hit["id"] for hit in tagged["hits"]] == [stored["id"]]
    everywhere = await call(client, "recall", query="deploys")
    assert len(everywhere["hits"]) == 2

    forgotten = await call(client, "forget", key="staging-vpn")
    assert forgotten["forgotten"]["content"] == "Staging deploys need the VPN."
    assert (await call(client, "recall", query="VPN"))["hits"] == []


async def test_remembering_a_key_again_replaces_it(client: Client) -> None:
    first = await call(client, "remember", content="Use sessions.", key="auth-design")
    second = await call(client, "remember", content="Use JWTs.", key="auth-design")
    assert (second["id"], second["created_at"], second["replaced"]) == (first["id"], first["created_at"], True)
    [hit] = (await call(client, "recall", key="auth-design"))["hits"]
    assert hit["content"] == "Use JWTs."


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("remember", {"content": ""}, "content is empty"),
        ("remember", {"content": "x", "tags": [" "]}, "a tag is empty"),
        ("remember", {"content": "x", "namespace": "projcet"}, "unknown namespace"),
        ("remember", {"content": "x", "namespace": "run"}, "not a mission"),
        ("remember", {"content": "x", "namespace": "mission:fix-auth"}, "16 hex digits"),
        ("recall", {"query": "-redis"}, "only excludes"),
        ("recall", {"query": "🎉 ()"}, "nothing to search for"),
        ("recall", {"query": "x", "key": "y"}, "not both"),
        ("recall", {"limit": 0}, "greater than or equal to 1"),
        ("forget", {}, "exactly one"),
        ("forget", {"id": 1, "namespace": "global"}, "namespace only with key"),
        ("forget", {"id": 999}, "no memory has id 999"),
        ("forget", {"key": "nope", "namespace": "global"}, "no memory has key 'nope' in namespace 'global'"),
    ],
)
async def test_bad_input_is_a_tool_error_that_says_what_to_fix(
    client: Client, tool: str, arguments: dict[str, Any], message: str
) -> None:
    assert message in await refusal(client, tool, **arguments)


async def test_no_query_text_reaches_the_search_engine_raw(client: Client) -> None:
    await call(client, "remember", content="Token refresh (see NEAR docs) runs in auth: every 5 min.")
    for query in HOSTILE:
        result = await client.call_tool("recall", {"query": query})
        if result.is_error:
            text = result.content[0].text
            assert "internal error" not in text and "fts5" not in text and "syntax" not in text, (query, text)
        else:
            assert result.structured_content is not None


async def test_a_child_signs_its_memories_and_sees_its_run(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    spawned = await call(client, "spawn", command=["sleep", "30"], name="memory-child")
    monkeypatch.setattr(_memory, "caller", lambda _ctx: Caller(spawned["id"]))
    stored = await call(client, "remember", content="The child found the flaky test.", namespace="run")
    assert stored["namespace"] == f"run:{spawned['id']}"
    assert (stored["mission_id"], stored["mission_name"]) == (spawned["id"], "memory-child")
    mine = await call(client, "remember", content="Scratch note for myself.", namespace="mission")
    assert mine["namespace"] == f"mission:{spawned['id']}"
    found = await call(client, "recall", query="flaky OR scratch")
    assert found["namespaces"][0] == f"mission:{spawned['id']}"
    assert {hit["id"] for hit in found["hits"]} == {stored["id"], mine["id"]}
    monkeypatch.setattr(_memory, "caller", lambda _ctx: ROOT)
    assert (await call(client, "recall", query="flaky OR scratch"))["hits"] == []
    assert len((await call(client, "recall", query="flaky", namespace=f"run:{spawned['id']}"))["hits"]) == 1
    await call(client, "kill", ids=[spawned["id"]], force=True)


async def test_memories_are_resources(client: Client) -> None:
    templates = {template.uri_template for template in (await client.list_resource_templates()).resource_templates}
    assert {"overmind://akasha/{namespace}", "overmind://akasha/memory/{id}"} <= templates
    stored = await call(client, "remember", content="Resources work too.", key="resources", tags=["docs"])

    listing = json.loads((await client.read_resource("overmind://akasha/project")).contents[0].text)
    assert listing["namespace"] == stored["namespace"]
    assert [memory["id"] for memory in listing["memories"]] == [stored["id"]]
    spelled_out = f"overmind://akasha/{quote(stored['namespace'], safe='')}"
    assert json.loads((await client.read_resource(spelled_out)).contents[0].text) == listing
    assert json.loads((await client.read_resource("overmind://akasha/global")).contents[0].text)["memories"] == []

    one = json.loads((await client.read_resource(f"overmind://akasha/memory/{stored['id']}")).contents[0].text)
    assert one == {key: stored[key] for key in MEMORY_FIELDS}
    for missing in ("overmind://akasha/memory/999", "overmind://akasha/memory/abc"):
        with pytest.raises(MCPError):
            await client.read_resource(missing)
    with pytest.raises(MCPError, match="unknown namespace"):
        await client.read_resource("overmind://akasha/projcet")
