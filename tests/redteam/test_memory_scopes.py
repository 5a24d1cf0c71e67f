"""Memory across trees: with one child's token, another tree's memories stay out of reach.

Two trees, A and B, each a real child holding its own token; the top-level client writes
too. Every probe goes over the server's HTTP endpoint as one of the children.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from tests.helpers import call
from tests.redteam.conftest import Tally, acting_as, looks_internal, text_of

pytestmark = pytest.mark.anyio


async def denied(tally: Tally, client: Client, what: str, tool: str, must_say: str, **arguments: Any) -> None:
    tally.calls += 1
    result = await client.call_tool(tool, arguments)
    text = text_of(result)
    if not result.is_error:
        tally.privileges_gained.append(f"{what}: {json.dumps(result.structured_content)[:300]}")
    elif looks_internal(text):
        tally.internal_errors.append(f"{what}: {text}")
    else:
        assert must_say in text, (what, text)


async def test_one_tree_cannot_read_rewrite_or_erase_another_trees_memories(root: Client) -> None:
    tally = Tally()
    held = await call(root, "remember", content="The person's decision: ship on Friday.", key="ship-day")
    rule = await call(root, "remember", content="Never force-push main.", key="rule", namespace="global")
    async with acting_as(root, name="tree-a") as (a, a_row), acting_as(root, name="tree-b") as (b, _b_row):
        a_run = await call(a, "remember", content="A's run secret: token rotation plan", key="plan", namespace="run")
        a_own = await call(a, "remember", content="A's own scratch notes", namespace="mission")
        a_note = await call(a, "remember", content="A found the flaky test in auth", key="a-note")
        run_a, mission_a = a_run["namespace"], a_own["namespace"]
        assert run_a == f"run:{a_row['id']}" and mission_a == f"mission:{a_row['id']}"

        # Read: by naming the namespace, by resource, by id.
        await denied(tally, b, "recall A's run", "recall", "outside your reach", namespace=run_a)
        await denied(tally, b, "recall A's mission", "recall", "outside your reach", namespace=mission_a)
        await denied(tally, b, "key lookup in A's run", "recall", "outside your reach", key="plan", namespace=run_a)
        for uri in (f"overmind://akasha/{run_a}", f"overmind://akasha/memory/{a_run['id']}"):
            tally.calls += 1
            try:
                leaked = await b.read_resource(uri)
            except Exception as exc:  # the SDK raises the JSON-RPC error
                assert "outside your reach" in str(exc) or "no memory has id" in str(exc), (uri, exc)
            else:
                tally.privileges_gained.append(f"read {uri}: {leaked}")
        # Rewrite: by key in A's run, and A's key in the shared project.
        await denied(
            tally, b, "overwrite A's run", "remember", "outside your reach", content="x", key="plan", namespace=run_a
        )
        await denied(
            tally, b, "overwrite A's project key", "remember", "another mission tree", content="x", key="a-note"
        )
        await denied(
            tally, b, "overwrite the person's key", "remember", "another mission tree", content="x", key="ship-day"
        )
        # Erase: by id (another tree's id is not even found), by key, and the person's global rule.
        await denied(tally, b, "forget A's run memory", "forget", "no memory has id", id=a_run["id"])
        await denied(tally, b, "forget A's project memory", "forget", "was written by", id=a_note["id"])
        await denied(tally, b, "forget the global rule", "forget", "was written by", key="rule", namespace="global")
        await denied(tally, b, "forget the person's decision", "forget", "was written by", id=held["id"])

        # What B may do: read the shared namespaces, without A's ids; write and erase its own.
        found = await call(b, "recall", query="flaky auth")
        hit = next(hit for hit in found["hits"] if hit["key"] == "a-note")
        assert (hit["mission_id"], hit["mission_name"], hit["session_id"]) == (None, None, None), hit
        assert a_row["id"] not in json.dumps(found)
        recent = await call(b, "recall")
        assert a_row["id"] not in json.dumps(recent), "no hit names tree A"
        mine = await call(b, "remember", content="B's finding", key="b-note")
        assert (await call(b, "forget", id=mine["id"]))["forgotten"]["key"] == "b-note"
        assert (await call(a, "forget", key="a-note"))["forgotten"]["id"] == a_note["id"]
        # A's memories are all still there.
        everything = await call(root, "recall", limit=100, namespace=run_a)
        assert [memory["key"] for memory in everything["hits"]] == ["plan"]
        assert (await call(root, "recall", key="rule", namespace="global"))["hits"][0]["id"] == rule["id"]
    print(tally.summary())
    tally.assert_clean()


async def test_a_child_reads_its_ancestors_missions_but_writes_only_its_own(root: Client) -> None:
    tally = Tally()
    async with acting_as(root, name="elder") as (elder, elder_row):
        brief = await call(elder, "remember", content="Brief for my children: use the staging DB", namespace="mission")
        async with acting_as(root, name="younger", parent="elder") as (younger, _row):
            found = await call(younger, "recall", query="staging")
            assert [hit["id"] for hit in found["hits"]] == [brief["id"]]
            assert found["hits"][0]["mission_id"] == elder_row["id"], "its own tree's writers are shown"
            await denied(
                tally,
                younger,
                "write an ancestor's mission",
                "remember",
                "ancestor's",
                content="x",
                namespace=brief["namespace"],
            )
            await denied(tally, younger, "forget an ancestor's memory", "forget", "was written by", id=brief["id"])
            await call(younger, "remember", content="mine", namespace="run", key="younger-note")
    print(tally.summary())
    tally.assert_clean()
