"""Worktree isolation: what a worktree per mission costs at spawn, and what a merge's preflight costs.

On a repository of 1,000 files (about 1 KB each, in 20 directories, one commit), short raw
missions (`/bin/true`) run through the supervisor in process (no MCP: the worktree's share is
easier to see without the transport), interleaved round by round:

* plain: `spawn` in the repository itself;
* isolated: `spawn(isolation="worktree")`: `git worktree add` of 1,000 files before the spawn
  returns, and at the end the work counted (status with untracked files, unique commits) and the
  worktree and branch removed.

Two figures for each: the `spawn` call alone, and spawn → wait → result (which includes the end
of life). Then the merge preflight: a mission's branch that changed 10 files, against a target
that moved on in 10 others; `merge(check_only=True)` through the workspace (every safety check
it makes: uncommitted work, rebases and checkouts of the target, `merge-tree --write-tree`, the
checkout's dry run) against the bare `git merge-tree --write-tree` it rests on.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from overmind_mcp.models import SpawnRequest
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.supervisor import Supervisor
from overmind_mcp.workspaces.git import GitWorktreeWorkspace
from tools.bench.common import FAKE_CLAUDE, Config, alternate, median, row, summary

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
    "PATH": "/usr/bin:/bin",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def make_repository(root: Path, files: int) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for index in range(files):
        directory = root / f"pkg{index % 20:02d}"
        directory.mkdir(exist_ok=True)
        lines = "".join(f"line {line} of file {index}\n" for line in range(50))
        (directory / f"module_{index:04d}.py").write_text(lines)
    git(root, "add", ".")
    git(root, "commit", "-qm", "a repository of many files")
    return root


async def spawn_round(
    supervisor: Supervisor, repo: Path, count: int, isolated: bool, bare: list[float] | None = None
) -> tuple[list[float], list[float]]:
    """Per mission: seconds in the `spawn` call, and seconds from spawn to its result.

    With `bare`, a bare `git worktree add` is timed after each mission, into it (interleaved: the
    machine's load drifts on both alike).
    """
    spawn_s, total_s = [], []
    for number in range(count):
        if bare is not None:
            bare += bare_worktree_adds(repo, 1, tag=f"{len(bare)}-{number}")
        request = SpawnRequest(command=["/bin/true"], cwd=str(repo), isolation="worktree" if isolated else None)
        started = time.perf_counter()
        spawned = await supervisor.spawn(request)
        spawn_s.append(time.perf_counter() - started)
        await supervisor.wait([spawned.id], timeout_s=60)
        result = await supervisor.result(spawned.id)
        total_s.append(time.perf_counter() - started)
        if result.status != "succeeded":
            raise RuntimeError(f"a mission failed: {result.end_reason}")
        if isolated and (result.change is None or result.change.state != "removed"):
            raise RuntimeError(f"a clean worktree was not removed: {result.change}")
    return spawn_s, total_s


MISSION_CHANGE = (
    "for n in $(seq 0 9); do echo 'changed by the mission' >> pkg0$n/module_000$n.py; done; "
    'git commit -qam "the mission\'s change"'
)


def move_main_on(repo: Path, files: int, changed: int) -> None:
    """The target moves on meanwhile, in files the mission did not touch."""
    for index in range(files // 2, files // 2 + changed):
        with (repo / f"pkg{index % 20:02d}" / f"module_{index:04d}.py").open("a") as file:
            file.write("changed on main meanwhile\n")
    git(repo, "commit", "-qam", "main moved on")


def bare_worktree_adds(repo: Path, count: int, tag: str) -> list[float]:
    """Seconds per bare `git worktree add` of the same repository (each removed again, untimed)."""
    times = []
    for number in range(count):
        path = repo.parent / "bare-worktrees" / f"{tag}-{number}"
        started = time.perf_counter()
        git(repo, "worktree", "add", "--quiet", "-b", f"bare/{tag}-{number}", str(path), "HEAD")
        times.append(time.perf_counter() - started)
        git(repo, "worktree", "remove", "--force", str(path))
        git(repo, "branch", "-q", "-D", f"bare/{tag}-{number}")
    return times


async def preflight_round(
    workspace: GitWorktreeWorkspace, repo: Path, mission_id: str, count: int
) -> tuple[list[float], list[float]]:
    ours, bare = [], []
    for number in range(count):
        for variant in alternate(number, "ours", "bare"):
            started = time.perf_counter()
            if variant == "ours":
                outcome = await workspace.merge(mission_id, check_only=True)
                if outcome.conflicts or outcome.merged:
                    raise RuntimeError(f"the preflight was not clean: {outcome}")
                ours.append(time.perf_counter() - started)
            else:
                git(repo, "merge-tree", "--write-tree", "--name-only", "main", "overmind/mission")
                bare.append(time.perf_counter() - started)
    return ours, bare


async def run(config: Config) -> dict[str, Any]:
    files, count, rounds, preflights = (100, 3, 1, 5) if config.quick else (1000, 20, 3, 40)
    repo = make_repository(config.scratch / "repo", files)
    settings = Settings(home=config.scratch / "home", claude_bin=str(FAKE_CLAUDE), retention_days=0)
    spawn_s: dict[str, list[float]] = {"plain": [], "isolated": []}
    total_s: dict[str, list[float]] = {"plain": [], "isolated": []}
    bare_add: list[float] = []
    per_round: list[float] = []
    async with Supervisor.running(settings) as supervisor:
        await spawn_round(supervisor, repo, 2, True)  # warm-up: first use opens the records
        await spawn_round(supervisor, repo, 2, False)
        for number in range(rounds):
            medians = {}
            for variant in alternate(number, "plain", "isolated"):
                isolated = variant == "isolated"
                calls, totals = await spawn_round(supervisor, repo, count, isolated, bare_add if isolated else None)
                spawn_s[variant] += calls
                total_s[variant] += totals
                medians[variant] = median(calls)
            per_round.append((medians["isolated"] - medians["plain"]) * 1000)
        # A mission that changed 10 files and committed them in its worktree (kept), and a target that moved on.
        mission = await supervisor.spawn(
            SpawnRequest(
                command=["sh", "-c", MISSION_CHANGE],
                name="mission",
                cwd=str(repo),
                isolation="worktree",
                worktree_cleanup="keep",
                env=GIT_ENV,
            )
        )
        [done] = (await supervisor.wait([mission.id], timeout_s=60)).done
        if done.status != "succeeded" or done.change is None or done.change.files != 10:
            raise RuntimeError(f"the mission did not make its change: {done}")
        move_main_on(repo, files, 10)
        ours, bare = await preflight_round(supervisor.worktrees, repo, mission.id, preflights)

    def ms(values: list[float]) -> float:
        return median(values) * 1000

    spawn_cost = ms(spawn_s["isolated"]) - ms(spawn_s["plain"])
    return {
        "repository_files": files,
        "spawn_ms": {variant: summary([v * 1000 for v in values]) for variant, values in spawn_s.items()},
        "bare_worktree_add_ms": summary([v * 1000 for v in bare_add]),
        "spawn_to_result_ms": {variant: summary([v * 1000 for v in values]) for variant, values in total_s.items()},
        "preflight_ms": {"workspace": summary([v * 1000 for v in ours]), "git": summary([v * 1000 for v in bare])},
        "rows": [
            row(
                f"spawn call with a worktree ({files} files), p50",
                ours=ms(spawn_s["isolated"]),
                baseline=ms(spawn_s["plain"]),
                unit="ms",
                baseline_name="spawn with no isolation",
                spread_of="per-round difference (ms)",
                spread_values=per_round,
                note=f"+{spawn_cost:.1f} ms: git worktree add (the checkout of every file), the lease recorded",
            ),
            row(
                f"spawn call with a worktree ({files} files), p50, against git alone",
                ours=ms(spawn_s["isolated"]),
                baseline=ms(bare_add),
                unit="ms",
                baseline_name="bare git worktree add",
                spread_of="-",
            ),
            row(
                "spawn → wait → result with a worktree (its removal included), p50",
                ours=ms(total_s["isolated"]),
                baseline=ms(total_s["plain"]),
                unit="ms",
                baseline_name="the same with no isolation",
                spread_of="-",
            ),
            row(
                "merge preflight (check_only), p50",
                ours=ms(ours),
                baseline=ms(bare),
                unit="ms",
                baseline_name="bare git merge-tree --write-tree",
                spread_of="-",
            ),
        ],
    }
