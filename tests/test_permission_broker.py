"""The broker's chain, driven through the supervisor: who is asked, who may answer what, and what is kept.

The missions are the stand-in claude (hanging, so they stay live); the requests are made the way a
child's CLI makes them through the permission prompt tool (`Supervisor.ask_permission`), each in a
task of its own that waits for its answer. The end-to-end tests (tests/e2e/test_permissions_real_cli.py)
do the same with the real CLI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from overmind_mcp.bus import ApprovalAsked
from overmind_mcp.core.approvals import PermissionAnswer
from overmind_mcp.core.spec import PermissionRules
from overmind_mcp.errors import AccessDenied, Conflict, InvalidRequest, Refused
from overmind_mcp.identity import ROOT, Caller
from overmind_mcp.models import SpawnRequest
from overmind_mcp.permissions.journal import FILENAME, Journal
from overmind_mcp.supervision.supervisor import Supervisor
from tests.helpers import script

pytestmark = pytest.mark.anyio


async def hanging(
    supervisor: Supervisor,
    name: str,
    cwd: Path,
    *,
    parent: str | None = None,
    allow: tuple[str, ...] = (),
    deny: tuple[str, ...] = (),
    **options: Any,
) -> str:
    request = SpawnRequest(
        prompt=script("hang"),
        name=name,
        parent=parent,
        cwd=str(cwd),
        permissions=PermissionRules(allow=list(allow), deny=list(deny)),
        **options,
    )
    return (await supervisor.spawn(request)).id


class Asked:
    """A request a mission's CLI is waiting on, and (once it has come) its answer."""

    def __init__(self) -> None:
        self.answer: PermissionAnswer | None = None
        self.done = anyio.Event()


@asynccontextmanager
async def asking(supervisor: Supervisor) -> AsyncIterator[Callable[[str, str], Awaitable[Asked]]]:
    """`ask(mission_id, command)`: a Bash request made in a task of its own; returns once the broker holds it
    (or has answered it)."""
    async with anyio.create_task_group() as task_group:

        async def ask(mission_id: str, command: str) -> Asked:
            asked = Asked()

            async def run() -> None:
                asked.answer = await supervisor.ask_permission(Caller(mission_id), "Bash", {"command": command})
                asked.done.set()

            def held(event: object) -> bool:
                return isinstance(event, ApprovalAsked) and event.mission_id == mission_id

            with supervisor.bus.subscribe(held) as holds, anyio.fail_after(10):
                task_group.start_soon(run)
                async with anyio.create_task_group() as either:

                    async def then_stop(event: Awaitable[object]) -> None:
                        await event
                        either.cancel_scope.cancel()

                    either.start_soon(then_stop, asked.done.wait())
                    either.start_soon(then_stop, holds.next())
            return asked

        yield ask
        task_group.cancel_scope.cancel()


async def answered(asked: Asked) -> PermissionAnswer:
    with anyio.fail_after(10):
        await asked.done.wait()
    assert asked.answer is not None
    return asked.answer


def only_request(supervisor: Supervisor, caller: Caller) -> str:
    [request] = supervisor.approvals(caller=caller).requests
    return request.id


async def test_a_request_goes_to_the_nearest_ancestor_that_may_allow_it(supervisor: Supervisor, tmp_path: Path) -> None:
    top = await hanging(supervisor, "top", tmp_path, allow=("Bash(git:*)",))
    middle = await hanging(supervisor, "middle", tmp_path, parent="top")
    leaf = await hanging(supervisor, "leaf", tmp_path, parent="middle")
    async with asking(supervisor) as ask:
        asked = await ask(leaf, "git status")
        # The middle may allow nothing: the request skips it; the client is not asked either.
        assert supervisor.approvals(caller=Caller(middle)).requests == []
        assert supervisor.approvals(caller=ROOT).requests == []
        request_id = only_request(supervisor, Caller(top))
        with pytest.raises(AccessDenied, match="not yours to answer: it waits for top"):
            await supervisor.approve(request_id, "allow", caller=Caller(middle))
        outcome = await supervisor.approve(request_id, "allow", caller=Caller(top))
        assert (outcome.by, outcome.name) == ("ancestor", "leaf")
        assert (await answered(asked)).allow
    [decision] = (await supervisor.result("leaf")).approvals
    assert (decision.by, decision.by_name, decision.decision) == ("ancestor", "top", "allow")


