"""The broker: each permission request a child's CLI makes, and the chain that answers it.

1. The policy: the mission's own rules, and its Claude ancestors' (privilege never grows down the
   tree): a deny or ask rule of any of them counts, and an allow needs all of them to allow. Its own
   deny rules and its path jail are final.
2. The nearest live ancestor whose own policy allows the call: it sees the request in `wait`
   (`needs_approval`) and in `approvals()`, and answers with `approve`. A request skips the ancestors
   that may not allow it and climbs, past the top-level mission, to the client; a mission with
   `approvals="policy"` stops the climb (it runs unattended: what it may not allow is denied).
3. The top-level client, by elicitation (see server/toolset/wait.py), when it advertises it.
4. A person, with `overmind approve` (through the control mailbox, to the server that holds the
   request): any pending request, at any time.
5. The timeout (the spawn's `approval_timeout_s`, else the server's): deny, and the child is told why.

Every decision goes to the journal (who answered, by which rule, how long it took) and, as a note,
into the mission's log.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio
import anyio.abc

from overmind_mcp.bus import ApprovalAnswered, ApprovalAsked, BusEvent, EventBus, MissionEnded
from overmind_mcp.core.approvals import PermissionAnswer
from overmind_mcp.core.events import note_line
from overmind_mcp.core.spec import ClaudeTask
from overmind_mcp.errors import AccessDenied, Conflict, InvalidRequest, NotFound, OvermindError, Refused
from overmind_mcp.models import Answerer, ApprovalDecision, ApprovalOutcome, ApprovalRequest
from overmind_mcp.names import new_id
from overmind_mcp.permissions.journal import Journal, Remembered, RequestRow
from overmind_mcp.permissions.rules import Policy, Rule, ToolCall, Verdict, Where, call_paths
from overmind_mcp.storage.missions import MissionRow

logger = logging.getLogger("overmind_mcp")

_CLIENT_DEPTH = -1


class Missions(Protocol):
    """What the broker needs to know of the supervision tree."""

    async def row(self, mission_id: str) -> MissionRow: ...

    async def ancestors(self, row: MissionRow) -> list[MissionRow]:
        """Its parent, its parent's parent… up to the top-level mission."""
        ...

    def is_live(self, mission_id: str) -> bool:
        """Whether this server supervises the mission now (only then can it answer)."""
        ...


@dataclass(frozen=True, slots=True)
class Who:
    """Who answers: an ancestor mission, the client (its model, or its person through a form), a person."""

    kind: Literal["mission", "client", "elicitation", "person"]
    id: str | None = None


CLIENT = Who("client")


@dataclass(eq=False)
class Pending:
    row: RequestRow
    mission: MissionRow
    call: ToolCall
    addressee: MissionRow | None
    started: float
    # Shown to its addressee in a `wait` answer or `approvals()`: a later wait does not return early for it.
    shown: bool = False
    # Put to the client as a form already (whatever its answer, it is not asked twice).
    elicited: bool = False
    answer: PermissionAnswer | None = None
    done: anyio.Event = field(default_factory=anyio.Event)

    @property
    def addressed_to(self) -> str | None:
        return self.addressee.id if self.addressee is not None else None

    def view(self) -> ApprovalRequest:
        return request_of(self.row, self.mission.name)


class _Boundary:
    """The climb stopped at a mission that runs unattended and may not allow the call itself."""

    def __init__(self, mission: MissionRow) -> None:
        self.mission = mission


