#!/usr/bin/env python3
"""A fast, scripted stand-in for the Claude Code CLI (``claude -p``), for tests, demos and benchmarks.

Point ``OVERMIND_CLAUDE_BIN`` at this file. It accepts the flags of Claude Code 2.1.332 and prints the
stream-json that version prints (the message types, keys and key order of the recorded transcripts in
``tests/data/transcripts/``), but it never calls a model: what a turn does is scripted by *directive
lines* in the prompt, or in a ``--input-format=stream-json`` user message::

    fake: <verb> <args>

Other lines are ordinary prompt text. Directives run in order, in one turn, which ends with a final
answer: the ``answer`` text, else ``MOCK REPLY to: <the other lines>`` (what the mock Messages API
behind the transcripts said), or ``Done.`` if there are none. A script with an unknown verb or bad
arguments runs nothing and ends in an ``error_during_execution`` result that names the problem.

==========================  ============================================================================
directive                   effect
==========================  ============================================================================
``answer <text>``           the final answer, printed when the turn ends (``{last}``: last tool result)
``say <text>``              an assistant text block, printed now (``{last}`` works here too)
``tool <Name> [json]``      a tool_use line and its tool_result line, one model turn (see --max-turns);
                            nothing is executed: ``Bash`` answers ``echo x`` with ``x``
``turns <N>``               N such ``Bash`` tool turns
``mcp <tool> [json]``       call ``<tool>`` on the ``overmind`` server of --mcp-config (stdio or HTTP),
                            shown as ``mcp__overmind__<tool>``; its result text becomes ``{last}``
``sleep <seconds>``         wait; a SIGINT or an interrupt control_request cuts it short
``hang``                    print nothing more until a signal arrives
``exit <code>``             exit at once with that code and no result line (a crash)
``error <text>``            an API-error result: ``subtype: success``, ``is_error: true``
``fail <text>``             an ``error_during_execution`` result with ``errors: [text]``
``api_retry <N>``           N ``system/api_retry`` lines, 10 ms apart
``flood <megabytes>``       that many MB of ~1 KB assistant text lines (not counted as turns)
``malformed``               two non-JSON lines and a truncated JSON line
``stderr <text>``           write the text to stderr
``cost <usd>``              what this turn costs (default: $0.0008 per model turn, as recorded)
``grandchild``              start a process in our process group that ignores SIGTERM and SIGINT, then
                            say ``grandchild pid <pid>``
``ignore <SIGTERM|SIGINT>`` ignore that signal from now on
``write_exit_time <path>``  write ``time.time_ns()`` to the file just before the process exits
``env <NAME>``              append ``NAME=<value>`` (or ``NAME=<unset>``) to the final answer
``append <path> <text>``    append the text and a newline to a file (relative to the cwd): a side effect
                            a test can count
==========================  ============================================================================

A script may also come from outside the prompt: ``$FAKE_CLAUDE_SCRIPT`` names a JSON file that maps
prompt fragments to lists of directives (``{"Research": ["answer 42"]}``); a prompt that contains a
fragment gets its directives (the first fragment found, in the file's order), before its own.

With ``--json-schema`` the final answer must be JSON, as the real CLI makes the model answer through
its ``StructuredOutput`` tool: a JSON answer is printed as that tool's call, and the result line carries
it as ``structured_output``; any other answer ends in ``error_max_structured_output_retries``. (The
schema itself is not checked: that is the caller's job, with the standard library alone here.)

An error result ends a one-shot ``-p`` run with exit code 1. A stream-json session goes on, and exits 1
at end of input if its last result was an error, as the real CLI does.

Copied from the real CLI: sessions are kept in ``$HOME/.claude/projects/<cwd, non-alphanumerics as
"-">/<session_id>.jsonl``, so ``--resume`` works across processes and costs stay cumulative; a
stream-json session re-emits ``system/init`` every turn and merges the messages that arrive during a
turn into the next turn; SIGINT prints an aborted result and exits 0, SIGTERM exits 143 silently; a
tool in ``--disallowedTools`` does not exist ("No such tool available"), an ``mcp__`` tool not in
``--allowedTools`` is denied (``system/permission_denied`` and ``permission_denials``). Simplified:
built-in tools are allowed unless the permission mode is ``dontAsk`` (the real CLI asks per command).

Only the standard library is imported, except for ``mcp`` by the ``mcp`` directive.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import sys
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

VERSION = "2.1.332"
DEFAULT_MODEL = "claude-opus-5-5"
# These reproduce the recorded costs: a model turn reads 100 tokens and writes 20, for $0.0008.
USD_PER_MILLION_INPUT_TOKENS = 4
USD_PER_MILLION_OUTPUT_TOKENS = 20
INPUT_TOKENS = 100
OUTPUT_TOKENS = 20
RETRY_DELAYS_MS = (573, 1069, 2135, 4621, 9403, 17140, 36428, 34428, 38171, 35147)
INTERRUPTED = "[Request interrupted by user]"
ABORT_DIAGNOSTIC = "[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"

# What the recorded system/init lines list (2.1.332, nothing installed).
BUILTIN_TOOLS = tuple(
    "Task Bash CronCreate CronDelete CronList Edit EnterWorktree ExitWorktree ListAgents Monitor NotebookEdit Read "
    "ReportFindings ScheduleWakeup SendMessage Skill TaskStop ToolSearch WebFetch WebSearch Workflow Write".split()
)
MCP_RESOURCE_TOOLS = ("ListMcpResourcesTool", "ReadMcpResourceDirTool", "ReadMcpResourceTool")
SKILLS = (
    "deep-research dataviz update-config verify debug code-review simplify batch fewer-permission-prompts doctor "
    "loop claude-api workflow-authoring run run-skill-generator plugin-authoring".split()
)
SLASH_COMMANDS = SKILLS + (
    "agents auto-mode-setup autocompact clear color compact config output-style context effort fast focus heapdump "
    "init mcp model __remote-workflow workflow-launch-exec reload-plugins reload-skills rename security-review usage "
    "insights recap goal list-agents team-onboarding".split()
)
CAPABILITIES = (
    "interrupt_receipt_v1 interrupt_cancel_queued_v1 interrupt_send_now_v1 interrupt_requeue_taken_v1 "
    "msg_lifecycle_v1 request_marker_lists_v1 ask_user_question_unanswered_v1 lifecycle_wakeup_source_v1 "
    "sdk_mcp_tools_list_changed sdk_mcp_manifests mcp_read_resource_v1 mcp_tool_ui_meta_v1 ui_surface_v1 "
    "mcp_call_result_not_for_model_v1 mcp_call_soft_error_result_v1 mcp_call_check_permissions_v1 "
    "voice_call_talk_line_v1 withdrawn_files_note_v2 withdrawn_tools_v1 ui_pane_widget_v1 "
    "reload_plugins_refuse_if_busy_v1 get_usage_detached_v1 silent_resend_files_v1".split()
)
PLUGINS = [
    {"name": name, "path": "builtin", "source": f"{name}@builtin"}
    for name in ("cc-plugin-agents-md", "cc-plugin-privacy", "cc-plugin-plugin-authoring")
]
SUBAGENT_STATS = {
    "spawned": 0,
    "requested": {"background": 0, "foreground": 0, "unset": 0},
    "started_in_background": 0,
    "max_depth": 0,
    "spawned_by_subagents": 0,
    "completed": 0,
    "failed": 0,
    "killed": {"parent": 0, "user": 0, "system": 0},
    "refused": {"depth_limit": 0, "concurrency_limit": 0, "budget": 0},
    "by_type": {},
}

# The options as --help shows them: "<x>" takes a value, "[x]" may take one, "<x...>" takes every following
# argument up to the next option (commander's variadic options). Options after "ignored" are only accepted.
OPTION_SPECS = (
    "-p, --print|--verbose|--output-format <format>|--input-format <format>|--model <model>|"
    "--allowedTools, --allowed-tools <tools...>|--disallowedTools, --disallowed-tools <tools...>|"
    "--permission-mode <mode>|--max-turns <turns>|--max-budget-usd <amount>|--append-system-prompt <prompt>|"
    "--system-prompt <prompt>|--session-id <uuid>|-r, --resume [value]|--fork-session|--mcp-config <configs...>|"
    "--strict-mcp-config|--include-partial-messages|--add-dir <directories...>|--settings <file-or-json>|--bare|"
    "--no-session-persistence|--dangerously-skip-permissions|--json-schema <schema>|-h, --help|"
    "-v, --version|"
    # ignored
    "--allow-dangerously-skip-permissions|-c, --continue|--fallback-model <model>|--effort <level>|"
    "--tools <tools...>|--setting-sources <sources>|--agent <agent>|--agents <json-or-file>|"
    "--betas <betas...>|-n, --name <name>|--permission-prompt-tool <tool>|--append-system-prompt-file <file>|"
    "--system-prompt-file <file>|--replay-user-messages|--include-hook-events|--disable-slash-commands|"
    "--exclude-dynamic-system-prompt-sections|--forward-subagent-text|-d, --debug [filter]|--debug-file <path>|"
    "--plugin-dir <path>|-w, --worktree [name]|--permission-prompts <target>|--system-prompt-snapshot <mode>|"
    "--autocompact <size>|--file <specs...>|--safe-mode|--restricted"
).split("|")
CHOICES = {
    "output_format": ("text", "json", "stream-json"),
    "input_format": ("text", "stream-json"),
    "permission_mode": ("acceptEdits", "auto", "bypassPermissions", "manual", "dontAsk", "plan"),
    "effort": ("low", "medium", "high", "xhigh", "max"),
}
GRANDCHILD = """\
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
os.write(1, b"ready")
while True:
    time.sleep(3600)
