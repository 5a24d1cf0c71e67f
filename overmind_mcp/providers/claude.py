"""The Claude Code CLI as a provider: typed options → argv and stdin, stream-json → events.

Every value is passed as `--flag=value` (one argv element), so a model name or a session
id that starts with `-` can never be read as a flag. There is no shell anywhere.

Prompts never travel in argv, where any user can read them (`ps`) and the kernel caps a
single argument at 128 KiB: every child reads its input as stream-json on stdin (a task's
prompt from a file, a live session's turns from a pipe), and an appended system prompt
from a file (`--append-system-prompt-file`). The pinned CLI (2.1.332) reads a task this
way exactly as it reads a `-p` argument: one turn, then it ends at end of input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from overmind_mcp.core.approvals import PermissionAnswer
from overmind_mcp.core.events import (
    ApiError,
    ApiRetry,
    AssistantText,
    Event,
    Init,
    PermissionDenied,
    PermissionRequest,
    PlainText,
    Result,
    ToolResult,
    ToolUse,
    Unknown,
)
from overmind_mcp.core.exits import ExitStatus
from overmind_mcp.core.spec import AnyTask, ClaudeTask, PermissionMode, PermissionPrompts
from overmind_mcp.core.status import Status
from overmind_mcp.providers.base import Delegation, LaunchPlan, Restart

TOKEN_VARIABLE = "OVERMIND_TOKEN"
"""The variable a delegating child's bearer token travels in (the CLI expands it in --mcp-config headers)."""
CONTINUE = (
    "Continue the task from where you left off; your previous attempt ended early ({reason}). "
    "Check what is already done before you redo anything."
)


class ClaudeOptions(BaseModel):
    """What a `claude -p` child is started with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str | None = None
    model: str | None = None
    allowed_tools: list[str] = []
    disallowed_tools: list[str] = []
    permission_mode: PermissionMode | None = None
    permission_prompts: PermissionPrompts | None = None
    max_turns: int | None = None
    max_budget_usd: float | None = None
    append_system_prompt_file: str | None = None
    """A file holding text to add to the system prompt (the text itself never goes in argv)."""
    session_id: str | None = None
    resume: str | None = None
    mcp_config: list[str] = []
    strict_mcp_config: bool = False
    json_schema: dict[str, Any] | None = None
    # `mcp__<server>__<tool>`, or `stdio` (a session asks on stdout and reads the answer on stdin).
    permission_prompt_tool: str | None = None
    # A live session reads its turns from a pipe that stays open; a task, its one prompt from a file.
    session: bool = False


PROMPT_FILE = "prompt.jsonl"
"""The name of a task's stdin file (its prompt as one stream-json user message) in its directory."""
SYSTEM_PROMPT_FILE = "append-system-prompt.md"
"""The name of the file that holds a mission's `append_system_prompt`, in its directory."""


def build_argv(claude_bin: str, options: ClaudeOptions) -> list[str]:
    argv = [claude_bin, "-p", "--output-format=stream-json", "--verbose", "--input-format=stream-json"]
    if options.model:
        argv.append(f"--model={options.model}")
    if options.allowed_tools:
        argv.append(f"--allowedTools={','.join(options.allowed_tools)}")
    if options.disallowed_tools:
        argv.append(f"--disallowedTools={','.join(options.disallowed_tools)}")
    if options.permission_mode:
        argv.append(f"--permission-mode={options.permission_mode}")
    if options.permission_prompts:
        argv.append(f"--permission-prompts={options.permission_prompts}")
    if options.max_turns is not None:
        argv.append(f"--max-turns={options.max_turns}")
    if options.max_budget_usd is not None:
        argv.append(f"--max-budget-usd={options.max_budget_usd}")
    if options.append_system_prompt_file:
        argv.append(f"--append-system-prompt-file={options.append_system_prompt_file}")
    if options.session_id:
        argv.append(f"--session-id={options.session_id}")
    if options.resume:
        argv.append(f"--resume={options.resume}")
    argv.extend(f"--mcp-config={config}" for config in options.mcp_config)
    if options.strict_mcp_config:
        argv.append("--strict-mcp-config")
    if options.json_schema is not None:
        argv.append(f"--json-schema={json.dumps(options.json_schema, separators=(',', ':'))}")
    if options.permission_prompt_tool:
        argv.append(f"--permission-prompt-tool={options.permission_prompt_tool}")
    return argv


