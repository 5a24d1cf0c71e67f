"""What the console may ask a live server to do: each verb names its payload and its answer.

This module is light on purpose (models only, no supervisor): the console imports it to
build and read requests, the server to check and answer them, with the same types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from overmind_mcp.models import Spawned, SpawnRequest, TurnResult

P = TypeVar("P", bound=BaseModel)
A = TypeVar("A", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Verb(Generic[P, A]):
    """A request the console sends (`payload`) and what the server answers (`answer`)."""

    name: str
    payload: type[P]
    answer: type[A]


class SendRequest(BaseModel):
    """A live session's next turn, as `overmind send` asks for it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    message: str
    wait: bool = False
    timeout_s: float = Field(default=120.0, gt=0, le=3600)


SPAWN: Verb[SpawnRequest, Spawned] = Verb("spawn", SpawnRequest, Spawned)
SEND: Verb[SendRequest, TurnResult] = Verb("send", SendRequest, TurnResult)
