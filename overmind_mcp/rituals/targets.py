"""What a fire starts: a ritual's spawn, or a blueprint (the extension point for overmind_mcp/blueprints/).

Every run is unattended: nobody sits at a fire or a terminal quest to answer a permission
prompt. A Claude child with permission rules has them decide alone (`approvals="policy"`: what
they do not allow is denied at once, never escalated); one without gets `--permission-prompts=none`
(anything that would prompt is denied, and the permission mode decides the rest), unless its
request already names who answers its prompts (`permission_prompts="host"`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from overmind_mcp.errors import InvalidRequest
from overmind_mcp.models import Spawned, SpawnRequest
from overmind_mcp.rituals.cron import stamp
from overmind_mcp.supervision import limits

if TYPE_CHECKING:
    from overmind_mcp.supervision.supervisor import Supervisor

MAX_NAME = 40  # a run's name is <ritual>-<slot stamp>, and mission names stop at 64


@dataclass(frozen=True, slots=True)
class Run:
    """One fire's run, as a launcher sees it."""

    ritual: str
    slot: int
    name: str  # the run's (root) mission name: how a restarted server finds a run its crashed owner started


BlueprintLauncher = Callable[["Supervisor", str, Run], Awaitable[Spawned]]
"""Starts blueprint `name` for a run and returns its root mission; raises OvermindError to refuse."""

_blueprints: BlueprintLauncher | None = None


def launch_blueprints_with(launcher: BlueprintLauncher) -> None:
    """Let rituals name a blueprint (called once by the blueprints package when it is imported)."""
    global _blueprints
    _blueprints = launcher


def check_blueprints_available(name: str) -> None:
    if _blueprints is None:
        raise InvalidRequest(f"blueprint={name!r}: this server has no blueprints yet; give a spawn instead")


def run_name(ritual: str, slot: int) -> str:
    return f"{ritual}-{stamp(slot)}"


def unattended(request: SpawnRequest) -> SpawnRequest:
    """The request as a run nobody attends: a Claude child's prompts are answered by its rules, or by nobody."""
    limits.task_kind(request)  # raises if its shape is wrong
    # A request with no command is a Claude task (see limits.spec_of): the task's type says who runs it.
    if request.command is not None or request.permission_prompts is not None:
        return request
    if request.permissions is not None:
        return request.model_copy(update={"approvals": "policy"})
    return request.model_copy(update={"permission_prompts": "none"})


def check_spawn(request: SpawnRequest) -> SpawnRequest:
    """A ritual's spawn as it will be stored; raises InvalidRequest for what a ritual cannot run."""
    limits.task_kind(request)
    if request.name is not None:
        raise InvalidRequest("spawn.name: a ritual names each run <ritual>-<slot>; leave it out")
    if request.session:
        raise InvalidRequest("spawn.session: a ritual's run must end by itself; a live session never does")
    if request.parent is not None:
        raise InvalidRequest("spawn.parent: a ritual's runs are top-level missions")
    return request


async def launch(supervisor: Supervisor, spawn: SpawnRequest | None, blueprint: str | None, run: Run) -> Spawned:
    if blueprint is not None:
        check_blueprints_available(blueprint)
        assert _blueprints is not None
        return await _blueprints(supervisor, blueprint, run)
    assert spawn is not None
    return await supervisor.spawn(unattended(spawn.model_copy(update={"name": run.name})))
