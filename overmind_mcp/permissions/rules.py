"""Claude Code's permission rules, and the policy of a mission made of them.

The syntax is Claude Code's own (its settings files and `--allowedTools` take the same):

    Bash                  every use of the tool
    Bash(npm run test)    exactly that command
    Bash(git diff:*)      `git diff`, or `git diff` followed by a space and anything
    Bash(git * main)      `*` stands for any run of characters
    Edit(src/**)          a path pattern, gitignore-style: `*` within one directory, `**` across
                          directories, and a pattern that names a directory covers what is inside it;
                          `//p` is the absolute path /p, `~/p` is under the home directory, `/p`, `./p`
                          and `p` are under the mission's own directory
    WebFetch(domain:example.com)
    mcp__server__tool     one tool of an MCP server; `mcp__server` (or `mcp__server__*`) all of them

`Edit` rules cover every tool that changes files (Edit, Write, MultiEdit, NotebookEdit), `Read`
rules every tool that reads them (Read, Glob, Grep, LS, NotebookRead).

A policy decides deny first, then ask, then allow: deny wins. A compound shell command
(`a && b`, `a | b`, `a; b`) is allowed only when each of its parts is, and denied (or asked about)
when any part is. An allow rule with a specifier never covers a part with a command substitution,
a subshell or an output redirection: what those run or write cannot be read from the text, so such
a call goes up to someone who can look at it (only a bare `Bash` allows it). The path jail keeps the
file tools inside one directory, symlinks resolved.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from overmind_mcp.errors import InvalidRequest

Effect = Literal["allow", "deny", "ask"]

EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})
READ_TOOLS = frozenset({"Read", "Glob", "Grep", "LS", "NotebookRead"})
FILE_TOOLS = EDIT_TOOLS | READ_TOOLS
# The input fields file tools name their path in; Glob and Grep without one search the working directory.
_PATH_FIELDS = ("file_path", "notebook_path", "path")
_SEARCH_TOOLS = frozenset({"Glob", "Grep", "LS"})

_RULE = re.compile(r"(?P<tool>[A-Za-z][A-Za-z0-9_-]*(?:__\*)?)(?:\((?P<specifier>.*)\))?", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """What a child asks to do: a tool and its input, and the path the CLI says it would touch."""

    tool: str
    input: Mapping[str, Any]
    blocked_path: str | None = None

    def describe(self, limit: int = 120) -> str:
        """The call as a rule would name it, e.g. `Bash(git push)` or `Edit(/src/app.py)`."""
        detail = _detail(self)
        text = f"{self.tool}({detail})" if detail else self.tool
        return text if len(text) <= limit else text[: limit - 2] + "…)"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a policy says of a call: allow, deny, or ask someone; the rule that said it, and why."""

    effect: Effect
    rule: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Rule:
    text: str
    tool: str
    specifier: str | None

    @classmethod
    def parse(cls, text: str) -> Rule:
        """A rule from its text; raises InvalidRequest saying what is wrong with it."""
        stripped = text.strip()
        match = _RULE.fullmatch(stripped)
        if match is None:
            raise InvalidRequest(
                f"permission rule {text!r} is not a rule: write a tool name, optionally with a specifier in "
                'parentheses, e.g. "Read", "Bash(git diff:*)", "Edit(src/**)", "mcp__github"'
            )
        tool, specifier = match.group("tool"), match.group("specifier")
        if specifier is not None and specifier.strip() in ("", "*"):
            specifier = None
        if tool.endswith("__*"):
            if not tool.startswith("mcp__") or specifier is not None:
                raise InvalidRequest(f"permission rule {text!r}: only `mcp__<server>__*` may end in `__*`")
            tool = tool[:-3]
        if specifier is not None:
            specifier = specifier.strip()
            if tool.startswith("mcp__"):
                raise InvalidRequest(f"permission rule {text!r}: an MCP tool takes no specifier; name the tool")
            if tool == "WebFetch" and not specifier.startswith("domain:"):
                raise InvalidRequest(f"permission rule {text!r}: WebFetch rules read `WebFetch(domain:example.com)`")
            if tool not in FILE_TOOLS and tool not in ("Bash", "WebFetch"):
                raise InvalidRequest(
                    f"permission rule {text!r}: specifiers are understood for Bash, WebFetch and the file tools "
                    f"({', '.join(sorted(FILE_TOOLS))}); name {tool} without one"
                )
        return cls(stripped, tool, specifier)

    def names(self, tool: str) -> bool:
        """Whether the rule is about this tool (an Edit rule is about Write too; an MCP server's about its tools)."""
        if self.tool == tool:
            return True
        if self.tool == "Edit":
            return tool in EDIT_TOOLS
        if self.tool == "Read":
            return tool in READ_TOOLS
        return _is_mcp_server(self.tool) and tool.startswith(self.tool + "__")

    def matches(self, call: ToolCall, where: Where) -> bool:
        """Whether the rule is about this call (for Bash, about the command as a whole)."""
        if not self.names(call.tool):
            return False
        if self.specifier is None:
            return True
        if call.tool == "Bash":
            return command_matches(self.specifier, _command(call))
        if call.tool == "WebFetch":
            return _domain_matches(self.specifier.removeprefix("domain:"), call.input.get("url"))
        paths = call_paths(call, where.anchor)
        pattern = path_pattern(self.specifier, where)
        return bool(paths) and all(pattern.fullmatch(str(path)) for path in paths)


