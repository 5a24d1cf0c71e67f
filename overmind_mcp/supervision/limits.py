"""What a spawn request may ask for: its shape, the server's limits, and its parent's privileges.

Privilege never grows down the tree: a child inherits what its parent may do and may ask
for less, never more; asking for more is refused with the reason, not quietly cut.
"""

from __future__ import annotations

import math
import time
from typing import Any

from overmind_mcp.core.spec import ClaudeTask, CommandTask, MissionSpec, RestartSpec, WorktreeSpec
from overmind_mcp.errors import InvalidRequest, Refused
from overmind_mcp.models import SpawnRequest
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import MissionRow

# How much a permission mode lets a child do unasked.
MODE_RANK = {"plan": 0, "default": 1, "manual": 1, "dontAsk": 1, "acceptEdits": 2, "auto": 3, "bypassPermissions": 4}
_CLAUDE_ONLY = (
    "model",
    "permission_mode",
    "permission_prompts",
    "max_turns",
    "max_budget_usd",
    "append_system_prompt",
    "resume",
    "json_schema",
)
_CLAUDE_ONLY_FLAGS = ("allowed_tools", "disallowed_tools", "recall_into_prompt", "delegate", "session")


def spec_of(request: SpawnRequest, *, default_runner: str = "local") -> MissionSpec:
    """The typed spec of a request (after `within_parent`); raises if its shape is wrong."""
    task_kind(request)  # raises if its shape is wrong
    runner = request.runner or default_runner
    task = (
        CommandTask(argv=list(request.command))
        if request.command is not None
        else ClaudeTask.model_validate(
            {name: getattr(request, name) for name in ClaudeTask.model_fields if name != "kind"}
        )
    )
    return MissionSpec(
        task=task,
        env=request.env,
        timeout_s=request.timeout_s,
        activity_timeout_s=request.activity_timeout_s,
        detach=request.detach,
        remember_result=request.remember_result,
        workspace="worktree" if request.isolation in ("worktree", "parent") else "plain",
        worktree=_worktree_of(request),
        restart=RestartSpec(mode=request.restart, max_restarts=request.max_restarts, window_s=request.restart_window_s),
        runner=runner,
        resources=placement_of(request.resources, runner),
    )


def _worktree_of(request: SpawnRequest) -> WorktreeSpec | None:
    if request.isolation == "worktree":
        return WorktreeSpec(base=request.base, cleanup=request.worktree_cleanup or "remove-if-clean")
    given = [name for name in ("base", "worktree_cleanup") if getattr(request, name) is not None]
    if given and request.isolation == "parent":
        raise InvalidRequest(
            f"{', '.join(given)} apply to a worktree of its own, and this child works in its isolated parent's: "
            "ask for isolation='worktree'"
        )
    if given:
        raise InvalidRequest(f"{', '.join(given)} only apply with isolation='worktree'")
    return WorktreeSpec(shared=True) if request.isolation == "parent" else None


def placement_of(resources: dict[str, float], runner: str) -> dict[str, float]:
    """What a mission asks of its machine, checked: only a runner that places children takes any."""
    if resources and runner == "local":
        raise InvalidRequest('resources place a mission on a node of a cluster: give them with runner="ray"')
    for key, amount in resources.items():
        if not key or not math.isfinite(amount) or amount <= 0:
            raise InvalidRequest(f'resources: {key!r}: {amount} must be a positive amount, e.g. {{"GPU": 1}}')
    return dict(resources)


def task_kind(request: SpawnRequest) -> str:
    """Which kind of task the request is ("claude" or "command"); raises if its shape is wrong."""
    has_prompt, has_command = request.prompt is not None, request.command is not None
    if (has_prompt and has_command) or not (has_prompt or has_command or request.session):
        raise InvalidRequest("give exactly one of `prompt` (a Claude task) or `command` (an argv list to run)")
    for key in request.env:
        if key.startswith("OVERMIND_") or not key or "=" in key:
            raise InvalidRequest(f"env: {key!r} cannot be set (names with '=' and OVERMIND_* are reserved)")
    if request.command is not None:
        if not request.command or not request.command[0]:
            raise InvalidRequest('`command` must be a non-empty argv list, e.g. ["pytest", "-q"]')
        claude_only = [name for name in _CLAUDE_ONLY if getattr(request, name) is not None]
        claude_only += [name for name in _CLAUDE_ONLY_FLAGS if getattr(request, name)]
        if claude_only:
            raise InvalidRequest(f"{', '.join(claude_only)} only apply to Claude tasks (`prompt`), not `command`")
        return "command"
    if request.prompt is not None and not request.prompt.strip():
        raise InvalidRequest("`prompt` is empty: say what the child should do")
    return "claude"


