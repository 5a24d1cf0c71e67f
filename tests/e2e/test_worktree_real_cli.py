"""Isolation with the real CLI: a Claude child edits files in its own worktree; nothing reaches the user's
checkout until it is merged, and nothing it did is lost when it ends.

An SDK client drives a real stdio server; the child is the pinned `claude -p`, whose model (the mock)
reads a file, edits it and writes a new one, with the real Read, Edit and Write tools.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mcp import Client

from tests.e2e.conftest import Overmind, call_tool
from tests.mockapi import MockAnthropicAPI, Text, ToolUse

pytestmark = pytest.mark.anyio

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env={"PATH": "/usr/bin:/bin", **GIT_ENV}, capture_output=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode().rstrip("\n")


async def test_a_claude_child_edits_files_in_its_own_worktree(
    overmind: Overmind, claude_env: dict[str, str], claude_cwd: Path, mock_api: MockAnthropicAPI
) -> None:
    git(claude_cwd, "init", "-q", "-b", "main")
    (claude_cwd / "app.py").write_text("print('hello')\n")
    git(claude_cwd, "add", ".")
    git(claude_cwd, "commit", "-qm", "start")
    tree = claude_cwd / ".overmind" / "worktrees" / "editor"
    mock_api.on(
        "EDIT-IN-ISOLATION",
        steps=[
            ToolUse("Read", {"file_path": str(tree / "app.py")}),
            ToolUse(
                "Edit",
                {"file_path": str(tree / "app.py"), "old_string": "hello", "new_string": "hello from claude"},
            ),
            ToolUse("Write", {"file_path": str(tree / "NOTES.md"), "content": "written by claude\n"}),
            Text(lambda req: f"done: {req.last_tool_result}"),
        ],
    )
    async with Client(overmind.stdio_server(claude_env, claude_cwd), mode="legacy") as client:
        spawned = await call_tool(
            client,
            "spawn",
            prompt="EDIT-IN-ISOLATION: change the greeting and leave a note",
            name="editor",
            cwd=str(claude_cwd),
            isolation="worktree",
            allowed_tools=["Read", "Edit", "Write"],
            permission_mode="acceptEdits",
            delegate=False,
        )
        waited = await call_tool(client, "wait", ids=[spawned["id"]], timeout_s=120)
        [done] = waited["done"]
        assert done["status"] == "succeeded", done
        assert done["cwd"] == str(tree)
        # The CLI saw the worktree as its working directory.
        assert any(str(tree) in str(request.body) for request in mock_api.requests)
        # Its edit and its new file were left uncommitted: archived on its branch, never deleted.
        change = done["change"]
        assert (change["state"], change["files"], change["commits_ahead"]) == ("archived", 2, 1), change
        assert git(claude_cwd, "show", "overmind/editor:app.py") == "print('hello from claude')"
        assert git(claude_cwd, "show", "overmind/editor:NOTES.md") == "written by claude"
        # The user's checkout saw nothing of it until the merge.
        assert (claude_cwd / "app.py").read_text() == "print('hello')\n"
        assert not (claude_cwd / "NOTES.md").exists()
        check = await call_tool(client, "conflicts", ids=["editor"])
        assert check["conflicts"] == []
        merged = await call_tool(client, "merge", id="editor", strategy="squash")
        assert merged["merged"], merged
        assert (claude_cwd / "app.py").read_text() == "print('hello from claude')\n"
        assert (claude_cwd / "NOTES.md").read_text() == "written by claude\n"
        assert git(claude_cwd, "status", "--porcelain") == ""
    overmind.assert_all_ended()