class Broker:
    def __init__(
        self,
        journal: Journal,
        missions: Missions,
        bus: EventBus,
        *,
        server_id: str,
        timeout_s: float,
        on_waiting: Callable[[str, str | None], None] = lambda _mission, _what: None,
    ) -> None:
        self.journal = journal
        self._missions = missions
        self._bus = bus
        self._server_id = server_id
        self._timeout_s = timeout_s
        # Tells the supervisor what a mission waits for (None: nothing any more).
        self._on_waiting = on_waiting
        self._pending: dict[str, Pending] = {}
        self._remembered: dict[str, list[Remembered]] = {}

    # -- asking -----------------------------------------------------------------------------------

    async def ask(self, mission_id: str, call: ToolCall, *, tool_use_id: str | None = None) -> PermissionAnswer:
        """The answer to a mission's request, once someone (or the clock) has given it."""
        started, asked_at = time.monotonic(), time.time()
        row = await self._missions.row(mission_id)
        task = row.spec.task
        request = RequestRow(
            id=new_id(),
            mission_id=row.id,
            server_id=self._server_id,
            tool=call.tool,
            input=dict(call.input),
            call=call.describe(),
            why="",
            addressed_to=None,
            asked_at=asked_at,
            deadline=None,
            tool_use_id=tool_use_id,
        )
        if not isinstance(task, ClaudeTask):
            return await self._decided_at_once(request, row, Verdict("deny", None, "only Claude tasks ask"), started)
        ancestors = await self._missions.ancestors(row)
        verdict = await self._chain_verdict(row, ancestors, call, jail=Path(row.cwd))
        request.why = verdict.reason
        if verdict.effect != "ask":
            return await self._decided_at_once(request, row, verdict, started)
        if task.approvals == "policy":
            unattended = Verdict("deny", verdict.rule, f"{verdict.reason}, and it runs unattended (approvals=policy)")
            return await self._decided_at_once(request, row, unattended, started)
        addressee = await self._addressee(row, ancestors, call)
        if isinstance(addressee, _Boundary):
            boundary = Verdict(
                "deny",
                verdict.rule,
                f"{verdict.reason}; {addressee.mission.name!r} above it may not allow it and runs unattended "
                "(approvals=policy)",
            )
            return await self._decided_at_once(request, row, boundary, started)
        timeout_s = task.approval_timeout_s or self._timeout_s
        request.addressed_to = addressee.id if addressee is not None else None
        request.deadline = asked_at + timeout_s
        pending = Pending(request, row, call, addressee, started)
        self._pending[request.id] = pending
        await self.journal.record(request)
        self._bus.publish(ApprovalAsked(row.id, request.id, pending.addressed_to))
        self._tell_waiting(row.id)
        try:
            with anyio.move_on_after(timeout_s):
                await pending.done.wait()
            if not pending.done.is_set():
                message = (
                    f"Denied: nobody answered this permission request within {timeout_s:g} s "
                    "(approval_timeout_s). Do not retry it; say what you needed and why."
                )
                await self._settle(pending, PermissionAnswer(False, message=message), "timeout", None)
        finally:
            if not pending.done.is_set():
                # The asker went away (its process ended, its call was cancelled): nobody waits any more.
                with anyio.CancelScope(shield=True):
                    await self._settle(pending, PermissionAnswer(False, message="the asker has gone"), "ended", None)
        assert pending.answer is not None
        return pending.answer

    async def _decided_at_once(
        self, request: RequestRow, mission: MissionRow, verdict: Verdict, started: float
    ) -> PermissionAnswer:
        allow = verdict.effect == "allow"
        answer = PermissionAnswer(
            allow, message=None if allow else f"Denied by the mission's permission policy: {verdict.reason}."
        )
        request.why = verdict.reason
        request.decision, request.by, request.rule = ("allow" if allow else "deny"), "policy", verdict.rule
        request.message, request.decided_at = answer.message, time.time()
        await self.journal.record(request)
        _note(mission, request, time.monotonic() - started)
        return answer

    # -- answering --------------------------------------------------------------------------------

    async def answer(
        self,
        request_id: str,
        decision: Literal["allow", "deny"],
        *,
        who: Who,
        updated_input: dict[str, Any] | None = None,
        message: str | None = None,
        remember: bool = False,
    ) -> ApprovalOutcome:
        pending = self._pending.get(request_id)
        if pending is None:
            raise await self._not_pending(request_id)
        await self._check_may_answer(pending, who)
        if remember and updated_input is not None:
            raise InvalidRequest(
                "remember applies to the call as it was asked; it cannot be combined with updated_input"
            )
        call = pending.call
        if decision == "allow" and updated_input is not None:
            call = ToolCall(call.tool, updated_input)
            ancestors = await self._missions.ancestors(pending.mission)
            own = await self._chain_verdict(pending.mission, ancestors, call, jail=Path(pending.mission.cwd))
            if own.effect == "deny":
                raise Refused(f"the edited input is denied by the mission's own policy: {own.reason}")
        if decision == "allow" and who.kind == "mission":
            assert who.id is not None
            answerer = await self._missions.row(who.id)
            verdict = await self._chain_verdict(
                answerer, await self._missions.ancestors(answerer), call, jail=Path(pending.mission.cwd)
            )
            if verdict.effect != "allow":
                raise Refused(
                    f"you may not allow {call.describe()}: your own permissions do not ({verdict.reason}); "
                    "deny it, or leave it to be asked above you"
                )
        rule = _rule_for(pending.call, Path(pending.mission.cwd)) if remember else None
        if decision == "allow":
            answer = PermissionAnswer(True, updated_input=updated_input)
        else:
            reason = f": {message}" if message else "."
            answer = PermissionAnswer(False, message=f"Denied by {await self._describe(who, pending)}{reason}")
        by = await self._by(who, pending)
        if not await self._settle(pending, answer, by, who, remembered=rule is not None):
            raise await self._not_pending(request_id)  # someone else answered while this answer was checked
        if rule is not None:
            await self._remember(pending, decision, rule, who)
        return ApprovalOutcome(
            id=request_id,
            mission=pending.mission.id,
            name=pending.mission.name,
            decision=decision,
            by=by,
            remembered=rule is not None,
        )

    async def _check_may_answer(self, pending: Pending, who: Who) -> None:
        """A mission answers what is addressed to it or to a mission under it; the client and people, anything."""
        if who.kind != "mission":
            return
        addressee = pending.addressee
        if addressee is not None:
            if addressee.id == who.id:
                return
            if any(ancestor.id == who.id for ancestor in await self._missions.ancestors(addressee)):
                return
        raise AccessDenied(
            f"request {pending.row.id} of {pending.mission.name!r} is not yours to answer: it waits for "
            f"{addressee.name if addressee else 'the client'}"
        )

    async def _not_pending(self, request_id: str) -> OvermindError:
        stored = await self.journal.get(request_id)
        if stored is None:
            return NotFound(f"no permission request has the id {request_id!r}; approvals() lists the open ones")
        if stored.decision is not None:
            who = stored.by_name or stored.by
            return Conflict(f"request {request_id} was already answered: {stored.decision} by {who}")
        return Conflict(f"request {request_id} is held by another server; answer it there")

    async def _settle(
        self, pending: Pending, answer: PermissionAnswer, by: str, who: Who | None, *, remembered: bool = False
    ) -> bool:
        """Give the asker its answer; False if it had one already (the first answer stands)."""
        by_name = await self._name_of(who)
        # From here to done.set() nothing awaits: two answers cannot both get through.
        if pending.done.is_set():
            return False
        pending.answer = answer
        row = pending.row
        row.decision = "allow" if answer.allow else "deny"
        row.by = by
        row.by_id = who.id if who is not None else None
        row.by_name = by_name
        row.message = answer.message
        row.updated_input = answer.updated_input
        row.remembered = remembered
        row.decided_at = time.time()
        del self._pending[row.id]
        pending.done.set()
        self._bus.publish(ApprovalAnswered(pending.mission.id, row.id, answer.allow))
        self._tell_waiting(pending.mission.id)
        _note(pending.mission, row, time.monotonic() - pending.started)
        try:
            await self.journal.decide(row)
        except Exception:
            # The child has its answer; a journal that cannot be written must not take it back.
            logger.exception("journaling the answer to %s failed", row.id)
        return True

    # -- what waits, for whom ---------------------------------------------------------------------

    def pending_for(self, answerer_id: str | None) -> list[Pending]:
        """The requests addressed to a mission (None: to the client), oldest first."""
        return [pending for pending in self._pending.values() if pending.addressed_to == answerer_id]

    def inbox(self, answerer_id: str | None) -> Inbox:
        return Inbox(self, answerer_id)

    def waiting(self, mission_id: str) -> list[Pending]:
        return [pending for pending in self._pending.values() if pending.mission.id == mission_id]

    def next_to_elicit(self) -> Pending | None:
        """The oldest request for the client that has not been put to it as a form."""
        return next((pending for pending in self.pending_for(None) if not pending.elicited), None)

    def elicited(self, request_id: str) -> None:
        pending = self._pending.get(request_id)
        if pending is not None:
            pending.elicited = True

    def get(self, request_id: str) -> Pending | None:
        return self._pending.get(request_id)

    async def decisions(self, mission_id: str) -> list[ApprovalDecision]:
        """A mission's decided requests, as `result` shows them."""
        decisions = []
        for row in await self.journal.of_mission(mission_id):
            if row.decision is None or row.decided_at is None:
                continue
            decisions.append(decision_of(row))
        return decisions

    def _tell_waiting(self, mission_id: str) -> None:
        waiting = self.waiting(mission_id)
        if not waiting:
            self._on_waiting(mission_id, None)
            return
        first = waiting[0]
        who = first.addressee.name if first.addressee is not None else "the client"
        self._on_waiting(mission_id, f"waiting for approval of {first.call.describe(80)} from {who}")

    # -- following the tree and the console -------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow missions' ends (their requests close, or climb past an addressee that ended); until cancelled."""

        def ended(event: BusEvent) -> bool:
            return isinstance(event, MissionEnded)

        try:
            with self._bus.subscribe(ended) as ends:
                task_status.started()
                await self._follow_ends(ends)
        finally:
            with anyio.CancelScope(shield=True):
                for pending in list(self._pending.values()):
                    await self._settle(pending, PermissionAnswer(False, message="the server stopped"), "ended", None)

    async def _follow_ends(self, ends: Any) -> None:
        async for event in ends:
            if not isinstance(event, MissionEnded):
                continue
            for pending in list(self._pending.values()):
                if pending.mission.id == event.mission_id:
                    message = f"the mission ended ({event.status}) before an answer came"
                    await self._settle(pending, PermissionAnswer(False, message=message), "ended", None)
                elif pending.addressed_to == event.mission_id:
                    await self._climb(pending)

    async def _climb(self, pending: Pending) -> None:
        """Its addressee ended: the request goes to the next one up who may answer it."""
        ancestors = await self._missions.ancestors(pending.mission)
        addressee = await self._addressee(pending.mission, ancestors, pending.call)
        if isinstance(addressee, _Boundary):
            message = f"nobody left to answer: {addressee.mission.name!r} runs unattended (approvals=policy)"
            await self._settle(pending, PermissionAnswer(False, message=message), "ended", None)
            return
        pending.addressee, pending.shown, pending.row.addressed_to = addressee, False, pending.addressed_to
        await self.journal.readdress(pending.row.id, pending.addressed_to)
        self._bus.publish(ApprovalAsked(pending.mission.id, pending.row.id, pending.addressed_to))
        self._tell_waiting(pending.mission.id)

    # -- the chain ---------------------------------------------------------------------------------

    async def _chain_verdict(
        self, row: MissionRow, ancestors: list[MissionRow], call: ToolCall, *, jail: Path
    ) -> Verdict:
        """What a mission's policy and its Claude ancestors' say of a call, read together.

        A deny of any of them denies (the mission's own jail included); then an ask of any of them
        asks; the call is allowed only if each allows it. A remembered answer counts as its
        grantor's: the missions from the asker up to the grantor need not allow it again.
        """
        own = _policy(row, jail=jail).decide(call)
        if own.effect == "deny":
            return own
        remembered = await self._remembered_match(row, call)
        granted_at: int | None = None
        if remembered is not None and remembered.effect == "deny":
            return Verdict("deny", remembered.rule, f"{remembered.rule} was answered deny, and remembered")
        if remembered is not None and own.effect == "ask" and own.rule is None:
            # An ask rule still asks; only the lack of any rule is answered by what was remembered.
            own = Verdict("allow", remembered.rule, f"{remembered.rule} was answered allow, and remembered")
            granted_at = remembered.granted_at_depth
        asking = own if own.effect == "ask" else None
        for ancestor in ancestors:
            if not isinstance(ancestor.spec.task, ClaudeTask):
                continue
            verdict = _policy(ancestor, jail=jail).decide(call)
            if verdict.effect == "deny":
                return Verdict("deny", verdict.rule, f"{verdict.reason} (a rule of {ancestor.name!r})")
            if granted_at is not None and ancestor.depth >= granted_at:
                continue  # the grantor above it answered for it
            if verdict.effect == "ask" and asking is None:
                asking = Verdict("ask", verdict.rule, f"{verdict.reason} for {ancestor.name!r} above it")
        return asking or own

    async def _addressee(
        self, row: MissionRow, ancestors: list[MissionRow], call: ToolCall
    ) -> MissionRow | _Boundary | None:
        """The nearest live ancestor that may allow the call itself; None: the client; a boundary: nobody."""
        for index, ancestor in enumerate(ancestors):
            if not isinstance(ancestor.spec.task, ClaudeTask):
                continue
            if self._missions.is_live(ancestor.id):
                verdict = await self._chain_verdict(ancestor, ancestors[index + 1 :], call, jail=Path(row.cwd))
                if verdict.effect == "allow":
                    return ancestor
            if ancestor.spec.task.approvals == "policy":
                return _Boundary(ancestor)
        return None

    async def _remembered_match(self, row: MissionRow, call: ToolCall) -> Remembered | None:
        if row.id not in self._remembered:
            self._remembered[row.id] = await self.journal.remembered(row.id)
        where = Where(Path(row.cwd))
        matching = [entry for entry in self._remembered[row.id] if Rule.parse(entry.rule).matches(call, where)]
        # A remembered deny wins over a remembered allow.
        return next((entry for entry in matching if entry.effect == "deny"), matching[0] if matching else None)

    async def _remember(self, pending: Pending, decision: Literal["allow", "deny"], rule: str, who: Who) -> None:
        depth = _CLIENT_DEPTH
        if who.kind == "mission" and who.id is not None:
            depth = (await self._missions.row(who.id)).depth
        mission_id = pending.mission.id
        await self.journal.remember(
            mission_id,
            decision,
            rule,
            granted_by=who.id if who.kind == "mission" else None,
            depth=depth,
            request_id=pending.row.id,
        )
        self._remembered.setdefault(mission_id, []).append(Remembered(decision, rule, depth))

    async def _by(self, who: Who, pending: Pending) -> Answerer:
        if who.kind != "mission":
            return who.kind
        return "parent" if who.id == pending.mission.parent_id else "ancestor"

    async def _describe(self, who: Who, pending: Pending) -> str:
        if who.kind == "mission" and who.id is not None:
            by = await self._by(who, pending)
            return f"its {by} {(await self._missions.row(who.id)).name!r}"
        return {"client": "the client", "elicitation": "the client's user", "person": f"{who.id or 'a person'}"}[
            who.kind
        ]

    async def _name_of(self, who: Who | None) -> str | None:
        if who is None:
            return None
        if who.kind == "mission" and who.id is not None:
            return (await self._missions.row(who.id)).name
        return who.id