def within_parent(
    request: SpawnRequest,
    parent: MissionRow | None,
    settings: Settings,
    *,
    siblings: int,
    subtree_cost: float,
    grantor: MissionRow | None = None,
) -> SpawnRequest:
    """The request checked against the limits, with what it did not ask for inherited from its parent.

    `siblings` is how many children the parent has started so far. `grantor` is the mission
    whose privileges the child inherits (the parent, unless the parent grants nothing of its
    own, as a blueprint run does); `subtree_cost` what the grantor's whole subtree has cost,
    which its budget caps.
    """
    if request.permission_mode == "bypassPermissions" and not settings.allow_bypass:
        raise Refused(
            "permission_mode bypassPermissions is refused: the server's configuration does not allow it "
            "(OVERMIND_ALLOW_BYPASS); use acceptEdits with allowed_tools instead"
        )
    if parent is None:
        return request
    if parent.spec.workspace == "worktree":
        # Isolation never grows weaker down the tree: a child works in its parent's worktree, or its own.
        if request.isolation == "none":
            raise Refused(
                f"isolation='none': {parent.name!r} works in an isolated worktree, and so do its children "
                "(in its worktree by default, or in one of their own with isolation='worktree')"
            )
        if request.isolation is None:
            request = request.model_copy(update={"isolation": "parent"})
    room_for_child(parent, settings, siblings=siblings)
    grantor = parent if grantor is None else grantor
    if not isinstance(grantor.spec.task, ClaudeTask):
        return request
    granted = {**grantor.spec.task.model_dump(), "timeout_s": grantor.spec.timeout_s}
    inherited: dict[str, Any] = {}
    if granted.get("allowed_tools"):
        extra = set(request.allowed_tools) - set(granted["allowed_tools"])
        if extra:
            raise Refused(f"allowed_tools {sorted(extra)} go beyond the parent's {granted['allowed_tools']}")
        inherited["allowed_tools"] = request.allowed_tools or list(granted["allowed_tools"])
    if granted.get("disallowed_tools"):
        inherited["disallowed_tools"] = sorted({*granted["disallowed_tools"], *request.disallowed_tools})
    parent_mode = granted.get("permission_mode")
    if request.permission_mode is None:
        inherited["permission_mode"] = parent_mode
    elif MODE_RANK[request.permission_mode] > MODE_RANK[parent_mode or "default"]:
        raise Refused(f"permission_mode {request.permission_mode} is more than the parent's {parent_mode or 'default'}")
    if granted.get("max_turns") is not None:
        if request.max_turns is not None and request.max_turns > granted["max_turns"]:
            raise Refused(f"max_turns {request.max_turns} is more than the parent's {granted['max_turns']}")
        inherited["max_turns"] = request.max_turns or granted["max_turns"]
    if granted.get("max_budget_usd") is not None:
        left = round(granted["max_budget_usd"] - subtree_cost, 6)
        if left <= 0:
            raise Refused(f"budget exhausted: {grantor.name!r}'s subtree has spent ${subtree_cost:.4f} of its budget")
        if request.max_budget_usd is not None and request.max_budget_usd > left:
            raise Refused(f"max_budget_usd {request.max_budget_usd} is more than the parent's remaining ${left:.4f}")
        inherited["max_budget_usd"] = request.max_budget_usd or left
    if granted.get("timeout_s") and grantor.started_at:
        left = granted["timeout_s"] - (time.time() - grantor.started_at)
        if request.timeout_s is None or request.timeout_s > left:
            inherited["timeout_s"] = max(left, 0.001)
    return request.model_copy(update=inherited)


def room_for_child(parent: MissionRow | None, settings: Settings, *, siblings: int) -> None:
    """Refuses a child that would go past the tree's depth or its parent's fan-out limit."""
    if parent is None:
        return
    if parent.depth + 1 >= settings.max_depth:
        raise Refused(
            f"depth limit: {parent.name!r} is at depth {parent.depth} and max_depth is "
            f"{settings.max_depth}; do this work yourself instead of delegating it"
        )
    if siblings >= settings.max_children:
        raise Refused(
            f"fan-out limit: {parent.name!r} already has {siblings} children (max_children {settings.max_children})"
        )
