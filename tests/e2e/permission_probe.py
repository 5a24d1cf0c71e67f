"""A stdio MCP server that stands where overmind's permission prompt tool stands, for pinning the CLI down.

Its tool `answer` records the arguments of every call (one JSON line per call in $PROBE_LOG) and
answers with the JSON in $PROBE_ANSWER ("SAME" as updatedInput: the input it was asked about),
as one text block; with PROBE_STRUCTURED=1, with structured content too. `visible` is an
ordinary tool, to see which of the two the model is offered.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, ConfigDict

server = MCPServer("probe")


def _answer(tool_input: dict[str, Any]) -> dict[str, Any]:
    answer = json.loads(os.environ["PROBE_ANSWER"])
    if answer.get("updatedInput") == "SAME":
        answer["updatedInput"] = tool_input
    return answer


def _record(arguments: dict[str, Any]) -> None:
    with Path(os.environ["PROBE_LOG"]).open("a") as log:
        log.write(json.dumps(arguments) + "\n")


if os.environ.get("PROBE_STRUCTURED") == "1":

    class Answer(BaseModel):
        model_config = ConfigDict(extra="allow")
        behavior: str

    @server.tool(structured_output=True)
    async def answer(tool_name: str, input: dict[str, Any], tool_use_id: str | None = None) -> Answer:
        _record({"tool_name": tool_name, "input": input, "tool_use_id": tool_use_id})
        return Answer(**_answer(input))

else:

    @server.tool(structured_output=False)
    async def answer(tool_name: str, input: dict[str, Any], tool_use_id: str | None = None) -> str:
        _record({"tool_name": tool_name, "input": input, "tool_use_id": tool_use_id})
        return json.dumps(_answer(input))


@server.tool()
async def visible() -> str:
    return "seen"


if __name__ == "__main__":
    server.run()