def task_input(options: ClaudeOptions) -> bytes | None:
    """What a task child reads on stdin: its prompt as one user message. None for a session (its turns are
    written to its pipe as they come) and for a child with no prompt."""
    if options.session or options.prompt is None:
        return None
    return user_message(options.prompt)


def mcp_server_config(name: str, url: str, token_variable: str) -> str:
    """An `--mcp-config` value naming one streamable-HTTP server, reached with a bearer token.

    The token stays out of argv (which any user can read with `ps`): the CLI expands
    `${VAR}` in headers, so the token travels in the child's environment instead. An
    entry given this way wins over a user- or project-scope server of the same name.
    """
    server = {"type": "http", "url": url, "headers": {"Authorization": f"Bearer ${{{token_variable}}}"}}
    return json.dumps({"mcpServers": {name: server}}, separators=(",", ":"))


def user_message(text: str) -> bytes:
    """One turn for a live session, as the CLI reads it on stdin."""
    message = {
        "type": "user",
        "message": {"role": "user", "content": text},
        "parent_tool_use_id": None,
        "session_id": "",
    }
    return json.dumps(message).encode() + b"\n"


def interrupt_request(request_id: str) -> bytes:
    """Ends the current turn of a live session without ending the process."""
    request = {"type": "control_request", "request_id": request_id, "request": {"subtype": "interrupt"}}
    return json.dumps(request).encode() + b"\n"


def permission_answer(request_id: str, answer: PermissionAnswer) -> bytes:
    """The answer to a session's `can_use_tool` request, on its stdin (see permissions/protocol.py)."""
    response: dict[str, Any]
    if answer.allow:
        response = {"behavior": "allow"}
        if answer.updated_input is not None:
            response["updatedInput"] = answer.updated_input
    else:
        response = {"behavior": "deny", "message": answer.message or "Denied."}
    line = {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": request_id, "response": response},
    }
    return json.dumps(line).encode() + b"\n"


def parse_line(line: bytes) -> list[Event]:
    """Events in one stdout line. Unknown types are kept; non-JSON lines become plain text."""
    try:
        data = json.loads(line)
    except ValueError:
        return [PlainText(line.decode("utf-8", "replace").rstrip("\r\n"))]
    if not isinstance(data, dict):
        return [PlainText(line.decode("utf-8", "replace").rstrip("\r\n"))]
    kind = data.get("type")
    try:
        match kind:
            case "assistant":
                return _assistant(data)
            case "user":
                return _user(data)
            case "result":
                return [_result(data)]
            case "system":
                return [_system(data)]
            case "control_request":
                request = data.get("request") or {}
                if request.get("subtype") == "can_use_tool":
                    return [_permission_request(data, request)]
    except (AttributeError, TypeError, ValueError):
        # A line of a known type but an unexpected shape (a newer CLI): keep it, never fail.
        pass
    return [Unknown(str(kind), _str_or_none(data.get("subtype")), data)]


def _assistant(data: dict[str, Any]) -> list[Event]:
    message = data.get("message") or {}
    message_id = message.get("id")
    content = message.get("content") or []
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if data.get("error") or data.get("is_api_error_message"):
        text = " ".join(block.get("text", "") for block in content if block.get("type") == "text")
        return [ApiError(str(data.get("error") or "unknown"), text)]
    events: list[Event] = []
    for block in content:
        match block.get("type"):
            case "text":
                events.append(AssistantText(block.get("text", ""), message_id))
            case "tool_use":
                tool_input = block.get("input")
                events.append(
                    ToolUse(
                        block.get("id", ""),
                        block.get("name", "?"),
                        tool_input if isinstance(tool_input, dict) else {},
                        message_id,
                    )
                )
    return events or [Unknown("assistant", None, data)]


