"""Isolation in git worktrees, on real repositories made by the tests: nothing a mission did is ever lost.

The matrix of the issue: untracked-only work, committed but unmerged work, a squash-merged
branch, a rebase in progress in the user's checkout, the target checked out in another
worktree, the server SIGKILLed mid-mission, two siblings editing the same lines. Each test
checks the work is still there, byte for byte, wherever the policy put it.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import anyio
import pytest

from overmind_mcp.bus import about
from overmind_mcp.errors import Conflict, InvalidRequest, Refused, SpawnError
from overmind_mcp.models import SpawnRequest
from overmind_mcp.settings import Settings
from overmind_mcp.storage.missions import Store
from overmind_mcp.supervision.supervisor import Supervisor
from overmind_mcp.workspaces.git import GitWorktreeWorkspace
from overmind_mcp.workspaces.records import LeaseState
from tests.conftest import assert_no_leftovers
from tests.helpers import call, stdio_server, until_printed
from tests.test_console import overmind, overmind_json
from tests.test_supervisor_raw import until_gone

pytestmark = pytest.mark.anyio

ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    "PATH": "/usr/bin:/bin",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout.rstrip(
        "\n"
    )


def branches(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").splitlines()


def worktree_of(repo: Path, name: str) -> Path:
    return repo / ".overmind" / "worktrees" / name


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


async def until_said(supervisor: Supervisor, mission_id: str, text: str, within: float = 20) -> None:
    """Wait until a mission's log has a line containing `text`, woken by its output on the bus."""
    with anyio.fail_after(within), supervisor.bus.subscribe(about({mission_id})) as news:
        while not any(text in line for line in (await supervisor.logs(mission_id)).lines):
            await news.next()


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


async def run(supervisor: Supervisor, repo: Path, name: str, script: str, **options: object) -> dict[str, object]:
    # Commits need an identity; the mission's environment gives it one.
    request = SpawnRequest(command=sh(script), name=name, cwd=str(repo), isolation="worktree", env=dict(ENV), **options)
    spawned = await supervisor.spawn(request)
    [done] = (await supervisor.wait([spawned.id], timeout_s=30)).done
    assert done.status == "succeeded", done
    return done.model_dump()


async def test_a_mission_works_in_its_own_worktree_and_a_clean_one_is_removed(
    supervisor: Supervisor, repo: Path
) -> None:
    done = await run(supervisor, repo, "reader", "pwd; git rev-parse --abbrev-ref HEAD")
    path = worktree_of(repo, "reader")
    assert done["text"] == f"{path}\novermind/reader"
    assert done["cwd"] == str(path)
    # Nothing done, nothing kept: the directory and the branch are gone, the user's checkout untouched.
    assert not path.exists()
    assert branches(repo) == ["main"]
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert done["change"]["state"] == "removed"


async def test_untracked_only_work_is_archived_on_the_branch_never_deleted(supervisor: Supervisor, repo: Path) -> None:
    done = await run(supervisor, repo, "scratch", "mkdir -p docs && echo draft > docs/new-file.txt")
    change = done["change"]
    # The new file was committed on the branch, then the directory went: the branch has it, byte for byte.
    assert change["state"] == "archived" and "untracked" in change["note"]
    assert not worktree_of(repo, "scratch").exists()
    assert git(repo, "show", "overmind/scratch:docs/new-file.txt") == "draft"
    assert change["commits_ahead"] == 1 and change["files"] == 1
    # Under `keep`, it stays where it is.
    kept = await run(supervisor, repo, "keeper", "echo mine > mine.txt", worktree_cleanup="keep")
    assert (worktree_of(repo, "keeper") / "mine.txt").read_text() == "mine\n"
    assert (kept["change"]["state"], kept["change"]["untracked"]) == ("kept", 1)
    assert git(repo, "status", "--porcelain") == ""  # the user's checkout never sees .overmind


async def test_the_archive_policy_keeps_the_branch_even_with_nothing_on_it(supervisor: Supervisor, repo: Path) -> None:
    done = await run(supervisor, repo, "archivist", "true", worktree_cleanup="archive")
    assert done["change"]["state"] == "archived"
    assert not worktree_of(repo, "archivist").exists()
    assert git(repo, "rev-parse", "overmind/archivist") == git(repo, "rev-parse", "main")


