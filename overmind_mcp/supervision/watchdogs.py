"""Watchdogs: the limits a mission's run is held to while it runs, each a task in that run's own task group."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

from overmind_mcp.bus import ApprovalAnswered, ApprovalAsked, EventBus, OutputArrived
from overmind_mcp.core.status import StopReason
from overmind_mcp.supervision.mission import Mission

End = Callable[[Mission, StopReason], Awaitable[None]]
Note = Callable[[Mission, str, str], Awaitable[None]]


async def enforce_timeout(mission: Mission, timeout_s: float, end: End) -> None:
    await anyio.sleep(timeout_s)
    await end(mission, StopReason.TIMED_OUT)


async def watch_for_stall(mission: Mission, timeout_s: float, bus: EventBus, note: Note, end: End) -> None:
    """End a run that has printed nothing for `timeout_s` while not inside a tool call, nor waiting for a
    permission answer.

    Sleeps until the moment the mission would become stalled and wakes on any output (or news of its
    permission requests), so a stall is seen `timeout_s` after the last line, not up to twice that.
    """
    activity = mission.activity

    def its_news(event: object) -> bool:
        return isinstance(event, OutputArrived | ApprovalAsked | ApprovalAnswered) and event.mission_id == mission.id

    with bus.subscribe(its_news, buffer=1) as news:
        while True:
            waiting_on_tool = activity.in_tool
            waiting_on_answer = mission.awaiting_approval is not None
            idle_session = mission.session is not None and mission.session.current is None
            quiet = time.monotonic() - activity.last_output_at
            excused = waiting_on_tool or waiting_on_answer or idle_session
            if not excused and quiet >= timeout_s:
                break
            await news.changed(None if excused else timeout_s - quiet)
            if idle_session and mission.session is not None and mission.session.current is not None:
                # A turn just started: the clock starts now.
                activity.last_output_at = time.monotonic()
            if waiting_on_answer and mission.awaiting_approval is None:
                # The answer came: the clock starts now.
                activity.last_output_at = time.monotonic()
    await note(mission, "stall", f"no output for {timeout_s:g}s: stalled")
    await end(mission, StopReason.STALLED)
