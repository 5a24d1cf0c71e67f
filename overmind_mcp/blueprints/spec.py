"""A blueprint: agents as the nodes of a DAG, in TOML.

The original's schema is accepted as it is: `[agents.<name>]` with `command`, `provider`,
`type`, `cwd`, `model`, `restart` and `depends_on` (a `claude` agent's `command` is its
prompt; any other agent's string `command` runs under `sh -c`). A node may also have a
`prompt`, an argv `command`, every option `spawn` takes, `args`, `output_schema`,
`foreach` and `max_parallel`, `when`, `retry` and `on_failure`. Blueprint-wide: `name`,
`description`, `max_parallel`, `[budget]`, `[vars]` (defaults of the run-time variables)
and `[defaults]` (options every node starts from).

These models hold a blueprint that has passed validation (validate.py turns text into one,
or into every error at once).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from overmind_mcp.models import SpawnRequest

FailureKind = Literal["failed", "timed_out", "lost", "invalid_output", "stopped", "killed"]
"""How a node's attempt can go wrong: its mission's end status, or an answer that broke its output_schema."""
OnFailure = Literal["fail", "skip", "continue"]

DEFAULT_RETRY_ON: tuple[FailureKind, ...] = ("failed", "timed_out", "lost", "invalid_output")
SCHEMA_ATTEMPTS = 3
"""Attempts a node with an output_schema and no `retry` of its own gets for an answer that breaks it."""

# Spawn options that a node sets by other keys, or that a node cannot have.
_NOT_NODE_OPTIONS = frozenset({"prompt", "command", "name", "parent", "session", "resume"})
SPAWN_OPTIONS: frozenset[str] = frozenset(SpawnRequest.model_fields) - _NOT_NODE_OPTIONS
"""Every `spawn` option is a node key: a new spawn option is a node key at once."""


class Retry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=1, ge=1, le=100)
    backoff_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    on: tuple[FailureKind, ...] = DEFAULT_RETRY_ON

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt` (2, 3…): doubling from backoff_s, capped."""
        return min(self.backoff_s * 2 ** max(attempt - 2, 0), self.backoff_max_s)


class Budget(BaseModel):
    """What the whole run may spend; the run ends (failed) once one is spent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    usd: float | None = Field(default=None, gt=0)
    turns: int | None = Field(default=None, ge=1)
    time_s: float | None = Field(default=None, gt=0)


class Node(BaseModel):
    """One agent of the DAG: a Claude task (`prompt`) or a command (argv, or a string for `sh -c`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    prompt: str | None = None
    command: list[str] | None = None
    shell: str | None = Field(default=None, description="a string `command`, run as `sh -c` exactly as written")
    args: list[str] = []
    depends_on: list[str] = []
    output_schema: dict[str, Any] | None = None
    foreach: str | list[Any] | None = None
    max_parallel: int | None = Field(default=None, ge=1)
    when: str | None = None
    retry: Retry | None = None
    on_failure: OnFailure = "fail"
    # The spawn options it was given (checked against SpawnRequest).
    options: dict[str, Any] = {}

    @property
    def is_claude(self) -> bool:
        return self.prompt is not None

    def retry_policy(self) -> Retry:
        if self.retry is not None:
            return self.retry
        if self.output_schema is not None:
            return Retry(attempts=SCHEMA_ATTEMPTS, backoff_s=0.0, on=("invalid_output",))
        return Retry()


class Blueprint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str | None = None
    max_parallel: int | None = Field(default=None, ge=1)
    budget: Budget = Budget()
    vars: dict[str, Any] = {}
    nodes: dict[str, Node]