def _user(data: dict[str, Any]) -> list[Event]:
    content = (data.get("message") or {}).get("content")
    if not isinstance(content, list):
        return [Unknown("user", None, data)]
    events: list[Event] = [
        ToolResult(block.get("tool_use_id"), bool(block.get("is_error")), _text_of(block.get("content")))
        for block in content
        if block.get("type") == "tool_result"
    ]
    return events or [Unknown("user", None, data)]


def _result(data: dict[str, Any]) -> Result:
    # `cost_usd` was the field's name in older CLIs.
    cost = data.get("total_cost_usd", data.get("cost_usd"))
    errors = data.get("errors") or []
    return Result(
        subtype=str(data.get("subtype") or ""),
        is_error=bool(data.get("is_error")),
        text=_str_or_none(data.get("result")),
        errors=[str(error) for error in errors] if isinstance(errors, list) else [str(errors)],
        session_id=_str_or_none(data.get("session_id")),
        cost_usd=float(cost) if isinstance(cost, int | float) else None,
        duration_ms=data.get("duration_ms") if isinstance(data.get("duration_ms"), int) else None,
        num_turns=data.get("num_turns") if isinstance(data.get("num_turns"), int) else None,
        usage=usage if isinstance(usage := data.get("usage"), dict) else {},
        permission_denials=[d for d in data.get("permission_denials") or [] if isinstance(d, dict)],
        terminal_reason=_str_or_none(data.get("terminal_reason")),
        result_index=data.get("result_index") if isinstance(data.get("result_index"), int) else None,
        structured_output=data.get("structured_output"),
    )


def _system(data: dict[str, Any]) -> Event:
    match data.get("subtype"):
        case "init":
            servers = data.get("mcp_servers")
            return Init(
                session_id=_str_or_none(data.get("session_id")),
                model=_str_or_none(data.get("model")),
                cwd=_str_or_none(data.get("cwd")),
                mcp_servers=servers if isinstance(servers, list) else [],
            )
        case "api_retry":
            return ApiRetry(
                attempt=int(data.get("attempt") or 0),
                max_retries=data.get("max_retries"),
                retry_delay_ms=data.get("retry_delay_ms"),
                error_status=data.get("error_status"),
                error=_str_or_none(data.get("error")),
            )
        case "permission_denied":
            return PermissionDenied(
                tool_name=str(data.get("tool_name") or "?"),
                tool_use_id=_str_or_none(data.get("tool_use_id")),
                message=str(data.get("message") or ""),
            )
    return Unknown("system", _str_or_none(data.get("subtype")), data)


