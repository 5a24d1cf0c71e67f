"""What crosses the MCP boundary: tool inputs that need a shape, and every tool's answer.

Claude Code shows the model only `structuredContent`, so each answer is complete,
compact and readable on its own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from overmind_mcp.core.spec import (
    DEFAULT_MAX_RESTARTS,
    DEFAULT_RESTART_WINDOW_S,
    ApprovalMode,
    PermissionMode,
    PermissionPrompts,
    PermissionRules,
    RestartMode,
    WorktreeCleanup,
)
from overmind_mcp.core.status import LIVE, Status

__all__ = ["LIVE", "Status"]

SessionState = Literal["idle", "working", "attached"]


class SpawnRequest(BaseModel):
    """Everything `spawn` accepts; validated again by the supervisor against the server's state."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = None
    command: list[str] | None = None
    name: str | None = None
    parent: str | None = None
    cwd: str | None = None
    model: str | None = None
    allowed_tools: list[str] = []
    disallowed_tools: list[str] = []
    permission_mode: PermissionMode | None = None
    # Unattended runs (quests, ritual fires) set "none"; a policy that answers prompts sets "host".
    permission_prompts: PermissionPrompts | None = None
    max_turns: int | None = Field(default=None, ge=1)
    max_budget_usd: float | None = Field(default=None, gt=0)
    timeout_s: float | None = Field(default=None, gt=0)
    append_system_prompt: str | None = None
    env: dict[str, str] = {}
    detach: bool = False
    delegate: bool | None = None
    session: bool = False
    resume: str | None = None
    restart: RestartMode = "never"
    max_restarts: int = Field(default=DEFAULT_MAX_RESTARTS, ge=0)
    restart_window_s: float = Field(default=DEFAULT_RESTART_WINDOW_S, gt=0)
    activity_timeout_s: float | None = Field(default=None, gt=0)
    recall_into_prompt: bool = False
    remember_result: bool = False
    # None: as the parent works (in its worktree when it has one, else plainly). "parent" is what a
    # child of an isolated mission gets by default: its parent's worktree.
    isolation: Literal["none", "worktree", "parent"] | None = None
    base: str | None = None
    worktree_cleanup: WorktreeCleanup | None = None
    json_schema: dict[str, Any] | None = None
    permissions: PermissionRules | None = None
    approvals: ApprovalMode = "escalate"
    approval_timeout_s: float | None = Field(default=None, gt=0)
    runner: Literal["local", "ray"] | None = None
    resources: dict[str, float] = {}


class Spawned(BaseModel):
    id: str
    name: str
    status: Status
    parent: str | None
    pid: int | None


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class Progress(BaseModel):
    """What a running mission has done so far."""

    turns: int
    tool_calls: int
    last_tool: str | None
    last_text: str | None
    cost_usd: float | None
    api_retries: int
    output_lines: int
    idle_s: float = Field(description="seconds since the mission last printed anything")


class WorktreeChange(BaseModel):
    """What an isolated mission changed on its branch, and what its worktree still holds."""

    branch: str
    base: str
    commits_ahead: int
    files: int
    insertions: int
    deletions: int
    uncommitted: int = Field(description="changed tracked files not committed")
    untracked: int = Field(description="new files not committed")
    state: str = Field(description="active, waiting (children work in it), kept, archived, removed, discarded, missing")
    note: str | None = None
    path: str


class WorktreeListing(BaseModel):
    """One worktree lease as `overmind worktrees` lists it."""

    mission_id: str
    name: str
    mission_status: Status | None = Field(description="null when no mission of that id is stored")
    repo: str
    change: WorktreeChange


class MergeResult(BaseModel):
    merged: bool
    into: str
    strategy: str
    commit: str | None = None
    conflicts: list[str] = Field(default=[], description="paths that conflict; nothing was changed")
    note: str
    checkouts: list[str] = Field(default=[], description="checkouts of the target brought along, local work kept")


class ConflictPair(BaseModel):
    a: str
    b: str
    paths: list[str]


class ConflictsResult(BaseModel):
    conflicts: list[ConflictPair]


class DiscardResult(BaseModel):
    id: str
    note: str


Answerer = Literal["policy", "parent", "ancestor", "client", "elicitation", "person", "timeout", "ended"]


class ApprovalRequest(BaseModel):
    """A child's tool call waiting for approve."""

    id: str
    mission: str
    name: str
    tool: str
    input: dict[str, Any]
    why: str = Field(description="why its own policy did not decide it")
    waited_s: float
    expires_in_s: float = Field(description="then denied")


class Approvals(BaseModel):
    requests: list[ApprovalRequest]


