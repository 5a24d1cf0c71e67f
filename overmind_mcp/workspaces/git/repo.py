"""The git commands the worktree workspace needs, each an argv list (never a shell string).

GitPython runs them (`Repo.git.execute`), so every call is `git <command> <args…>` with no
shell in between. What must never touch a person's checkout is done with plumbing:
`merge-tree --write-tree` to merge, `commit-tree` to make the commit, `update-ref` with the
value the ref must still have, and `read-tree -m -u` (a two-tree merge, as a fast-forward
does it) to bring a checkout of the target along, which refuses, before changing anything,
whenever a local change or an untracked file would be overwritten.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# GitPython is imported by the functions that run git, on first use: a server that makes no
# worktree never loads it, and starts the sooner.
if TYPE_CHECKING:
    import git

IDENTITY = {
    "GIT_AUTHOR_NAME": "overmind",
    "GIT_AUTHOR_EMAIL": "overmind@localhost",
    "GIT_COMMITTER_NAME": "overmind",
    "GIT_COMMITTER_EMAIL": "overmind@localhost",
}
# A replayed commit keeps its author; overmind is the one who commits it again.
_COMMITTER = {key: value for key, value in IDENTITY.items() if key.startswith("GIT_COMMITTER")}
# Commits overmind makes must not depend on a person's signing key or hooks.
_PLAIN_COMMITS = ("-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null")


class GitError(Exception):
    """A git command failed; the message says which and why."""


def run(
    repo: git.Repo, *args: str, env: Mapping[str, str] | None = None, config: Sequence[str] = (), check: bool = True
) -> str:
    """`git [config…] <args…>` in `repo`'s working tree; its output, or GitError with what git said."""
    import git

    try:
        return repo.git.execute(  # type: ignore[call-overload,no-any-return]
            ["git", *config, *args], env=dict(env) if env else None, strip_newline_in_stdout=True
        )
    except git.GitCommandError as exc:
        if not check:
            return ""
        said = (exc.stderr or exc.stdout or str(exc)).strip().removeprefix("stderr: ").strip("'").strip()
        raise GitError(f"git {args[0]} failed: {said}") from None


def open_repo(path: Path) -> git.Repo:
    """The repository holding `path` (its own checkout, or a linked worktree of it)."""
    import git

    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(f"{path} is not inside a git repository") from None


def tree(path: Path) -> git.Repo:
    """The working tree at exactly `path`."""
    import git

    try:
        return git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(f"{path} is not a git working tree") from None


