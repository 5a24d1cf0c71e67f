"""What a spawn request may ask for: its shape, the server's limits, and its ancestors' privileges.

Privilege never grows down the tree, whatever kinds of mission stand in it: a child
inherits what the nearest Claude mission above it may do (tools, permission mode, turns,
working directory) and what every mission above it has left (budget, time), and may ask
for less, never more; asking for more is refused with the reason, not quietly cut. A
mission's own spawns are held to its own permissions too: it may start a command only
if its Bash tool could run that program (see privileges.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from overmind_mcp.core.spec import ClaudeTask, CommandTask, MissionSpec, RestartSpec, WorktreeSpec
from overmind_mcp.errors import InvalidRequest, Refused
from overmind_mcp.models import SpawnRequest
from overmind_mcp.permissions.rules import check_rules
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision import inputs, privileges

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
    "permissions",
    "approval_timeout_s",
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
    """Which kind of task the request is ("claude" or "command"); raises if its shape or its text is wrong."""
    has_prompt, has_command = request.prompt is not None, request.command is not None
    if (has_prompt and has_command) or not (has_prompt or has_command or request.session):
        raise InvalidRequest("give exactly one of `prompt` (a Claude task) or `command` (an argv list to run)")
    inputs.check_spawn(request)
    if request.command is not None:
        if not request.command or not request.command[0]:
            raise InvalidRequest('`command` must be a non-empty argv list, e.g. ["pytest", "-q"]')
        claude_only = [name for name in _CLAUDE_ONLY if getattr(request, name) is not None]
        claude_only += [name for name in _CLAUDE_ONLY_FLAGS if getattr(request, name)]
        claude_only += ["approvals"] if request.approvals != "escalate" else []
        if claude_only:
            raise InvalidRequest(f"{', '.join(claude_only)} only apply to Claude tasks (`prompt`), not `command`")
        return "command"
    if request.prompt is not None and not request.prompt.strip():
        raise InvalidRequest("`prompt` is empty: say what the child should do")
    if request.permissions is not None:
        for effect in ("allow", "deny", "ask"):
            check_rules(getattr(request.permissions, effect), f"permissions.{effect}")
    return "claude"


def nearest_claude(chain: Sequence[MissionRow]) -> tuple[MissionRow, ClaudeTask] | None:
    """The first Claude mission of `chain` (a parent, then its ancestors), and its task: whose permissions
    rule below it."""
    for row in chain:
        if isinstance(row.spec.task, ClaudeTask):
            return row, row.spec.task
    return None


def within_parent(
    request: SpawnRequest,
    chain: Sequence[MissionRow],
    settings: Settings,
    *,
    siblings: int,
    spent: Mapping[str, float],
    by_mission: bool,
) -> SpawnRequest:
    """The request checked against the limits, with what it did not ask for inherited from above.

    `chain` is the new mission's parent, then the parent's ancestors up to the root (empty
    for a top-level mission); `siblings` is how many children the parent has started so far;
    `spent` what the subtree of each mission in the chain that has a budget has cost.
    `by_mission` says that a mission (not the top-level client) is asking.
    """
    if request.permission_mode == "bypassPermissions" and not settings.allow_bypass:
        raise Refused(
            "permission_mode bypassPermissions is refused: the server's configuration does not allow it "
            "(OVERMIND_ALLOW_BYPASS); use acceptEdits with allowed_tools instead"
        )
    if not chain:
        return request
    parent = chain[0]
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
    inherited: dict[str, Any] = {}
    # A command carries no tools, mode, turns or budget of its own (it is no agent, and costs
    # nothing): it is held to its own permissions below and to the time left above it.
    agent = request.command is None
    nearest = nearest_claude(chain)
    if nearest is not None:
        claude, task = nearest
        if agent:
            # Through a parent that grants nothing of its own (a command, a blueprint run).
            origin = "" if claude is parent else f" (what {claude.name}, the nearest Claude mission above, may do)"
            inherited |= _permissions(request, task, origin)
        if by_mission:
            _own_permissions(request, privileges.Grants.of(task))
    if agent:
        inherited |= _budget(request, chain, spent)
    inherited |= _time(request, chain)
    return request.model_copy(update=inherited)


def _permissions(request: SpawnRequest, granted: ClaudeTask, origin: str) -> dict[str, Any]:
    """Tools, permission mode and turns, inherited from the nearest Claude mission above."""
    grants = privileges.Grants.of(granted)
    inherited: dict[str, Any] = {}
    extra = [rule for rule in request.allowed_tools if not privileges.covers(grants, rule)]
    if extra:
        raise Refused(f"allowed_tools {extra} go beyond the parent's {list(grants.allowed)}{origin}")
    if grants.allowed:
        inherited["allowed_tools"] = request.allowed_tools or list(grants.allowed)
    if grants.denied:
        inherited["disallowed_tools"] = sorted({*grants.denied, *request.disallowed_tools})
    parent_mode = granted.permission_mode
    if request.permission_mode is None:
        inherited["permission_mode"] = parent_mode
    elif MODE_RANK[request.permission_mode] > MODE_RANK[parent_mode or "default"]:
        mode = parent_mode or "default"
        raise Refused(f"permission_mode {request.permission_mode} is more than the parent's {mode}{origin}")
    if granted.max_turns is not None:
        if request.max_turns is not None and request.max_turns > granted.max_turns:
            raise Refused(f"max_turns {request.max_turns} is more than the parent's {granted.max_turns}{origin}")
        inherited["max_turns"] = request.max_turns or granted.max_turns
    return inherited


def _own_permissions(request: SpawnRequest, grants: privileges.Grants) -> None:
    """A mission's spawn may not do what the mission's own tools could not."""
    if request.command is not None and not privileges.may_run(request.command, grants):
        line = privileges.command_line(request.command)
        raise Refused(
            f"command {line[:200]!r} is refused: your permissions ({grants.describe()}) would not let your own "
            f'Bash tool run it; it needs "Bash" or a rule such as "Bash({request.command[0][:100]}:*)"'
        )
    if not request.env:
        return
    redirecting = privileges.settings_variables(list(request.env))
    if redirecting:
        raise Refused(
            f"env: a mission may not set {redirecting} for a child: they decide where Claude Code reads its "
            "settings, permissions and credentials, or what code a process loads"
        )
    if not privileges.runs_anything(grants):
        raise Refused(
            f"env: your permissions ({grants.describe()}) do not let you run any program, and variables "
            "(PYTHONPATH, GIT_*, …) can make an allowed program run anything: leave env out"
        )


def _budget(request: SpawnRequest, chain: Sequence[MissionRow], spent: Mapping[str, float]) -> dict[str, Any]:
    """The tightest budget left to any mission above: a budget caps its whole subtree."""
    tightest: tuple[float, MissionRow] | None = None
    for row in chain:
        budget = row.spec.max_budget_usd
        if budget is not None:
            left = round(budget - spent.get(row.id, 0.0), 6)
            if tightest is None or left < tightest[0]:
                tightest = (left, row)
    if tightest is None:
        return {}
    left, holder = tightest
    if left <= 0:
        used = spent.get(holder.id, 0.0)
        raise Refused(f"budget exhausted: {holder.name!r}'s subtree has spent ${used:.4f} of its budget")
    if request.max_budget_usd is not None and request.max_budget_usd > left:
        raise Refused(f"max_budget_usd {request.max_budget_usd} is more than {holder.name!r}'s remaining ${left:.4f}")
    return {"max_budget_usd": request.max_budget_usd or left}


def _time(request: SpawnRequest, chain: Sequence[MissionRow]) -> dict[str, Any]:
    """The least time left to any mission above: a child may not outlive an ancestor's timeout_s."""
    now = time.time()
    tightest: tuple[float, MissionRow] | None = None
    for row in chain:
        timeout = row.spec.timeout_s
        if timeout:
            left = timeout - (now - row.started_at) if row.started_at else timeout
            if tightest is None or left < tightest[0]:
                tightest = (left, row)
    if tightest is None:
        return {}
    left, holder = tightest
    if left <= 0:
        raise Refused(f"no time left: {holder.name!r}'s timeout_s has passed")
    if request.timeout_s is not None and request.timeout_s > left:
        raise Refused(
            f"timeout_s {request.timeout_s:g} is more than the {left:.1f}s {holder.name!r} has left of its "
            "timeout_s; ask for at most that, or leave timeout_s out to take what is left"
        )
    return {"timeout_s": request.timeout_s or left}


def check_cwd(requested: str | None, chain: Sequence[MissionRow]) -> None:
    """A child under a Claude mission may ask only for a directory inside that mission's own.

    The directory is part of what its permissions (edits, reads) were granted for. What
    the workspace then makes of the request is the server's own doing, not the caller's.
    """
    nearest = nearest_claude(chain)
    if requested is None or nearest is None:
        return
    claude = nearest[0]
    base = Path(chain[0].cwd)
    try:
        cwd = Path(requested).expanduser()
        cwd = (cwd if cwd.is_absolute() else base / cwd).resolve()
        allowed = Path(claude.cwd).resolve()
    except (OSError, RuntimeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidRequest(f"cwd {requested[:300]!r} cannot be used: {reason}") from None
    if not cwd.is_relative_to(allowed):
        raise Refused(
            f"cwd {str(cwd)[:300]!r} is outside {str(allowed)[:300]!r}, the working directory of "
            f"{claude.name!r}: a child works inside its Claude ancestor's directory"
        )


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
