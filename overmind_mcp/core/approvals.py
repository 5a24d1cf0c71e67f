"""A permission answer as a child's CLI receives it: allow (maybe with an edited input) or deny with a reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PermissionAnswer:
    allow: bool
    # On allow: the input the tool runs with instead of the one the model wrote.
    updated_input: dict[str, Any] | None = None
    # On deny: what the model reads as the tool's error.
    message: str | None = None