@dataclass(frozen=True, slots=True)
class Where:
    """Where a policy's relative paths start (the mission's directory), and the home directory for `~/`."""

    anchor: Path
    home: Path = field(default_factory=Path.home)


@dataclass(frozen=True, slots=True)
class Policy:
    """A mission's rules, its jail, and what its permission mode lets it do unasked."""

    where: Where
    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    ask: tuple[Rule, ...] = ()
    jail: Path | None = None
    # bypassPermissions: whatever no deny or ask rule stops; acceptEdits: changes to files in the jail.
    mode: str | None = None

    @classmethod
    def of(
        cls,
        *,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        ask: Iterable[str] = (),
        where: Where,
        jail: Path | None = None,
        mode: str | None = None,
    ) -> Policy:
        return cls(
            where=where,
            allow=tuple(Rule.parse(text) for text in allow),
            deny=tuple(Rule.parse(text) for text in deny),
            ask=tuple(Rule.parse(text) for text in ask),
            jail=jail.resolve() if jail is not None else None,
            mode=mode,
        )

    def decide(self, call: ToolCall) -> Verdict:
        """Deny (a deny rule, or outside the jail), else ask (an ask rule), else allow (an allow rule), else ask."""
        outside = self._outside_jail(call)
        if outside is not None:
            return Verdict("deny", "jail", f"{outside} is outside the mission's directory {self.jail}")
        for rule in self.deny:
            if self._hits(rule, call):
                return Verdict("deny", rule.text, f"the deny rule {rule.text} matches {call.describe()}")
        for rule in self.ask:
            if self._hits(rule, call):
                return Verdict("ask", rule.text, f"the ask rule {rule.text} matches {call.describe()}")
        allowing = self._allowing(call)
        if allowing is not None:
            return Verdict("allow", allowing, f"{allowing} allows {call.describe()}")
        return Verdict("ask", None, f"no rule allows {call.describe()}")

    def allows(self, call: ToolCall) -> bool:
        return self.decide(call).effect == "allow"

    def covers(self, rule: Rule, where: Where) -> bool:
        """Whether every call `rule` (read from `where`) allows, this policy allows too, as far as can be told
        from the rules' text; deny and ask rules are not weighed (a child inherits them)."""
        if self.mode == "bypassPermissions":
            return True
        return any(_covers(mine, self.where, rule, where) for mine in self.allow)

    def _outside_jail(self, call: ToolCall) -> Path | None:
        if self.jail is None:
            return None
        paths = call_paths(call, self.where.anchor) if call.tool in FILE_TOOLS else []
        if call.blocked_path:
            paths.append(_resolve(call.blocked_path, self.where.anchor))
        return next((path for path in paths if not _inside(path, self.jail)), None)

    def _hits(self, rule: Rule, call: ToolCall) -> bool:
        """A deny or ask rule hits a call when it matches the call or, for a shell command, any part of it."""
        if rule.matches(call, self.where):
            return True
        if call.tool != "Bash" or rule.specifier is None or not rule.names("Bash"):
            return False
        return any(command_matches(rule.specifier, part.text) for part in split_command(_command(call)))

    def _allowing(self, call: ToolCall) -> str | None:
        """The allow rule (or rules, for the parts of a shell command) that allow the call; None if none do."""
        if self.mode == "bypassPermissions":
            return "permission_mode bypassPermissions"
        if self.mode == "acceptEdits" and call.tool in EDIT_TOOLS and self.jail is not None:
            paths = call_paths(call, self.where.anchor)
            if paths and all(_inside(path, self.jail) for path in paths):
                return "permission_mode acceptEdits"
        rules = [rule for rule in self.allow if rule.names(call.tool)]
        bare = next((rule for rule in rules if rule.specifier is None), None)
        if bare is not None:
            return bare.text
        if call.tool != "Bash":
            return next((rule.text for rule in rules if rule.matches(call, self.where)), None)
        used: list[str] = []
        for part in split_command(_command(call)):
            if part.opaque:
                return None
            rule = next((rule for rule in rules if command_matches(rule.specifier or "", part.text)), None)
            if rule is None:
                return None
            if rule.text not in used:
                used.append(rule.text)
        return " + ".join(used) or None


