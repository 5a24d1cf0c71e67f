"""What a Claude mission's own permissions let it run, for the spawns it makes.

A mission must not gain by spawning what it could not do itself: a child allowed only
`Read` that starts `["sh", "-c", …]` as a command would run code its Bash tool was never
granted. So a command spawned by a mission is checked against the permission rules of its
nearest Claude ancestor, the way Claude Code would check the same program in its Bash
tool, and so is the environment it hands down.

Only the `Bash` rules are read here (Claude Code's syntax):

    Bash                any command
    Bash(pytest:*)      `pytest`, or `pytest` followed by a space and anything
    Bash(git *)         `*` stands for any run of characters
    Bash(make test)     exactly that command

A command is matched as a shell would show it, `shlex.join(argv)`. A deny rule
(`disallowed_tools`) wins over any allow rule; `plan` mode runs nothing; only
`bypassPermissions` runs what no rule allows. `may_run` is the seam for a full rule
matcher (every tool, every rule form): it answers one question, for one argv.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from overmind_mcp.core.spec import ClaudeTask

# Variables that decide where Claude Code reads its settings, permissions and credentials,
# or what code a process loads. A mission never sets them for a child: one of them is
# enough to hand a child permissions (a settings file under another HOME) or code (a
# preloaded library) that nobody granted.
_SETTINGS_VARIABLES = frozenset(
    {
        "HOME",
        "CLAUDE_CONFIG_DIR",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_STATE_HOME",
        "XDG_CACHE_HOME",
        "PATH",
        "SHELL",
        "BASH_ENV",
        "ENV",
        "IS_SANDBOX",
        "NODE_OPTIONS",
        "NODE_PATH",
    }
)
_SETTINGS_PREFIXES = ("CLAUDE", "ANTHROPIC_", "LD_", "DYLD_", "BUN_", "GIT_CONFIG")
# Tools Claude Code lets any `-p` run use unasked (they only read); asking for them gains nothing.
_UNASKED_TOOLS = frozenset({"Read", "Glob", "Grep", "LS", "NotebookRead", "TodoWrite", "TodoRead"})
# The server's own tools: every delegating child gets them, whatever its parent was allowed.
_OWN_TOOLS = "mcp__overmind"


@dataclass(frozen=True, slots=True)
class Grants:
    """The permissions a Claude mission was started with."""

    allowed: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()
    mode: str | None = None

    @classmethod
    def of(cls, task: ClaudeTask) -> Grants:
        """The grants a Claude task was started with."""
        return cls(allowed=tuple(task.allowed_tools), denied=tuple(task.disallowed_tools), mode=task.permission_mode)

    def describe(self) -> str:
        allowed = ", ".join(self.allowed) or "no extra tools"
        return f"allowed_tools [{allowed}], permission_mode {self.mode or 'default'}"


def command_line(argv: Sequence[str]) -> str:
    """The argv as a shell would show it, which is what Bash rules are written against."""
    return shlex.join(argv)


def may_run(argv: Sequence[str], grants: Grants) -> bool:
    """Whether these grants let a Claude mission run `argv` through its own Bash tool."""
    line = command_line(argv)
    if any(_bash_rule_matches(rule, line) for rule in grants.denied):
        return False
    if grants.mode == "plan":
        return False
    if grants.mode == "bypassPermissions":
        return True
    return any(_bash_rule_matches(rule, line) for rule in grants.allowed)


def covers(grants: Grants, rule: str) -> bool:
    """Whether a child asking for the allow rule `rule` asks for nothing these grants do not already give."""
    rule = rule.strip()
    if grants.mode == "bypassPermissions" or rule in grants.allowed:
        return True
    if rule in _UNASKED_TOOLS or rule == _OWN_TOOLS or rule.startswith(_OWN_TOOLS + "__"):
        return True
    # A narrower Bash rule is inside the whole Bash tool.
    return _RULE.fullmatch(rule) is not None and "Bash" in grants.allowed


def runs_anything(grants: Grants) -> bool:
    """Whether these grants let a mission run any program at all (the whole `Bash` tool, or bypass)."""
    if grants.mode == "plan" or any(rule.strip() == "Bash" for rule in grants.denied):
        return False
    return grants.mode == "bypassPermissions" or any(rule.strip() == "Bash" for rule in grants.allowed)


def settings_variables(names: Sequence[str]) -> list[str]:
    """The names among these that change where Claude Code reads settings or what a process loads."""
    return [
        name for name in names if name.upper() in _SETTINGS_VARIABLES or name.upper().startswith(_SETTINGS_PREFIXES)
    ]


_RULE = re.compile(r"\s*Bash\s*(?:\((?P<content>.*)\))?\s*", re.DOTALL)


def _bash_rule_matches(rule: str, line: str) -> bool:
    match = _RULE.fullmatch(rule)
    if match is None:
        return False
    content = match.group("content")
    if content is None or content.strip() in ("", "*"):
        return True
    content = content.strip()
    if content.endswith(":*"):
        prefix = content[:-2]
        return line == prefix or line.startswith(prefix + " ")
    # Only `*` is a wildcard in a Bash rule: every other character stands for itself.
    pattern = ".*".join(re.escape(part) for part in content.split("*"))
    return re.fullmatch(pattern, line, re.DOTALL) is not None
