"""The `overmind` verbs that need no running server: doctor, install, and an empty state directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from overmind_mcp.console.install import server_command
from overmind_mcp.console.live import LiveOutput
from overmind_mcp.core.spec import ClaudeTask, MissionSpec
from overmind_mcp.core.status import Status
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import MissionRow

FAKE_CLI = """#!/bin/sh
# A stand-in `claude` for install: records its argv, and remembers what `mcp add` registered.
printf '%s\\n' "$*" >> "$(dirname "$0")/calls.log"
registered="$(dirname "$0")/registered"
case "$1 $2" in
  "mcp add")
    if [ -e "$registered" ]; then echo "MCP server overmind already exists in user config" >&2; exit 1; fi
    touch "$registered"; echo "Added stdio MCP server overmind";;
  "mcp remove") rm -f "$registered"; echo "Removed MCP server overmind";;
  *) echo "2.1.332 (Claude Code)";;
esac
"""


def run(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "OVERMIND_HOME": str(settings.home), "OVERMIND_CLAUDE_BIN": settings.claude_bin}
    return subprocess.run(
        [sys.executable, "-m", "overmind_mcp.console", *args],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_an_empty_state_directory(settings: Settings) -> None:
    listing = run(settings, "ps")
    assert listing.returncode == 0 and "no missions yet" in listing.stderr
    assert json.loads(run(settings, "ps", "--json").stdout)["missions"] == []
    missing = run(settings, "result", "nothing")
    assert missing.returncode == 3 and "no missions yet" in missing.stderr
    assert not settings.database_path.exists(), "the console must never create the database"
    assert run(settings, "ps", "--limit", "0").returncode == 2


def test_doctor_says_what_to_fix(settings: Settings, tmp_path: Path) -> None:
    broken = run(settings, "doctor", "--port", "0", OVERMIND_CLAUDE_BIN=str(tmp_path / "no-such-claude"))
    assert broken.returncode == 1
    line = next(line for line in broken.stdout.splitlines() if "claude" in line)
    assert "no Claude Code CLI" in line
    assert "→ install it (npm install -g @anthropic-ai/claude-code) or set OVERMIND_CLAUDE_BIN" in broken.stdout

    report = json.loads(run(settings, "doctor", "--port", "0", "--json").stdout)
    checks = {check["name"]: check for check in report["checks"]}
    assert report["ok"] and checks["claude"]["status"] == "ok" and "2.1.332" in checks["claude"]["detail"]
    assert checks["database"]["status"] == "ok" and "none yet" in checks["database"]["detail"]


def test_install_registers_the_server_and_copies_the_skill(settings: Settings, tmp_path: Path) -> None:
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    bin_dir.mkdir()
    home.mkdir()
    claude = bin_dir / "claude"
    claude.write_text(FAKE_CLI)
    claude.chmod(0o755)
    skill = tmp_path / "SKILL.md"
    skill.write_text("---\nname: overmind\n---\nUse overmind.\n")
    calls = bin_dir / "calls.log"

    def install(*args: str) -> subprocess.CompletedProcess[str]:
        return run(
            settings, "install", "--skill-file", str(skill), *args, HOME=str(home), OVERMIND_CLAUDE_BIN=str(claude)
        )

    dry = install("--dry-run")
    assert dry.returncode == 0 and "would run:" in dry.stdout and not calls.exists()
    assert not (home / ".claude").exists()

    done = install()
    assert done.returncode == 0, done.stderr
    expected = f"mcp add -s user overmind -e OVERMIND_HOME={settings.home} -- {server_command()}"
    assert calls.read_text().splitlines() == [expected]
    installed = home / ".claude" / "skills" / "overmind" / "SKILL.md"
    assert installed.read_text() == skill.read_text()

    again = install()
    assert again.returncode == 1 and "--force replaces it" in again.stderr
    replaced = install("--force")
    assert replaced.returncode == 0, replaced.stderr
    assert calls.read_text().splitlines()[-3:] == [expected, "mcp remove -s user overmind", expected]

    missing = run(settings, "install", "--skill-file", str(tmp_path / "nope.md"), OVERMIND_CLAUDE_BIN=str(claude))
    assert missing.returncode == 1 and "the /overmind skill is missing" in missing.stderr


@pytest.mark.skipif(
    not (Path(sys.executable).parent / "overmind").exists(), reason="the console script is not installed"
)
def test_the_console_script_is_installed(settings: Settings) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "overmind"), "--version"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and done.stdout.startswith("overmind ")


def test_live_output_reads_a_bounded_tail(tmp_path: Path, transcripts: Path) -> None:
    lines = (transcripts / "mcp_tool_call.jsonl").read_bytes().splitlines(keepends=True)
    output = tmp_path / "output.jsonl"
    row = MissionRow(
        id="0123456789abcdef",
        name="reader",
        parent_id=None,
        root_id="0123456789abcdef",
        depth=0,
        provider="claude",
        spec=MissionSpec(task=ClaudeTask(prompt="read")),
        cwd=str(tmp_path),
        status=Status.RUNNING,
        output_path=str(output),
        stderr_path=str(tmp_path / "stderr.log"),
        created_at=0.0,
    )
    # Written in two parts, read as it grows: the same as reading it whole.
    output.write_bytes(b"".join(lines[:3]))
    with LiveOutput(row) as growing:
        growing.update()
        assert growing.activity.doing() == "turn 1: running mcp__overmind__spawn"
        assert (growing.tokens.input, growing.tokens.output) == (100, 1)  # the first message, as it started
        with output.open("ab") as file:
            file.write(b"".join(lines[3:]))
        growing.update()
    with LiveOutput(row) as whole:
        whole.update()
    for live in (growing, whole):
        assert not live.partial
        assert (live.activity.turns, live.activity.tool_calls, live.activity.cost_usd) == (2, 1, 0.0016)
        assert (live.tokens.input, live.tokens.output) == (200, 40)  # the result's total
        assert live.activity.output_lines == len(lines)
    # Past the budget only the tail is read: the result line still gives the cost.
    with LiveOutput(row, full_scan_bytes=len(lines[-1]) + 10, tail_bytes=len(lines[-1]) + 10) as tail:
        tail.update()
    assert tail.partial and tail.activity.output_lines == 1 and tail.activity.cost_usd == 0.0016
    assert tail.tokens.total == 240
