"""What the memory tools answer with. Timestamps are ISO 8601 UTC, to the second."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def _nullable_as_type_list(schema: dict[str, Any]) -> None:
    """`{"anyOf": [{"type": "string"}, {"type": "null"}]}` becomes `{"type": ["string", "null"]}`.

    The same constraint, and the form JSON Schema validators check fastest: the Python
    MCP client validates every result against the output schema, and `anyOf` costs it
    about as much as the rest of a ten-hit recall.
    """
    for field in schema.get("properties", {}).values():
        choices = field.get("anyOf", [])
        if choices and all(choice.keys() == {"type"} and isinstance(choice["type"], str) for choice in choices):
            del field["anyOf"]
            field["type"] = [choice["type"] for choice in choices]


class _Model(BaseModel):
    model_config = ConfigDict(json_schema_extra=_nullable_as_type_list)


class Memory(_Model):
    id: int
    namespace: str
    key: str | None
    content: str
    tags: list[str]
    mission_id: str | None = Field(
        description="the mission that last wrote it; null for the top-level client, or hidden from a mission of "
        "another tree"
    )
    mission_name: str | None
    session_id: str | None = Field(description="that mission's Claude session (hidden like mission_id)")
    created_at: str
    updated_at: str


class Remembered(Memory):
    replaced: bool = Field(description="true when a memory with this key existed and now holds this content")


class RecallHit(Memory):
    snippet: str = Field(description="the best-matching passage, matches in **bold**")
    score: float | None = Field(description="BM25 relevance, higher is better; null when not searching")
    content_truncated: bool = Field(
        default=False, description="content was cut; recall with the key, or read the memory's resource, for all of it"
    )


class RecallResult(_Model):
    hits: list[RecallHit]
    mode: Literal["all_terms", "any_term", "key", "recent"] = Field(
        description="all_terms: every word matched; any_term: none did all at once, so these match some words, "
        "best first; key: exact key lookup; recent: no query, newest first"
    )
    expression: str | None = Field(default=None, description="the full-text expression the query was read as")
    namespaces: list[str] = Field(description="the namespaces searched")


class ForgetResult(_Model):
    forgotten: Memory
