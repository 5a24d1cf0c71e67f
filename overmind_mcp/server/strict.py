"""Tools that refuse the arguments they do not take, by name.

The SDK builds each tool's argument model from its signature and, by pydantic's default,
drops any argument it does not know: `spawn(max_budget=1)` for `max_budget_usd` would run
with no budget at all, and say nothing. Here each tool's argument model refuses unknown
arguments instead, names them and the nearest argument the tool does take, and its input
schema says so (`additionalProperties: false`).
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp_types import ToolAnnotations
from pydantic import ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from overmind_mcp.server.schema import compact, compact_output


def strict_tool(fn: Callable[..., Awaitable[Any]], *, annotations: ToolAnnotations, structured: bool = True) -> Tool:
    """The tool for `fn` (with structured output unless told otherwise) that refuses arguments it does not know."""
    tool = Tool.from_function(fn, annotations=annotations, structured_output=structured)
    strict = _refusing_unknown(tool.name, tool.fn_metadata.arg_model)
    output = tool.fn_metadata.output_schema
    metadata = tool.fn_metadata.model_copy(
        update={"arg_model": strict, "output_schema": compact_output(output) if output is not None else None}
    )
    schema = compact(strict.model_json_schema(by_alias=True))
    return tool.model_copy(update={"fn_metadata": metadata, "parameters": schema})


def _refusing_unknown(tool_name: str, model: type[ArgModelBase]) -> type[ArgModelBase]:
    known = sorted(field.alias or name for name, field in model.model_fields.items())

    class Strict(model):  # type: ignore[misc, valid-type]
        model_config = ConfigDict(extra="forbid", title=model.model_config.get("title") or model.__name__)

        @model_validator(mode="before")
        @classmethod
        def _only_known(cls, data: Any) -> Any:
            if isinstance(data, dict):
                unknown = [str(key) for key in data if key not in known]
                if unknown:
                    raise PydanticCustomError("unknown_argument", "{message}", {"message": _refusal(unknown, known)})
            return data

    Strict.__name__ = Strict.__qualname__ = model.__name__
    return Strict


def _refusal(unknown: list[str], known: list[str]) -> str:
    parts = []
    for name in unknown[:10]:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        parts.append(f"{name[:80]!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
    noun = "argument" if len(unknown) == 1 else "arguments"
    return f"unknown {noun} {', '.join(parts)}{more}: this tool takes {', '.join(known)}"