async def test_a_mission_may_allow_only_what_it_may_do_itself(supervisor: Supervisor, tmp_path: Path) -> None:
    parent = await hanging(supervisor, "parent", tmp_path, allow=("Bash(git:*)",))
    child = await hanging(supervisor, "child", tmp_path, parent="parent")
    async with asking(supervisor) as ask:
        asked = await ask(child, "git push")
        request_id = only_request(supervisor, Caller(parent))
        with pytest.raises(Refused, match=r"you may not allow Bash\(rm -rf /\)"):
            await supervisor.approve(request_id, "allow", updated_input={"command": "rm -rf /"}, caller=Caller(parent))
        # Denying never grows anything: allowed.
        await supervisor.approve(request_id, "deny", message="not now", caller=Caller(parent))
        answer = await answered(asked)
    assert (answer.allow, answer.message) == (False, "Denied by its parent 'parent': not now")


async def test_a_childs_own_rules_count_only_as_far_as_its_ancestors_allow(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    await hanging(supervisor, "parent", tmp_path, allow=("Bash(git:*)",), deny=("Bash(rm:*)",))
    child = await hanging(supervisor, "child", tmp_path, parent="parent", allow=("Bash",))
    async with asking(supervisor) as ask:
        assert (await answered(await ask(child, "git log"))).allow
        denied = await answered(await ask(child, "rm -rf build"))
        assert not denied.allow and "a rule of 'parent'" in (denied.message or "")
        # Beyond the parent's own rules: nobody below the client may allow it.
        beyond = await ask(child, "touch x")
        request = supervisor.approvals(caller=ROOT).requests[0]
        assert "for 'parent' above it" in request.why
        await supervisor.approve(request.id, "allow")
        assert (await answered(beyond)).allow


async def test_unattended_missions_decide_by_policy_alone(supervisor: Supervisor, tmp_path: Path) -> None:
    lone = await hanging(supervisor, "lone", tmp_path, approvals="policy")
    ritual = await hanging(supervisor, "ritual", tmp_path, approvals="policy", allow=("Bash(git:*)",))
    under = await hanging(supervisor, "under", tmp_path, parent="ritual")
    async with asking(supervisor) as ask:
        answer = await answered(await ask(lone, "touch x"))
        assert not answer.allow and "runs unattended (approvals=policy)" in (answer.message or "")
        # Below an unattended mission the climb stops there: what it may allow it is asked, the rest is denied.
        stopped = await answered(await ask(under, "touch y"))
        assert not stopped.allow and "'ritual' above it may not allow it" in (stopped.message or "")
        climbing = await ask(under, "git fetch")
        await supervisor.approve(only_request(supervisor, Caller(ritual)), "allow", caller=Caller(ritual))
        assert (await answered(climbing)).allow


async def test_remember_answers_the_same_call_from_then_on(supervisor: Supervisor, tmp_path: Path) -> None:
    child = await hanging(supervisor, "child", tmp_path)
    async with asking(supervisor) as ask:
        first = await ask(child, "make test")
        await supervisor.approve(only_request(supervisor, ROOT), "allow", remember=True)
        assert (await answered(first)).allow
        again = await answered(await ask(child, "make test"))
        assert again.allow
        other = await ask(child, "make deploy")
        with pytest.raises(InvalidRequest, match="cannot be combined with updated_input"):
            await supervisor.approve(
                only_request(supervisor, ROOT), "allow", updated_input={"command": "make"}, remember=True
            )
        await supervisor.approve(only_request(supervisor, ROOT), "deny", remember=True)
        assert not (await answered(other)).allow
        assert not (await answered(await ask(child, "make deploy"))).allow
    decisions = (await supervisor.result("child")).approvals
    assert [(d.call, d.decision, d.by, d.rule) for d in decisions] == [
        ("Bash(make test)", "allow", "client", None),
        ("Bash(make test)", "allow", "policy", "Bash(make test)"),
        ("Bash(make deploy)", "deny", "client", None),
        ("Bash(make deploy)", "deny", "policy", "Bash(make deploy)"),
    ]


async def test_an_edited_input_the_asker_may_not_run_is_refused(supervisor: Supervisor, tmp_path: Path) -> None:
    child = await hanging(supervisor, "child", tmp_path, deny=("Bash(curl:*)",))
    async with asking(supervisor) as ask:
        asked = await ask(child, "wget https://example.com")
        request_id = only_request(supervisor, ROOT)
        with pytest.raises(Refused, match="denied by the mission's own policy"):
            await supervisor.approve(request_id, "allow", updated_input={"command": "curl https://example.com"})
        await supervisor.approve(request_id, "allow", updated_input={"command": "wget -q https://example.com"})
        answer = await answered(asked)
    assert answer.updated_input == {"command": "wget -q https://example.com"}
    with pytest.raises(Conflict, match="already answered: allow by client"):
        await supervisor.approve(request_id, "deny")


async def test_a_person_answers_any_request_and_the_journal_keeps_it(supervisor: Supervisor, tmp_path: Path) -> None:
    parent = await hanging(supervisor, "parent", tmp_path, allow=("Bash",))
    child = await hanging(supervisor, "child", tmp_path, parent="parent")
    journal = await Journal.open(supervisor.settings.home / FILENAME)
    try:
        async with asking(supervisor) as ask:
            asked = await ask(child, "touch x")
            [pending] = await journal.pending()
            assert (pending.mission_id, pending.call, pending.addressed_to) == (child, "Bash(touch x)", parent)
            # Addressed to the parent, answered by a person all the same: people answer anything.
            every = await supervisor.every_approval()
            assert [request.id for request in every.requests] == [pending.id]
            await supervisor.approve(pending.id, "deny", message="ask me tomorrow", person="alice")
            answer = await answered(asked)
    finally:
        await journal.close()
    assert answer.message == "Denied by alice: ask me tomorrow"
    [decision] = (await supervisor.result("child")).approvals
    assert (decision.by, decision.by_name) == ("person", "alice")


async def test_a_request_climbs_when_its_addressee_ends_and_closes_when_its_asker_does(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    parent = await hanging(supervisor, "parent", tmp_path, allow=("Bash",))
    child = await hanging(supervisor, "child", tmp_path, parent="parent")
    async with asking(supervisor) as ask:
        asked = await ask(child, "touch x")
        assert only_request(supervisor, Caller(parent))

        # The parent goes; its child stays (no cascade): the request is the client's now.
        def to_the_client(event: object) -> bool:
            return isinstance(event, ApprovalAsked) and event.addressed_to is None

        with supervisor.bus.subscribe(to_the_client) as climbed, anyio.fail_after(10):
            await supervisor.kill(["parent"], cascade=False)
            await climbed.next()
        assert supervisor.approvals(caller=ROOT).requests
        await supervisor.kill(["child"])
        answer = await answered(asked)
    assert not answer.allow and "the mission ended" in (answer.message or "")
    [decision] = (await supervisor.result("child")).approvals
    assert decision.by == "ended"


async def test_wait_returns_early_for_a_new_request_once(supervisor: Supervisor, tmp_path: Path) -> None:
    child = await hanging(supervisor, "child", tmp_path)
    async with asking(supervisor) as ask:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(ask, child, "touch x")
                answer = await supervisor.wait(["child"], timeout_s=30)
        assert answer.timed_out is False and answer.done == []
        [request] = answer.needs_approval
        assert (request.name, request.tool, request.input) == ("child", "Bash", {"command": "touch x"})
        assert (await supervisor.ps()).missions[0].status == "needs_approval"
        # Shown once: the next wait does not return for it again, though it still lists it.
        again = await supervisor.wait(["child"], timeout_s=0.3)
        assert again.timed_out and [r.id for r in again.needs_approval] == [request.id]
        await supervisor.approve(request.id, "allow")
        assert (await supervisor.ps()).missions[0].status == "running"


async def test_rules_are_checked_when_the_child_is_spawned(supervisor: Supervisor, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match=r"permissions.deny: permission rule 'Bash\(rm' is not a rule"):
        await hanging(supervisor, "bad", tmp_path, deny=("Bash(rm",))
    with pytest.raises(InvalidRequest, match="approvals only apply to Claude tasks"):
        await supervisor.spawn(SpawnRequest(command=["true"], approvals="policy"))


async def test_two_answers_at_once_the_first_stands(supervisor: Supervisor, tmp_path: Path) -> None:
    parent = await hanging(supervisor, "parent", tmp_path, allow=("Bash",))
    child = await hanging(supervisor, "child", tmp_path, parent="parent")
    async with asking(supervisor) as ask:
        asked = await ask(child, "touch x")
        request_id = only_request(supervisor, Caller(parent))
        outcomes: list[str] = []

        async def answer(decision: str, caller: Caller) -> None:
            try:
                outcomes.append((await supervisor.approve(request_id, decision, caller=caller)).decision)  # type: ignore[arg-type]
            except Conflict as exc:
                outcomes.append(str(exc))

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(answer, "allow", Caller(parent))
            task_group.start_soon(answer, "deny", ROOT)
        answer_given = await answered(asked)
    first = "allow" if answer_given.allow else "deny"
    assert first in outcomes and sum("already answered" in outcome for outcome in outcomes) == 1
