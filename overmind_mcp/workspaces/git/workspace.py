"""The worktree workspace: a branch and a directory per mission, its ports and services, and the ways back.

A mission that asks for isolation gets `<repo>/.overmind/worktrees/<name>` on branch
`overmind/<name>`, made from a recorded base commit (default: HEAD of the repository that
holds its cwd), leased to it alone; its restarts keep it, and it is never reused while it
may hold work. A child of an isolated mission works in its parent's worktree (as a tenant:
the worktree ends only once they all have) unless it asks for its own, which is then based
on the parent's branch and merges back into it. It fails closed: if the worktree, a port or
a service cannot be had, the spawn fails with the reason, and whatever was made for it is
taken back. Ports and services come from the project file (see project.py, services.py).

The lease is recorded (state `preparing`) before the worktree is made, so a server that dies
at any point leaves a record that the next one reconciles with `git worktree list`.
End of life: ending.py; merge, conflicts: merging.py.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from overmind_mcp.core.status import Status
from overmind_mcp.errors import Conflict, InvalidRequest, SpawnError
from overmind_mcp.workspaces import project as projects
from overmind_mcp.workspaces.base import Placement, Prepared
from overmind_mcp.workspaces.git import ending, merging
from overmind_mcp.workspaces.git import repo as gitops
from overmind_mcp.workspaces.git.merging import MergeOutcome, Strategy
from overmind_mcp.workspaces.git.repo import GitError
from overmind_mcp.workspaces.plain import directory
from overmind_mcp.workspaces.records import WORKING, Lease, LeaseState, Records
from overmind_mcp.workspaces.services import Services

logger = logging.getLogger("overmind_mcp")

WORKTREES = Path(".overmind") / "worktrees"
# A lease this young whose mission is not live may belong to a spawn still under way in another process.
_SPAWN_IN_FLIGHT_S = 60.0


@dataclass(frozen=True, slots=True)
class Change:
    """What an isolated mission changed on its branch, and what its worktree still holds."""

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
    path: str


class GitWorktreeWorkspace:
    name = "worktree"

    def __init__(self, state_dir: Path, *, docker_bin: str = "docker") -> None:
        self._state_dir = state_dir
        self._docker_bin = docker_bin
        self._opened: tuple[Records, Services] | None = None
        # Releases of one owner and its tenants must not interleave (who ends the worktree last).
        self._ending = anyio.Lock()

    async def _parts(self) -> tuple[Records, Services]:
        if self._opened is None:
            records = await Records.open(self._state_dir)
            self._opened = records, Services(records, self._state_dir / "services", docker_bin=self._docker_bin)
        return self._opened

    async def records(self) -> Records:
        return (await self._parts())[0]

    async def close(self) -> None:
        if self._opened is not None:
            await self._opened[0].close()
            self._opened = None

    # -- the seam --------------------------------------------------------------------------

    async def prepare(self, placement: Placement) -> Prepared:
        records, services = await self._parts()
        own = placement.spec.worktree
        parent = await self._lease_worked_in(placement.parent_id)
        if own is None or own.shared:
            return await self._share(placement, parent)
        try:
            lease, inside, project = await anyio.to_thread.run_sync(self._plan, placement, parent)
        except GitError as exc:
            raise InvalidRequest(f"isolation='worktree': {exc}; the mission was not started") from None
        await records.insert(lease)
        try:
            try:
                cwd = await anyio.to_thread.run_sync(self._make, lease, inside)
            except GitError as exc:
                raise SpawnError(f"isolation='worktree': {exc}; the mission was not started") from None
            env = await services.start(lease.mission_id, project, lease.path, lease.repo) if project else {}
            clash = sorted(set(env) & set(placement.spec.env))
            if clash:
                raise InvalidRequest(
                    f"env {', '.join(clash)}: {project.path if project else 'the project file'} gives these "
                    "to each isolated mission (its own ports); leave them out of env"
                )
            await records.set_env(lease.mission_id, env)
            await records.set_state(lease.mission_id, LeaseState.ACTIVE, None)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._undo(lease)
            raise
        return Prepared(cwd, env)

    async def _share(self, placement: Placement, parent: Lease | None) -> Prepared:
        """A child of an isolated mission, in its parent's worktree (never anywhere else)."""
        if parent is None:
            raise InvalidRequest("a worktree of its parent's was asked for, but its parent has none")
        if parent.state not in WORKING:
            raise InvalidRequest(
                f"{parent.name}'s worktree has ended ({parent.state}): a child cannot work in it; "
                "ask for isolation='worktree' to have one of its own"
            )
        cwd = directory(placement.requested_cwd, placement.parent_cwd or parent.path)
        if not cwd.resolve().is_relative_to(parent.path.resolve()):
            raise InvalidRequest(
                f"cwd {placement.requested_cwd!r} is outside {parent.path}, the isolated worktree this child "
                "works in: give a directory inside it, or isolation='worktree' for a worktree of its own"
            )
        await (await self.records()).add_tenant(placement.mission_id, parent.mission_id)
        return Prepared(cwd, dict(parent.env or {}))

    async def _lease_worked_in(self, mission_id: str | None) -> Lease | None:
        """The worktree a mission works in: its own, or the one it is a tenant of."""
        if mission_id is None:
            return None
        records = await self.records()
        lease = await records.get(mission_id)
        if lease is not None:
            return lease
        owner = await records.owner_of(mission_id)
        return await records.get(owner) if owner else None

    def _plan(self, placement: Placement, parent: Lease | None) -> tuple[Lease, Path, projects.ProjectFile | None]:
        """What to make, found out without changing anything: the lease, where in the repository the mission
        asked to work (it works there in its worktree), and the project file."""
        options = placement.spec.worktree
        assert options is not None
        parent_cwd = placement.parent_cwd
        if parent is not None and (parent_cwd is None or not parent_cwd.is_dir()):
            parent_cwd = parent.repo  # its parent's worktree is archived: its branch is still there to start from
        try:
            start = directory(placement.requested_cwd, parent_cwd)
        except InvalidRequest as exc:
            raise GitError(str(exc)) from None
        holding = gitops.open_repo(start)
        root = gitops.main_checkout(holding)
        target = gitops.current_branch(holding)
        base_ref = options.base or "HEAD"
        if parent is not None:
            # A worktree of its own under an isolated parent: from the parent's branch, and back into it.
            target = parent.branch
            base_ref = options.base or f"refs/heads/{parent.branch}"
        try:
            base = gitops.rev(holding, base_ref)
        except GitError:
            raise GitError(f"base {base_ref!r} is not a commit of {root}") from None
        path = root / WORKTREES / placement.name
        branch = f"overmind/{placement.name}"
        if path.exists():
            raise GitError(
                f"{path} already exists (an earlier mission's worktree): a worktree is never reused; "
                "merge or discard that mission, or choose another name"
            )
        if gitops.branch_exists(holding, branch):
            raise GitError(
                f"branch {branch} already exists (an earlier mission's work?): merge or discard it, "
                "or choose another name"
            )
        project = projects.load(root)
        lease = Lease(
            mission_id=placement.mission_id,
            name=placement.name,
            repo=root,
            path=path,
            branch=branch,
            base=base,
            target=target,
            cleanup=options.cleanup,
            state=LeaseState.PREPARING,
            created_at=time.time(),
        )
        inside = start.resolve().relative_to(Path(holding.working_tree_dir or root).resolve())
        return lease, inside, project

    def _make(self, lease: Lease, inside: Path) -> Path:
        gitops.exclude(lease.repo, "/.overmind/")
        gitops.add_worktree(gitops.tree(lease.repo), lease.path, lease.branch, lease.base)
        cwd = lease.path / inside
        return cwd if cwd.is_dir() else lease.path

    async def release(self, mission_id: str, cwd: Path, status: Status | None) -> None:
        records = await self.records()
        async with self._ending:
            owner_id = await records.owner_of(mission_id)
            if owner_id is not None:
                await records.remove_tenant(mission_id)
                owner = await records.get(owner_id)
                if owner is not None and owner.state == LeaseState.WAITING and not await records.tenants(owner_id):
                    await self._end(owner)
                return
            lease = await records.get(mission_id)
            if lease is None or lease.state not in WORKING:
                return
            if status is None:
                await self._undo(lease)
                return
            tenants = await records.tenants(mission_id)
            if tenants:
                note = f"its mission ended; {len(tenants)} child mission(s) still work in it"
                await records.set_state(mission_id, LeaseState.WAITING, note)
                return
            await self._end(lease)

    async def _end(self, lease: Lease) -> None:
        records, services = await self._parts()
        problems = await services.stop(lease.mission_id)
        state, note = await anyio.to_thread.run_sync(ending.end_of_life, lease)
        if problems:
            note = f"{note}; {'; '.join(problems)}"
        await records.set_state(lease.mission_id, state, note)

    async def _undo(self, lease: Lease) -> None:
        """Take back what prepare made for a spawn that failed before its mission began."""
        records, services = await self._parts()
        await services.stop(lease.mission_id)
        try:
            undone = await anyio.to_thread.run_sync(ending.undo, lease)
        except GitError as exc:
            undone = False
            logger.warning("taking back the worktree %s failed: %s", lease.path, exc)
        if undone:
            await records.delete(lease.mission_id)
        else:
            await records.set_state(lease.mission_id, LeaseState.KEPT, "kept: its spawn failed, and it holds work")

    # -- server start ----------------------------------------------------------------------

    async def reconcile(self, live: Collection[str]) -> list[str]:
        """Make the records and git agree, after servers that may have died: what was done, in words.

        `live` are the missions that have not ended (on any server). A worktree whose mission
        has ended gets its end of life now; a tenant or a port or service of an ended mission
        is released; a worktree under `.overmind/worktrees` that no record knows is adopted
        (kept, to merge or discard); one whose directory is gone is pruned from git's list.
        """
        records, services = await self._parts()
        report: list[str] = []
        async with self._ending:
            for tenant, _owner in await records.tenants():
                if tenant not in live:
                    await records.remove_tenant(tenant)
            for lease in await records.leases(WORKING):
                if lease.mission_id in live or await records.tenants(lease.mission_id):
                    continue
                if time.time() - lease.created_at < _SPAWN_IN_FLIGHT_S:
                    continue  # another process may be spawning its mission right now: not ours to judge yet
                if lease.state == LeaseState.PREPARING:
                    await self._undo(lease)
                    report.append(f"{lease.name}: its spawn never finished; taken back")
                    continue
                await self._end(lease)
                ended = await records.get(lease.mission_id)
                report.append(f"{lease.name}: its mission had ended; {ended.note if ended else 'released'}")
            holders = {lease.mission_id for lease in await records.leases(WORKING)} | set(live)
            for port in await records.ports():
                if port.mission_id not in holders:
                    await services.stop(port.mission_id)
            for service in await records.services():
                if service.mission_id not in holders:
                    await services.stop(service.mission_id)
            leases = await records.leases()
            for root in sorted({lease.repo for lease in leases}):
                said, found = await anyio.to_thread.run_sync(self._reconcile_repo, root, leases)
                report += said
                for lease in found:
                    await records.insert(lease)
                    report.append(f"{lease.path}: a worktree no record knew; adopted and kept")
        for line in report:
            logger.warning("worktrees: %s", line)
        return report

    def _reconcile_repo(self, root: Path, leases: list[Lease]) -> tuple[list[str], list[Lease]]:
        """Git's side of one repository: merges' leftovers removed, vanished worktrees pruned, unknown ones found."""
        if not root.is_dir():
            return [], []
        try:
            repo = gitops.tree(root)
            entries = gitops.worktrees(repo)
        except GitError as exc:
            return [f"{root}: could not be read ({exc})"], []
        report = []
        scratch = root / merging.SCRATCH
        for entry in entries:
            if entry.path.parent == scratch:
                # A merge's own temporary worktree, left by a server that died: it holds nothing of anyone's.
                with contextlib.suppress(GitError):
                    gitops.remove_worktree(repo, entry.path)
                report.append(f"{entry.path}: a merge's temporary worktree, removed")
        if scratch.is_dir():
            shutil.rmtree(scratch, ignore_errors=True)
        if any(entry.prunable for entry in entries):
            with contextlib.suppress(GitError):
                gitops.prune_worktrees(repo)
        known = {lease.path for lease in leases}
        found = [
            Lease(
                mission_id=f"found-{entry.path.name}",
                name=entry.path.name,
                repo=root,
                path=entry.path,
                branch=entry.branch or f"overmind/{entry.path.name}",
                base=entry.head or "",
                target=None,
                cleanup="keep",
                state=LeaseState.KEPT,
                note="found at start with no record (its server died while making it?): kept; merge or discard it",
                created_at=time.time(),
            )
            for entry in entries
            if entry.path.parent == root / WORKTREES and entry.path not in known and not entry.prunable
        ]
        return report, found

    # -- what the tools ask ----------------------------------------------------------------

    async def lease(self, ref: str) -> Lease:
        """The worktree lease of a mission (by id or name), or of the mission whose worktree it works in."""
        records = await self.records()
        owner = await records.owner_of(ref)
        return await records.find(owner or ref)

    async def leases(self) -> list[Lease]:
        return await (await self.records()).leases()

    async def change(self, mission_id: str) -> Change | None:
        lease = await (await self.records()).get(mission_id)
        if lease is None:
            return None
        return await anyio.to_thread.run_sync(change_of, lease)

    async def merge(
        self, ref: str, *, strategy: Strategy = "merge", into: str | None = None, check_only: bool = False
    ) -> MergeOutcome:
        records = await self.records()
        lease = await records.find(ref)
        if lease.state in WORKING:
            raise Conflict(f"mission {lease.name} still works in {lease.path} ({lease.state}): wait for it first")
        try:
            outcome = await anyio.to_thread.run_sync(merging.merge, lease, strategy, into, check_only)
        except GitError as exc:
            raise Conflict(f"merging {lease.branch} failed: {exc}; nothing was changed") from None
        if outcome.merged:
            note = f"{strategy} into {outcome.into} at {(outcome.commit or '')[:12]}"
            state = lease.state
            if lease.state == LeaseState.ARCHIVED and await anyio.to_thread.run_sync(_holds_nothing_else, lease):
                # The directory is gone and every commit of the branch is on the target now.
                await anyio.to_thread.run_sync(ending.discard, lease)
                state, note = LeaseState.REMOVED, f"{note}; branch {lease.branch} held nothing else and was deleted"
            await records.set_state(lease.mission_id, state, note)
        return outcome

    async def conflicts(self, refs: list[str]) -> list[tuple[str, str, list[str]]]:
        """Pairwise conflicts between the missions' work, committed or not, and of each with its target."""
        records = await self.records()
        leases = [await records.find(ref) for ref in refs]
        try:
            return await anyio.to_thread.run_sync(merging.conflicts, leases)
        except GitError as exc:
            raise Conflict(f"the conflicts could not be computed: {exc}") from None

    async def discard(self, ref: str) -> str:
        """Remove an ended mission's worktree and branch, work and all (asked for by name)."""
        records, services = await self._parts()
        lease = await records.find(ref)
        if lease.state in WORKING:
            raise Conflict(f"mission {lease.name} still works in {lease.path} ({lease.state}): end it first")
        await services.stop(lease.mission_id)
        try:
            await anyio.to_thread.run_sync(ending.discard, lease)
        except GitError as exc:
            raise Conflict(f"discarding {lease.name} failed: {exc}") from None
        await records.set_state(lease.mission_id, LeaseState.DISCARDED, "discarded on request, work and all")
        return f"removed {lease.path} and branch {lease.branch}"


def change_of(lease: Lease) -> Change:
    repo = gitops.tree(lease.repo)
    stat, commits = gitops.Diffstat(0, 0, 0), 0
    with contextlib.suppress(GitError):
        if gitops.branch_exists(repo, lease.branch):
            stat = gitops.diffstat(repo, lease.base, f"refs/heads/{lease.branch}")
            commits = gitops.ahead(repo, lease.base, lease.branch)
    work = gitops.Dirt(0, 0)
    if lease.state.has_directory and lease.path.exists():
        with contextlib.suppress(GitError):
            work = gitops.dirt(lease.path)
    return Change(
        branch=lease.branch,
        base=lease.base,
        commits_ahead=commits,
        files=stat.files,
        insertions=stat.insertions,
        deletions=stat.deletions,
        uncommitted=work.changed,
        untracked=work.untracked,
        state=lease.state,
        note=lease.note,
        path=str(lease.path),
    )


def _holds_nothing_else(lease: Lease) -> bool:
    repo = gitops.tree(lease.repo)
    return gitops.branch_exists(repo, lease.branch) and gitops.unique_commits(repo, lease.branch) == 0
