"""Issue 7: an outside client (the official MCP TypeScript SDK) drives overmind over stdio.

``mcp_client.mjs`` uses ``@modelcontextprotocol/sdk`` 1.32.2 (pinned, installed by
``tools/install_mcp_sdk.py`` into ``.cache/e2e-node/``) exactly as a third-party integration would:
``Client`` + ``StdioClientTransport``, ``tools/list``, ``prompts/get``, then ``spawn``, ``wait`` with
``onprogress`` and ``result``. Its SDK checks every ``structuredContent`` against the tool's ``outputSchema``, a check
that no code of ours performs. The child is the real CLI against the mock.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import JSON, Overmind, missing_tool
from tests.mockapi import MockAnthropicAPI, Text, ToolUse
from tools.install_claude_cli import InstallError
from tools.install_mcp_sdk import ensure_mcp_sdk, node_bin

CLIENT_SCRIPT = Path(__file__).with_name("mcp_client.mjs")
EXPECTED_TOOLS = {"spawn", "wait", "result", "kill", "ps", "logs", "status"}
ORCHESTRATE_TASK = "Fix the flaky test in tests/test_x.py"


@pytest.fixture(scope="session")
def mcp_sdk() -> tuple[str, Path]:
    """``node`` and the pinned TypeScript SDK's package directory (installed with npm on first use)."""
    try:
        return node_bin(), ensure_mcp_sdk()
    except InstallError as exc:
        missing_tool(f"the MCP TypeScript SDK is unavailable: {exc}")


def run_outside_client(
    node_and_sdk: tuple[str, Path], overmind: Overmind, env: dict[str, str], cwd: Path, spawn: JSON
) -> JSON:
    node, sdk = node_and_sdk
    config = {
        "sdk": str(sdk),
        "command": overmind.command[0],
        "args": overmind.command[1:],
        "env": overmind.server_env,
        "cwd": str(cwd),
        "spawn": spawn,
        "wait_timeout_s": 30,
        "task": ORCHESTRATE_TASK,
    }
    proc = subprocess.run(
        [node, str(CLIENT_SCRIPT), json.dumps(config)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.stdout.strip(), f"the client printed nothing; exit {proc.returncode}\nstderr:\n{proc.stderr}"
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and "error" not in summary, f"{summary.get('error')}\nstderr:\n{proc.stderr}"
    return summary


def test_typescript_sdk_client_spawns_waits_with_progress_and_reads_the_result(
    mock_api: MockAnthropicAPI,
    overmind: Overmind,
    mcp_sdk: tuple[str, Path],
    claude_env: dict[str, str],
    claude_cwd: Path,
) -> None:
    mock_api.on(
        "OUTSIDE",
        steps=[
            ToolUse("Bash", {"command": "echo from-bash", "description": "say"}),
            Text(lambda req: f"outside child done: {req.last_tool_result}"),
        ],
    )

    summary = run_outside_client(
        mcp_sdk,
        overmind,
        claude_env,
        claude_cwd,
        spawn={"prompt": "OUTSIDE client task", "name": "outside", "allowed_tools": ["Bash"]},
    )

    assert summary["server"]["name"] == "overmind" and summary["protocol_instructions"] is True
    assert set(summary["tools"]) >= EXPECTED_TOOLS
    assert summary["tools_without_output_schema"] == []
    assert summary["steps"] == ["tools/list", "prompts/get", "spawn", "wait", "result"] and summary["closed"] is True
    # A client that passes prompt arguments whole gets the task intact (compare test_orchestrate_prompt.py).
    [orchestrate] = [p for p in summary["prompts"] if p["name"] == "orchestrate"]
    assert orchestrate["arguments"][0] == "task"
    assert f"# The task\n\n{ORCHESTRATE_TASK}\n" in summary["orchestrate_text"]

    spawned, waited, result = summary["spawned"], summary["waited"], summary["result"]
    assert (spawned["name"], spawned["status"], spawned["parent"]) == ("outside", "running", None)
    assert waited["timed_out"] is False and [d["id"] for d in waited["done"]] == [spawned["id"]]
    assert (result["status"], result["exit_code"], result["is_error"]) == ("succeeded", 0, False)
    assert result["text"] == "outside child done: from-bash"
    assert result["cost_usd"] > 0 and result["num_turns"] == 2 and result["session_id"]

    # Progress notifications reached the client: increasing, against wait's timeout, naming the child.
    progress = summary["progress"]
    assert progress, "wait sent no progress notification to the TypeScript client"
    assert [p["progress"] for p in progress] == sorted({p["progress"] for p in progress})
    assert {p["total"] for p in progress} == {30}
    assert progress[0]["message"].startswith("0/1 done · outside: ")

    # The child really ran: the mock answered its two turns, and nothing of the test's outlived it.
    assert [(r.rule, r.step) for r in mock_api.messages_requests] == [("OUTSIDE", 0), ("OUTSIDE", 1)]
    [row] = overmind.missions()
    assert (row.name, row.status, row.session_id) == ("outside", "succeeded", result["session_id"])
