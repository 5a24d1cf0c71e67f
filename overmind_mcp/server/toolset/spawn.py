from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from overmind_mcp.core.spec import (
    DEFAULT_MAX_RESTARTS,
    DEFAULT_RESTART_WINDOW_S,
    ApprovalMode,
    PermissionMode,
    PermissionRules,
    RestartMode,
    WorktreeCleanup,
)
from overmind_mcp.models import Spawned, SpawnRequest
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor


@readable_errors
async def spawn(
    ctx: Context,
    prompt: Annotated[
        str | None, Field(description="Task for a new Claude Code child: what to do, context, files, success criteria")
    ] = None,
    command: Annotated[
        list[str] | None, Field(description="Instead of prompt: a program to run, as an argv list (no shell)")
    ] = None,
    name: Annotated[
        str | None, Field(description="Unique, descriptive name (e.g. fix-auth-tests); generated if omitted")
    ] = None,
    parent: Annotated[str | None, Field(description="Id or name of the parent mission")] = None,
    cwd: Annotated[str | None, Field(description="Working directory; defaults to the parent's or the server's")] = None,
    model: str | None = None,
    allowed_tools: Annotated[
        list[str] | None, Field(description='Tools the child may use, e.g. ["Read", "Edit", "Bash(git *)"]')
    ] = None,
    disallowed_tools: list[str] | None = None,
    permission_mode: PermissionMode | None = None,
    max_turns: Annotated[int | None, Field(ge=1)] = None,
    max_budget_usd: Annotated[float | None, Field(gt=0)] = None,
    timeout_s: Annotated[float | None, Field(gt=0, description="Wall-clock limit; the child is ended after it")] = None,
    append_system_prompt: str | None = None,
    env: Annotated[dict[str, str] | None, Field(description="Extra environment variables for the child")] = None,
    detach: Annotated[
        bool, Field(description="Keep running if this server stops; the next server re-adopts it")
    ] = False,
    session: Annotated[
        bool, Field(description="A live session that stays up between turns: talk to it with send")
    ] = False,
    resume: Annotated[str | None, Field(description="Session id of a conversation to continue")] = None,
    restart: Annotated[
        RestartMode, Field(description="Start it again when it ends: never, on-failure, always (resumes Claude)")
    ] = "never",
    max_restarts: Annotated[
        int, Field(ge=0, description="Most restarts within restart_window_s")
    ] = DEFAULT_MAX_RESTARTS,
    restart_window_s: Annotated[float, Field(gt=0)] = DEFAULT_RESTART_WINDOW_S,
    activity_timeout_s: Annotated[
        float | None, Field(gt=0, description="End it as stalled after this long with no output outside a tool")
    ] = None,
    delegate: Annotated[
        bool | None,
        Field(
            description="Give the child overmind's tools so it can spawn its own children (default: while depth allows)"
        ),
    ] = None,
    recall_into_prompt: Annotated[
        bool, Field(description="Add the shared memories most relevant to the prompt to the child's system prompt")
    ] = False,
    remember_result: Annotated[
        bool, Field(description="Store the child's final answer as a memory of its run")
    ] = False,
    isolation: Annotated[
        Literal["none", "worktree"] | None,
        Field(
            description="worktree: its own git worktree and branch overmind/<name> (merge it back with merge); "
            "a child of an isolated mission works in its parent's unless it asks for its own"
        ),
    ] = None,
    base: Annotated[str | None, Field(description="With isolation: the commit to start from (default HEAD)")] = None,
    worktree_cleanup: Annotated[
        WorktreeCleanup | None,
        Field(description="At its end: remove-if-clean (default; work is never deleted), archive, keep"),
    ] = None,
    permissions: Annotated[
        PermissionRules | None,
        Field(
            description='Claude Code rules for what it may do unasked: {"allow": ["Bash(git diff:*)"], "deny": [...]}'
        ),
    ] = None,
    approvals: Annotated[
        ApprovalMode,
        Field(description="escalate: what its rules do not allow goes to you (wait shows it); policy: it is denied"),
    ] = "escalate",
    approval_timeout_s: Annotated[
        float | None, Field(gt=0, description="Deny a request nobody answers within this (default 300)")
    ] = None,
    runner: Annotated[
        Literal["local", "ray"] | None, Field(description="Where it runs: this machine, or a Ray cluster's node")
    ] = None,
    resources: Annotated[
        dict[str, float] | None, Field(description='With runner="ray": what its node must have, e.g. {"GPU": 1}')
    ] = None,
) -> Spawned:
    """Start a child agent (a `claude -p` task, or a live session) or a command; returns its id at once.

    Use it to delegate a self-contained subtask; then `wait` for it and read its `result`.
    """
    request = SpawnRequest(
        prompt=prompt,
        command=command,
        name=name,
        parent=parent,
        cwd=cwd,
        model=model,
        allowed_tools=allowed_tools or [],
        disallowed_tools=disallowed_tools or [],
        permission_mode=permission_mode,
        max_turns=max_turns,
        max_budget_usd=max_budget_usd,
        timeout_s=timeout_s,
        append_system_prompt=append_system_prompt,
        env=env or {},
        detach=detach,
        session=session,
        resume=resume,
        restart=restart,
        max_restarts=max_restarts,
        restart_window_s=restart_window_s,
        activity_timeout_s=activity_timeout_s,
        delegate=delegate,
        recall_into_prompt=recall_into_prompt,
        remember_result=remember_result,
        isolation=isolation,
        base=base,
        worktree_cleanup=worktree_cleanup,
        permissions=permissions,
        approvals=approvals,
        approval_timeout_s=approval_timeout_s,
        runner=runner,
        resources=resources or {},
    )
    return await supervisor(ctx).spawn(request, caller=caller(ctx))


TOOL = Tool(spawn, ToolAnnotations(title="Spawn a child agent", destructive_hint=False, open_world_hint=True))