class Inbox:
    """What one answerer (a mission, or None: the client) is asked to answer."""

    def __init__(self, broker: Broker, answerer_id: str | None) -> None:
        self._broker = broker
        self.answerer_id = answerer_id

    def accepts(self, event: BusEvent) -> bool:
        """Whether a bus event brings this answerer a new request."""
        return isinstance(event, ApprovalAsked) and event.addressed_to == self.answerer_id

    def unseen(self) -> bool:
        return any(not pending.shown for pending in self._broker.pending_for(self.answerer_id))

    def take(self) -> list[ApprovalRequest]:
        """Every request waiting for this answerer, each marked as shown."""
        pending = self._broker.pending_for(self.answerer_id)
        for request in pending:
            request.shown = True
        return [request.view() for request in pending]


def request_of(row: RequestRow, name: str) -> ApprovalRequest:
    """A pending request as `approvals()`, `wait` and `overmind approvals` show it."""
    now = time.time()
    return ApprovalRequest(
        id=row.id,
        mission=row.mission_id,
        name=name,
        tool=row.tool,
        input=row.input,
        why=row.why,
        waited_s=round(now - row.asked_at, 1),
        expires_in_s=round(max((row.deadline or now) - now, 0.0), 1),
    )


def decision_of(row: RequestRow) -> ApprovalDecision:
    assert row.decision is not None and row.decided_at is not None
    by: Answerer = row.by  # type: ignore[assignment]
    return ApprovalDecision(
        id=row.id,
        call=row.call,
        decision=row.decision,
        by=by,
        by_name=row.by_name,
        rule=row.rule,
        message=row.message,
        edited=row.updated_input is not None,
        latency_ms=round((row.decided_at - row.asked_at) * 1000, 2),
        at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row.decided_at)),
    )