"""
DIRECTIVE = re.compile(r"^\s*fake:\s*(\S+)\s*(.*?)\s*$")


class UsageError(Exception):
    """Ends the process before any output: the message goes to stderr, the exit code is 1."""


class ScriptError(Exception):
    """A directive that cannot run. It becomes an error result, never a crash."""


class Stop(Exception):
    """Ends the turn with an error result of this subtype."""

    def __init__(self, subtype: str, terminal_reason: str, error: str) -> None:
        super().__init__(error)
        self.subtype, self.terminal_reason, self.error = subtype, terminal_reason, error


class ApiError(Exception):
    """Ends the turn like a failed API call: `subtype: success` with `is_error: true`."""


class Aborted(Exception):
    """The turn was cut short, by SIGINT ("sigint") or by an interrupt control_request ("interrupt")."""


# -------------------------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Parse argv as commander does for claude; returns (option values by name, positional arguments)."""
    table: dict[str, tuple[str, str, str]] = {}  # flag -> (name, arity, spec)
    for spec in OPTION_SPECS:
        cut = min((spec.index(bracket) for bracket in "<[" if bracket in spec), default=len(spec))
        flags, value = spec[:cut], spec[cut:]
        arity = "flag" if not value else "list" if value.endswith("...>") else "one" if value[0] == "<" else "maybe"
        names = [flag.strip() for flag in flags.split(",")]
        for flag in names:
            table[flag] = (names[-1].lstrip("-").replace("-", "_"), arity, spec)

    opts: dict[str, Any] = {}
    positional: list[str] = []
    pending = list(argv)
    while pending:
        arg = pending.pop(0)
        if arg == "--":
            positional += pending
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        flag, has_value, inline = arg.partition("=")
        if flag not in table:
            raise UsageError(f"error: unknown option '{arg}'")
        name, arity, spec = table[flag]
        if arity == "flag":
            if has_value:
                raise UsageError(f"error: option '{spec}' does not take an argument")
            opts[name] = True
            continue
        values = [inline] if has_value else []
        while not has_value and pending and not pending[0].startswith("-") and (arity == "list" or not values):
            values.append(pending.pop(0))
        if not values:
            if arity != "maybe":
                raise UsageError(f"error: option '{spec}' argument missing")
            opts[name] = True
        elif name in CHOICES and values[0] not in CHOICES[name]:
            allowed = ", ".join(CHOICES[name])
            raise UsageError(
                f"error: option '{spec}' argument '{values[0]}' is invalid. Allowed choices are {allowed}."
            )
        elif arity == "list":
            opts.setdefault(name, []).extend(values)
        else:
            opts[name] = values[0]
    return opts, positional


def split_rules(values: list[str]) -> list[str]:
    """Split --allowedTools values on commas and spaces, keeping "Bash(git *)" in one piece."""
    rules: list[str] = []
    for value in values:
        depth, current = 0, ""
        for char in value + ",":
            depth += (char == "(") - (char == ")")
            if depth == 0 and (char == "," or char.isspace()):
                rules.append(current)
                current = ""
            else:
                current += char
    return [rule for rule in rules if rule]


def rule_matches(rule: str, tool: str) -> bool:
    """`Bash(git *)` matches Bash; `mcp__s` and `mcp__s__*` match every tool of server s."""
    name = rule.split("(", 1)[0]
    if name == tool:
        return True
    server = name.removesuffix("__*")
    return server.startswith("mcp__") and server.count("__") == 1 and tool.startswith(server + "__")


def load_mcp_servers(values: list[str]) -> dict[str, dict[str, Any]]:
    """Merge the `mcpServers` of every --mcp-config value: a JSON string, or a file that holds one."""
    servers: dict[str, dict[str, Any]] = {}
    for value in values:
        try:
            text = value if value.lstrip().startswith("{") else Path(value).read_text(encoding="utf-8")
            servers.update(json.loads(text)["mcpServers"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"Error: Invalid MCP configuration: {value}: {exc}") from exc
    return {name: expand_env(server) for name, server in servers.items()}


def expand_env(value: Any) -> Any:
    """`${VAR}` and `${VAR:-default}` in every string of a server entry, as the real CLI expands them."""
    if isinstance(value, str):
        return re.sub(
            r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}",
            lambda match: os.environ.get(match.group(1), match.group(2) or ""),
            value,
        )
    if isinstance(value, list):
        return [expand_env(item) for item in value]
    if isinstance(value, dict):
        return {key: expand_env(item) for key, item in value.items()}
    return value


