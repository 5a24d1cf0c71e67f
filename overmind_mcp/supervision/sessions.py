"""Live sessions: turns written one at a time to a child's stdin, `send` and `interrupt`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import anyio

from overmind_mcp.bus import EventBus, ProgressMade
from overmind_mcp.core.events import Event, Result
from overmind_mcp.errors import Conflict, InvalidRequest
from overmind_mcp.models import TurnResult
from overmind_mcp.runners.local.output import LineReader
from overmind_mcp.supervision.mission import Mission
from overmind_mcp.supervision.session import SessionChannel, Turn


def catch_up(mission: Mission) -> LineReader:
    """A re-adopted session's state, from its output so far; the reader to follow it on from there.

    The turns it has taken are in its output; the one it may be taking now is the unanswered
    message at its end (the result line closes each turn). New messages queue behind that one.
    The messages a dead server had queued but not written died with it, as did their callers.
    """
    path = Path(mission.row.output_path)
    mission.session = SessionChannel()
    last: list[Event] = []
    with LineReader(path) as reader:
        while (chunk := reader.read_chunk()) is not None:
            for _end, line in chunk:
                events = mission.provider.parse_line(line)
                mission.ingest(events)
                if line.strip():
                    last = events
        offset = reader.offset
    mission.results_seen = mission.activity.results
    mission.session.submitted = mission.activity.results
    if not any(isinstance(event, Result) for event in last):
        mission.session.current = mission.session.submit("(the turn it was taking when its server stopped)")
        mission.session.queue.clear()
    return LineReader(path, offset)


async def pump(mission: Mission) -> None:
    """Write the session's next turn to its stdin when it is ready for one."""
    handle, codec = mission.handle, mission.provider.sessions
    if mission.session is None or codec is None or handle is None or not handle.running:
        return
    turn = mission.session.take_next()
    if turn is None:
        return
    mission.activity.last_output_at = time.monotonic()
    try:
        await handle.write_stdin(codec.user_message(turn.message))
    except OSError:
        mission.session.queue.appendleft(turn)  # the process is going; a restart sends it again
        mission.session.current = None


def check_session(mission: Mission | None, row_name: str, status: str, session_id: str | None) -> Mission:
    """The live session to talk to, or a clear reason why there is none."""
    if mission is None:
        raise Conflict(
            f"session {row_name!r} has ended ({status}); spawn a new one with resume={session_id!r}"
            " to continue its conversation"
        )
    if mission.session is None or mission.provider.sessions is None:
        raise Conflict(
            f"session {row_name!r} lost its input when the server that started it stopped; spawn a new one "
            f"with resume={session_id!r}"
        )
    return mission


async def send(mission: Mission, message: str, bus: EventBus, *, wait: bool, timeout_s: float) -> TurnResult:
    if not message.strip():
        raise InvalidRequest("the message is empty: say what the session should do next")
    if mission.hold is not None:
        raise Conflict(mission.hold.refusal(mission.name))
    assert mission.session is not None
    turn = mission.session.submit(message)
    await pump(mission)
    bus.publish(ProgressMade(mission.id))
    if wait:
        with anyio.move_on_after(timeout_s):
            await turn.done.wait()
    return turn_result(mission, turn, timed_out=wait and not turn.done.is_set())


async def interrupt(mission: Mission, *, grace_s: float) -> TurnResult:
    """End a live session's current turn the way the CLI does, keeping the session."""
    if mission.hold is not None:
        raise Conflict(mission.hold.refusal(mission.name))
    assert mission.session is not None and mission.provider.sessions is not None
    turn = mission.session.current
    if turn is None or mission.handle is None:
        state = "queued: it has not started yet" if mission.handle is None else "idle"
        raise Conflict(f"session {mission.name!r} is {state}: there is no turn to interrupt")
    turn.interrupted = True
    await mission.handle.write_stdin(mission.provider.sessions.interrupt_request(f"req_{turn.number}"))
    with anyio.move_on_after(grace_s):
        await turn.done.wait()
    return turn_result(mission, turn, timed_out=not turn.done.is_set())


def turn_result(mission: Mission, turn: Turn, *, timed_out: bool) -> TurnResult:
    assert mission.session is not None
    result = turn.result
    state: Literal["queued", "working", "done", "interrupted", "abandoned"]
    if turn.abandoned:
        state = "abandoned"
    elif result is not None:
        state = "interrupted" if turn.interrupted else "done"
    else:
        state = "working" if mission.session.current is turn else "queued"
    errors = list(result.errors) if result else ([turn.abandoned] if turn.abandoned else [])
    return TurnResult(
        id=mission.id,
        name=mission.name,
        turn=turn.number,
        state=state,
        queue_position=mission.session.position(turn),
        text=result.text if result else None,
        is_error=result.is_error if result else None,
        errors=errors,
        cost_usd=mission.activity.cost_usd,
        session_id=mission.activity.session_id or mission.row.session_id,
        timed_out=timed_out,
    )
