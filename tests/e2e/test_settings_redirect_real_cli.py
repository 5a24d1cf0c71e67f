"""Why a mission may not set HOME or CLAUDE_CONFIG_DIR for a child: with the real CLI, either one widens it.

A child started with `--allowedTools=Read` in `-p` mode is denied Bash. Point its HOME (or
CLAUDE_CONFIG_DIR) at a directory whose settings.json allows Bash, and the same child runs
the command: the settings file outranks what the command line granted. overmind therefore
refuses these variables in the env a mission gives its children (tests/redteam).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import RunClaude
from tests.mockapi import MockAnthropicAPI, Text, ToolUse

ALLOW_BASH = {"permissions": {"allow": ["Bash"]}}


@pytest.mark.parametrize("variable", [None, "HOME", "CLAUDE_CONFIG_DIR"])
def test_a_settings_file_elsewhere_grants_what_the_command_line_did_not(
    mock_api: MockAnthropicAPI, run_claude: RunClaude, claude_cwd: Path, tmp_path: Path, variable: str | None
) -> None:
    mock_api.on("RUN", steps=[ToolUse("Bash", {"command": "touch ran", "description": "probe"}), Text("done")])
    env: dict[str, str] = {}
    if variable == "HOME":
        (tmp_path / "elsewhere" / ".claude").mkdir(parents=True)
        (tmp_path / "elsewhere" / ".claude" / "settings.json").write_text(json.dumps(ALLOW_BASH))
        env["HOME"] = str(tmp_path / "elsewhere")
    elif variable == "CLAUDE_CONFIG_DIR":
        (tmp_path / "config").mkdir()
        (tmp_path / "config" / "settings.json").write_text(json.dumps(ALLOW_BASH))
        env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "config")
    child = run_claude("--allowedTools=Read", "--", "RUN the probe", env=env)
    ran = (claude_cwd / "ran").exists()
    if variable is None:
        assert not ran and child.result["permission_denials"], "Read alone does not run Bash"
    else:
        assert ran and not child.result["permission_denials"], f"{variable} let a Read-only child run Bash"
