"""The worktree workspace: a branch and a directory per mission, and the ways back (merge, discard).

A mission that asks for isolation gets `<repo>/.overmind/worktrees/<name>` on branch
`overmind/<name>`, made from a recorded base commit, and leased to it alone (its restarts
keep it). It fails closed: if the worktree cannot be made, the spawn fails with the reason.

At the end, its policy decides, and no policy ever deletes work:
- `remove-if-clean` (default): nothing uncommitted and every commit also on another ref →
  the directory and the branch go; committed work nobody else holds → the directory goes,
  the branch stays (archived); uncommitted work → everything stays (kept), and says so.
- `archive`: uncommitted work (untracked files included) is committed on the branch, then
  the directory goes and the branch stays.
- `keep`: both stay.
Anything git cannot tell counts as dirty.

Merges never touch a person's checkout unless the target branch is checked out there and
that checkout is clean; the merge commit is made with plumbing and the branch moved only
if nobody moved it meanwhile.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiosqlite
import anyio.to_thread
import git

from overmind_mcp.core.status import Status
from overmind_mcp.errors import Conflict, InvalidRequest, NotFound
from overmind_mcp.storage import sqlite
from overmind_mcp.workspaces.base import Placement
from overmind_mcp.workspaces.git import repo as gitops
from overmind_mcp.workspaces.git.repo import GitError

Cleanup = Literal["remove-if-clean", "archive", "keep"]
Strategy = Literal["merge", "squash", "rebase"]
FILENAME = "worktrees.db"

_MIGRATIONS: list[sqlite.Migration] = [
    sqlite.statements(
        """
    CREATE TABLE worktrees (
        mission_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        repo TEXT NOT NULL,
        path TEXT NOT NULL,
        branch TEXT NOT NULL,
        base TEXT NOT NULL,
        target TEXT,
        cleanup TEXT NOT NULL,
        state TEXT NOT NULL,
        note TEXT
    ) STRICT;
    """
    )
]


@dataclass(slots=True)
class Lease:
    mission_id: str
    name: str
    repo: Path
    path: Path
    branch: str
    base: str
    target: str | None
    cleanup: Cleanup
    state: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    branch: str
    base: str
    commits_ahead: int
    files: int
    insertions: int
    deletions: int
    uncommitted: int
    untracked: int
    state: str
    note: str | None


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    merged: bool
    into: str
    strategy: Strategy
    commit: str | None
    conflicts: list[str]
    note: str


class GitWorktreeWorkspace:
    name = "worktree"

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / FILENAME
        self._db: aiosqlite.Connection | None = None

    async def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            self._db = await sqlite.connect(self._path, _MIGRATIONS)
        return self._db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    # -- the seam --------------------------------------------------------------------------

    async def prepare(self, placement: Placement) -> Path:
        try:
            lease = await anyio.to_thread.run_sync(self._make, placement)
        except GitError as exc:
            raise InvalidRequest(f"isolation=worktree: {exc}; the mission was not started") from None
        db = await self._conn()
        await db.execute(
            "INSERT INTO worktrees VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                lease.mission_id,
                lease.name,
                str(lease.repo),
                str(lease.path),
                lease.branch,
                lease.base,
                lease.target,
                lease.cleanup,
                lease.state,
                None,
            ),
        )
        return lease.path

    def _make(self, placement: Placement) -> Lease:
        options = placement.spec.worktree
        cleanup: Cleanup = options.cleanup if options else "remove-if-clean"
        base = options.base if options else None
        start = placement.parent_cwd or Path.cwd()
        if placement.requested_cwd:
            start = start / Path(placement.requested_cwd).expanduser()
        holding = gitops.open_repo(start)
        root = gitops.main_checkout(holding)
        repo = git.Repo(root)
        base_commit = gitops.rev(holding, base or "HEAD")
        path = root / ".overmind" / "worktrees" / placement.name
        branch = f"overmind/{placement.name}"
        if path.exists():
            raise GitError(f"{path} already exists: a worktree is never reused while it may hold work")
        gitops.exclude(root, "/.overmind/")
        gitops.add_worktree(repo, path, branch, base_commit)
        return Lease(
            mission_id=placement.mission_id,
            name=placement.name,
            repo=root,
            path=path,
            branch=branch,
            base=base_commit,
            target=gitops.current_branch(holding),
            cleanup=cleanup,
            state="active",
        )

    async def release(self, mission_id: str, cwd: Path, status: Status) -> None:
        lease = await self.lease(mission_id)
        if lease.state != "active":
            return
        state, note = await anyio.to_thread.run_sync(self._end_of_life, lease)
        await self._set_state(mission_id, state, note)

    def _end_of_life(self, lease: Lease) -> tuple[str, str]:
        if lease.cleanup == "keep":
            return "kept", "kept by its policy"
        repo = git.Repo(lease.repo)
        try:
            dirt = gitops.dirt(lease.path)
            if lease.cleanup == "archive" and dirt.any:
                gitops.commit_everything(lease.path, f"overmind: work {lease.name} left uncommitted (archived)")
                dirt = gitops.dirt(lease.path)
            unique = gitops.unique_commits(repo, lease.branch)
        except GitError as exc:
            return "kept", f"kept: its state could not be read ({exc})"
        if dirt.any:
            return "kept", f"kept: {dirt.changed} uncommitted change(s) and {dirt.untracked} untracked file(s)"
        gitops.remove_worktree(repo, lease.path)
        if unique:
            return "archived", f"archived: the directory is gone, branch {lease.branch} keeps {unique} commit(s)"
        gitops.delete_branch(repo, lease.branch)
        return "removed", "removed: it held no work that is not elsewhere"

    # -- what the tools ask ----------------------------------------------------------------

    async def lease(self, mission_id: str) -> Lease:
        db = await self._conn()
        rows = list(await db.execute_fetchall("SELECT * FROM worktrees WHERE mission_id = ?", (mission_id,)))
        if not rows:
            raise NotFound(f"mission {mission_id} has no worktree: spawn it with isolation='worktree'")
        return _lease(rows[0])

    async def change(self, mission_id: str) -> Change | None:
        try:
            lease = await self.lease(mission_id)
        except NotFound:
            return None
        return await anyio.to_thread.run_sync(self._change, lease)

    def _change(self, lease: Lease) -> Change:
        repo = git.Repo(lease.repo)
        try:
            stat = gitops.diffstat(repo, lease.base, lease.branch)
            ahead = gitops.ahead(repo, lease.base, lease.branch)
        except GitError:
            stat, ahead = gitops.Diffstat(0, 0, 0), 0
        dirt = gitops.dirt(lease.path) if lease.path.exists() else gitops.Dirt(0, 0)
        return Change(
            branch=lease.branch,
            base=lease.base,
            commits_ahead=ahead,
            files=stat.files,
            insertions=stat.insertions,
            deletions=stat.deletions,
            uncommitted=dirt.changed,
            untracked=dirt.untracked,
            state=lease.state,
            note=lease.note,
        )

    async def merge(
        self, mission_id: str, *, strategy: Strategy = "merge", into: str | None = None, check_only: bool = False
    ) -> MergeOutcome:
        lease = await self.lease(mission_id)
        outcome = await anyio.to_thread.run_sync(self._merge, lease, strategy, into, check_only)
        if outcome.merged:
            await self._set_state(mission_id, lease.state, f"merged into {outcome.into} ({outcome.commit})")
        return outcome

    def _merge(self, lease: Lease, strategy: Strategy, into: str | None, check_only: bool) -> MergeOutcome:
        target = into or lease.target
        if target is None:
            raise InvalidRequest(
                "the repository was on a detached HEAD when the mission began: say which branch `into`"
            )
        repo = git.Repo(lease.repo)
        if lease.path.exists() and gitops.dirt(lease.path).any:
            raise Conflict(
                f"{lease.branch} has uncommitted work in {lease.path}: commit it there (or discard it) before merging"
            )
        try:
            old = gitops.rev(repo, f"refs/heads/{target}")
        except GitError:
            raise InvalidRequest(f"there is no branch {target!r} to merge into") from None
        branch_head = gitops.rev(repo, f"refs/heads/{lease.branch}")
        if gitops.is_ancestor(repo, branch_head, old):
            note = f"{target} already holds every commit of {lease.branch}"
            return MergeOutcome(False, target, strategy, None, [], note)
        if strategy == "rebase":
            if not gitops.is_ancestor(repo, old, branch_head):
                raise Conflict(
                    f"{target} has moved on since {lease.branch} began: a rebase would rewrite the mission's "
                    "commits; merge or squash instead"
                )
            flight = gitops.Preflight(tree=None, conflicts=[])
        else:
            flight = gitops.preflight(repo, old, branch_head)
            if flight.conflicts:
                return MergeOutcome(False, target, strategy, None, flight.conflicts, "conflicts: nothing was changed")
        rebased_in = gitops.rebasing(repo, target)
        if rebased_in is not None:
            raise Conflict(
                f"{target} is being rebased in {rebased_in}: finish or abort that rebase first; nothing was changed"
            )
        checkouts = gitops.checkouts_of(repo, target)
        for checkout in checkouts:
            busy = gitops.operation_in_progress(checkout)
            if busy:
                raise Conflict(f"{checkout} has {busy} in progress on {target}: finish it first; nothing was changed")
            if gitops.dirt(checkout).changed:
                raise Conflict(
                    f"{target} is checked out in {checkout} with uncommitted changes: commit or stash them, "
                    "or merge into another branch; nothing was changed"
                )
        if check_only:
            return MergeOutcome(False, target, strategy, None, [], "it merges cleanly (check only: nothing changed)")
        if strategy == "rebase":
            new = branch_head  # the mission's commits already sit on the target: a fast-forward
        else:
            assert flight.tree is not None
            parents = [old, branch_head] if strategy == "merge" else [old]
            verb = "Merge" if strategy == "merge" else "Squash"
            new = gitops.commit_tree(repo, flight.tree, parents, f"{verb} {lease.branch} (mission {lease.name})")
        gitops.update_ref(repo, f"refs/heads/{target}", new, old)
        for checkout in checkouts:
            gitops.advance_checkout(checkout, old, new)
        return MergeOutcome(True, target, strategy, new, [], f"{target} is now at {new[:12]}")

    async def conflicts(self, mission_ids: list[str]) -> list[tuple[str, str, list[str]]]:
        """Pairwise conflicts between the missions' branches, and of each with its target."""
        leases = [await self.lease(mission_id) for mission_id in mission_ids]
        return await anyio.to_thread.run_sync(self._conflicts, leases)

    def _conflicts(self, leases: list[Lease]) -> list[tuple[str, str, list[str]]]:
        found = []
        for index, first in enumerate(leases):
            repo = git.Repo(first.repo)
            if first.target:
                flight = gitops.preflight(repo, f"refs/heads/{first.target}", f"refs/heads/{first.branch}")
                if flight.conflicts:
                    found.append((first.branch, first.target, flight.conflicts))
            for second in leases[index + 1 :]:
                if second.repo != first.repo:
                    continue
                flight = gitops.preflight(repo, f"refs/heads/{first.branch}", f"refs/heads/{second.branch}")
                if flight.conflicts:
                    found.append((first.branch, second.branch, flight.conflicts))
        return found

    async def discard(self, mission_id: str) -> str:
        """Remove a finished mission's worktree and branch, work and all (asked for by name)."""
        lease = await self.lease(mission_id)
        if lease.state == "active":
            raise Conflict(f"mission {lease.name} still works in {lease.path}: kill it first")
        await anyio.to_thread.run_sync(self._discard, lease)
        await self._set_state(mission_id, "discarded", "discarded on request")
        return f"removed {lease.path} and branch {lease.branch}"

    def _discard(self, lease: Lease) -> None:
        repo = git.Repo(lease.repo)
        if lease.path.exists():
            gitops.remove_worktree(repo, lease.path)
        with contextlib.suppress(GitError):  # already gone
            gitops.delete_branch(repo, lease.branch)

    async def _set_state(self, mission_id: str, state: str, note: str) -> None:
        db = await self._conn()
        await db.execute("UPDATE worktrees SET state = ?, note = ? WHERE mission_id = ?", (state, note, mission_id))


def _lease(row: sqlite3.Row) -> Lease:
    return Lease(
        mission_id=row["mission_id"],
        name=row["name"],
        repo=Path(row["repo"]),
        path=Path(row["path"]),
        branch=row["branch"],
        base=row["base"],
        target=row["target"],
        cleanup=row["cleanup"],
        state=row["state"],
        note=row["note"],
    )
