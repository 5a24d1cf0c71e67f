"""Isolation in git worktrees, on real repositories made by the tests: nothing a mission did is ever lost."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from overmind_mcp.errors import Conflict, InvalidRequest
from overmind_mcp.models import SpawnRequest
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor

pytestmark = pytest.mark.anyio

ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    "PATH": "/usr/bin:/bin",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout.strip()


def start_a_conflicting_rebase(repo: Path, onto: str) -> None:
    done = subprocess.run(["git", "rebase", onto], cwd=repo, env=ENV, capture_output=True)
    assert done.returncode != 0  # it stopped on the conflict, as a person's rebase would


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text("print('hello')\n")
    (root / "notes.txt").write_text("one\ntwo\nthree\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "start")
    return root


def sh(script: str) -> list[str]:
    # Commits need an identity; the mission's environment gives it one.
    return ["sh", "-c", script]


async def run(supervisor: Supervisor, repo: Path, name: str, script: str, **options: object) -> dict[str, object]:
    request = SpawnRequest(command=sh(script), name=name, cwd=str(repo), isolation="worktree", env=dict(ENV), **options)
    spawned = await supervisor.spawn(request)
    [done] = (await supervisor.wait([spawned.id], timeout_s=30)).done
    assert done.status == "succeeded", done
    return done.model_dump()


async def test_a_mission_works_in_its_own_worktree_and_a_clean_one_is_removed(
    supervisor: Supervisor, repo: Path
) -> None:
    done = await run(supervisor, repo, "reader", "pwd; git rev-parse --abbrev-ref HEAD")
    path = repo / ".overmind" / "worktrees" / "reader"
    assert done["text"] == f"{path}\novermind/reader"
    assert done["cwd"] == str(path)
    # Nothing done, nothing kept: the directory and the branch are gone, the user's checkout untouched.
    assert not path.exists()
    assert "overmind/reader" not in git(repo, "branch", "--list")
    assert git(repo, "status", "--porcelain") == ""
    assert done["change"]["state"] == "removed"


async def test_untracked_only_work_is_kept(supervisor: Supervisor, repo: Path) -> None:
    done = await run(supervisor, repo, "scratch", "echo draft > new-file.txt")
    path = repo / ".overmind" / "worktrees" / "scratch"
    assert (path / "new-file.txt").read_text() == "draft\n"
    change = done["change"]
    assert (change["state"], change["untracked"]) == ("kept", 1)


async def test_committed_unmerged_work_is_archived_then_merged(supervisor: Supervisor, repo: Path) -> None:
    done = await run(
        supervisor,
        repo,
        "fixer",
        "echo fixed >> app.py && git commit -qam 'fix app' && echo more >> notes.txt && git commit -qam notes",
    )
    change = done["change"]
    assert (change["state"], change["commits_ahead"], change["files"]) == ("archived", 2, 2)
    assert not (repo / ".overmind" / "worktrees" / "fixer").exists()
    assert git(repo, "rev-list", "--count", "main..overmind/fixer") == "2"
    # The user has uncommitted work of their own on main: refused, nothing touched.
    (repo / "app.py").write_text("mine\n")
    with pytest.raises(Conflict, match="uncommitted changes"):
        await supervisor.merge("fixer")
    assert (repo / "app.py").read_text() == "mine\n"
    git(repo, "checkout", "--", "app.py")
    check = await supervisor.merge("fixer", check_only=True)
    assert not check.merged and not check.conflicts
    merged = await supervisor.merge("fixer", strategy="squash")
    assert merged.merged
    # The checked-out branch moved, and its files with it.
    assert "fixed" in (repo / "app.py").read_text()
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-list", "--count", "HEAD") == "2"  # squash: one new commit


async def test_siblings_editing_the_same_lines_conflict_and_nothing_is_touched(
    supervisor: Supervisor, repo: Path
) -> None:
    await run(supervisor, repo, "left", "echo left > notes.txt && git commit -qam left", worktree_cleanup="keep")
    await run(supervisor, repo, "right", "echo right > notes.txt && git commit -qam right", worktree_cleanup="keep")
    found = await supervisor.conflicts(["left", "right"])
    assert [(pair.a, pair.b, pair.paths) for pair in found.conflicts] == [
        ("overmind/left", "overmind/right", ["notes.txt"])
    ]
    assert (await supervisor.merge("left")).merged
    before = git(repo, "rev-parse", "main")
    outcome = await supervisor.merge("right")
    assert (outcome.merged, outcome.conflicts) == (False, ["notes.txt"])
    assert git(repo, "rev-parse", "main") == before
    assert git(repo, "status", "--porcelain") == ""


async def test_a_rebase_in_progress_in_the_users_checkout_is_left_alone(supervisor: Supervisor, repo: Path) -> None:
    await run(supervisor, repo, "worker", "echo work >> app.py && git commit -qam work")
    git(repo, "checkout", "-qb", "side", "HEAD")
    (repo / "notes.txt").write_text("side\n")
    git(repo, "commit", "-qam", "side")
    git(repo, "checkout", "-q", "main")
    (repo / "notes.txt").write_text("main\n")
    git(repo, "commit", "-qam", "main edit")
    start_a_conflicting_rebase(repo, "side")
    assert (repo / ".git" / "rebase-merge").exists()
    before = git(repo, "rev-parse", "refs/heads/main")
    with pytest.raises(Conflict, match="being rebased"):
        await supervisor.merge("worker")
    assert git(repo, "rev-parse", "refs/heads/main") == before
    # Another branch can take it meanwhile; the user's rebase is still theirs to finish.
    assert (await supervisor.merge("worker", into="side")).merged
    assert (repo / ".git" / "rebase-merge").exists()


async def test_merging_into_a_branch_checked_out_in_another_worktree(supervisor: Supervisor, repo: Path) -> None:
    await run(supervisor, repo, "feature", "echo feature >> app.py && git commit -qam feature")
    git(repo, "branch", "release")
    elsewhere = repo.parent / "release-checkout"
    git(repo, "worktree", "add", "-q", str(elsewhere), "release")
    merged = await supervisor.merge("feature", into="release")
    assert merged.merged
    assert "feature" in (elsewhere / "app.py").read_text()
    assert git(elsewhere, "status", "--porcelain") == ""
    assert "feature" not in (repo / "app.py").read_text()  # main and its checkout untouched


async def test_isolation_fails_closed_outside_a_repository(supervisor: Supervisor, tmp_path: Path) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    with pytest.raises(InvalidRequest, match="not inside a git repository"):
        await supervisor.spawn(SpawnRequest(command=["true"], cwd=str(plain), isolation="worktree"))
    assert (await supervisor.ps()).missions == []
    with pytest.raises(InvalidRequest, match="only apply with isolation"):
        await supervisor.spawn(SpawnRequest(command=["true"], cwd=str(plain), base="HEAD"))


async def test_discard_removes_an_ended_missions_work_on_request(supervisor: Supervisor, repo: Path) -> None:
    await run(supervisor, repo, "throwaway", "echo junk > junk.txt")
    answer = await supervisor.discard("throwaway")
    assert "removed" in answer.note
    assert not (repo / ".overmind" / "worktrees" / "throwaway").exists()
    assert "overmind/throwaway" not in git(repo, "branch", "--list")


async def test_a_child_works_in_its_isolated_parents_worktree(settings: Settings, repo: Path) -> None:
    async with Supervisor.running(settings) as supervisor:
        parent = await supervisor.spawn(
            SpawnRequest(command=["sleep", "30"], name="lead", cwd=str(repo), isolation="worktree")
        )
        child = await supervisor.spawn(SpawnRequest(command=["pwd"], parent=parent.id))
        [done] = (await supervisor.wait([child.id], timeout_s=10)).done
        assert done.text == str(repo / ".overmind" / "worktrees" / "lead")
        await supervisor.kill([parent.id])
