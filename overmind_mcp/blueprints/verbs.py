"""The blueprint verb of the control mailbox (see overmind_mcp/control/): `overmind apply` through a live server."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from overmind_mcp.blueprints.launch import RunStarted
from overmind_mcp.control.verbs import Verb


class ApplyRequest(BaseModel):
    """A blueprint to run: its text (the console reads the file; the server may not share its cwd) and its path."""

    model_config = ConfigDict(extra="forbid")

    toml: str
    source: str | None = None
    vars: dict[str, Any] = {}


APPLY: Verb[ApplyRequest, RunStarted] = Verb("apply", ApplyRequest, RunStarted)