def check_usage(opts: dict[str, Any]) -> None:
    """The checks the real CLI makes before it starts, with its messages."""
    if not opts.get("print") and sys.stdout.isatty():
        raise UsageError("fake_claude: only print mode is supported; pass -p")
    if opts.get("output_format") == "stream-json" and not opts.get("verbose"):
        raise UsageError("Error: When using --print, --output-format=stream-json requires --verbose")
    bypass = opts.get("dangerously_skip_permissions") or opts.get("permission_mode") == "bypassPermissions"
    if bypass and os.geteuid() == 0 and os.environ.get("IS_SANDBOX") != "1":
        raise UsageError("--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons")
    numbers = (("max_turns", "--max-turns <turns>", int), ("max_budget_usd", "--max-budget-usd <amount>", float))
    for name, spec, number in numbers:
        try:
            number(opts.get(name, 0))
        except ValueError:
            raise UsageError(f"error: option '{spec}' argument '{opts[name]}' is invalid.") from None
    if "session_id" in opts:
        try:
            uuid.UUID(opts["session_id"])
        except ValueError:
            raise UsageError("Error: Invalid session ID. Must be a valid UUID.") from None
    prompt_files = (("append_system_prompt_file", "Append system prompt"), ("system_prompt_file", "System prompt"))
    for option, label in prompt_files:
        if option in opts and not Path(opts[option]).is_file():
            raise UsageError(f"Error: {label} file not found: {opts[option]}")


def parse_input_line(line: bytes) -> dict[str, str] | None:
    """A stream-json input line as {type, text} or {type, request_id, subtype}; None if it is not valid."""
    try:
        message = json.loads(line)
        if message["type"] == "user":
            content = message["message"]["content"]
            if not isinstance(content, str):
                content = "\n".join(block["text"] for block in content if block.get("type") == "text")
            return {"type": "user", "text": content}
        if message["type"] == "control_request":
            request = message.get("request") or {}
            return {
                "type": "control_request",
                "request_id": str(message.get("request_id")),
                "subtype": str(request.get("subtype")),
            }
        return {"type": str(message["type"])}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


# -------------------------------------------------------------------------------------------------------------
# Directive scripts


def _text(args: str) -> str:
    return args


def _nothing(args: str) -> None:
    if args:
        raise ValueError("takes no arguments")


def _count(args: str) -> int:
    if int(args) < 0:
        raise ValueError("must not be negative")
    return int(args)


def _amount(args: str) -> float:
    if not float(args) >= 0:  # also refuses nan
        raise ValueError("must not be negative")
    return float(args)


def _word(args: str) -> str:
    if len(args.split()) != 1:
        raise ValueError("takes one word")
    return args


def _signal(args: str) -> signal.Signals:
    if args not in ("SIGTERM", "SIGINT"):
        raise ValueError("takes SIGTERM or SIGINT")
    return signal.Signals[args]


def _path_and_text(args: str) -> tuple[str, str]:
    path, _, text = args.partition(" ")
    if not path:
        raise ValueError("takes a path and a text")
    return path, text


def _call(args: str) -> tuple[str, dict[str, Any]]:
    name, _, raw = args.partition(" ")
    tool_input = json.loads(raw) if raw.strip() else {}
    if not name or not isinstance(tool_input, dict):
        raise ValueError("takes a tool name and a JSON object")
    return name, tool_input


VERBS = {
    **dict.fromkeys(("answer", "say", "error", "fail", "stderr"), _text),
    **dict.fromkeys(("hang", "malformed", "grandchild"), _nothing),
    **dict.fromkeys(("turns", "api_retry", "exit"), _count),
    **dict.fromkeys(("sleep", "flood", "cost"), _amount),
    **dict.fromkeys(("write_exit_time", "env"), _word),
    "append": _path_and_text,
    "tool": _call,
    "mcp": _call,
    "ignore": _signal,
}


def scripted(prompt: str) -> str:
    """The prompt with the directives $FAKE_CLAUDE_SCRIPT gives it (see the module's docstring)."""
    path = os.environ.get("FAKE_CLAUDE_SCRIPT")
    if not path:
        return prompt
    try:
        script = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScriptError(f"fake_claude: cannot read $FAKE_CLAUDE_SCRIPT {path}: {exc}") from exc
    for fragment, directives in script.items():
        if fragment in prompt:
            return "\n".join([*(f"fake: {directive}" for directive in directives), prompt])
    return prompt


def parse_script(prompt: str) -> tuple[list[tuple[str, Any]], str]:
    """Split a prompt into its directives, as (verb, parsed arguments), and the rest of its text."""
    steps: list[tuple[str, Any]] = []
    text: list[str] = []
    for line in prompt.splitlines():
        match = DIRECTIVE.match(line)
        if not match:
            text.append(line)
            continue
        verb, args = match.groups()
        if verb not in VERBS:
            raise ScriptError(f"fake_claude: unknown directive {verb!r} in {line.strip()!r}")
        try:
            steps.append((verb, VERBS[verb](args)))
        except ValueError as exc:
            raise ScriptError(f"fake_claude: bad arguments in {line.strip()!r}: {exc}") from exc
    return steps, "\n".join(text).strip()


# -------------------------------------------------------------------------------------------------------------
# Output pieces