def _permission_request(data: dict[str, Any], request: dict[str, Any]) -> PermissionRequest:
    tool_input = request.get("input")
    return PermissionRequest(
        request_id=str(data["request_id"]),
        tool_name=str(request.get("tool_name") or "?"),
        input=tool_input if isinstance(tool_input, dict) else {},
        tool_use_id=_str_or_none(request.get("tool_use_id")),
        blocked_path=_str_or_none(request.get("blocked_path")),
    )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return "" if content is None else json.dumps(content)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class ClaudeProvider:
    """`claude -p` children: stream-json out, a result line as the verdict, sessions on stdin."""

    kind = "claude"
    label = "claude task"
    result_is_output_end = False
    structured_output = True
    plain_text = False

    def __init__(self, claude_bin: str) -> None:
        self.claude_bin = claude_bin
        self.sessions = _SessionCodec()

    def handles(self, task: AnyTask) -> bool:
        return isinstance(task, ClaudeTask)

    def can_delegate(self, task: AnyTask) -> bool | None:
        assert isinstance(task, ClaudeTask)
        return task.delegate

    def plan(
        self,
        task: AnyTask,
        *,
        delegation: Delegation | None = None,
        restart: Restart | None = None,
        inputs: Path | None = None,
    ) -> LaunchPlan:
        assert isinstance(task, ClaudeTask)
        files: dict[Path, bytes] = {}
        system_prompt_file: Path | None = None
        if task.append_system_prompt:
            system_prompt_file = _input(inputs, SYSTEM_PROMPT_FILE)
            files[system_prompt_file] = task.append_system_prompt.encode()
        allowed_tools, mcp_config, env = list(task.allowed_tools), [], {}
        # A session asks for permissions on its own stdout (the server holds its stdin); a task, through
        # the server's tool, which the CLI hides from the model.
        prompt_tool = "stdio" if task.session else None
        if delegation is not None and (delegation.tools or not task.session):
            # The child reaches the server, under its own identity, as `overmind`.
            env[TOKEN_VARIABLE] = delegation.token
            mcp_config.append(mcp_server_config("overmind", delegation.url, TOKEN_VARIABLE))
            if delegation.tools:
                allowed_tools.append("mcp__overmind")
            if not task.session and delegation.permission_tool is not None:
                prompt_tool = f"mcp__overmind__{delegation.permission_tool}"
        prompt, resume = task.prompt, task.resume
        if restart is not None and restart.session_id:
            # Resume the conversation, so the work done so far is not repeated.
            resume = restart.session_id
            prompt = None if task.session else CONTINUE.format(reason=restart.why)
        options = ClaudeOptions(
            prompt=prompt,
            model=task.model,
            allowed_tools=allowed_tools,
            disallowed_tools=task.disallowed_tools,
            permission_mode=task.permission_mode,
            permission_prompts=task.permission_prompts,
            max_turns=task.max_turns,
            max_budget_usd=task.max_budget_usd,
            append_system_prompt_file=str(system_prompt_file) if system_prompt_file else None,
            resume=resume,
            mcp_config=mcp_config,
            permission_prompt_tool=prompt_tool,
            session=task.session,
            json_schema=task.json_schema,
        )
        stdin_file: Path | None = None
        if (stdin := task_input(options)) is not None:
            stdin_file = _input(inputs, PROMPT_FILE)
            files[stdin_file] = stdin
        return LaunchPlan(
            argv=build_argv(self.claude_bin, options),
            env=env,
            stdin_pipe=task.session,
            files=files,
            stdin_file=stdin_file,
        )

    def parse_line(self, line: bytes) -> list[Event]:
        return parse_line(line)

    def outcome(self, exit_status: ExitStatus, result: Result | None) -> tuple[Status, str | None]:
        if not exit_status.known:
            # Adopted after a server crash: whoever reaped it took its exit status along.
            if result is not None:
                verdict = Status.FAILED if result.is_error else Status.SUCCEEDED
                return verdict, "it ended after a server restart: its outcome is its result line (exit code unknown)"
            return Status.LOST, "it ended while no server could see its exit status, and left no result"
        how = exit_status.describe()
        if result is None:
            return Status.FAILED, f"{how} without a result"
        if result.is_error:
            kind = result.terminal_reason if result.subtype == "success" and result.terminal_reason else result.subtype
            return Status.FAILED, f"the CLI reported an error ({kind}, {how})"
        if exit_status.code != 0:
            return Status.FAILED, how
        return Status.SUCCEEDED, None


def _input(inputs: Path | None, name: str) -> Path:
    if inputs is None:
        raise ValueError("a Claude task's prompt travels in a file: plan() needs an input directory")
    return inputs / name


class _SessionCodec:
    def user_message(self, text: str) -> bytes:
        return user_message(text)

    def interrupt_request(self, request_id: str) -> bytes:
        return interrupt_request(request_id)

    def permission_answer(self, request_id: str, answer: PermissionAnswer) -> bytes:
        return permission_answer(request_id, answer)