class ApprovalOutcome(BaseModel):
    id: str
    mission: str
    name: str
    decision: Literal["allow", "deny"]
    by: Answerer
    remembered: bool = False


class ApprovalDecision(BaseModel):
    id: str
    call: str
    decision: Literal["allow", "deny"]
    by: Answerer
    by_name: str | None = None
    rule: str | None = None
    message: str | None = None
    edited: bool = False
    latency_ms: float
    at: str


class MissionResult(BaseModel):
    id: str
    name: str
    status: Status
    exit_code: int | None
    end_reason: str | None = Field(default=None, description="why it ended, in a few words")
    is_error: bool | None = Field(description="the CLI's own verdict on its final answer; null while running")
    text: str | None = Field(description="the final answer (for a command: the end of its output)")
    text_truncated: bool = False
    errors: list[str] = []
    session_id: str | None = None
    cwd: str
    cost_usd: float | None = None
    duration_ms: int | None = None
    num_turns: int | None = None
    usage: Usage | None = None
    permission_denials: list[dict[str, Any]] = []
    output: Any = Field(
        default=None, description="the answer as JSON: a json_schema task's, or each node of a blueprint run"
    )
    started_at: str | None = None
    ended_at: str | None = None
    restarts: int = 0
    node: str | None = Field(default=None, description="the Ray node it runs on (address, node id); null: the server's")
    session_state: SessionState | None = Field(
        default=None, description="for a live session: idle, working, or attached (a person holds it)"
    )
    progress: Progress | None = Field(default=None, description="only while the mission is running")
    change: WorktreeChange | None = Field(default=None, description="with isolation=worktree: its branch's change")
    approvals: list[ApprovalDecision] = []


class MissionSummary(BaseModel):
    id: str
    name: str
    status: Status
    parent: str | None
    depth: int
    age_s: float
    turns: int
    cost_usd: float | None
    tree_cost_usd: float | None = Field(default=None, description="with tree=true: its cost plus its subtree's")
    doing: str | None = Field(default=None, description="the latest thing a running mission did")
    queue_position: int | None = Field(default=None, description="while queued: 1 starts next")
    node: str | None = Field(default=None, description="the Ray node it runs on; null: the server's machine")
    session_state: SessionState | None = None


class WaitResult(BaseModel):
    done: list[MissionResult]
    pending: list[MissionSummary]
    timed_out: bool = Field(description="true when the timeout passed first; wait again to keep waiting")
    needs_approval: list[ApprovalRequest] = []


class TurnResult(BaseModel):
    """One turn of a live session: its answer once done, else where it stands."""

    id: str
    name: str
    turn: int = Field(description="0 for the session's first turn, 1 for the next…")
    state: Literal["queued", "working", "done", "interrupted", "abandoned"]
    queue_position: int | None = None
    text: str | None = None
    is_error: bool | None = None
    errors: list[str] = []
    cost_usd: float | None = Field(default=None, description="the session's cost so far")
    session_id: str | None = None
    timed_out: bool = False


class AttachGrant(BaseModel):
    """A live session parked for a person (`overmind attach`): theirs until they release it."""

    id: str
    name: str
    session_id: str
    cwd: str


class Released(BaseModel):
    """A held session back with its server: its headless process runs again (or the mission has ended)."""

    id: str
    name: str
    status: Status
    pid: int | None
    session_id: str | None


class KillOutcome(BaseModel):
    id: str
    name: str
    status: Status
    how: str = Field(description="the signal that ended it, or why nothing was sent")


class KillResult(BaseModel):
    ended: list[KillOutcome]


class Totals(BaseModel):
    missions: int
    running: int
    cost_usd: float


class PsResult(BaseModel):
    missions: list[MissionSummary]
    totals: Totals


class LogPage(BaseModel):
    id: str
    name: str
    status: Status
    lines: list[str] = []
    events: list[dict[str, Any]] = []
    cursor: int
    next_cursor: int = Field(description="pass as `cursor` to read on")
    more: bool = Field(
        description="more output is there now: read on with next_cursor (a running mission may add more later)"
    )


class AdmissionLimit(BaseModel):
    max_concurrent: int = Field(description="missions that may hold a process at once; more wait in a queue")
    source: Literal["setting", "memory"] = Field(
        description="OVERMIND_MAX_CONCURRENT, or the memory available at start-up over the per-child estimate"
    )
    memory_available_mb: int
    child_rss_estimate_mb: int


class ServerStatus(BaseModel):
    version: str
    server_id: str
    uptime_s: float
    missions_by_status: dict[str, int]
    children_running: int
    total_cost_usd: float
    state_dir: str
    claude_bin: str
    admission: AdmissionLimit
    queued: int = Field(description="spawns waiting for a free slot")
