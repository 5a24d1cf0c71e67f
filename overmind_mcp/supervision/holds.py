"""A person's hold on a live session: from `attach` to `release`, the session is theirs.

Why the headless process is ended rather than left idle beside the person's `claude --resume`
(measured with Claude Code 2.1.332 against the mock Messages API, headless session idle):

- nothing stops a second process from resuming a session that an idle headless one still has
  open: `claude -p --resume=<id>` and interactive `claude --resume <id>` both ran, answered, and
  kept the session id; there is no lock and no "in use" error (that is only for `--session-id`);
- the headless process keeps its conversation in memory and never rereads the transcript: its
  next turn went to the API without the person's turn, and in the transcript it hangs off the
  message before the person's, a fork, so the person's work is lost to the agents;
- a headless process started with `--resume=<id>` after the person has left sends the whole
  conversation, the person's turns included, under the same session id.

So the server waits until the session is between turns, closes the headless process's input
(the CLI ends after its last result, exit 0), and starts it again with `--resume` when the person
releases it (Lifecycle's `sit_out`). Meanwhile agents' `send` is refused, saying who holds it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import anyio

from overmind_mcp.bus import EventBus, ProgressMade
from overmind_mcp.errors import Conflict
from overmind_mcp.runners.local.watch import Wakeup
from overmind_mcp.supervision import termination
from overmind_mcp.supervision.foreign import watch_process
from overmind_mcp.supervision.mission import Mission


@dataclass(frozen=True, slots=True)
class Holder:
    """The process of the person holding a session (the `overmind attach` that asked): pid plus start time."""

    pid: int
    start_time: float


@dataclass(eq=False)
class Hold:
    holder: Holder
    since: float = field(default_factory=time.time)
    # Set once the session was idle and its process was asked to end: from then on, that process's
    # exit is a park, not the mission's end.
    parking: bool = False
    parked: anyio.Event = field(default_factory=anyio.Event)
    released: anyio.Event = field(default_factory=anyio.Event)
    # The headless process runs again after the release (the mission may have ended instead).
    resumed: anyio.Event = field(default_factory=anyio.Event)
    # Whatever watches the holder's process runs in this scope; cancelled when the hold is over.
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    def refusal(self, name: str) -> str:
        """Why an agent's message cannot be delivered now, and when it can."""
        since = time.strftime("%H:%M:%S", time.localtime(self.since))
        return (
            f"session {name!r} is attached by a person (overmind attach, pid {self.holder.pid}, since {since}): "
            "it takes no messages until they leave it; send again later"
        )


async def park(mission: Mission, hold: Hold, bus: EventBus, *, grace_s: float) -> str:
    """Wait until the session is between turns, then end its process; the session id to resume."""
    assert mission.session is not None
    with bus.subscribe(lambda event: getattr(event, "mission_id", None) == mission.id) as events:
        while True:
            # Turns agents sent before the attach run first, in order.
            if mission.ended.is_set() or mission.stop_reason is not None:
                raise Conflict(f"session {mission.name!r} ended ({mission.row.status}) before it could be handed over")
            if hold.released.is_set():
                raise Conflict(f"session {mission.name!r} was released before it was handed over")
            handle = mission.handle
            if mission.session.idle and handle is not None and handle.running:
                break
            await events.next()
    session_id = mission.activity.session_id or mission.row.session_id
    if session_id is None:
        raise Conflict(f"session {mission.name!r} has no conversation yet: send it a first message, then attach")
    hold.parking = True
    # End of input ends the CLI after its last result (exit 0); the signal ladder only if it does not.
    handle.close_stdin()
    with anyio.move_on_after(grace_s):
        await first_of(hold.parked, mission.ended)
    if not (hold.parked.is_set() or mission.ended.is_set()):
        await termination.ladder(handle, lambda: first_of(hold.parked, mission.ended), force=False, grace_s=grace_s)
    if not hold.parked.is_set():
        raise Conflict(f"session {mission.name!r} ended ({mission.row.status}) before it could be handed over")
    return session_id


async def release_when_gone(hold: Hold, mission: Mission, bus: EventBus) -> None:
    """A hold ends with the holder's process, however that ends (a closed terminal, kill -9)."""
    with hold.scope:
        await watch_process(hold.holder.pid, hold.holder.start_time, Wakeup())
        hold.released.set()
        bus.publish(ProgressMade(mission.id))


async def first_of(*events: anyio.Event) -> None:
    """Return once any of the events is set."""
    async with anyio.create_task_group() as task_group:

        async def until(event: anyio.Event) -> None:
            await event.wait()
            task_group.cancel_scope.cancel()

        for event in events:
            task_group.start_soon(until, event)
