"""`overmind worktrees`, `merge` and `discard`: isolated missions' worktrees, from another terminal.

They work on the room's own records (`worktrees.db`) and on git, as the MCP tools do, and
need no server: a merge never touches a checkout but the target's, and only as a
fast-forward that keeps its local changes; a worktree a mission still works in is refused.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from overmind_mcp.console import answers
from overmind_mcp.console.common import CliError, Exit
from overmind_mcp.console.render import Column, Out
from overmind_mcp.console.state import open_state
from overmind_mcp.errors import InvalidRequest, NotFound, OvermindError
from overmind_mcp.models import DiscardResult, MergeResult, WorktreeChange, WorktreeListing
from overmind_mcp.settings import Settings
from overmind_mcp.workspaces.git import GitWorktreeWorkspace
from overmind_mcp.workspaces.git.workspace import change_of
from overmind_mcp.workspaces.records import FILENAME, LeaseState

_GONE = (LeaseState.REMOVED, LeaseState.DISCARDED)


@asynccontextmanager
async def _workspace(settings: Settings) -> AsyncIterator[GitWorktreeWorkspace]:
    if not (settings.home / FILENAME).exists():
        raise CliError(f"no worktrees yet: {settings.home / FILENAME} does not exist", Exit.NOT_FOUND)
    workspace = GitWorktreeWorkspace(settings.home)
    try:
        yield workspace
    except NotFound as exc:
        raise CliError(str(exc), Exit.NOT_FOUND) from None
    except InvalidRequest as exc:
        raise CliError(str(exc), Exit.USAGE) from None
    except OvermindError as exc:
        raise CliError(str(exc)) from None
    finally:
        with anyio.CancelScope(shield=True):
            await workspace.close()


# -- worktrees -----------------------------------------------------------------------------------


def worktrees(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_worktrees, settings, args)


async def _worktrees(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    async with _workspace(settings) as workspace:
        leases = [lease for lease in await workspace.leases() if args.all or lease.state not in _GONE]
        changes = [await anyio.to_thread.run_sync(change_of, lease) for lease in leases]
    statuses = {}
    if settings.database_path.exists():
        async with open_state(settings) as state:
            for lease in leases:
                row = await state.store.get(lease.mission_id)
                statuses[lease.mission_id] = row.status if row is not None else None
    listing = [
        WorktreeListing(
            mission_id=lease.mission_id,
            name=lease.name,
            mission_status=statuses.get(lease.mission_id),
            repo=str(lease.repo),
            change=WorktreeChange.model_validate(change, from_attributes=True),
        )
        for lease, change in zip(leases, changes, strict=True)
    ]
    if args.json:
        out.json([answers.dump(entry) for entry in listing])
        return Exit.OK
    if not listing:
        out.line("no worktrees" + ("" if args.all else " holding work (--all lists removed ones too)"))
        return Exit.OK
    columns = [Column("MISSION"), Column("STATUS"), Column("BRANCH"), Column("AHEAD", "right"), Column("DIRTY")]
    columns += [Column("CHANGE", "right"), Column("WORKTREE"), Column("NOTE", flexible=True)]
    rows = []
    for entry in listing:
        change = entry.change
        dirty = "-"
        if change.uncommitted or change.untracked:
            dirty = f"{change.uncommitted} changed, {change.untracked} new"
        rows.append(
            [
                entry.name,
                entry.mission_status or "?",
                change.branch,
                str(change.commits_ahead),
                (dirty, "yellow") if dirty != "-" else dirty,
                f"{change.files} files +{change.insertions} -{change.deletions}",
                change.state,
                change.note or change.path,
            ]
        )
    out.table(columns, rows)
    return Exit.OK


# -- merge ---------------------------------------------------------------------------------------


def merge(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_merge, settings, args)


async def _merge(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    async with _workspace(settings) as workspace:
        outcome = await workspace.merge(args.id, strategy=args.strategy, into=args.into, check_only=args.check)
    answer = MergeResult.model_validate(outcome, from_attributes=True)
    if args.json:
        out.json(answers.dump(answer))
    elif answer.conflicts:
        out.line(f"{args.id} does not merge into {answer.into} ({answer.strategy}): {answer.note}", "red")
        for path in answer.conflicts:
            out.line(f"  conflict: {path}")
    else:
        out.line(answer.note, "green" if answer.merged else None)
    return Exit.PROBLEM if answer.conflicts else Exit.OK


# -- discard -------------------------------------------------------------------------------------


def discard(settings: Settings, args: argparse.Namespace) -> int:
    return anyio.run(_discard, settings, args)


async def _discard(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    async with _workspace(settings) as workspace:
        lease = await workspace.lease(args.id)
        note = await workspace.discard(lease.mission_id)
    answer = DiscardResult(id=lease.mission_id, note=note)
    if args.json:
        out.json(answers.dump(answer))
    else:
        out.line(answer.note)
    return Exit.OK
