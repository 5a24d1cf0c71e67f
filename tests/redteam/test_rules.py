"""The narrow Bash-rule check that decides which commands a mission may spawn, and the text checks."""

from __future__ import annotations

import pytest

from overmind_mcp.errors import InvalidRequest
from overmind_mcp.supervision.inputs import check_text
from overmind_mcp.supervision.privileges import Grants, covers, may_run, runs_anything, settings_variables


@pytest.mark.parametrize(
    ("argv", "grants", "runs"),
    [
        (["pytest", "-q"], Grants(allowed=("Bash",)), True),
        (["pytest", "-q"], Grants(allowed=("Bash(pytest:*)",)), True),
        (["pytest"], Grants(allowed=("Bash(pytest:*)",)), True),
        (["pytestx"], Grants(allowed=("Bash(pytest:*)",)), False),
        (["sh", "-c", "pytest"], Grants(allowed=("Bash(pytest:*)",)), False),
        (["git", "status", "-s"], Grants(allowed=("Bash(git *)",)), True),
        (["gitk"], Grants(allowed=("Bash(git *)",)), False),
        (["make", "test"], Grants(allowed=("Bash(make test)",)), True),
        (["make", "test", "-j"], Grants(allowed=("Bash(make test)",)), False),
        (["echo", "a b"], Grants(allowed=("Bash(echo:*)",)), True),
        (["rm", "-rf", "x"], Grants(allowed=("Bash",), denied=("Bash(rm:*)",)), False),
        (["ls"], Grants(allowed=("Bash",), mode="plan"), False),
        (["ls"], Grants(mode="bypassPermissions"), True),
        (["ls"], Grants(mode="bypassPermissions", denied=("Bash",)), False),
        (["ls"], Grants(allowed=("Read", "Edit"), mode="acceptEdits"), False),
        (["ls"], Grants(), False),
        (["ls"], Grants(allowed=("Bash(ls.*)",)), False),
    ],
)
def test_a_command_runs_only_where_a_bash_rule_would_let_it(argv: list[str], grants: Grants, runs: bool) -> None:
    assert may_run(argv, grants) is runs


def test_what_a_child_may_ask_for() -> None:
    narrow = Grants(allowed=("Read", "Bash(git:*)"))
    assert covers(narrow, "Read") and covers(narrow, "Grep") and covers(narrow, "mcp__overmind__spawn")
    assert not covers(narrow, "Bash") and not covers(narrow, "Edit") and not covers(narrow, "Bash(rm:*)")
    assert covers(Grants(allowed=("Bash",)), "Bash(rm:*)")
    assert covers(Grants(mode="bypassPermissions"), "Edit")
    assert runs_anything(Grants(allowed=("Bash",))) and not runs_anything(narrow)
    assert not runs_anything(Grants(allowed=("Bash",), mode="plan"))


def test_the_variables_that_move_the_settings() -> None:
    names = ["HOME", "claude_config_dir", "XDG_CONFIG_HOME", "ANTHROPIC_BASE_URL", "LD_PRELOAD", "PATH", "DEBUG"]
    assert settings_variables(names) == names[:-1]


@pytest.mark.parametrize(
    ("value", "says"),
    [("a\x00b", "NUL byte"), ("a\ud800b", "not valid Unicode"), ("é" * 6, "12 bytes; the limit is 10")],
)
def test_text_that_no_argument_or_file_can_carry_is_refused(value: str, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        check_text("`prompt`", value, 10)
