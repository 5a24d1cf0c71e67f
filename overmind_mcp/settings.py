"""Server settings, read once from the environment (`OVERMIND_*`)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    home: Path = Field(default_factory=lambda: Path("~/.overmind").expanduser())
    """State directory: the database and every mission's output."""
    project_dir: Path | None = None
    """The project this server serves (the default memory namespace); else $CLAUDE_PROJECT_DIR, else the cwd."""
    claude_bin: str = "claude"
    """The Claude Code CLI to run: a name looked up on PATH, or a path."""
    kill_grace_s: float = Field(default=3.0, ge=0)
    """How long each gentle signal (SIGINT, then SIGTERM) gets before the next, harsher one."""
    tail_lines: int = Field(default=200, ge=1)
    """Readable output lines kept in memory per running mission; the full output is on disk."""
    wait_heartbeat_s: float = Field(default=10.0, gt=0)
    """How often `wait` reports progress when nothing changes."""
    max_concurrent: int | None = Field(default=None, ge=1)
    """Missions that may hold a process at once; spawns beyond it wait in a queue, in order.
    Unset: as many children as fit in the memory available at start-up (supervision/capacity.py)."""
    child_rss_estimate_mb: int = Field(default=335, ge=1)
    """Resident memory one child is expected to hold, for the default `max_concurrent`."""
    max_depth: int = Field(default=4, ge=1)
    """Levels a mission tree may have: top-level missions are depth 0, so children of depth max_depth-1 are refused."""
    max_children: int = Field(default=50, ge=1)
    """Children one mission may start in its lifetime (retries included)."""
    allow_bypass: bool = False
    """Whether a spawn may ask for permission_mode bypassPermissions: only the server's own setting grants it."""
    orchestrate_max_children: int = Field(default=10, ge=1)
    """The orchestrate prompt's limit on children in total, retries included."""
    orchestrate_max_retries: int = Field(default=3, ge=0)
    restart_backoff_s: float = Field(default=1.0, ge=0)
    """Delay before a first restart; it doubles with each further one."""
    restart_backoff_max_s: float = Field(default=60.0, ge=0)
    restart_stable_s: float = Field(default=60.0, ge=0)
    """A run that lasts this long resets the backoff to its start."""
    retention_days: float = Field(default=30.0, ge=0)
    """Whole mission trees that ended longer ago than this are deleted at start-up (0 keeps all)."""
    approval_timeout_s: float = Field(default=300.0, gt=0)
    """How long a child's permission request waits for an answer before it is denied (a spawn may set its own)."""
    stdio: Literal["overmind", "sdk"] = "overmind"
    """The stdio transport: our own on the event loop, or the SDK's (for comparison)."""
    result_text_chars: int = Field(default=20_000, ge=100)
    """Longest final answer a result carries; longer ones are cut and say so."""
    fire_rituals: bool = True
    """Whether this server fires rituals (any server on the state directory may; one fires each slot)."""
    runner: Literal["local", "ray"] = "local"
    """Where a mission runs unless its spawn says: on this machine, or on a node of the Ray cluster."""
    ray_address: str | None = None
    """The Ray cluster's address (host:port of its GCS); unset: the cluster this machine is a node of."""
    ray_start_timeout_s: float = Field(default=60.0, gt=0)
    """How long a Ray mission may wait to be placed on a node and started (and the cluster to answer)."""

    @field_validator("runner", "ray_address")
    @classmethod
    def _ray_installed(cls, value: str | None) -> str | None:
        if value not in (None, "local") and importlib.util.find_spec("ray") is None:
            raise ValueError("the ray runner needs Ray on this server: pip install 'overmind-mcp[ray]'")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = environ.get(f"OVERMIND_{name.upper()}")
            if raw:
                values[name] = Path(raw).expanduser() if name in ("home", "project_dir") else raw
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(f"OVERMIND_{str(error['loc'][0]).upper()}: {error['msg']}" for error in exc.errors())
            raise ValueError(f"bad setting: {problems}") from None

    @property
    def project(self) -> Path:
        return self.project_dir or Path(os.environ.get("CLAUDE_PROJECT_DIR") or Path.cwd())

    @property
    def database_path(self) -> Path:
        return self.home / "overmind.db"

    @property
    def missions_dir(self) -> Path:
        return self.home / "missions"