def check_rules(rules: Iterable[str], field_name: str) -> list[str]:
    """The rules as given, each checked; raises InvalidRequest naming the field and the rule at fault."""
    checked = []
    for text in rules:
        try:
            Rule.parse(text)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{field_name}: {exc}") from None
        checked.append(text.strip())
    return checked


# -- shell commands -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimpleCommand:
    text: str
    # What it runs or writes cannot be read from its text: `$(…)`, backquotes, `(…)`, `<(…)`, `>`.
    opaque: bool


def command_matches(specifier: str, command: str) -> bool:
    """Whether a Bash specifier matches a command: `prefix:*`, a `*` pattern, or the exact command."""
    command = command.strip()
    if specifier.endswith(":*"):
        prefix = specifier[:-2].rstrip()
        return command == prefix or command.startswith(prefix + " ")
    if "*" in specifier:
        pattern = ".*".join(re.escape(part) for part in specifier.split("*"))
        return re.fullmatch(pattern, command, re.DOTALL) is not None
    return command == specifier


def split_command(command: str) -> list[SimpleCommand]:
    """The simple commands of a command line, split at `&&`, `||`, `;`, `|`, `&` and newlines outside quotes.

    A line whose quotes do not close is one opaque part: it cannot be read safely.
    """
    parts: list[SimpleCommand] = []
    start, index, quote, opaque = 0, 0, "", False
    length = len(command)

    def cut(end: int) -> None:
        nonlocal opaque
        text = command[start:end].strip()
        if text:
            parts.append(SimpleCommand(text, opaque))
        opaque = False

    while index < length:
        char = command[index]
        if quote == "'":
            if char == "'":
                quote = ""
        elif char == "\\":
            index += 1
        elif quote == '"':
            if char == '"':
                quote = ""
            elif char == "`" or command.startswith("$(", index):
                opaque = True
        elif char in "'\"":
            quote = char
        elif char == "`" or char in "()" or command.startswith(("$(", "<(", ">("), index):
            opaque = True
        elif char == ">":
            opaque = opaque or not _harmless_redirection(command, index)
            if command.startswith(">&", index):
                index += 1  # `2>&1`: the `&` names a descriptor, it does not end the command
        elif char == "&" and command.startswith("&>", index):
            opaque = True
        elif char in ";|&\n":
            cut(index)
            step = 2 if command.startswith(("&&", "||"), index) else 1
            index += step
            start = index
            continue
        index += 1
    if quote:
        return [SimpleCommand(command.strip(), True)]
    cut(length)
    return parts


def _harmless_redirection(command: str, index: int) -> bool:
    """`>&2`, `2>&1`, `> /dev/null`: a redirection that writes no file."""
    rest = command[index:].lstrip(">").lstrip()
    return command.startswith(">&", index) or rest.startswith("/dev/null")


def _command(call: ToolCall) -> str:
    command = call.input.get("command")
    return command.strip() if isinstance(command, str) else ""


# -- paths --------------------------------------------------------------------------------------


def call_paths(call: ToolCall, anchor: Path) -> list[Path]:
    """The paths a file tool's call names, absolute and resolved; its working directory for a search with none."""
    paths = [
        _resolve(value, anchor) for name in _PATH_FIELDS if isinstance(value := call.input.get(name), str) and value
    ]
    if call.tool == "Glob" and isinstance(pattern := call.input.get("pattern"), str) and pattern.startswith("/"):
        # An absolute glob searches from its last directory without wildcards.
        literal = pattern.split("*", 1)[0].split("?", 1)[0]
        paths.append(_resolve(literal.rsplit("/", 1)[0] or "/", anchor))
    if not paths and call.tool in _SEARCH_TOOLS:
        paths.append(anchor.resolve())
    return paths