def dumps(obj: object) -> str:
    """JSON as Claude Code prints it: compact, with non-ASCII characters as they are."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:20]


def new_uuid() -> str:
    return str(uuid.uuid4())


def timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def project_dir(cwd: str) -> Path:
    return Path.home() / ".claude" / "projects" / re.sub(r"[^A-Za-z0-9]", "-", cwd)


def message_usage() -> dict[str, int]:
    """An assistant line's usage: the snapshot the CLI takes at message_start."""
    return {
        "input_tokens": INPUT_TOKENS,
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def result_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """A result's `usage`. The CLI puts output_tokens_details first when nothing was used; so do we."""
    usage: dict[str, Any] = {"output_tokens_details": {"thinking_tokens": 0}} if not input_tokens else {}
    usage |= {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "output_tokens_details": {"thinking_tokens": 0},
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": "standard",
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
        "inference_geo": "",
        "iterations": [],
        "speed": "standard",
        "fallback_credit": None,
    }
    return usage


def model_usage(model: str, input_tokens: int, output_tokens: int, cost: float) -> dict[str, Any]:
    return {
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "cacheReadInputTokens": 0,
        "cacheCreationInputTokens": 0,
        "webSearchRequests": 0,
        "costUSD": cost,
        "contextWindow": 1000000,
        "maxOutputTokens": 128000,
        "thinkingTokens": 0,
        "cacheCreationEphemeral5mInputTokens": 0,
        "cacheCreationEphemeral1hInputTokens": 0,
        "canonicalModel": model,
        "provider": "firstParty",
        "costBasis": "list",
    }


def bash_output(command: str) -> str:
    """What a Bash call prints. Nothing is executed: `echo` is answered, anything else prints nothing."""
    import shlex

    try:
        words = shlex.split(command)
    except ValueError:
        return ""
    return " ".join(words[1:]) if words[:1] == ["echo"] else ""


# -------------------------------------------------------------------------------------------------------------
# Waiting without threads


class Io:
    """One selector for everything the fake waits on: time, stdin lines and signals.

    Signal handlers only set flags, and the wakeup fd makes select() return at once, so a SIGINT or an
    interrupt request ends a `sleep` immediately while output is never cut in the middle of a line.
    """

    def __init__(self, read_stdin: bool) -> None:
        # poll(2), not epoll: stdin may be a regular file or /dev/null, which epoll refuses.
        self.selector = selectors.PollSelector()
        self._wakeup, wakeup_w = os.pipe()
        for fd in (self._wakeup, wakeup_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wakeup_w, warn_on_full_buffer=False)
        self.selector.register(self._wakeup, selectors.EVENT_READ)
        self.stdin_open = read_stdin
        if read_stdin:
            self.selector.register(0, selectors.EVENT_READ)
        self.lines: deque[bytes] = deque()
        self._partial_line = b""
        self.sigint = False

    def poll(self, timeout: float | None, extra_fd: int | None = None) -> bool:
        """Wait up to `timeout` seconds (None: no limit) for an event; True if `extra_fd` became readable."""
        if extra_fd is not None:
            self.selector.register(extra_fd, selectors.EVENT_READ)
        try:
            ready = {key.fd for key, _ in self.selector.select(timeout)}
        finally:
            if extra_fd is not None:
                self.selector.unregister(extra_fd)
        if self._wakeup in ready:
            try:
                while os.read(self._wakeup, 512):
                    pass
            except BlockingIOError:
                pass
        if 0 in ready:
            data = os.read(0, 1 << 16)
            if data:
                *lines, self._partial_line = (self._partial_line + data).split(b"\n")
                self.lines.extend(line for line in lines if line.strip())
            else:
                if self._partial_line.strip():
                    self.lines.append(self._partial_line)
                self.selector.unregister(0)
                self.stdin_open = False
        return extra_fd in ready


# -------------------------------------------------------------------------------------------------------------
# The CLI


class Turn:
    """What one turn (one prompt, one result line) has done so far."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.requests = 0  # model requests: the result's num_turns
        self.message_id: str | None = None  # of the model request being streamed, if any
        self.message_ids: list[str] = []
        self.block_index = 0
        self.stop_reason: str | None = None
        self.input_tokens = self.output_tokens = 0
        self.cost_override: float | None = None
        self.first_request_ms: int | None = None
        self.first_block_ms: int | None = None
        self.denials: list[dict[str, Any]] = []
        self.answer: str | None = None
        self.env_lines: list[str] = []
        self.in_tool = False

    def elapsed_ms(self) -> int:
        return max(1, int((time.monotonic() - self.started) * 1000))

    @property
    def cost(self) -> float:
        if self.cost_override is not None:
            return self.cost_override
        return (
            self.input_tokens * USD_PER_MILLION_INPUT_TOKENS + self.output_tokens * USD_PER_MILLION_OUTPUT_TOKENS
        ) / 1e6


class FakeClaude:
    def __init__(self, opts: dict[str, Any], prompt: str) -> None:
        self.opts = opts
        self.prompt = prompt
        self.format: str = opts.get("output_format", "text")
        self.session_input = opts.get("input_format") == "stream-json"
        self.partial = bool(opts.get("include_partial_messages")) and self.format == "stream-json"
        self.model: str = opts.get("model") or DEFAULT_MODEL
        self.cwd = str(Path.cwd())
        self.permission_mode: str = opts.get("permission_mode") or "default"
        if opts.get("dangerously_skip_permissions"):
            self.permission_mode = "bypassPermissions"
        self.allowed = split_rules(opts.get("allowed_tools", []))
        self.disallowed = split_rules(opts.get("disallowed_tools", []))
        self.mcp_servers = load_mcp_servers(opts.get("mcp_config", []))
        self.max_turns = int(opts["max_turns"]) if "max_turns" in opts else None
        self.max_budget = float(opts["max_budget_usd"]) if "max_budget_usd" in opts else None
        self.session_id = str(uuid.UUID(opts["session_id"])) if "session_id" in opts else new_uuid()
        self.session_file: Path | None = None
        # Cumulative over the session, --resume included: model -> [input tokens, output tokens, cost].
        self.usage: dict[str, list[Any]] = {}
        self.api_ms = 0
        self.result_index = 0
        self.last_was_error = False
        self.turn = Turn()
        self.busy = False
        self.queue: list[str] = []
        self.pending_interrupt: str | None = None
        self.last_tool_text = ""
        self.exit_time_path: str | None = None
        self.io = Io(read_stdin=self.session_input)

    # -- process ----------------------------------------------------------------------------------------------

    def exit(self, code: int) -> None:
        if self.exit_time_path:
            Path(self.exit_time_path).write_text(f"{time.time_ns()}\n", encoding="utf-8")
        os._exit(code)

    def write(self, data: str | bytes) -> None:
        # Straight to fd 1: nothing is left in a buffer when a signal ends the process.
        view = memoryview(data.encode() if isinstance(data, str) else data)
        try:
            while view:
                view = view[os.write(1, view) :]
        except BrokenPipeError:
            self.exit(1)

    def emit(self, line: dict[str, Any]) -> None:
        if self.format == "stream-json":
            self.write(dumps(line) + "\n")

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.exit(143))
        signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, *_: object) -> None:
        self.io.sigint = True

    # -- sessions ---------------------------------------------------------------------------------------------

    def _find_session(self, session_id: str) -> Path | None:
        # The real CLI resumes a session from any working directory.
        here = project_dir(self.cwd)
        folders = [here, *here.parent.iterdir()] if here.parent.is_dir() else []
        return next((path for folder in folders if (path := folder / f"{session_id}.jsonl").exists()), None)

    def open_session(self) -> None:
        resume = self.opts.get("resume")
        if resume is True:
            raise UsageError("Error: --resume needs a session ID in print mode")
        if resume:
            path = self._find_session(resume)
            if path is None:
                self._resume_unknown(resume)
                return
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if record["type"] == "cost-state":
                    self.api_ms, self.usage = record["totalAPIDuration"], record["modelUsage"]
            if self.opts.get("fork_session"):
                self.session_id = new_uuid()
            else:
                self.session_id, self.session_file = resume, path
        elif "session_id" in self.opts and self._find_session(self.session_id):
            raise UsageError(f"Error: Session ID {self.session_id} is already in use.")

    def _record(self, record: dict[str, Any]) -> None:
        if self.opts.get("no_session_persistence"):
            return
        if self.session_file is None:
            project_dir(self.cwd).mkdir(parents=True, exist_ok=True)
            self.session_file = project_dir(self.cwd) / f"{self.session_id}.jsonl"
        with self.session_file.open("a", encoding="utf-8") as file:
            file.write(dumps({**record, "sessionId": self.session_id}) + "\n")

    def _resume_unknown(self, session_id: str) -> None:
        message = f"No conversation found with session ID: {session_id}"
        self.emit(
            {
                "type": "result",
                "subtype": "error_during_execution",
                "duration_ms": 0,
                "duration_api_ms": 0,
                "is_error": True,
                "num_turns": 0,
                "stop_reason": None,
                "session_id": session_id,
                "total_cost_usd": 0,
                "usage": result_usage(0, 0),
                "modelUsage": {},
                "permission_denials": [],
                "uuid": new_uuid(),
                "errors": [message],
                "result_index": 0,
            }
        )
        print(message, file=sys.stderr, flush=True)
        self.exit(1)

    # -- main loops -------------------------------------------------------------------------------------------

    def run(self) -> None:
        self.open_session()
        if not self.session_input:
            self.run_turn(self.prompt)
            self.exit(1 if self.last_was_error else 0)
        while True:
            if self.io.sigint:
                self.exit(0)
            if self.queue:
                # What arrived during a turn makes up the next turn, all together, as with the real CLI.
                prompt = "\n".join(self.queue)
                self.queue.clear()
                self.run_turn(prompt)
            elif self.io.stdin_open:
                self.io.poll(None)
                self._read_stdin()
            else:
                self.exit(1 if self.last_was_error else 0)

    def _read_stdin(self) -> None:
        """Act on the stdin lines of a stream-json session: queue messages, take interrupt requests."""
        while self.io.lines:
            line = self.io.lines.popleft()
            message = parse_input_line(line)
            if message is None:
                error = f"Error parsing streaming input line (type=unknown, {len(line)} chars): SyntaxError"
                print(error, file=sys.stderr, flush=True)
                self.exit(1)
            elif message["type"] == "user":
                self.queue.append(message["text"])
            elif message["type"] == "control_request":
                if message["subtype"] != "interrupt":
                    error = f"Unsupported control request subtype: {message['subtype']}"
                    self._control_response(message["request_id"], error)
                elif self.busy:
                    self.pending_interrupt = message["request_id"]
                else:
                    self._control_response(message["request_id"])

    def _control_response(self, request_id: str, error: str | None = None) -> None:
        if error:
            response = {"subtype": "error", "request_id": request_id, "error": error}
        else:
            response = {"subtype": "success", "request_id": request_id, "response": {"still_queued": []}}
        self.emit({"type": "control_response", "response": response})

    def pause(self, seconds: float | None, *, interruptible: bool = True, until_fd: int | None = None) -> None:
        """Wait `seconds` (None: no limit), or until `until_fd` is readable, serving stdin meanwhile."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            self.check(interruptible)
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                return
            fd_ready = self.io.poll(timeout, until_fd)
            self._read_stdin()
            if fd_ready:
                self.check(interruptible)
                return

    def check(self, interruptible: bool = True) -> None:
        """Raise Aborted if a SIGINT, or an interrupt request that may stop this step, has come."""
        if self.io.sigint:
            raise Aborted("sigint")
        if interruptible and self.pending_interrupt:
            raise Aborted("interrupt")

    # -- one turn ---------------------------------------------------------------------------------------------

    def run_turn(self, prompt: str) -> None:
        turn = self.turn = Turn()
        self.busy = True
        self.emit(self._init_line())
        message = {"role": "user", "content": prompt}
        self._record({"type": "user", "message": message, "uuid": new_uuid(), "timestamp": timestamp()})
        try:
            try:
                steps, text = parse_script(scripted(prompt))
            except ScriptError as exc:
                raise Stop("error_during_execution", "model_error", str(exc)) from exc
            for verb, arg in steps:
                self.check()
                getattr(self, f"do_{verb}")(arg)
            self.check()
            answer = turn.answer if turn.answer is not None else f"MOCK REPLY to: {text}" if text else "Done."
            answer = "\n".join([answer.replace("{last}", self.last_tool_text), *turn.env_lines])
            structured = self._structured_output(answer) if "json_schema" in self.opts else None
            self._assistant({"type": "text", "text": answer})
            self._close_request("end_turn")
            self._check_budget()
            self._result("success", turn.stop_reason, "completed", result=answer, structured=structured)
        except Stop as stop:
            self._result(stop.subtype, turn.stop_reason, stop.terminal_reason, errors=[stop.error])
        except ApiError as error:
            self._result("success", "stop_sequence", "api_error", result=str(error), is_error=True)
        except Aborted as aborted:
            self._aborted(str(aborted))
        self.busy = False
        if self.pending_interrupt:  # it came too late to stop anything
            self._control_response(self.pending_interrupt)
            self.pending_interrupt = None

    def _structured_output(self, answer: str) -> Any:
        """The answer as the StructuredOutput tool's call, as --json-schema makes the model give it."""
        try:
            structured = json.loads(answer)
        except ValueError:
            raise Stop(
                "error_max_structured_output_retries",
                "structured_output_retry_exhausted",
                "the model never called the StructuredOutput tool with valid JSON",
            ) from None
        tool_use_id = self._tool_use("StructuredOutput", structured)
        text = "Structured output provided successfully"
        self._tool_result(tool_use_id, text, {"data": text, "structured_output": structured}, "rule", None)
        return structured

    def _aborted(self, cause: str) -> None:
        turn = self.turn
        if cause == "interrupt" and self.pending_interrupt:
            self._control_response(self.pending_interrupt)
            self.pending_interrupt = None
        if not turn.in_tool:
            # The model request being streamed costs its input and one output token, as recorded.
            if turn.message_id is None:
                turn.requests += 1
                turn.input_tokens += INPUT_TOKENS
            else:
                turn.output_tokens -= OUTPUT_TOKENS
            turn.output_tokens += 1
            turn.message_id = None
        self.emit(self._user_line([{"type": "text", "text": INTERRUPTED}]))
        turn.requests += 1  # the CLI counts the interruption as a turn too
        reason = "aborted_tools" if turn.in_tool else "aborted_streaming"
        self._result("error_during_execution", None, reason, errors=[ABORT_DIAGNOSTIC], usage=(0, 0))
        if cause == "sigint":
            self.exit(0)

    # -- lines ------------------------------------------------------------------------------------------------

    def _init_line(self) -> dict[str, Any]:
        tools = [tool for tool in BUILTIN_TOOLS if not any(rule_matches(rule, tool) for rule in self.disallowed)]
        if self.mcp_servers:
            tools = [*tools[:2], *sorted([*tools[2:], *MCP_RESOURCE_TOOLS])]
        return {
            "type": "system",
            "subtype": "init",
            "cwd": self.cwd,
            "session_id": self.session_id,
            "tools": tools,
            "mcp_servers": [{"name": name, "status": "connected", "source": "dynamic"} for name in self.mcp_servers],
            "model": self.model,
            "permissionMode": self.permission_mode,
            "slash_commands": SLASH_COMMANDS,
            "terminal_slash_commands": ["doctor", "color", "focus", "reload-plugins"],
            "apiKeySource": "ANTHROPIC_API_KEY" if os.environ.get("ANTHROPIC_API_KEY") else "none",
            "claude_code_version": VERSION,
            "output_style": "default",
            "agents": ["claude", "Explore", "general-purpose", "Plan", "statusline-setup"],
            "skills": SKILLS,
            "plugins": PLUGINS,
            "capabilities": CAPABILITIES,
            "analytics_disabled": True,
            "product_feedback_disabled": True,
            "served_by_anthropic": False,
            "uuid": new_uuid(),
            "sandbox_enabled": False,
            "memory_paths": {"auto": f"{project_dir(self.cwd)}/memory/"},
            "original_cwd": self.cwd,
            "additional_directories": [str(Path(path).resolve()) for path in self.opts.get("add_dir", [])],
            "messaging_socket_path": f"/tmp/cc-socks/{os.getpid()}.sock",
            "fast_mode_state": "off",
            "fast_mode_disabled_reason": "sdk_opt_in_required",
            "per_turn_effort_active": True,
            "ultrathink_available": False,
            "ultrathink_typed_raises": False,
            "view_mode": "default",
        }

    def _user_line(self, content: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "type": "user",
            "message": {"role": "user", "content": content},
            "parent_tool_use_id": None,
            "session_id": self.session_id,
            "uuid": new_uuid(),
            "timestamp": timestamp(),
            **extra,
        }

    def _system_line(self, subtype: str, **fields: Any) -> dict[str, Any]:
        return {"type": "system", "subtype": subtype, **fields, "session_id": self.session_id, "uuid": new_uuid()}

    def _stream_event(self, event: dict[str, Any], **extra: Any) -> None:
        self.emit(
            {
                "type": "stream_event",
                "event": event,
                "session_id": self.session_id,
                "parent_tool_use_id": None,
                "uuid": new_uuid(),
                **extra,
                "api_message_id": self.turn.message_id,
            }
        )

    def _open_request(self) -> None:
        """Start a model request unless one is being streamed; --max-turns and the budget stop it here."""
        turn = self.turn
        if turn.message_id is not None:
            return
        if self.max_turns is not None and turn.requests >= self.max_turns:
            turn.requests += 1
            raise Stop("error_max_turns", "max_turns", f"Reached maximum number of turns ({self.max_turns})")
        self._check_budget()
        turn.requests += 1
        turn.input_tokens += INPUT_TOKENS
        turn.output_tokens += OUTPUT_TOKENS
        turn.message_id = new_id("msg_")
        turn.message_ids.append(turn.message_id)
        turn.block_index = 0
        if turn.first_request_ms is None:
            turn.first_request_ms = turn.elapsed_ms()
        if self.partial:
            self.emit(self._system_line("status", status="requesting"))
            message = {
                "id": turn.message_id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": message_usage(),
            }
            start = {"type": "message_start", "message": message}
            self._stream_event(start, ttft_ms=turn.elapsed_ms(), thinking_display="updates")

    def _close_request(self, stop_reason: str) -> None:
        turn = self.turn
        if turn.message_id is None:
            return
        if self.partial:
            delta = {"stop_reason": stop_reason, "stop_sequence": None}
            self._stream_event({"type": "message_delta", "delta": delta, "usage": {"output_tokens": OUTPUT_TOKENS}})
            self._stream_event({"type": "message_stop"})
        turn.message_id = None
        turn.stop_reason = stop_reason

    def _check_budget(self) -> None:
        if self.max_budget is not None and self._total_cost() + self.turn.cost > self.max_budget:
            raise Stop("error_max_budget_usd", "budget_exhausted", f"Reached maximum budget (${self.max_budget:g})")

    def _assistant(self, block: dict[str, Any], **extra: Any) -> None:
        """Print one content block. The CLI prints a line per block; a request's lines share its message id."""
        self._open_request()
        turn = self.turn
        if turn.first_block_ms is None:
            turn.first_block_ms = turn.elapsed_ms()
        if self.partial:
            if block["type"] == "text":
                start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block["text"]}
            else:
                start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                delta = {"type": "input_json_delta", "partial_json": dumps(block["input"])}
            self._stream_event({"type": "content_block_start", "index": turn.block_index, "content_block": start})
            self._stream_event({"type": "content_block_delta", "index": turn.block_index, "delta": delta})
        message = {
            "id": turn.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [block],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": message_usage(),
            "context_management": None,
        }
        self.emit(
            {
                "type": "assistant",
                "message": message,
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": new_uuid(),
                "timestamp": timestamp(),
                **extra,
            }
        )
        if self.partial:
            self._stream_event({"type": "content_block_stop", "index": turn.block_index})
        turn.block_index += 1

    def _total_cost(self) -> float:
        return sum(cost for _, _, cost in self.usage.values())

    def _result(
        self,
        subtype: str,
        stop_reason: str | None,
        terminal_reason: str,
        *,
        result: str | None = None,
        errors: list[str] | None = None,
        is_error: bool | None = None,
        usage: tuple[int, int] | None = None,
        structured: Any = None,
    ) -> None:
        """Print the turn's result line, with keys in the CLI's order, and record the session's costs."""
        turn = self.turn
        since_last = {}
        if turn.input_tokens or turn.cost:
            totals = self.usage.setdefault(self.model, [0, 0, 0.0])
            for i, spent in enumerate((turn.input_tokens, turn.output_tokens, turn.cost)):
                totals[i] += spent
            since_last = {self.model: model_usage(self.model, turn.input_tokens, turn.output_tokens, turn.cost)}
        if turn.requests:
            self.api_ms += turn.elapsed_ms()
        is_error = errors is not None if is_error is None else is_error
        line: dict[str, Any] = {
            "duration_api_ms": self.api_ms,
            "stop_reason": stop_reason,
            "session_id": self.session_id,
            "total_cost_usd": self._total_cost(),
            "usage": result_usage(*(usage or (turn.input_tokens, turn.output_tokens))),
            "modelUsage": {model: model_usage(model, *totals) for model, totals in self.usage.items()},
            "permission_denials": turn.denials,
            "terminal_reason": terminal_reason,
            "fast_mode_state": "off",
            "fast_mode_disabled_reason": "sdk_opt_in_required",
            "subagent_stats": SUBAGENT_STATS,
            "safety_stops": 0,
            "is_error": is_error,
            "num_turns": turn.requests,
            "subtype": subtype,
        }
        # Timings appear only when a model answer was streamed, split around "type" as the CLI does.
        timed = not is_error and turn.first_block_ms is not None
        if errors is None:
            line |= {"api_error_status": None, "result": result}
        else:
            line["errors"] = errors
        if timed:
            line["ttft_ms"] = turn.first_block_ms
        line |= {"type": "result", "duration_ms": turn.elapsed_ms(), "uuid": new_uuid()}
        if self.partial:
            line["begun_message_ids"] = turn.message_ids
        if timed:
            line |= {
                "ttft_stream_ms": turn.first_block_ms,
                "time_to_request_ms": turn.first_request_ms,
                "first_content_frame_ms": turn.first_block_ms,
            }
        if structured is not None:
            line["structured_output"] = structured
        line |= {"queued_turn_count": 0, "result_index": self.result_index}
        if self.format == "stream-json":
            self.emit(line | {"model_usage_since_last_result": since_last})
        elif self.format == "json":
            self.write(dumps(line) + "\n")
        else:
            self.write(self._text_output(subtype, result))
        self.result_index += 1
        self.last_was_error = is_error
        self._record({"type": "cost-state", "totalAPIDuration": self.api_ms, "modelUsage": self.usage})

    def _text_output(self, subtype: str, result: str | None) -> str:
        """What --output-format=text prints for a result: the CLI's wording, and no newline after an error."""
        if subtype == "success" and result is not None:
            return result if result.endswith("\n") else result + "\n"
        if subtype == "error_max_turns":
            return f"Error: Reached max turns ({self.max_turns})"
        if subtype == "error_max_budget_usd":
            return f"Error: Exceeded USD budget ({self.max_budget:g})"
        return "Execution error"

    # -- tools ------------------------------------------------------------------------------------------------

    def _permission(self, tool: str) -> str:
        """How a call of `tool` goes: "unknown", "disabled", "denied", or accepted by "rule" or by "mode"."""
        server = tool.split("__")[1] if tool.startswith("mcp__") and tool.count("__") >= 2 else None
        if tool not in BUILTIN_TOOLS and server not in self.mcp_servers:
            return "unknown"
        if any(rule_matches(rule, tool) for rule in self.disallowed):
            return "disabled"
        if self.permission_mode == "bypassPermissions":
            return "mode"
        if any(rule_matches(rule, tool) for rule in self.allowed):
            return "rule"
        return "denied" if server or self.permission_mode == "dontAsk" else "rule"

    def _tool_use(self, tool: str, tool_input: dict[str, Any], server_name: str | None = None) -> str:
        """Print the tool_use line, which ends the model request; returns the tool_use id."""
        tool_use_id = new_id("toolu_")
        extra = {}
        if tool.startswith("mcp__") and tool.count("__") >= 2:
            _, server, name = tool.split("__", 2)
            meta = {"id": tool_use_id, "display_name": name.replace("_", " ").title()}
            extra["tool_use_meta"] = [meta | {"server_display_name": server_name or server, "tool_name": name}]
        self._assistant({"type": "tool_use", "id": tool_use_id, "name": tool, "input": tool_input}, **extra)
        self._close_request("tool_use")
        return tool_use_id

    def _tool_result(self, tool_use_id: str, text: str, details: Any, reason: str, is_error: bool | None) -> None:
        block: dict[str, Any] = {"tool_use_id": tool_use_id, "type": "tool_result", "content": text}
        if is_error is not None:
            block["is_error"] = is_error
        decision = {"decision": "accept", "source": "config", "reason_type": reason}
        meta = [{"id": tool_use_id, "permission_decision": decision}]
        self.emit(self._user_line([block], tool_use_result=details, tool_result_meta=meta))
        self.last_tool_text = text

    def _refuse(self, tool: str, tool_use_id: str, tool_input: dict[str, Any], verdict: str) -> None:
        """Print what the CLI prints for a tool that does not exist, is disabled or is not permitted."""
        if verdict == "denied":
            error = f"Claude requested permissions to use {tool}, but you haven't granted it yet."
            # This system line has uuid before session_id, unlike the others.
            fields = {"tool_name": tool, "tool_use_id": tool_use_id, "message": error, "uuid": new_uuid()}
            self.emit({"type": "system", "subtype": "permission_denied", **fields, "session_id": self.session_id})
            block = {"type": "tool_result", "content": error, "is_error": True, "tool_use_id": tool_use_id}
            decision = {"decision": "reject", "source": "config"}
            meta = [{"id": tool_use_id, "non_execution_kind": "user-rejected", "permission_decision": decision}]
            self.emit(self._user_line([block], tool_use_result=f"Error: {error}", tool_result_meta=meta))
            self.turn.denials.append({"tool_name": tool, "tool_use_id": tool_use_id, "tool_input": tool_input})
        else:
            error = f"No such tool available: {tool}"
            if verdict == "disabled":
                error += f". {tool} is disabled for this session, in subagents as well as here."
            content = f"<tool_use_error>Error: {error}</tool_use_error>"
            block = {"type": "tool_result", "content": content, "is_error": True, "tool_use_id": tool_use_id}
            self.emit(self._user_line([block], tool_use_result=f"Error: {error}"))
        self.last_tool_text = error

    def do_tool(self, arg: tuple[str, dict[str, Any]]) -> None:
        tool, tool_input = arg
        tool_use_id = self._tool_use(tool, tool_input)
        verdict = self._permission(tool)
        if verdict not in ("rule", "mode"):
            self._refuse(tool, tool_use_id, tool_input, verdict)
        elif tool == "Bash":
            stdout = bash_output(str(tool_input.get("command", "")))
            details = {
                "stdout": stdout,
                "stderr": "",
                "interrupted": False,
                "isImage": False,
                "noOutputExpected": not stdout,
            }
            self._tool_result(tool_use_id, stdout or "(Bash completed with no output)", details, verdict, False)
        elif tool.startswith("mcp__"):
            text = dumps(tool_input)
            server_info = {"name": tool.split("__")[1], "version": ""}
            details = {"content": text, "_meta": {"io.modelcontextprotocol/serverInfo": server_info}}
            self._tool_result(tool_use_id, text, details | {"structuredContent": tool_input}, verdict, None)
        else:  # the other built-in tools are not modelled on recordings: a generic echo
            text = dumps(tool_input)
            self._tool_result(tool_use_id, text, text, verdict, None)

    def do_turns(self, count: int) -> None:
        for n in range(1, count + 1):
            self.check()
            self.do_tool(("Bash", {"command": f"echo turn {n}", "description": f"turn {n}"}))

    def do_mcp(self, arg: tuple[str, dict[str, Any]]) -> None:
        name, args = arg
        tool = f"mcp__overmind__{name}"
        verdict = self._permission(tool)
        if verdict not in ("rule", "mode"):
            self._refuse(tool, self._tool_use(tool, args), args, verdict)
            return
        env = os.environ | {  # what Claude Code gives the MCP servers it starts
            "CLAUDECODE": "1",
            "CLAUDE_CODE_ENTRYPOINT": "sdk-cli",
            "CLAUDE_CODE_SESSION_ID": self.session_id,
            "CLAUDE_PROJECT_DIR": self.cwd,
        }
        call = McpCall(self.mcp_servers["overmind"], name, args, env)
        try:
            # Connect first: the tool_use line names the server as it introduced itself.
            self._wait_while(call, "connecting")
            tool_use_id = self._tool_use(tool, args, server_name=call.server_name)
            self.turn.in_tool = True
            self._wait_while(call, "calling")
        except Aborted:
            call.cancel()
            raise
        call.close()
        self.turn.in_tool = False
        if call.state == "failed":
            error = f"MCP server 'overmind' failed: {call.error}"
            self._tool_result(tool_use_id, error, f"Error: {error}", verdict, True)
            return
        server_info = {"name": call.server_name, "version": call.server_version}
        details: dict[str, Any] = {"content": call.text, "_meta": {"io.modelcontextprotocol/serverInfo": server_info}}
        if call.structured is not None:
            details["structuredContent"] = call.structured
        self._tool_result(tool_use_id, call.text, details, verdict, True if call.is_error else None)

    def _wait_while(self, call: McpCall, state: str) -> None:
        while call.state == state:
            self.pause(None, until_fd=call.ready_fd)
            os.read(call.ready_fd, 1)

    # -- other directives -------------------------------------------------------------------------------------

    def do_answer(self, text: str) -> None:
        self.turn.answer = text

    def do_say(self, text: str) -> None:
        self._assistant({"type": "text", "text": text.replace("{last}", self.last_tool_text)})

    def do_env(self, name: str) -> None:
        self.turn.env_lines.append(f"{name}={os.environ.get(name, '<unset>')}")

    def do_sleep(self, seconds: float) -> None:
        self.pause(seconds)

    def do_hang(self, _: None) -> None:
        self.pause(None, interruptible=False)

    def do_exit(self, code: int) -> None:
        self.exit(code)

    def do_error(self, text: str) -> None:
        # The synthetic message of no_api_key.jsonl; the failed request counts as a turn.
        self._close_request("end_turn")
        self.turn.requests += 1
        usage = {
            "output_tokens_details": None,
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            "service_tier": None,
            "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
            "inference_geo": None,
            "iterations": None,
            "speed": None,
            "fallback_credit": None,
        }
        message = {
            "diagnostics": None,
            "id": new_uuid(),
            "container": None,
            "model": "<synthetic>",
            "role": "assistant",
            "stop_details": None,
            "stop_reason": "stop_sequence",
            "stop_sequence": "",
            "type": "message",
            "usage": usage,
            "content": [{"type": "text", "text": text}],
            "context_management": None,
        }
        self.emit(
            {
                "type": "assistant",
                "message": message,
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": new_uuid(),
                "timestamp": timestamp(),
                "error": "unknown",
                "is_api_error_message": True,
            }
        )
        raise ApiError(text)

    def do_fail(self, text: str) -> None:
        raise Stop("error_during_execution", "model_error", text)

    def do_api_retry(self, count: int) -> None:
        for attempt in range(1, count + 1):
            delay = RETRY_DELAYS_MS[min(attempt, len(RETRY_DELAYS_MS)) - 1]
            retry = {"attempt": attempt, "max_retries": max(10, count), "retry_delay_ms": delay}
            self.emit(self._system_line("api_retry", **retry, error_status=None, error="unknown"))
            self.pause(0.01)

    def do_flood(self, megabytes: float) -> None:
        # Fill in a line template: json.dumps for each of 200,000 lines would take far too long.
        slot = f"<{uuid.uuid4().hex}>"  # a placeholder that nothing else in the line can contain
        message = {
            "id": f"msg_{slot}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [{"type": "text", "text": ("Flood line from fake_claude, a long streamed answer. " * 10)[:520]}],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": message_usage(),
            "context_management": None,
        }
        line = {"type": "assistant", "message": message, "parent_tool_use_id": None, "session_id": self.session_id}
        before_id, before_uuid, before_time, end = dumps(line | {"uuid": slot, "timestamp": slot}).split(slot)
        id_prefix, uuid_prefix = uuid.uuid4().hex[:8], new_uuid()[:24]
        target, written, serial = int(megabytes * 1_000_000), 0, 0
        while written < target:
            self.check()
            now = timestamp()
            lines = [
                f"{before_id}{id_prefix}{n:012x}{before_uuid}{uuid_prefix}{n:012x}{before_time}{now}{end}\n"
                for n in range(serial, serial + 1000)
            ]
            serial += 1000
            chunk = "".join(lines).encode()
            if written + len(chunk) > target:  # end with the line that reaches the target
                chunk = chunk[: chunk.index(b"\n", target - written - 1) + 1]
            self.write(chunk)
            written += len(chunk)

    def do_malformed(self, _: None) -> None:
        truncated = f'{{"type":"assistant","message":{{"id":"{new_id("msg_")}","type":"mess'
        self.write(f"this is not json\nWarning: [fake_claude] a stray log line\n{truncated}\n")

    def do_stderr(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def do_cost(self, usd: float) -> None:
        self.turn.cost_override = usd

    def do_grandchild(self, _: None) -> None:
        import subprocess

        child = subprocess.Popen(
            [sys.executable, "-c", GRANDCHILD],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert child.stdout is not None
        child.stdout.read(5)  # "ready": from now on it ignores SIGTERM and SIGINT
        child.stdout.close()
        self._assistant({"type": "text", "text": f"grandchild pid {child.pid}"})

    def do_ignore(self, signum: signal.Signals) -> None:
        signal.signal(signum, signal.SIG_IGN)

    def do_write_exit_time(self, path: str) -> None:
        self.exit_time_path = path

    def do_append(self, arg: tuple[str, str]) -> None:
        path, text = arg
        with (Path(self.cwd) / path).open("a", encoding="utf-8") as file:
            file.write(text + "\n")


class McpCall:
    """One MCP tool call, made by `mcp`'s asyncio client in a worker thread.

    The main thread stays in its selector loop, so signals and interrupt requests keep working, and waits
    on `ready_fd`, which becomes readable each time `state` moves on: connecting, calling, done or failed.
    """

    def __init__(self, server: dict[str, Any], tool: str, args: dict[str, Any], env: dict[str, str]) -> None:
        import asyncio
        import threading

        self.state = "connecting"
        self.server_name, self.server_version = "overmind", ""
        self.text, self.structured, self.is_error, self.error = "", None, False, ""
        self.ready_fd, self._ready_w = os.pipe()
        self._loop = asyncio.new_event_loop()
        self._job = (server, tool, args, env)
        threading.Thread(target=self._thread, daemon=True).start()

    def _advance(self, state: str) -> None:
        self.state = state
        os.write(self._ready_w, b".")

    def _thread(self) -> None:
        # Claude Code keeps the stderr of its MCP servers out of its own.
        with Path(os.devnull).open("w") as devnull:
            self._task = self._loop.create_task(self._call(*self._job, errlog=devnull))
            try:
                self._loop.run_until_complete(self._task)
            except BaseException as exc:  # a failed call is a tool error, never a crash
                while isinstance(exc, BaseExceptionGroup):  # name the cause, not anyio's task group
                    exc = exc.exceptions[0]
                self.error = f"{type(exc).__name__}: {exc}"
                self._advance("failed")
            else:
                self._advance("done")
            finally:
                self._loop.close()

    async def _call(
        self, server: dict[str, Any], tool: str, args: dict[str, Any], env: dict[str, str], errlog: Any
    ) -> None:
        from contextlib import AsyncExitStack

        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client

        async with AsyncExitStack() as stack:
            if server.get("type", "http" if "url" in server else "stdio") == "stdio":
                params = StdioServerParameters(
                    command=server["command"], args=server.get("args", []), env=env | server.get("env", {})
                )
                client = Client(stdio_client(params, errlog=errlog))
            else:
                import httpx2
                from mcp.client.streamable_http import streamable_http_client

                http = httpx2.AsyncClient(headers=server.get("headers"), timeout=httpx2.Timeout(30, read=300))
                await stack.enter_async_context(http)
                client = Client(streamable_http_client(server["url"], http_client=http))
            await stack.enter_async_context(client)
            if client.server_info:
                self.server_name, self.server_version = client.server_info.name, client.server_info.version or ""
            self._advance("calling")
            result = await client.call_tool(tool, args)
        self.is_error = result.is_error
        self.structured = result.structured_content
        # When there is structuredContent, Claude Code shows the model only its compact JSON.
        if self.structured is not None:
            self.text = dumps(self.structured)
        else:
            self.text = "\n".join(getattr(block, "text", "") for block in result.content)

    def cancel(self) -> None:
        # The worker still owns the pipe: it writes to it when the cancelled call has ended.
        self._loop.call_soon_threadsafe(lambda: self._task.cancel())

    def close(self) -> None:
        os.close(self.ready_fd)
        os.close(self._ready_w)


def main(argv: list[str]) -> None:
    try:
        opts, positional = parse_args(argv)
        if opts.get("version"):
            print(f"{VERSION} (Claude Code)")
            return
        if opts.get("help"):
            print(__doc__)
            return
        check_usage(opts)
        prompt = positional[0] if positional else ""
        if opts.get("input_format") != "stream-json" and not prompt:
            prompt = "" if sys.stdin.isatty() else sys.stdin.read()
            if not prompt.strip():
                raise UsageError(
                    "Error: Input must be provided either through stdin or as a prompt argument when using --print"
                )
        fake = FakeClaude(opts, prompt)
        fake.install_signal_handlers()
        fake.run()
    except UsageError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
