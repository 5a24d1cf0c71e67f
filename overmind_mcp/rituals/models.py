"""What crosses the MCP boundary and the control mailbox for rituals and quests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from overmind_mcp.models import SpawnRequest, Status

CatchUp = Literal["latest", "none", "all"]
Overlap = Literal["forbid", "allow", "replace", "queue"]
FireState = Literal["claimed", "queued", "started", "skipped", "missed", "failed"]
"""What the scheduler did with a slot. `started` fires have a mission, whose status says the rest."""
FireStatus = Literal["starting", "waiting", "skipped", "missed", "not_started", "unknown"] | Status
Origin = Literal["terminal", "ritual"]

MAX_JITTER_S = 3600.0


class RitualSpec(BaseModel):
    """What `schedule` takes: when (cron, tz) and what (a spawn or a blueprint), and the firing policy."""

    model_config = ConfigDict(extra="forbid")

    name: str
    cron: str
    spawn: SpawnRequest | None = None
    blueprint: str | None = None
    tz: str | None = None
    catch_up: CatchUp = "latest"
    misfire_grace_s: float | None = Field(default=None, ge=0)
    overlap: Overlap = "forbid"
    jitter_s: float = Field(default=0.0, ge=0, le=MAX_JITTER_S)
    enabled: bool = True


class RitualRun(BaseModel):
    """One slot of a ritual and what became of it."""

    slot: str = Field(description="the scheduled instant, in the ritual's zone")
    status: FireStatus
    mission: str | None = Field(default=None, description="the run's mission id")
    name: str | None = None
    exit_code: int | None = None
    cost_usd: float | None = None
    duration_s: float | None = None
    late_s: float | None = Field(default=None, description="start time minus the scheduled instant (plus jitter)")
    reason: str | None = None


class Ritual(BaseModel):
    name: str
    cron: str
    tz: str
    spawn: dict[str, Any] | None = Field(default=None, description="what each run spawns (defaults left out)")
    blueprint: str | None = None
    catch_up: CatchUp
    misfire_grace_s: float | None
    overlap: Overlap
    jitter_s: float
    enabled: bool
    created_at: str
    next_fires: list[str] = Field(default=[], description="the next scheduled instants (none while paused)")
    last_runs: list[RitualRun] = Field(default=[], description="the latest fires, newest first")


class RitualList(BaseModel):
    rituals: list[Ritual]


class RitualName(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)


class Paused(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    paused: bool = True


class Unscheduled(BaseModel):
    name: str
    fires_kept: int = Field(description="runs that were already started keep running and stay in ps")


class History(BaseModel):
    name: str
    runs: list[RitualRun] = Field(description="newest first")


class QuestRequest(BaseModel):
    """A one-shot run from outside a session (the terminal): a spawn, with its provenance recorded."""

    model_config = ConfigDict(extra="forbid")

    spawn: SpawnRequest


class Quest(BaseModel):
    mission: str
    name: str
    origin: Origin
    ritual: str | None = None
    slot: str | None = None
    status: Status | Literal["unknown"]
    exit_code: int | None = None
    cost_usd: float | None = None
    duration_s: float | None = None
    created_at: str


class QuestList(BaseModel):
    quests: list[Quest]