def main_checkout(repo: git.Repo) -> Path:
    """The main working tree of the repository (linked worktrees share its .git)."""
    common = Path(run(repo, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    return common.parent


def rev(repo: git.Repo, name: str) -> str:
    return run(repo, "rev-parse", "--verify", "--end-of-options", f"{name}^{{commit}}")


def branch_exists(repo: git.Repo, branch: str) -> bool:
    return bool(run(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False))


def current_branch(repo: git.Repo) -> str | None:
    """The branch checked out in this working tree; None when HEAD is detached."""
    return run(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False) or None


def add_worktree(repo: git.Repo, path: Path, branch: str, base: str) -> None:
    run(repo, "worktree", "add", "--quiet", "-b", branch, str(path), base)


def remove_worktree(repo: git.Repo, path: Path) -> None:
    # --force only because the directory may hold ignored files (build output); callers have
    # counted the work in it first. Twice: a worktree that is locked needs it given twice.
    run(repo, "worktree", "remove", "--force", "--force", str(path))


def delete_branch(repo: git.Repo, branch: str) -> None:
    run(repo, "branch", "--quiet", "-D", branch)


@dataclass(frozen=True, slots=True)
class Dirt:
    """Work in a working tree that no commit holds."""

    changed: int
    untracked: int

    @property
    def any(self) -> bool:
        return bool(self.changed or self.untracked)


def dirt(worktree: Path) -> Dirt:
    """Uncommitted changes, counting every untracked file (never `-uno`: new files are work too)."""
    status = run(tree(worktree), "status", "--porcelain=v1", "--untracked-files=all", "--ignore-submodules=none")
    lines = [line for line in status.splitlines() if line]
    untracked = sum(line.startswith("??") for line in lines)
    return Dirt(changed=len(lines) - untracked, untracked=untracked)


def unique_commits(repo: git.Repo, branch: str) -> int:
    """Commits on `branch` that no other ref holds (branches, tags, remotes, the stash, notes…): lost if it went."""
    own = f"refs/heads/{branch}"
    others = [ref for ref in run(repo, "for-each-ref", "--format=%(refname)").splitlines() if ref and ref != own]
    return int(run(repo, "rev-list", "--count", own, "--not", *others))


def ahead(repo: git.Repo, base: str, branch: str) -> int:
    return int(run(repo, "rev-list", "--count", f"{base}..refs/heads/{branch}"))


@dataclass(frozen=True, slots=True)
class Diffstat:
    files: int
    insertions: int
    deletions: int


def diffstat(repo: git.Repo, base: str, head: str) -> Diffstat:
    files = insertions = deletions = 0
    for line in run(repo, "diff", "--numstat", "--no-renames", base, head).splitlines():
        added, removed, _path = line.split("\t", 2)
        files += 1
        insertions += int(added) if added.isdigit() else 0
        deletions += int(removed) if removed.isdigit() else 0
    return Diffstat(files, insertions, deletions)


def commit_everything(worktree: Path, message: str) -> str | None:
    """Commit all work in `worktree`, untracked files included; the new commit, or None if nothing was left."""
    checkout = tree(worktree)
    run(checkout, "add", "--all")
    if not run(checkout, "status", "--porcelain=v1").strip():
        return None
    run(checkout, "commit", "--quiet", "--no-verify", "-m", message, env=IDENTITY, config=_PLAIN_COMMITS)
    return rev(checkout, "HEAD")


def snapshot(worktree: Path) -> str:
    """A commit of everything in `worktree` now (untracked files too), made without touching its index or files.

    HEAD itself when it is clean; otherwise a commit on top of HEAD that no ref holds.
    """
    checkout = tree(worktree)
    head = rev(checkout, "HEAD")
    if not dirt(worktree).any:
        return head
    with tempfile.TemporaryDirectory(prefix="overmind-snapshot-") as scratch:
        index = Path(scratch) / "index"
        own_index = own_git_dir(worktree) / "index"
        if own_index.exists():
            shutil.copyfile(own_index, index)  # its stat data spares re-reading unchanged files
        env = {"GIT_INDEX_FILE": str(index)}
        run(checkout, "add", "--all", env=env)
        snapshot_tree = run(checkout, "write-tree", env=env)
    return commit_tree(checkout, snapshot_tree, [head], "overmind: snapshot of work in progress")


@dataclass(frozen=True, slots=True)
class Preflight:
    tree: str | None
    conflicts: list[str]


def preflight(repo: git.Repo, target: str, head: str) -> Preflight:
    """What merging `head` into `target` would give, computed without touching any checkout or ref."""
    status, out, err = repo.git.execute(
        ["git", "merge-tree", "--write-tree", "--name-only", "--no-messages", target, head],
        with_extended_output=True,
        with_exceptions=False,
    )
    lines = [line for line in out.splitlines() if line]
    if status == 0:
        return Preflight(tree=lines[0], conflicts=[])
    if status == 1:
        return Preflight(tree=None, conflicts=sorted(set(lines[1:])))
    raise GitError(f"git merge-tree failed: {err.strip()}")


def commit_tree(repo: git.Repo, tree_id: str, parents: list[str], message: str) -> str:
    args = ["commit-tree", tree_id]
    for parent in parents:
        args += ["-p", parent]
    return run(repo, *args, "-m", message, env=IDENTITY, config=_PLAIN_COMMITS)


def update_ref(repo: git.Repo, ref: str, new: str, old: str, reason: str) -> None:
    """Move `ref` to `new` only if it still is `old` (another writer in between makes this fail)."""
    run(repo, "update-ref", "-m", reason, ref, new, old)


def is_ancestor(repo: git.Repo, older: str, newer: str) -> bool:
    status, _out, _err = repo.git.execute(
        ["git", "merge-base", "--is-ancestor", older, newer], with_extended_output=True, with_exceptions=False
    )
    return status == 0


@dataclass(frozen=True, slots=True)
class WorktreeEntry:
    """One working tree as `git worktree list --porcelain` describes it."""

    path: Path
    head: str | None
    branch: str | None  # short name; None when detached
    prunable: bool


def worktrees(repo: git.Repo) -> list[WorktreeEntry]:
    entries: list[WorktreeEntry] = []
    for block in run(repo, "worktree", "list", "--porcelain").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _space, value = line.partition(" ")
            fields[key] = value
        if "worktree" not in fields:
            continue
        branch = fields.get("branch")
        entries.append(
            WorktreeEntry(
                path=Path(fields["worktree"]),
                head=fields.get("HEAD"),
                branch=branch.removeprefix("refs/heads/") if branch else None,
                prunable="prunable" in fields,
            )
        )
    return entries


def prune_worktrees(repo: git.Repo) -> None:
    """Forget working trees whose directories are gone (git's own rule: a directory still there is kept)."""
    run(repo, "worktree", "prune")


def checkouts_of(entries: Sequence[WorktreeEntry], branch: str) -> list[Path]:
    """The working trees that have `branch` checked out."""
    return [entry.path for entry in entries if entry.branch == branch and not entry.prunable]


def own_git_dir(worktree: Path) -> Path:
    """A working tree's own git directory, read from its `.git` (a directory, or a file naming one)."""
    dot_git = worktree / ".git"
    if dot_git.is_dir():
        return dot_git
    try:
        pointer = dot_git.read_text().strip()
    except OSError:
        raise GitError(f"{worktree} has no readable .git") from None
    if not pointer.startswith("gitdir: "):
        raise GitError(f"{dot_git} does not name a git directory")
    named = Path(pointer.removeprefix("gitdir: "))
    return named if named.is_absolute() else (worktree / named).resolve()


def rebasing(entries: Sequence[WorktreeEntry], branch: str) -> Path | None:
    """The working tree where `branch` is being rebased (its HEAD is detached meanwhile), if any."""
    for entry in entries:
        if entry.prunable:
            continue
        own = own_git_dir(entry.path)
        for state in ("rebase-merge", "rebase-apply"):
            head_name = own / state / "head-name"
            if head_name.exists() and head_name.read_text().strip() == f"refs/heads/{branch}":
                return entry.path
    return None


def operation_in_progress(worktree: Path) -> str | None:
    """A merge, rebase, cherry-pick, revert or bisect under way in this checkout, if any."""
    own = own_git_dir(worktree)
    for marker, what in (
        ("rebase-merge", "a rebase"),
        ("rebase-apply", "a rebase"),
        ("MERGE_HEAD", "a merge"),
        ("CHERRY_PICK_HEAD", "a cherry-pick"),
        ("REVERT_HEAD", "a revert"),
        ("BISECT_LOG", "a bisect"),
    ):
        if (own / marker).exists():
            return what
    return None


def can_advance(worktree: Path, old: str, new: str) -> str | None:
    """Why a checkout at `old` cannot be brought to `new` keeping its local changes; None if it can."""
    checkout = tree(worktree)
    # Fresh stat data, so that a file merely touched does not count as changed.
    run(checkout, "update-index", "-q", "--refresh", check=False)
    status, _out, err = checkout.git.execute(
        ["git", "read-tree", "-m", "-u", "--dry-run", old, new], with_extended_output=True, with_exceptions=False
    )
    if status == 0:
        return None
    return " ".join(line.removeprefix("error: ") for line in err.splitlines() if line.strip()) or "read-tree refused"


def advance(worktree: Path, old: str, new: str) -> None:
    """Bring a checkout from `old` to `new` as a fast-forward would: its own uncommitted changes and
    untracked files stay as they are (git refuses, changing nothing, if one would be overwritten)."""
    checkout = tree(worktree)
    run(checkout, "update-index", "-q", "--refresh", check=False)
    run(checkout, "read-tree", "-m", "-u", old, new)


def exclude(repo_root: Path, pattern: str) -> None:
    """Keep `pattern` out of the repository's status, locally (info/exclude, never a tracked file)."""
    info = Path(run(tree(repo_root), "rev-parse", "--path-format=absolute", "--git-common-dir")) / "info" / "exclude"
    info.parent.mkdir(parents=True, exist_ok=True)
    lines = info.read_text().splitlines() if info.exists() else []
    if pattern not in lines:
        with info.open("a") as file:
            file.write(f"{pattern}\n")


@dataclass(frozen=True, slots=True)
class Replayed:
    head: str | None  # the last replayed commit; None on a conflict
    commits: int
    conflicts: list[str]


def replay(repo: git.Repo, scratch: Path, onto: str, head: str) -> Replayed:
    """Replay the commits of `head` that `onto` lacks on top of `onto`, as `git rebase` would, in a
    temporary detached worktree at `scratch` (removed again): no checkout or ref of anyone's moves.

    On a conflict the rebase is aborted (it is this function's own, in its own worktree) and the
    conflicting paths are returned.
    """
    run(repo, "worktree", "add", "--quiet", "--detach", str(scratch), onto)
    try:
        work = tree(scratch)
        commits = int(run(work, "rev-list", "--count", "--no-merges", f"{onto}..{head}"))
        options = ["--no-verify", "--no-autostash", "--no-autosquash", "--no-update-refs", "--quiet"]
        try:
            run(work, "rebase", *options, "--onto", onto, onto, head, env=_COMMITTER, config=_PLAIN_COMMITS)
        except GitError:
            conflicts = run(work, "diff", "--name-only", "--diff-filter=U", check=False).splitlines()
            run(work, "rebase", "--abort", check=False)
            return Replayed(head=None, commits=commits, conflicts=sorted({path for path in conflicts if path}))
        return Replayed(head=rev(work, "HEAD"), commits=commits, conflicts=[])
    finally:
        with contextlib.suppress(GitError):
            remove_worktree(repo, scratch)
        shutil.rmtree(scratch, ignore_errors=True)