async def test_committed_unmerged_work_is_archived_then_merged(supervisor: Supervisor, repo: Path) -> None:
    done = await run(
        supervisor,
        repo,
        "fixer",
        "echo fixed >> app.py && git commit -qam 'fix app' && echo more >> notes.txt && git commit -qam notes",
    )
    change = done["change"]
    assert (change["state"], change["commits_ahead"], change["files"]) == ("archived", 2, 2)
    assert (change["insertions"], change["deletions"]) == (2, 0)
    assert not worktree_of(repo, "fixer").exists()
    assert git(repo, "rev-list", "--count", "main..overmind/fixer") == "2"
    # The user has uncommitted work of their own on main, in the file the merge changes: refused, nothing touched.
    (repo / "app.py").write_text("mine\n")
    with pytest.raises(Conflict, match="would overwrite work there"):
        await supervisor.merge("fixer")
    assert (repo / "app.py").read_text() == "mine\n"
    git(repo, "checkout", "--", "app.py")
    # Uncommitted work in a file the merge does not touch, and an untracked file, are carried along.
    (repo / "scratch.txt").write_text("untracked\n")
    check = await supervisor.merge("fixer", check_only=True)
    assert not check.merged and not check.conflicts
    merged = await supervisor.merge("fixer")
    assert merged.merged and merged.checkouts == [str(repo)]
    assert "fixed" in (repo / "app.py").read_text()
    assert (repo / "scratch.txt").read_text() == "untracked\n"
    assert git(repo, "status", "--porcelain") == "?? scratch.txt"
    assert git(repo, "log", "-1", "--format=%P", "main").count(" ") == 1  # a merge commit
    # Every commit of the branch is on main now, and its directory is gone: the branch goes too.
    assert branches(repo) == ["main"]
    assert (await supervisor.result("fixer")).change.state == "removed"  # type: ignore[union-attr]


async def test_a_squash_merged_branch_keeps_its_commits_until_discarded(supervisor: Supervisor, repo: Path) -> None:
    await run(
        supervisor, repo, "squashy", "echo a >> app.py && git commit -qam a && echo b >> app.py && git commit -qam b"
    )
    history = git(repo, "rev-parse", "overmind/squashy")
    merged = await supervisor.merge("squashy", strategy="squash")
    assert merged.merged
    assert git(repo, "rev-list", "--count", "main") == "2"  # one new commit
    assert git(repo, "log", "-1", "--format=%P", "main").count(" ") == 0
    assert (repo / "app.py").read_text() == "print('hello')\na\nb\n"
    # Its content is on main, but not its commits: they are still the branch's alone, so it stays.
    assert git(repo, "rev-parse", "overmind/squashy") == history
    assert (await supervisor.result("squashy")).change.state == "archived"  # type: ignore[union-attr]
    # A second squash is a no-op on content, and still refuses nothing; discarding is asked for by name.
    answer = await supervisor.discard("squashy")
    assert "removed" in answer.note and "overmind/squashy" not in branches(repo)


async def test_a_rebase_in_progress_in_the_users_checkout_is_left_alone(supervisor: Supervisor, repo: Path) -> None:
    await run(supervisor, repo, "worker", "echo work >> app.py && git commit -qam work")
    git(repo, "checkout", "-qb", "side", "HEAD")
    (repo / "notes.txt").write_text("side\n")
    git(repo, "commit", "-qam", "side")
    git(repo, "checkout", "-q", "main")
    (repo / "notes.txt").write_text("main\n")
    git(repo, "commit", "-qam", "main edit")
    rebase = await anyio.run_process(["git", "rebase", "side"], cwd=repo, env=ENV, check=False)
    assert rebase.returncode != 0  # it stopped on the conflict, as a person's rebase would
    state = repo / ".git" / "rebase-merge"
    before = {path.name: path.read_bytes() for path in state.iterdir() if path.is_file()}
    conflicted = (repo / "notes.txt").read_bytes()
    main = git(repo, "rev-parse", "refs/heads/main")
    for strategy in ("merge", "squash", "rebase"):
        with pytest.raises(Conflict, match="being rebased"):
            await supervisor.merge("worker", strategy=strategy)  # type: ignore[arg-type]
    assert git(repo, "rev-parse", "refs/heads/main") == main
    # Another branch can take it meanwhile, by a real rebase; the person's rebase is still theirs to finish.
    assert (await supervisor.merge("worker", into="side", strategy="rebase")).merged
    assert git(repo, "log", "--format=%s", "side").splitlines()[:2] == ["work", "side"]
    assert {path.name: path.read_bytes() for path in state.iterdir() if path.is_file()} == before
    assert (repo / "notes.txt").read_bytes() == conflicted
    git(repo, "rebase", "--abort")
    assert git(repo, "rev-parse", "HEAD") == main


