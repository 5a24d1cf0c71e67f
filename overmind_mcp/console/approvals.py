"""`overmind approvals` and `overmind approve`: a person answers children's permission requests.

Both act through the control mailbox: `approvals` asks any live server (they share the permission
journal), `approve` the server that holds the request, which answers the child. What waits and
what was decided is also read from the journal (`permissions.db`) by `ps` and `result`.
"""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from overmind_mcp.console import render
from overmind_mcp.console.common import CliError, Exit
from overmind_mcp.console.remote import ANSWER_TIMEOUT_S, ask
from overmind_mcp.console.render import Column, Out
from overmind_mcp.console.state import State, open_state
from overmind_mcp.control.approvals import APPROVALS, APPROVE, ApprovalsRequest, ApproveRequest
from overmind_mcp.models import ApprovalDecision
from overmind_mcp.permissions.broker import decision_of
from overmind_mcp.permissions.journal import FILENAME, Journal, RequestRow
from overmind_mcp.settings import Settings


def approvals(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_approvals, settings, args)


def approve(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_approve, settings, args)


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Journal | None]:
    """The journal, if any server on this state directory has ever made one."""
    path = settings.home / FILENAME
    if not path.exists():
        yield None
        return
    journal = await Journal.open(path)
    try:
        yield journal
    finally:
        with anyio.CancelScope(shield=True):
            await journal.close()


async def open_requests(state: State, journal: Journal) -> list[RequestRow]:
    """The requests waiting for an answer that a live server holds (a dead one's went with it)."""
    alive = {server.id for server in await state.servers() if server.alive}
    return [row for row in await journal.pending() if row.server_id in alive]


async def waiting_for(state: State) -> dict[str, str]:
    """What each mission waits for an answer to, as `ps` shows it (mission id → what)."""
    async with opened(state.settings) as journal:
        if journal is None:
            return {}
        waiting = {}
        for row in reversed(await open_requests(state, journal)):  # each mission's oldest request last: it wins
            addressee = await state.store.get(row.addressed_to) if row.addressed_to else None
            who = addressee.name if addressee is not None else "the client"
            waiting[row.mission_id] = f"waiting for approval of {row.call} from {who}"
        return waiting


async def decisions(settings: Settings, mission_id: str) -> list[ApprovalDecision]:
    """A mission's permission decisions, as `result` shows them."""
    async with opened(settings) as journal:
        if journal is None:
            return []
        return [decision_of(row) for row in await journal.of_mission(mission_id) if row.decision is not None]


async def _approvals(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    listed = await ask(settings, APPROVALS, ApprovalsRequest(), target=None, timeout_s=ANSWER_TIMEOUT_S)
    if args.json:
        out.json(listed.model_dump(mode="json"))
        return Exit.OK
    if not listed.requests:
        render.note("no permission requests are waiting")
        return Exit.OK
    waits_for = {}
    async with opened(settings) as journal, open_state(settings) as state:
        assert journal is not None  # a request was listed: its journal exists
        for request in listed.requests:
            stored = await journal.get(request.id)
            addressee = await state.store.get(stored.addressed_to) if stored and stored.addressed_to else None
            waits_for[request.id] = addressee.name if addressee is not None else "the client"
    columns = [Column("ID"), Column("MISSION"), Column("WAITS FOR"), Column("WAITING", "right")]
    columns += [Column("LEFT", "right"), Column("CALL", flexible=True)]
    out.table(
        columns,
        [
            [
                request.id,
                request.name,
                waits_for[request.id],
                render.age(request.waited_s),
                render.age(request.expires_in_s),
                f"{request.tool} {json.dumps(request.input, ensure_ascii=False)}",
            ]
            for request in listed.requests
        ],
    )
    for request in listed.requests:
        out.line(f"{request.id}: {request.why}", "dim")
    return Exit.OK


async def _approve(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    updated_input = _input(args.input)
    async with opened(settings) as journal:
        stored = await journal.get(args.id) if journal is not None else None
    if stored is None:
        raise CliError(f"no permission request has the id {args.id!r}; `overmind approvals` lists them", Exit.NOT_FOUND)
    if stored.decision is not None:
        raise CliError(f"request {args.id} was already answered: {stored.decision} by {stored.by_name or stored.by}")
    request = ApproveRequest(
        id=args.id,
        decision=args.decision,
        person=getpass.getuser(),
        message=args.message,
        updated_input=updated_input,
        remember=args.remember,
    )
    # To the server that holds it: its child waits on that server's connection.
    outcome = await ask(settings, APPROVE, request, target=stored.server_id, timeout_s=ANSWER_TIMEOUT_S)
    if args.json:
        out.json(outcome.model_dump(mode="json"))
    else:
        verb = "allowed" if outcome.decision == "allow" else "denied"
        out.line(f"{verb} {stored.call} for {outcome.name}")
    return Exit.OK


def _input(text: str | None) -> dict[str, object] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CliError(f"--input is not JSON: {exc}", Exit.USAGE) from None
    if not isinstance(value, dict):
        raise CliError(
            '--input must be a JSON object, the tool\'s whole input: e.g. {"command": "make test"}', Exit.USAGE
        )
    return value
