"""The MCP tools: thin functions that read their arguments, call the supervisor, and return its answer.

Each module holds one tool. `ALL` is the order `tools/list` shows them in.
"""

from overmind_mcp.server.toolset import (
    approvals,
    approve,
    blueprint_run,
    blueprint_validate,
    conflicts,
    discard,
    forget,
    interrupt,
    kill,
    logs,
    merge,
    permission_prompt,
    ps,
    recall,
    remember,
    result,
    schedule,
    schedules,
    send,
    spawn,
    status,
    unschedule,
    wait,
)
from overmind_mcp.server.toolset._base import Tool

ALL: list[Tool] = [
    spawn.TOOL,
    wait.TOOL,
    result.TOOL,
    kill.TOOL,
    send.TOOL,
    interrupt.TOOL,
    ps.TOOL,
    logs.TOOL,
    status.TOOL,
    approvals.TOOL,
    approve.TOOL,
    remember.TOOL,
    recall.TOOL,
    forget.TOOL,
    merge.TOOL,
    conflicts.TOOL,
    discard.TOOL,
    schedule.TOOL,
    schedules.TOOL,
    unschedule.TOOL,
    unschedule.PAUSE_TOOL,
    blueprint_run.TOOL,
    blueprint_validate.TOOL,
    permission_prompt.TOOL,
]

__all__ = ["ALL", "Tool"]
