"""Input schemas as compact as their meaning allows: every byte of them is context the model pays for.

pydantic writes a title for the arguments' model and, for each optional argument, a title that
repeats its name, a `"default": null` and an `anyOf` with `{"type": "null"}`; across two dozen
tools that is a fifth of the surface.
An argument that is not required may already be left out, which is what the model should do, so
the schema drops all three; the argument model still takes an explicit null, as before.

Output schemas lose the titles and null defaults too, but keep their null alternatives: an answer
does carry nulls. Nothing reads their titles, and every child's CLI lists the tools when it starts.
"""

from __future__ import annotations

from typing import Any

_NULL = {"type": "null"}


def compact(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without titles, null defaults and null alternatives (a new dict; the input is left as it was)."""
    return _compact(schema, nulls=False)


def compact_output(schema: dict[str, Any]) -> dict[str, Any]:
    """An output `schema` without titles and null defaults (a new dict); it still allows every null it did."""
    return _compact(schema, nulls=True)


def _compact(node: Any, *, nulls: bool) -> Any:
    if isinstance(node, list):
        return [_compact(item, nulls=nulls) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _compact(prop, nulls=nulls) for name, prop in value.items()}
        elif key == "$defs" and isinstance(value, dict):
            out[key] = {name: _compact(definition, nulls=nulls) for name, definition in value.items()}
        elif (key == "title" and isinstance(value, str)) or (key == "default" and value is None):
            continue
        else:
            out[key] = _compact(value, nulls=nulls)
    if nulls:
        return out
    alternatives = out.get("anyOf")
    if isinstance(alternatives, list) and _NULL in alternatives:
        rest = [alternative for alternative in alternatives if alternative != _NULL]
        del out["anyOf"]
        if len(rest) == 1 and isinstance(rest[0], dict):
            out = {**rest[0], **out}
        elif rest:
            out["anyOf"] = rest
    return out