def path_pattern(specifier: str, where: Where) -> re.Pattern[str]:
    """A rule's path pattern as a regular expression over absolute, resolved paths."""
    return re.compile(_glob_regex(_absolute_pattern(specifier, where)), re.DOTALL)


def _absolute_pattern(specifier: str, where: Where) -> str:
    if specifier.startswith("//"):
        pattern = specifier[1:]
    elif specifier.startswith("~/"):
        pattern = f"{where.home.resolve()}/{specifier[2:]}"
    else:
        pattern = f"{where.anchor.resolve()}/{specifier.removeprefix('./').lstrip('/')}"
    return pattern.rstrip("/") or "/"


def _glob_regex(pattern: str) -> str:
    out, index = [], 0
    while index < len(pattern):
        if pattern.startswith("/**/", index):
            out.append("/(?:.*/)?")
            index += 4
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    # A pattern that names a directory covers everything inside it.
    return "".join(out) + "(?:/.*)?"


def _resolve(value: str, anchor: Path) -> Path:
    path = Path(value).expanduser()
    return (path if path.is_absolute() else anchor / path).resolve()


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _domain_matches(pattern: str, url: Any) -> bool:
    if not isinstance(url, str):
        return False
    host = urlsplit(url).hostname
    return host is not None and fnmatch.fnmatchcase(host, pattern.strip().lower())


def _detail(call: ToolCall) -> str | None:
    if call.tool == "Bash":
        return _command(call) or None
    if call.tool == "WebFetch" and isinstance(url := call.input.get("url"), str):
        host = urlsplit(url).hostname
        return f"domain:{host}" if host else None
    for name in _PATH_FIELDS:
        if isinstance(value := call.input.get(name), str) and value:
            return value
    return None


# -- privilege --------------------------------------------------------------------------------


def _covers(mine: Rule, my_where: Where, theirs: Rule, their_where: Where) -> bool:
    """Whether allow rule `mine` allows everything allow rule `theirs` does (when unsure: no)."""
    if not _tools_within(theirs, mine):
        return False
    if mine.specifier is None:
        return True
    if theirs.specifier is None:
        return False
    if mine.tool == "Bash":
        return _command_rule_covers(mine.specifier, theirs.specifier)
    if mine.tool == "WebFetch":
        domain = theirs.specifier.removeprefix("domain:")
        return "*" not in domain and _domain_matches(mine.specifier.removeprefix("domain:"), f"https://{domain}/")
    mine_pattern = _absolute_pattern(mine.specifier, my_where)
    their_pattern = _absolute_pattern(theirs.specifier, their_where)
    directory = mine_pattern.removesuffix("/**")
    if any(char in directory for char in "*?["):
        return mine_pattern == their_pattern
    return their_pattern == directory or their_pattern.startswith(directory.rstrip("/") + "/")


def _tools_within(theirs: Rule, mine: Rule) -> bool:
    """Whether every tool `theirs` is about, `mine` is about too."""
    if theirs.tool in ("Edit", "Read") or _is_mcp_server(theirs.tool):
        return mine.tool == theirs.tool
    if (
        mine.specifier is not None
        and theirs.tool != mine.tool
        and not (theirs.tool in FILE_TOOLS and mine.tool in ("Edit", "Read"))
    ):
        return False
    return mine.names(theirs.tool)


def _command_rule_covers(mine: str, theirs: str) -> bool:
    if "*" not in theirs:
        return command_matches(mine, theirs)
    if theirs.endswith(":*") and "*" not in theirs[:-2]:
        prefix = theirs[:-2].rstrip()
        if mine.endswith(":*") and "*" not in mine[:-2]:
            return command_matches(mine, prefix)
        if mine.count("*") == 1 and mine.endswith("*"):
            return prefix.startswith(mine[:-1])
    return mine == theirs


def _is_mcp_server(tool: str) -> bool:
    """`mcp__server`: a rule about every tool of one MCP server."""
    return tool.startswith("mcp__") and "__" not in tool[5:]
