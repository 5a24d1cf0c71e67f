"""How the Claude Code CLI asks for permission, and the answer it takes: measured on the pinned 2.1.332.

Everything below was run against the real binary and a mock Messages API, and is pinned by
tests/e2e/test_permission_protocol_real_cli.py.

Tasks: `claude -p --permission-prompt-tool=mcp__<server>__<tool>`
- The CLI calls that MCP tool for each tool call it would otherwise ask a person about, with the
  arguments `{"tool_name": "Bash", "input": {…the tool's input…}, "tool_use_id": "toolu_…"}` (and
  `_meta` `claudecode/toolUseId` and a `progressToken`). File tools' paths arrive absolute (the CLI
  resolves `new.txt` against its cwd).
- It is not asked about what the CLI decides itself: `--allowedTools` and `--disallowedTools` rules,
  read-only commands (`echo`, `ls`), reading files inside the working directory. Reading outside it,
  writing anywhere, and commands that change files are asked.
- The answer is a tool result of exactly one text block whose text is JSON:
  `{"behavior": "allow", "updatedInput": {…}}`: the tool runs, with `updatedInput` when given (an
  edited command runs instead of the asked one), else with the input the model wrote;
  `{"behavior": "deny", "message": "…"}`: the tool does not run; the model reads the message as the
  tool's error (`is_error: true`), the result's `permission_denials` lists the call, and no
  `system/permission_denied` line is printed; with `"interrupt": true` the CLI also ends the turn
  (`error_during_execution`, exit 1).
  Any other shape is refused as "The permission prompt tool returned an invalid permission result.
  Expected {behavior: 'allow', updatedInput?: object} or {behavior: 'deny', message: string}." and the
  call is denied. A result that also carries `structuredContent` is refused ("Expected a single text
  block param…"): the tool must not declare an output schema.
- The tool is hidden from the model: it is neither offered to it nor listed in `system/init`. It must
  be listed by the server, or the CLI exits 1 at once ("MCP tool … (passed via
  --permission-prompt-tool) not found").
- The CLI waits for the answer as long as it takes: 330 s was waited for with default settings.
- `--permission-prompts=none` denies whatever would prompt, prompt tool or not
  (`system/permission_denied` with `decision_reason_type: "asyncAgent"`); the default is `host`.

Sessions: `claude -p --input-format=stream-json --permission-prompt-tool=stdio`
- The CLI prints `{"type": "control_request", "request_id": "<uuid>", "request": {"subtype":
  "can_use_tool", "tool_name", "display_name", "input", "description", "permission_suggestions",
  "blocked_path": "/abs/path/it/would/touch", "tool_use_id"}}` and waits for
  `{"type": "control_response", "response": {"subtype": "success", "request_id": …, "response":
  {"behavior": "allow", "updatedInput": {…}}}}` (or deny with a message, as above) on its stdin.
  `"subtype": "error"` with an `error` text denies the call ("Tool permission request failed: Error: …").
  Without `--permission-prompt-tool=stdio` a session denies what it would ask about.
  The provider (providers/claude.py) reads and writes these lines.

The top-level client: Claude Code 2.1.332 advertises elicitation (`form` and `url`) but speaks MCP
2026-07-28, where a server cannot send a request of its own in the middle of a tool call (there is
no back-channel): an elicitation travels as the `input_required` result of a tool call, and the
client calls the tool again with the answer. In `-p` mode it answers `cancel` at once.
"""

from __future__ import annotations

import json
from typing import Any

from overmind_mcp.core.approvals import PermissionAnswer

PROMPT_TOOL = "permission_prompt"
"""The name of the MCP tool children's CLIs call (as `mcp__overmind__permission_prompt`)."""


def mcp_answer(answer: PermissionAnswer) -> str:
    """The permission prompt tool's result text."""
    body: dict[str, Any]
    if answer.allow:
        body = {"behavior": "allow"}
        if answer.updated_input is not None:
            body["updatedInput"] = answer.updated_input
    else:
        body = {"behavior": "deny", "message": answer.message or "Denied."}
    return json.dumps(body, ensure_ascii=False)