def _policy(row: MissionRow, *, jail: Path) -> Policy:
    """A mission's own policy: its permissions, its allowed and disallowed tools, its permission mode."""
    task = row.spec.task
    assert isinstance(task, ClaudeTask)
    rules = task.permissions
    return Policy(
        where=Where(Path(row.cwd)),
        allow=(*_lenient(rules.allow if rules else ()), *_lenient(task.allowed_tools)),
        deny=(*_lenient(rules.deny if rules else ()), *_lenient(task.disallowed_tools)),
        ask=tuple(_lenient(rules.ask if rules else ())),
        jail=jail.resolve(),
        mode=task.permission_mode,
    )


def _lenient(texts: Any) -> list[Rule]:
    """Rules as far as they can be read (the CLI enforces `--allowedTools` forms this reader does not know)."""
    rules = []
    for text in texts:
        try:
            rules.append(Rule.parse(text))
        except InvalidRequest:
            continue
    return rules


def _rule_for(call: ToolCall, cwd: Path) -> str:
    """The rule that remembers an answer to this very call."""
    if call.tool == "Bash":
        command = str(call.input.get("command", "")).strip()
        if "*" in command or "(" in command or ")" in command:
            raise InvalidRequest(
                "this command has `*` or parentheses, which a remembered rule would misread: answer without remember"
            )
        return f"Bash({command})"
    paths = call_paths(call, cwd)
    if paths and len(paths) == 1:
        return f"{call.tool}(/{paths[0]})"
    detail = call.describe()
    return detail if call.tool == "WebFetch" else call.tool


def _note(mission: MissionRow, request: RequestRow, took_s: float) -> None:
    """The decision as a line of the mission's log.

    Written while the child runs: its stdout is opened O_APPEND and the CLI prints each line with
    one write (measured with strace, lines of 100 KB too), so a whole line appended with one write
    of ours lands between two of its lines, never inside one.
    """
    verb = "allowed" if request.decision == "allow" else "denied"
    who = request.by_name or request.by
    how = f" by rule {request.rule}" if request.rule else ""
    text = f"permission: {request.call} {verb} by {who}{how} after {took_s * 1000:.1f} ms"
    if request.decision == "deny" and request.message and request.by != "policy":
        text += f" ({request.message})"
    try:
        fd = os.open(mission.output_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, note_line("permission", text))
    finally:
        os.close(fd)
