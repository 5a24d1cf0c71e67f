"""The requests the `overmind` command sends to the server that owns a session (their answers are in models.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttachRequest(_Request):
    id: str = Field(description="the session's mission id or name")


class ReleaseRequest(_Request):
    id: str


class SendRequest(_Request):
    id: str
    message: str