async def test_merging_into_a_branch_checked_out_in_another_worktree(supervisor: Supervisor, repo: Path) -> None:
    await run(supervisor, repo, "feature", "echo feature >> app.py && git commit -qam feature", worktree_cleanup="keep")
    git(repo, "branch", "release")
    elsewhere = repo.parent / "release-checkout"
    git(repo, "worktree", "add", "-q", str(elsewhere), "release")
    # That worktree has its own uncommitted change to the file the merge changes: refused, nothing moves.
    (elsewhere / "app.py").write_text("their edit\n")
    (elsewhere / "theirs.txt").write_text("theirs\n")
    release = git(repo, "rev-parse", "release")
    with pytest.raises(Conflict, match="release-checkout"):
        await supervisor.merge("feature", into="release")
    assert git(repo, "rev-parse", "release") == release
    assert (elsewhere / "app.py").read_text() == "their edit\n"
    # Their change moves to another file: the merge lands, and both of their files are as they left them.
    git(elsewhere, "checkout", "--", "app.py")
    (elsewhere / "notes.txt").write_text("their notes\n")
    merged = await supervisor.merge("feature", into="release")
    assert merged.merged and merged.checkouts == [str(elsewhere)]
    assert (elsewhere / "app.py").read_text() == "print('hello')\nfeature\n"
    assert (elsewhere / "notes.txt").read_text() == "their notes\n"
    assert (elsewhere / "theirs.txt").read_text() == "theirs\n"
    assert sorted(git(elsewhere, "status", "--porcelain").splitlines()) == [" M notes.txt", "?? theirs.txt"]
    assert "feature" not in (repo / "app.py").read_text()  # main and its checkout untouched
    # The mission's own worktree (kept) was never touched either.
    assert git(worktree_of(repo, "feature"), "status", "--porcelain") == ""


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
    for strategy in ("merge", "squash", "rebase"):
        outcome = await supervisor.merge("right", strategy=strategy)  # type: ignore[arg-type]
        assert (outcome.merged, outcome.conflicts) == (False, ["notes.txt"])
    assert git(repo, "rev-parse", "main") == before
    assert git(repo, "status", "--porcelain") == ""
    assert (worktree_of(repo, "right") / "notes.txt").read_text() == "right\n"
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 3  # no rebase leftovers


async def test_conflicts_see_work_in_progress_before_it_is_committed(supervisor: Supervisor, repo: Path) -> None:
    requests = [
        SpawnRequest(
            command=sh(f"echo {side} > notes.txt; echo ready; sleep 30"), name=side, cwd=str(repo), isolation="worktree"
        )
        for side in ("north", "south")
    ]
    spawned = [await supervisor.spawn(request) for request in requests]
    for mission in spawned:
        await until_said(supervisor, mission.id, "ready")
    found = await supervisor.conflicts(["north", "south"])
    assert [(pair.a, pair.b, pair.paths) for pair in found.conflicts] == [
        ("overmind/north", "overmind/south", ["notes.txt"])
    ]
    # Asking changed nothing: their worktrees are as they were (uncommitted), their indexes untouched.
    assert git(worktree_of(repo, "north"), "status", "--porcelain") == " M notes.txt"
    with pytest.raises(Conflict, match="still"):
        await supervisor.merge("north")
    await supervisor.kill([mission.id for mission in spawned])
    # Killed with uncommitted work: archived on their branches.
    for side in ("north", "south"):
        assert git(repo, "show", f"overmind/{side}:notes.txt") == side


