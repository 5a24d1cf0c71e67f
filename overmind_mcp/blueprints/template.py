"""Templates: `{{ nodes.research.result }}`, `{{ nodes.plan.output.items }}`, `{{ vars.topic }}`, `{{ item }}`.

A reference is a dotted path (integer parts index lists: `items.0` or `items[0]`) from one
of the roots below; there are no filters and no code. A value that is not a string is put
in as compact JSON. Rendering happens per argv element, environment value or prompt, so a
value can never become part of a shell's command line: a string `command` is run exactly as
written, and reads template values from its `args` ($1, $2…) or its `env`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from overmind_mcp.errors import InvalidRequest

ROOTS = ("nodes", "vars", "item", "index", "attempt", "run")
NODE_FIELDS = ("result", "output", "status", "error", "cost_usd", "mission")
"""What a finished node offers: its final text, its answer as JSON, how it ended, why, its cost, its mission id."""
RUN_FIELDS = ("id", "name")

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*|\d+")


class TemplateError(InvalidRequest):
    """A reference that is malformed, or that names nothing at run time."""


@dataclass(frozen=True, slots=True)
class Ref:
    """One `{{ … }}`: its root and the path below it."""

    root: str
    path: tuple[str | int, ...]
    text: str

    @property
    def node(self) -> str | None:
        """The node it reads, for a `nodes.<name>…` reference."""
        return str(self.path[0]) if self.root == "nodes" and self.path else None


def parse_ref(expression: str) -> Ref:
    """A dotted path as a Ref; raises TemplateError if it is not one."""
    text = expression.strip()
    dotted = re.sub(r"\[(\d+)\]", r".\1", text)
    parts = dotted.split(".")
    if not text or not all(_PART.fullmatch(part) for part in parts):
        raise TemplateError(f"{{{{ {text} }}}} is not a reference: use a dotted path such as nodes.research.result")
    path = tuple(int(part) if part.isdigit() else part for part in parts[1:])
    return Ref(parts[0], path, text)


def refs(text: str) -> list[Ref]:
    """Every reference in `text`; raises TemplateError for a malformed one or an unclosed `{{`."""
    found = [parse_ref(match.group(1)) for match in _TAG.finditer(text)]
    if "{{" in _TAG.sub("", text):
        raise TemplateError("an opening {{ has no closing }}")
    return found


def has_refs(text: str) -> bool:
    return "{{" in text


def only_ref(text: str) -> Ref | None:
    """The reference when `text` is one `{{ … }}` and nothing else (its value keeps its type)."""
    match = _TAG.fullmatch(text.strip())
    return parse_ref(match.group(1)) if match else None


def resolve(ref: Ref, scope: Mapping[str, Any]) -> Any:
    """The value a reference names in `scope` (roots → values); raises TemplateError if it names nothing."""
    if ref.root not in scope:
        raise TemplateError(f"{{{{ {ref.text} }}}}: {ref.root} has no value here")
    value = scope[ref.root]
    walked = ref.root
    for part in ref.path:
        by_key = isinstance(value, Mapping) and isinstance(part, str) and part in value
        by_index = isinstance(value, list) and isinstance(part, int) and part < len(value)
        if by_key or by_index:
            value = value[part]
        else:
            raise TemplateError(f"{{{{ {ref.text} }}}}: {walked} has no {part!r} ({_describe(value)})")
        walked = f"{walked}.{part}"
    return value


def render(text: str, scope: Mapping[str, Any]) -> str:
    """`text` with each reference replaced by its value (strings as they are, anything else as JSON)."""
    return _TAG.sub(lambda match: as_text(resolve(parse_ref(match.group(1)), scope)), text)


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        keys = ", ".join(sorted(str(key) for key in value)[:12])
        return f"it has: {keys}" if keys else "it is empty"
    if isinstance(value, list):
        return f"it is a list of {len(value)}"
    if value is None:
        return "it is null"
    return f"it is {type(value).__name__} {as_text(value)[:60]!r}"
