"""What a mission is asked to do, as the supervisor keeps it: common fields plus the task of one provider.

The spawn tool takes a flat request (models.SpawnRequest); once checked against the
limits it becomes a `MissionSpec`, the one typed shape that the supervisor, the store and
every provider read. Each default is written here, once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RestartMode = Literal["never", "on-failure", "always"]
PermissionMode = Literal["acceptEdits", "auto", "bypassPermissions", "default", "dontAsk", "manual", "plan"]
PermissionPrompts = Literal["host", "none"]
"""Who answers a child's permission prompts: the host (a --permission-prompt-tool), or nobody (denied)."""
ApprovalMode = Literal["escalate", "policy"]
"""What happens to a tool call the policy does not allow: it goes up to someone who may (escalate), or is
denied (policy: for runs nobody attends)."""

DEFAULT_MAX_RESTARTS = 3
DEFAULT_RESTART_WINDOW_S = 300.0


class RestartSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: RestartMode = "never"
    max_restarts: int = Field(default=DEFAULT_MAX_RESTARTS, ge=0)
    window_s: float = Field(default=DEFAULT_RESTART_WINDOW_S, gt=0)


WorktreeCleanup = Literal["remove-if-clean", "archive", "keep"]


class WorktreeSpec(BaseModel):
    """A git worktree of its own: made from `base` (default: HEAD where it starts, or its isolated parent's
    branch), ended by `cleanup`. `shared`: a child of an isolated mission working in its parent's worktree."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: str | None = None
    cleanup: WorktreeCleanup = "remove-if-clean"
    shared: bool = False


class PermissionRules(BaseModel):
    """A child's permission policy in Claude Code's rule syntax: deny wins, then ask, then allow."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow: list[str] = []
    deny: list[str] = []
    ask: list[str] = []


class ClaudeTask(BaseModel):
    """A `claude -p` child: one task, or a live session that takes turns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["claude"] = "claude"
    prompt: str | None = None
    model: str | None = None
    allowed_tools: list[str] = []
    disallowed_tools: list[str] = []
    permission_mode: PermissionMode | None = None
    permission_prompts: PermissionPrompts | None = None
    max_turns: int | None = None
    max_budget_usd: float | None = None
    append_system_prompt: str | None = None
    session: bool = False
    resume: str | None = None
    delegate: bool | None = None
    recall_into_prompt: bool = False
    # The JSON Schema its final answer must match (the CLI's --json-schema).
    json_schema: dict[str, Any] | None = None
    permissions: PermissionRules | None = None
    approvals: ApprovalMode = "escalate"
    approval_timeout_s: float | None = None


class CommandTask(BaseModel):
    """Any program, as an argv list (never through a shell)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["command"] = "command"
    argv: list[str]


class BlueprintTask(BaseModel):
    """A pipeline of missions (its children) run by the server itself, from a blueprint's TOML text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["blueprint"] = "blueprint"
    blueprint: str
    source: str | None = None
    vars: dict[str, Any] = {}
    # The run's budget in dollars caps its whole subtree, as a Claude task's does.
    max_budget_usd: float | None = None


AnyTask = ClaudeTask | CommandTask | BlueprintTask
Task = Annotated[AnyTask, Field(discriminator="kind")]


class MissionSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    task: Task
    env: dict[str, str] = {}
    timeout_s: float | None = None
    activity_timeout_s: float | None = None
    detach: bool = False
    remember_result: bool = False
    restart: RestartSpec = RestartSpec()
    runner: str = "local"
    # What it asks of the machine it runs on (runners that place children: ray); Ray's names.
    resources: dict[str, float] = {}
    workspace: str = "plain"
    worktree: WorktreeSpec | None = None

    @property
    def session(self) -> bool:
        return isinstance(self.task, ClaudeTask) and self.task.session

    @property
    def max_budget_usd(self) -> float | None:
        return self.task.max_budget_usd if isinstance(self.task, ClaudeTask | BlueprintTask) else None

    @property
    def max_turns(self) -> int | None:
        return self.task.max_turns if isinstance(self.task, ClaudeTask) else None

    @model_validator(mode="before")
    @classmethod
    def _from_flat_options(cls, data: Any) -> Any:
        """Missions stored before specs had a shape: their options were the flat spawn request."""
        if not isinstance(data, dict) or "task" in data:
            return data
        flat = dict(data)
        common = {key: flat.pop(key) for key in _COMMON if key in flat}
        restart = {new: flat.pop(old) for old, new in _RESTART.items() if old in flat}
        for dropped in ("name", "parent", "cwd"):
            flat.pop(dropped, None)
        if "command" in flat:
            task: dict[str, Any] = {"kind": "command", "argv": flat.pop("command")}
        else:
            task = {"kind": "claude", **flat}
        return {**common, "task": task, "restart": restart}


_COMMON = ("env", "timeout_s", "activity_timeout_s", "detach", "remember_result", "runner", "workspace", "worktree")
_RESTART = {"restart": "mode", "max_restarts": "max_restarts", "restart_window_s": "window_s"}
