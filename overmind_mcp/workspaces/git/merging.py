"""The ways back: merge (or squash, or rebase) a mission's branch into a target, and conflicts found beforehand.

Nothing here runs `git merge` or `git rebase` in anybody's checkout. The result is made
with plumbing (`merge-tree --write-tree`, `commit-tree`), or for a rebase replayed in a
temporary worktree of its own; the target then moves with `update-ref` only if it still
is where it was. A checkout that has the target checked out (the person's own, or
another worktree) is brought along with a two-tree `read-tree`, which keeps its
uncommitted changes and untracked files, and is asked first (a dry run): if any of them
would be overwritten, nothing is done at all. A merge, rebase, cherry-pick, revert or
bisect a person has under way on the target is never touched, let alone aborted.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from overmind_mcp.errors import Conflict, InvalidRequest
from overmind_mcp.workspaces.git import repo as gitops
from overmind_mcp.workspaces.git.repo import GitError
from overmind_mcp.workspaces.records import Lease, LeaseState

if TYPE_CHECKING:
    import git

Strategy = Literal["merge", "squash", "rebase"]
SCRATCH = Path(".overmind") / "merges"


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    merged: bool
    into: str
    strategy: Strategy
    commit: str | None
    conflicts: list[str]
    note: str
    checkouts: list[str] = field(default_factory=list)


def merge(lease: Lease, strategy: Strategy, into: str | None, check_only: bool) -> MergeOutcome:
    target = into or lease.target
    if target is None:
        raise InvalidRequest(f"{lease.name} began on a detached HEAD: say which branch to merge it `into`")
    repo = gitops.tree(lease.repo)
    if lease.state.has_directory and lease.path.exists():
        work = gitops.dirt(lease.path)
        if work.any:
            raise Conflict(
                f"{lease.path} has {work.changed} uncommitted change(s) and {work.untracked} untracked file(s): "
                f"commit them on {lease.branch} there first; nothing was changed"
            )
    if not gitops.branch_exists(repo, lease.branch):
        raise Conflict(f"branch {lease.branch} is gone ({lease.state}: {lease.note or 'no note'}): nothing to merge")
    if not gitops.branch_exists(repo, target):
        raise InvalidRequest(f"there is no branch {target!r} in {lease.repo} to merge into")
    old = gitops.rev(repo, f"refs/heads/{target}")
    head = gitops.rev(repo, f"refs/heads/{lease.branch}")
    if gitops.is_ancestor(repo, head, old):
        return MergeOutcome(False, target, strategy, None, [], f"{target} already holds every commit of {lease.branch}")
    checkouts = _checkouts_to_bring_along(repo, target)
    if strategy == "rebase":
        new, conflicts = _rebased(repo, lease, old, head)
    else:
        new, conflicts = _merged(repo, lease, strategy, old, head)
    if conflicts:
        return MergeOutcome(False, target, strategy, None, conflicts, "it conflicts: nothing was changed")
    assert new is not None
    for checkout in checkouts:
        refused = gitops.can_advance(checkout, old, new)
        if refused:
            raise Conflict(
                f"{target} is checked out in {checkout}, and merging would overwrite work there ({refused}): "
                "commit or stash it there, or merge into another branch; nothing was changed"
            )
    if check_only:
        return MergeOutcome(False, target, strategy, None, [], "it merges cleanly (check only: nothing was changed)")
    try:
        gitops.update_ref(repo, f"refs/heads/{target}", new, old, f"overmind: {strategy} {lease.branch}")
    except GitError:
        raise Conflict(f"{target} moved while the merge was being made: nothing was changed; merge again") from None
    brought: list[Path] = []
    try:
        for checkout in checkouts:
            gitops.advance(checkout, old, new)
            brought.append(checkout)
    except GitError as exc:
        # Something changed in a checkout since the dry run: put everything back as it was.
        for checkout in reversed(brought):
            with contextlib.suppress(GitError):
                gitops.advance(checkout, new, old)
        with contextlib.suppress(GitError):
            gitops.update_ref(repo, f"refs/heads/{target}", old, new, "overmind: merge undone")
        raise Conflict(f"a checkout of {target} changed during the merge ({exc}): it was undone; merge again") from None
    along = f", and {', '.join(map(str, checkouts))} with it" if checkouts else ""
    return MergeOutcome(
        True, target, strategy, new, [], f"{target} is now at {new[:12]}{along}", [str(path) for path in checkouts]
    )


def _checkouts_to_bring_along(repo: git.Repo, target: str) -> list[Path]:
    """The checkouts of `target`, once it is sure that nobody is in the middle of something on it."""
    entries = gitops.worktrees(repo)
    rebased_in = gitops.rebasing(entries, target)
    if rebased_in is not None:
        raise Conflict(
            f"{target} is being rebased in {rebased_in}: finish or abort that rebase first; nothing was changed"
        )
    checkouts = gitops.checkouts_of(entries, target)
    for checkout in checkouts:
        busy = gitops.operation_in_progress(checkout)
        if busy:
            raise Conflict(f"{checkout} has {busy} under way on {target}: finish it first; nothing was changed")
    return checkouts


def _merged(repo: git.Repo, lease: Lease, strategy: Strategy, old: str, head: str) -> tuple[str | None, list[str]]:
    flight = gitops.preflight(repo, old, head)
    if flight.conflicts:
        return None, flight.conflicts
    assert flight.tree is not None
    if strategy == "merge":
        message = f"Merge {lease.branch} (mission {lease.name})"
        return gitops.commit_tree(repo, flight.tree, [old, head], message), []
    commits = int(gitops.run(repo, "rev-list", "--count", f"{old}..{head}"))
    message = f"{lease.name}: {commits} commit(s) of {lease.branch}, squashed"
    return gitops.commit_tree(repo, flight.tree, [old], message), []


def _rebased(repo: git.Repo, lease: Lease, old: str, head: str) -> tuple[str | None, list[str]]:
    if gitops.is_ancestor(repo, old, head):
        return head, []  # the mission's commits sit on the target already: a fast-forward
    flight = gitops.preflight(repo, old, head)
    if flight.conflicts:
        return None, flight.conflicts
    scratch = lease.repo / SCRATCH / uuid.uuid4().hex[:12]
    replayed = gitops.replay(repo, scratch, old, head)
    return replayed.head, replayed.conflicts


def tip(lease: Lease) -> str:
    """What a mission has done so far: its worktree's content now (uncommitted work included), else its branch."""
    if lease.state in (LeaseState.ACTIVE, LeaseState.WAITING, LeaseState.KEPT) and lease.path.exists():
        return gitops.snapshot(lease.path)
    return gitops.rev(gitops.tree(lease.repo), f"refs/heads/{lease.branch}")


def conflicts(leases: list[Lease]) -> list[tuple[str, str, list[str]]]:
    """Pairwise conflicts between the missions' work (committed or not), and of each with its target."""
    tips = {lease.mission_id: tip(lease) for lease in leases}
    found = []
    for index, first in enumerate(leases):
        repo = gitops.tree(first.repo)
        if first.target and gitops.branch_exists(repo, first.target):
            flight = gitops.preflight(repo, f"refs/heads/{first.target}", tips[first.mission_id])
            if flight.conflicts:
                found.append((first.branch, first.target, flight.conflicts))
        for second in leases[index + 1 :]:
            if second.repo != first.repo:
                continue
            flight = gitops.preflight(repo, tips[first.mission_id], tips[second.mission_id])
            if flight.conflicts:
                found.append((first.branch, second.branch, flight.conflicts))
    return found
