"""What a spawn's text may hold and how big it may be, checked before anything is created.

Every value of a spawn ends up in a place with hard rules of its own: argv and the
environment (no NUL byte; the kernel's E2BIG past 128 KiB a string), paths (no NUL,
PATH_MAX), JSON lines and SQLite (valid Unicode). A value that breaks one of them is
refused here, up front, with what to change, so that a refusal leaves nothing behind:
no mission row, no directory, no `failed` mission.

The limits, in UTF-8 bytes (also in README.md):

    prompt, append_system_prompt, a send message      1 MiB each (they travel in files, not argv)
    command                                           1,024 arguments, 128 KiB in all
    env                                               256 variables, 128 KiB in all
    cwd                                               4,095 bytes
    model, resume, parent, base, a tool rule          1,024 bytes each; 256 tool rules a list
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from overmind_mcp.errors import InvalidRequest
from overmind_mcp.models import SpawnRequest
from overmind_mcp.names import check_name

MAX_PROMPT_BYTES = 1024 * 1024
"""A prompt, a system-prompt addition or a session message: Claude's context holds less than this."""
MAX_COMMAND_ARGS = 1024
MAX_COMMAND_BYTES = 128 * 1024
"""All of a command's arguments together; argv and the environment share the kernel's ARG_MAX."""
MAX_ENV_VARIABLES = 256
MAX_ENV_BYTES = 128 * 1024
MAX_PATH_BYTES = 4095
"""PATH_MAX less its terminating NUL."""
MAX_SHORT_BYTES = 1024
"""A model name, a session id, a mission reference, one tool rule."""
MAX_TOOL_RULES = 256

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_text(field: str, value: str, max_bytes: int) -> int:
    """The value's size in UTF-8 bytes; raises InvalidRequest if it holds NUL, is not Unicode, or is too big."""
    if "\x00" in value:
        raise InvalidRequest(
            f"{field} holds a NUL byte (\\u0000): no program argument, environment variable, path or "
            "prompt can carry one; remove it"
        )
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise InvalidRequest(
            f"{field} is not valid Unicode text (it holds a lone surrogate such as \\ud800); send real characters"
        ) from None
    if size > max_bytes:
        raise InvalidRequest(f"{field} is {size:,} bytes; the limit is {max_bytes:,} bytes")
    return size


def check_message(field: str, value: str) -> None:
    """A prompt-sized text: a session's next message."""
    check_text(field, value, MAX_PROMPT_BYTES)


def check_spawn(request: SpawnRequest) -> None:
    """Every text of a spawn request, against the limits above; raises InvalidRequest naming the first bad one."""
    for field in ("prompt", "append_system_prompt"):
        value = getattr(request, field)
        if value is not None:
            check_text(f"`{field}`", value, MAX_PROMPT_BYTES)
    for field in ("model", "resume", "parent", "base"):
        value = getattr(request, field)
        if value is not None:
            check_text(f"`{field}`", value, MAX_SHORT_BYTES)
    if request.name is not None:
        check_text("`name`", request.name, MAX_SHORT_BYTES)
        check_name(request.name)
    if request.cwd is not None:
        check_text("`cwd`", request.cwd, MAX_PATH_BYTES)
    for field in ("allowed_tools", "disallowed_tools"):
        rules: list[str] = getattr(request, field)
        if len(rules) > MAX_TOOL_RULES:
            raise InvalidRequest(f"`{field}` has {len(rules)} rules; the limit is {MAX_TOOL_RULES}")
        for index, rule in enumerate(rules):
            check_text(f"`{field}[{index}]`", rule, MAX_SHORT_BYTES)
    if request.command is not None:
        _check_command(request.command)
    _check_env(request.env.items())


def _check_command(command: list[str]) -> None:
    if len(command) > MAX_COMMAND_ARGS:
        raise InvalidRequest(f"`command` has {len(command):,} arguments; the limit is {MAX_COMMAND_ARGS:,}")
    total = sum(check_text(f"`command[{index}]`", arg, MAX_COMMAND_BYTES) + 1 for index, arg in enumerate(command))
    if total > MAX_COMMAND_BYTES:
        raise InvalidRequest(
            f"`command` is {total:,} bytes in all; the limit is {MAX_COMMAND_BYTES:,}. "
            "Put large input in a file and pass its path"
        )


def _check_env(variables: Iterable[tuple[str, str]]) -> None:
    total = count = 0
    for name, value in variables:
        count += 1
        if not _ENV_NAME.fullmatch(name) or len(name) > 256:
            raise InvalidRequest(
                f"env: {name[:80]!r} is not a variable name (letters, digits and '_', not starting with a digit)"
            )
        if name.startswith("OVERMIND_"):
            raise InvalidRequest(f"env: {name!r} cannot be set (OVERMIND_* are reserved for the server)")
        total += len(name) + 2 + check_text(f"env {name!r}", value, MAX_ENV_BYTES)
    if count > MAX_ENV_VARIABLES:
        raise InvalidRequest(f"env has {count} variables; the limit is {MAX_ENV_VARIABLES}")
    if total > MAX_ENV_BYTES:
        raise InvalidRequest(f"env is {total:,} bytes in all; the limit is {MAX_ENV_BYTES:,}")