async def test_a_rebase_replays_the_missions_commits_on_a_target_that_moved(supervisor: Supervisor, repo: Path) -> None:
    await run(
        supervisor,
        repo,
        "linear",
        "echo one >> app.py && git commit -qam one && echo two >> app.py && git commit -qam two",
    )
    (repo / "notes.txt").write_text("moved on\n")
    git(repo, "commit", "-qam", "main moved")
    mission_head = git(repo, "rev-parse", "overmind/linear")
    merged = await supervisor.merge("linear", strategy="rebase")
    assert merged.merged
    assert git(repo, "log", "--format=%s", "main").splitlines() == ["two", "one", "main moved", "start"]
    assert git(repo, "log", "-1", "--format=%an", "main") == "t"  # authors kept
    assert (repo / "app.py").read_text() == "print('hello')\none\ntwo\n"
    assert git(repo, "rev-parse", "overmind/linear") == mission_head  # the mission's own branch untouched
    assert not (repo / ".overmind" / "merges").exists() or not any((repo / ".overmind" / "merges").iterdir())


async def test_a_child_works_in_its_isolated_parents_worktree_until_both_end(settings: Settings, repo: Path) -> None:
    async with Supervisor.running(settings) as supervisor:
        parent = await supervisor.spawn(
            SpawnRequest(command=["sleep", "30"], name="lead", cwd=str(repo), isolation="worktree")
        )
        child = await supervisor.spawn(
            SpawnRequest(
                command=sh("pwd; echo child > child.txt; echo ready; sleep 30"), name="helper", parent=parent.id
            )
        )
        path = worktree_of(repo, "lead")
        await until_said(supervisor, child.id, "ready")
        with pytest.raises(Refused, match="isolated"):
            await supervisor.spawn(SpawnRequest(command=["true"], parent=parent.id, isolation="none"))
        with pytest.raises(InvalidRequest, match="outside"):
            await supervisor.spawn(SpawnRequest(command=["true"], parent=parent.id, cwd=str(repo)))
        # The parent ends first: its worktree waits for the child still working in it.
        await supervisor.kill([parent.id], cascade=False)
        assert (await supervisor.result("lead")).change.state == "waiting"  # type: ignore[union-attr]
        assert (path / "child.txt").exists()
        await supervisor.kill([child.id])
        assert (await supervisor.result("helper")).text == f"{path}\nready"
        lead = (await supervisor.result("lead")).change
        assert lead is not None and lead.state == "archived"
        assert git(repo, "show", "overmind/lead:child.txt") == "child"
        # Its worktree is gone: a later child cannot work in it, but can start from its branch.
        with pytest.raises(InvalidRequest, match="has ended"):
            await supervisor.spawn(SpawnRequest(command=["true"], parent=parent.id))
        late = await supervisor.spawn(
            SpawnRequest(command=["cat", "child.txt"], name="late", parent=parent.id, isolation="worktree")
        )
        [done] = (await supervisor.wait([late.id], timeout_s=20)).done
        assert (done.status, done.text) == ("succeeded", "child")
    await assert_no_leftovers(settings)


async def test_a_child_asking_for_its_own_worktree_starts_from_its_parents_branch(
    supervisor: Supervisor, repo: Path
) -> None:
    parent = await supervisor.spawn(
        SpawnRequest(
            command=sh("echo lead >> app.py && git commit -qam lead && echo ready && sleep 30"),
            name="lead",
            cwd=str(repo),
            isolation="worktree",
            env=dict(ENV),
        )
    )
    await until_said(supervisor, parent.id, "ready")
    child = await supervisor.spawn(
        SpawnRequest(
            command=sh("echo sub >> notes.txt && git commit -qam sub"),
            name="sub",
            parent=parent.id,
            isolation="worktree",
            env=dict(ENV),
        )
    )
    [done] = (await supervisor.wait([child.id], timeout_s=20)).done
    assert done.change is not None and done.change.base == git(repo, "rev-parse", "overmind/lead")
    assert done.change.commits_ahead == 1
    # It merges back into its parent's branch, which the parent's worktree has checked out: brought along.
    merged = await supervisor.merge("sub")
    assert merged.into == "overmind/lead" and merged.checkouts == [str(worktree_of(repo, "lead"))]
    assert (worktree_of(repo, "lead") / "notes.txt").read_text().endswith("sub\n")
    await supervisor.kill([parent.id])


