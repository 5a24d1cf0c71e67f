"""A person answers a child's permission request from another terminal: `overmind approvals` and `approve`.

The server is a real stdio server; the child is the stand-in claude, which asks the way the real
CLI does, by calling the server's `permission_prompt` tool over its `--mcp-config`. Each verb
runs as a process of its own.
"""

from __future__ import annotations

import getpass
import json

import pytest

from overmind_mcp.permissions.journal import FILENAME, Journal
from overmind_mcp.settings import Settings
from tests.helpers import call, script, stdio_server
from tests.test_console import overmind, overmind_json

pytestmark = pytest.mark.anyio

ASK = 'mcp permission_prompt {"tool_name": "Bash", "input": {"command": "touch x"}, "tool_use_id": "toolu_1"}'


async def test_a_person_lists_and_answers_a_childs_request(settings: Settings) -> None:
    async with stdio_server(settings) as (client, _process):
        child = await call(client, "spawn", prompt=script(ASK, "answer {last}"), name="asker")
        waited = await call(client, "wait", ids=["asker"], timeout_s=30)
        [request] = waited["needs_approval"]

        listed = await overmind_json(settings, "approvals")
        assert listed["requests"][0] | {"waited_s": 0, "expires_in_s": 0} == request | {
            "waited_s": 0,
            "expires_in_s": 0,
        }
        table = await overmind(settings, "approvals")
        assert request["id"] in table.stdout and "the client" in table.stdout and "touch x" in table.stdout
        [shown] = (await overmind_json(settings, "ps"))["missions"]
        assert (shown["status"], shown["doing"]) == (
            "needs_approval",
            "waiting for approval of Bash(touch x) from the client",
        )
        assert (await overmind_json(settings, "ps", "--status", "needs_approval"))["missions"][0]["id"] == child["id"]

        denied = await overmind(settings, "approve", request["id"], "deny", "--message", "by hand")
        assert denied.returncode == 0, denied.stderr
        assert denied.stdout.strip() == "denied Bash(touch x) for asker"
        [done] = (await call(client, "wait", ids=["asker"], timeout_s=30))["done"]
        assert json.loads(done["text"]) == {"behavior": "deny", "message": f"Denied by {getpass.getuser()}: by hand"}

        again = await overmind(settings, "approve", request["id"], "allow")
        assert again.returncode == 1 and f"already answered: deny by {getpass.getuser()}" in again.stderr
        unknown = await overmind(settings, "approve", "no-such-request", "allow")
        assert unknown.returncode == 3 and "overmind approvals" in unknown.stderr
        bad = await overmind(settings, "approve", request["id"], "allow", "--input", "[1]")
        assert bad.returncode == 2 and "must be a JSON object" in bad.stderr

        journal = await Journal.open(settings.home / FILENAME)
        try:
            stored = await journal.get(request["id"])
        finally:
            await journal.close()
        assert stored is not None and stored.tool_use_id == "toolu_1"  # as the CLI names the call

        result = await overmind_json(settings, "result", "asker")
        assert result["approvals"] == (await call(client, "result", id="asker"))["approvals"]
        [decision] = result["approvals"]
        assert (decision["by"], decision["by_name"], decision["decision"]) == ("person", getpass.getuser(), "deny")
        assert "permission: Bash(touch x) deny by person" in (await overmind(settings, "result", "asker")).stdout
