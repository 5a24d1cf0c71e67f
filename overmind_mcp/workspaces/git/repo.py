"""The git commands the worktree workspace needs, each an argv list (never a shell string).

GitPython runs them (`Repo.git.<command>`), so every call is `git <command> <args…>`
with no shell in between; what git itself lacks a porcelain for (a merge that never
touches a checkout) is done with plumbing: `merge-tree --write-tree`, `commit-tree`,
and `update-ref` with the value the ref is expected to have.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

_AUTHOR_ENV = {
    "GIT_AUTHOR_NAME": "overmind",
    "GIT_AUTHOR_EMAIL": "overmind@localhost",
    "GIT_COMMITTER_NAME": "overmind",
    "GIT_COMMITTER_EMAIL": "overmind@localhost",
}


class GitError(Exception):
    """A git command failed; the message says which and why."""


def _run(repo: git.Repo, *args: str, env: dict[str, str] | None = None) -> str:
    try:
        return repo.git.execute(["git", *args], env=env)  # type: ignore[call-overload,no-any-return]
    except git.GitCommandError as exc:
        raise GitError(f"git {args[0]} failed: {(exc.stderr or exc.stdout or str(exc)).strip()}") from None


def open_repo(path: Path) -> git.Repo:
    """The repository holding `path` (its own checkout, or a linked worktree of it)."""
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(f"{path} is not inside a git repository") from None


def main_checkout(repo: git.Repo) -> Path:
    """The main working tree of the repository (linked worktrees share its .git)."""
    common = Path(_run(repo, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    return common.parent


def rev(repo: git.Repo, name: str) -> str:
    return _run(repo, "rev-parse", "--verify", f"{name}^{{commit}}")


def current_branch(repo: git.Repo) -> str | None:
    """The branch checked out in this working tree; None when HEAD is detached."""
    try:
        return _run(repo, "symbolic-ref", "--quiet", "--short", "HEAD")
    except GitError:
        return None


def add_worktree(repo: git.Repo, path: Path, branch: str, base: str) -> None:
    _run(repo, "worktree", "add", "-b", branch, str(path), base)


def remove_worktree(repo: git.Repo, path: Path) -> None:
    # --force only because the directory may hold ignored build output; callers check for work first.
    _run(repo, "worktree", "remove", "--force", str(path))


def delete_branch(repo: git.Repo, branch: str) -> None:
    _run(repo, "branch", "-D", branch)


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
    status = _run(git.Repo(worktree), "status", "--porcelain=v1", "--untracked-files=all")
    lines = [line for line in status.splitlines() if line]
    untracked = sum(line.startswith("??") for line in lines)
    return Dirt(changed=len(lines) - untracked, untracked=untracked)


def unique_commits(repo: git.Repo, branch: str) -> int:
    """Commits on `branch` that no other branch, tag or remote ref holds: lost if the branch went."""
    others = ["--not", f"--exclude={branch}", "--branches", "--tags", "--remotes"]
    listed = _run(repo, "rev-list", f"refs/heads/{branch}", *others)
    return len([line for line in listed.splitlines() if line])


def ahead(repo: git.Repo, base: str, branch: str) -> int:
    return int(_run(repo, "rev-list", "--count", f"{base}..refs/heads/{branch}"))


@dataclass(frozen=True, slots=True)
class Diffstat:
    files: int
    insertions: int
    deletions: int


def diffstat(repo: git.Repo, base: str, branch: str) -> Diffstat:
    files = insertions = deletions = 0
    for line in _run(repo, "diff", "--numstat", f"{base}...refs/heads/{branch}").splitlines():
        added, removed, _path = line.split("\t", 2)
        files += 1
        insertions += int(added) if added.isdigit() else 0
        deletions += int(removed) if removed.isdigit() else 0
    return Diffstat(files, insertions, deletions)


def commit_everything(worktree: Path, message: str) -> bool:
    """Commit all work in `worktree`, untracked files included; False if there was nothing to commit."""
    tree = git.Repo(worktree)
    _run(tree, "add", "--all")
    if not _run(tree, "status", "--porcelain=v1").strip():
        return False
    _run(tree, "commit", "--quiet", "--no-verify", "-m", message, env=_AUTHOR_ENV)
    return True


@dataclass(frozen=True, slots=True)
class Preflight:
    tree: str | None
    conflicts: list[str]


def preflight(repo: git.Repo, target: str, branch: str) -> Preflight:
    """What merging `branch` into `target` would give, computed without touching any checkout."""
    status, out, err = repo.git.execute(
        ["git", "merge-tree", "--write-tree", "--name-only", "--no-messages", target, branch],
        with_extended_output=True,
        with_exceptions=False,
    )
    lines = [line for line in out.splitlines() if line]
    if status == 0:
        return Preflight(tree=lines[0], conflicts=[])
    if status == 1:
        return Preflight(tree=None, conflicts=sorted(set(lines[1:])))
    raise GitError(f"git merge-tree failed: {err.strip()}")


def commit_tree(repo: git.Repo, tree: str, parents: list[str], message: str) -> str:
    args = ["commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    return _run(repo, *args, "-m", message, env=_AUTHOR_ENV)


def update_ref(repo: git.Repo, ref: str, new: str, old: str) -> None:
    """Move `ref` to `new` only if it still is `old` (another writer in between makes this fail)."""
    _run(repo, "update-ref", "-m", "overmind merge", ref, new, old)


def is_ancestor(repo: git.Repo, older: str, newer: str) -> bool:
    try:
        _run(repo, "merge-base", "--is-ancestor", older, newer)
    except GitError:
        return False
    return True


def checkouts_of(repo: git.Repo, branch: str) -> list[Path]:
    """The working trees that have `branch` checked out."""
    found, path = [], None
    for line in _run(repo, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
        elif line == f"branch refs/heads/{branch}" and path is not None:
            found.append(path)
    return found


def rebasing(repo: git.Repo, branch: str) -> Path | None:
    """The working tree where `branch` is being rebased (HEAD is detached meanwhile), if any."""
    for worktree in worktrees(repo):
        git_dir = Path(_run(git.Repo(worktree), "rev-parse", "--path-format=absolute", "--git-dir"))
        for state in ("rebase-merge", "rebase-apply"):
            head_name = git_dir / state / "head-name"
            if head_name.exists() and head_name.read_text().strip() == f"refs/heads/{branch}":
                return worktree
    return None


def operation_in_progress(worktree: Path) -> str | None:
    """A merge, rebase, cherry-pick or revert a person has under way in this checkout, if any."""
    tree = git.Repo(worktree)
    git_dir = Path(_run(tree, "rev-parse", "--path-format=absolute", "--git-dir"))
    for marker, what in (
        ("rebase-merge", "a rebase"),
        ("rebase-apply", "a rebase"),
        ("MERGE_HEAD", "a merge"),
        ("CHERRY_PICK_HEAD", "a cherry-pick"),
        ("REVERT_HEAD", "a revert"),
    ):
        if (git_dir / marker).exists():
            return what
    return None


def advance_checkout(worktree: Path, old: str, new: str) -> None:
    """Bring a clean checkout of a branch from `old` to `new` (index and files), as a fast-forward would."""
    _run(git.Repo(worktree), "read-tree", "-m", "-u", old, new)


def exclude(repo_root: Path, pattern: str) -> None:
    """Keep `pattern` out of the repository's status, locally (info/exclude, never a tracked file)."""
    repo = git.Repo(repo_root)
    info = Path(_run(repo, "rev-parse", "--path-format=absolute", "--git-common-dir")) / "info" / "exclude"
    info.parent.mkdir(parents=True, exist_ok=True)
    lines = info.read_text().splitlines() if info.exists() else []
    if pattern not in lines:
        with info.open("a") as file:
            file.write(f"{pattern}\n")


def worktrees(repo: git.Repo) -> list[Path]:
    return [
        Path(line.removeprefix("worktree "))
        for line in _run(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]