async def test_isolation_fails_closed_and_leaves_nothing_behind(
    supervisor: Supervisor, repo: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    with pytest.raises(InvalidRequest, match="not inside a git repository"):
        await supervisor.spawn(SpawnRequest(command=["true"], cwd=str(plain), isolation="worktree"))
    with pytest.raises(InvalidRequest, match="base 'no-such-thing' is not a commit"):
        await supervisor.spawn(
            SpawnRequest(command=["true"], cwd=str(repo), isolation="worktree", base="no-such-thing")
        )
    with pytest.raises(InvalidRequest, match="only apply with isolation"):
        await supervisor.spawn(SpawnRequest(command=["true"], cwd=str(plain), base="HEAD"))
    # A name a live mission holds: the worktree made for it is taken back when the mission cannot be stored.
    holder = await supervisor.spawn(SpawnRequest(command=["sleep", "30"], name="taken"))
    with pytest.raises(Conflict, match="already used"):
        await supervisor.spawn(SpawnRequest(command=["true"], name="taken", cwd=str(repo), isolation="worktree"))
    assert branches(repo) == ["main"] and not worktree_of(repo, "taken").exists()
    # A program that cannot start: the mission fails, and its worktree (clean) is removed.
    with pytest.raises(SpawnError, match="no such program"):
        await supervisor.spawn(
            SpawnRequest(command=["/no/such/program"], name="broken", cwd=str(repo), isolation="worktree")
        )
    assert (await supervisor.result("broken")).status == "failed"
    assert branches(repo) == ["main"] and not worktree_of(repo, "broken").exists()
    await supervisor.kill([holder.id])
    assert [mission.name for mission in (await supervisor.ps()).missions if mission.status == "running"] == []


async def test_a_worktree_is_never_reused_while_it_holds_work(supervisor: Supervisor, repo: Path) -> None:
    await run(supervisor, repo, "twice", "echo kept > kept.txt", worktree_cleanup="keep")
    with pytest.raises(InvalidRequest, match="never reused"):
        await supervisor.spawn(SpawnRequest(command=["true"], name="twice", cwd=str(repo), isolation="worktree"))
    assert (worktree_of(repo, "twice") / "kept.txt").read_text() == "kept\n"
    await supervisor.discard("twice")
    await run(supervisor, repo, "twice", "true")


async def test_discard_removes_an_ended_missions_work_on_request(supervisor: Supervisor, repo: Path) -> None:
    spawned = await supervisor.spawn(
        SpawnRequest(command=["sleep", "30"], name="throwaway", cwd=str(repo), isolation="worktree")
    )
    with pytest.raises(Conflict, match="still works"):
        await supervisor.discard("throwaway")
    await supervisor.kill([spawned.id])
    answer = await supervisor.discard("throwaway")
    assert "removed" in answer.note
    assert not worktree_of(repo, "throwaway").exists()
    assert branches(repo) == ["main"]


async def test_a_server_sigkilled_mid_mission_loses_nothing(settings: Settings, repo: Path) -> None:
    settings.home.mkdir(parents=True)
    (repo / ".overmind.toml").write_text('[services.web]\ncommand = ["python3", "-m", "http.server", "{port}"]\n')
    script = "echo draft > draft.txt; echo ready; sleep 0.5; echo more >> draft.txt; sleep 2"
    async with stdio_server(settings) as (client, process):
        spawned = await call(
            client, "spawn", command=sh(script), name="survivor", cwd=str(repo), isolation="worktree", env=ENV
        )
        mission = spawned["id"]
        await until_printed(client, mission, "ready")
        process.send_signal(signal.SIGKILL)
        process.wait()
    # The server is gone; the mission goes on, then ends, while no server watches. Its service still runs.
    records = GitWorktreeWorkspace(settings.home)
    try:
        lease = await records.lease(mission)
        assert lease.state == LeaseState.ACTIVE
        [service] = await (await records.records()).services(mission)
        assert service.pid is not None
    finally:
        await records.close()
    store = await Store.open(settings.database_path)
    row = await store.get(mission)
    await store.close()
    assert row is not None and row.pid is not None
    await until_gone(row.pid, within=20)
    assert (worktree_of(repo, "survivor") / "draft.txt").read_text() == "draft\nmore\n"
    async with stdio_server(settings) as (client, _process):
        result = await call(client, "result", id=mission)
        change = result["change"]
        assert change["state"] == "archived", change
        assert git(repo, "show", "overmind/survivor:draft.txt") == "draft\nmore"
        assert not worktree_of(repo, "survivor").exists()
    await assert_no_leftovers(settings)  # the service the dead server started was ended too


async def test_reconcile_adopts_a_worktree_no_record_knows_and_removes_merge_leftovers(
    settings: Settings, repo: Path
) -> None:
    async with Supervisor.running(settings) as supervisor:
        await run(supervisor, repo, "known", "echo x > x.txt", worktree_cleanup="keep")
    # As a server that died between `git worktree add` and its record would leave them:
    git(repo, "worktree", "add", "-q", "-b", "overmind/stray", str(worktree_of(repo, "stray")))
    (worktree_of(repo, "stray") / "work.txt").write_text("stray work\n")
    git(repo, "worktree", "add", "-q", "--detach", str(repo / ".overmind" / "merges" / "abc"))
    async with Supervisor.running(settings) as supervisor:
        lease = await supervisor.worktrees.lease("stray")
        assert lease.state == LeaseState.KEPT and "found at start" in (lease.note or "")
        assert (worktree_of(repo, "stray") / "work.txt").read_text() == "stray work\n"
        assert not (repo / ".overmind" / "merges" / "abc").exists()
        assert (await supervisor.worktrees.lease("known")).state == LeaseState.KEPT
        await supervisor.worktrees.discard("stray")
    assert "overmind/stray" not in branches(repo)


async def test_the_overmind_command_lists_merges_and_discards_worktrees(settings: Settings, repo: Path) -> None:
    async with Supervisor.running(settings) as supervisor:
        await run(supervisor, repo, "done-work", "echo done >> app.py && git commit -qam done")
        await run(supervisor, repo, "clash-a", "echo a > notes.txt && git commit -qam a", worktree_cleanup="keep")
        await run(supervisor, repo, "clash-b", "echo b > notes.txt; echo new > new.txt", worktree_cleanup="keep")
        await run(supervisor, repo, "nothing", "true")
    listing = {entry["name"]: entry for entry in await overmind_json(settings, "worktrees")}
    assert sorted(listing) == ["clash-a", "clash-b", "done-work"]  # `nothing` was removed: nothing to show
    assert listing["done-work"]["mission_status"] == "succeeded"
    assert (listing["done-work"]["change"]["state"], listing["done-work"]["change"]["commits_ahead"]) == ("archived", 1)
    assert (listing["clash-b"]["change"]["uncommitted"], listing["clash-b"]["change"]["untracked"]) == (1, 1)
    table = await overmind(settings, "worktrees")
    assert "1 changed, 1 new" in table.stdout and "overmind/clash-b" in table.stdout
    assert "nothing" in (await overmind(settings, "worktrees", "--all")).stdout
    merged = await overmind(settings, "merge", "done-work", "--strategy", "squash")
    assert merged.returncode == 0 and "main is now at" in merged.stdout, merged.stderr
    assert (repo / "app.py").read_text() == "print('hello')\ndone\n"
    assert (await overmind(settings, "merge", "clash-a")).returncode == 0
    refused = await overmind(settings, "merge", "clash-b")
    assert refused.returncode == 1 and "uncommitted" in refused.stderr
    git(worktree_of(repo, "clash-b"), "add", "-A")
    git(worktree_of(repo, "clash-b"), "commit", "-qm", "b")
    before = git(repo, "rev-parse", "main")
    clash = await overmind(settings, "merge", "clash-b", "--check")
    assert clash.returncode == 1 and "conflict: notes.txt" in clash.stdout
    assert git(repo, "rev-parse", "main") == before
    assert (await overmind(settings, "discard", "clash-b")).returncode == 0
    assert not worktree_of(repo, "clash-b").exists() and "overmind/clash-b" not in branches(repo)
    missing = await overmind(settings, "discard", "no-such-mission")
    assert missing.returncode == 3 and "no mission 'no-such-mission' has a worktree" in missing.stderr
