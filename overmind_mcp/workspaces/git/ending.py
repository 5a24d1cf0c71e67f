"""A worktree's end of life, by its policy; no policy ever deletes work.

Before anything is removed, the work in it is counted: uncommitted changes, untracked files
(always: new files are work too), and commits on its branch that no other ref holds. What
cannot be counted counts as work.

- `remove-if-clean` (the default): nothing uncommitted and no commit of its own → the
  directory and the branch go. Otherwise it is archived: what was left uncommitted is
  committed on the branch (untracked files included), the directory goes, the branch
  stays, and the note says so.
- `archive`: the same, and the branch stays even when it holds nothing of its own.
- `keep`: directory and branch stay as they are.

It is kept as it is, whatever the policy, when it is on another branch or a detached HEAD
than its own, when a merge or rebase is under way in it, or when any of it cannot be read.
"""

from __future__ import annotations

import contextlib

from overmind_mcp.workspaces.git import repo as gitops
from overmind_mcp.workspaces.git.repo import GitError
from overmind_mcp.workspaces.records import Lease, LeaseState


def end_of_life(lease: Lease) -> tuple[LeaseState, str]:
    if lease.cleanup == "keep":
        return LeaseState.KEPT, "kept by its policy (worktree_cleanup='keep'): merge or discard it"
    try:
        repo = gitops.tree(lease.repo)
        if not lease.path.exists():
            return _gone(lease)
        checkout = gitops.tree(lease.path)
        on = gitops.current_branch(checkout)
        if on != lease.branch:
            return LeaseState.KEPT, f"kept: it is on {on or 'a detached HEAD'}, not {lease.branch}"
        busy = gitops.operation_in_progress(lease.path)
        if busy:
            return LeaseState.KEPT, f"kept: {busy} is under way in it; finish or abort it there"
        work = gitops.dirt(lease.path)
        saved = None
        if work.any:
            saved = gitops.commit_everything(lease.path, f"overmind: work mission {lease.name} left uncommitted")
            if gitops.dirt(lease.path).any:
                return LeaseState.KEPT, "kept: its uncommitted work could not all be committed"
        unique = gitops.unique_commits(repo, lease.branch)
        if unique == 0 and lease.cleanup == "remove-if-clean":
            gitops.remove_worktree(repo, lease.path)
            gitops.delete_branch(repo, lease.branch)
            return LeaseState.REMOVED, "removed: it held no work that is not elsewhere"
        gitops.remove_worktree(repo, lease.path)
    except GitError as exc:
        return LeaseState.KEPT, f"kept: its state could not be read ({exc})"
    note = f"archived: the directory is gone; branch {lease.branch} keeps {unique} commit(s) no other ref holds"
    if saved is not None:
        note += (
            f", the last ({saved[:12]}) holding what was left uncommitted "
            f"({work.changed} changed, {work.untracked} untracked)"
        )
    return LeaseState.ARCHIVED, note


def _gone(lease: Lease) -> tuple[LeaseState, str]:
    """Its directory was removed outside overmind: git forgets it; the branch stays if it holds anything."""
    repo = gitops.tree(lease.repo)
    with contextlib.suppress(GitError):
        gitops.prune_worktrees(repo)
    if gitops.branch_exists(repo, lease.branch):
        return LeaseState.MISSING, f"its directory was removed outside overmind; branch {lease.branch} remains"
    return LeaseState.MISSING, "its directory and branch were removed outside overmind"


def undo(lease: Lease) -> bool:
    """Take back a worktree made for a spawn that failed before its mission began; False if it holds work."""
    repo = gitops.tree(lease.repo)
    if lease.path.exists():
        if gitops.dirt(lease.path).any:
            return False
        gitops.remove_worktree(repo, lease.path)
    if gitops.branch_exists(repo, lease.branch):
        if gitops.unique_commits(repo, lease.branch):
            return False
        gitops.delete_branch(repo, lease.branch)
    return True


def discard(lease: Lease) -> None:
    """Remove the worktree and its branch, work and all: only ever on a person's or an agent's explicit request."""
    repo = gitops.tree(lease.repo)
    if lease.path.exists():
        gitops.remove_worktree(repo, lease.path)
    else:
        with contextlib.suppress(GitError):
            gitops.prune_worktrees(repo)
    if gitops.branch_exists(repo, lease.branch):
        gitops.delete_branch(repo, lease.branch)
