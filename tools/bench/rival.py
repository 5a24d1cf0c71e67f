"""Benchmark 6: the same workload through a rival server, `@steipete/claude-code-mcp`.

The rival (npm, installed into .cache/bench-node/) offers one tool, `claude_code(prompt,
workFolder)`, that runs `<CLAUDE_CLI_NAME> --dangerously-skip-permissions -p <prompt>` (text
output) and answers with its stdout when the process closes; its call blocks for the whole
run (timeout fixed at 30 minutes). So the fair comparison for N children is N parallel
`claude_code` calls against our N `spawn`s and one `wait(all)`. Both drive the same child:

* the stand-in claude (tools/fake_claude.py);
* the real, pinned Claude Code CLI against the mock Messages API (tests/mockapi.py), with the
  environment of tests/e2e/conftest.py's `claude_env` (its own HOME, the mock's URL, a mock key).

The rival's `--dangerously-skip-permissions` makes the CLI (and the stand-in, which copies it)
refuse to run as root unless `IS_SANDBOX=1`: that is set for the rival's server and children
only, here, and nowhere else. Also measured: the rival's wake-up latency (child exit → answer,
as in benchmark 2), and what it can do at all: concurrency, wait, kill, cost in the result.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psutil

from tools.bench.common import (
    FAKE_CLAUDE,
    NODE_DIR,
    BareLoop,
    Child,
    Config,
    McpServer,
    alternate,
    child_env,
    mcp_server,
    median,
    overmind_env,
    overmind_server,
    row,
)
from tools.bench.wakeup import exit_time_ns
from tools.bench.wakeup import prompt as exit_prompt
from tools.npm import npm_install

RIVAL = "@steipete/claude-code-mcp@1.10.12"
RIVAL_ENTRY = NODE_DIR / "node_modules" / "@steipete" / "claude-code-mcp" / "dist" / "server.js"
STAND_IN_PROMPT = "Say it is done.\nfake: answer done"
REAL_PROMPT = "RIVAL-BENCH: say hello"


async def ensure_rival() -> Path:
    """The rival's entry point, installed from the npm registry the first time."""
    if not RIVAL_ENTRY.exists():
        await anyio.to_thread.run_sync(npm_install, NODE_DIR, RIVAL)
    return RIVAL_ENTRY


def rival_server(env: Mapping[str, str], claude_bin: Path):
    node = shutil.which("node") or "node"
    rival_env = {**env, "CLAUDE_CLI_NAME": str(claude_bin), "IS_SANDBOX": "1"}
    return mcp_server(node, [str(RIVAL_ENTRY)], rival_env, marker="claude-code-mcp")


# -- one workload, three ways ------------------------------------------------------------------------


async def all_results_ours(
    server: McpServer, prompt: str, count: int, cwd: Path, **options: Any
) -> tuple[float, list[dict]]:
    ids: list[str] = []
    started = time.perf_counter()

    async def spawn_one() -> None:
        ids.append((await server.call("spawn", {"prompt": prompt, "cwd": str(cwd), **options}))["id"])

    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(spawn_one)
    answer = await server.call("wait", {"ids": ids, "mode": "all", "timeout_s": 300})
    elapsed = (time.perf_counter() - started) * 1000
    if len(answer["done"]) != count or any(result["status"] != "succeeded" for result in answer["done"]):
        raise RuntimeError(f"overmind: not every child succeeded: {answer}")
    return elapsed, answer["done"]


async def all_results_rival(server: McpServer, prompt: str, count: int, cwd: Path) -> tuple[float, list[str]]:
    texts: list[str] = []
    started = time.perf_counter()

    async def call_one() -> None:
        texts.append(await server.call_text("claude_code", {"prompt": prompt, "workFolder": str(cwd)}))

    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(call_one)
    return (time.perf_counter() - started) * 1000, texts


async def all_results_bare(bare: BareLoop, child: Child, count: int) -> float:
    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(bare.run, child)
    return (time.perf_counter() - started) * 1000


async def compare(
    ours: McpServer,
    rival: McpServer,
    bare: BareLoop,
    *,
    prompt: str,
    child: Child,
    count: int,
    rounds: int,
    cwd: Path,
) -> dict[str, Any]:
    # ours_plain: delegate=false, so that a Claude child gets no --mcp-config back to overmind (the rival's
    # children have none); by default overmind hands each Claude child its own tools over loopback HTTP.
    times: dict[str, list[float]] = {"ours": [], "ours_plain": [], "rival": [], "bare": []}
    sample: dict[str, Any] = {}
    for number in range(rounds):
        order = ["ours", "ours_plain", "rival", "bare"]
        for side in order if number % 2 == 0 else reversed(order):
            if side == "ours":
                elapsed, results = await all_results_ours(ours, prompt, count, cwd)
                sample["ours_cost_usd"] = results[0].get("cost_usd")
                sample["ours_text"] = results[0].get("text")
            elif side == "ours_plain":
                elapsed, _ = await all_results_ours(ours, prompt, count, cwd, delegate=False)
            elif side == "rival":
                elapsed, texts = await all_results_rival(rival, prompt, count, cwd)
                sample["rival_text"] = texts[0]
            else:
                elapsed = await all_results_bare(bare, child, count)
            times[side].append(elapsed)
    return {"times_ms": times, "sample": sample}


# -- wake-up latency and what each can do -------------------------------------------------------------


async def wakeup_rival(rival: McpServer, exit_file: Path) -> float:
    await rival.call_text("claude_code", {"prompt": exit_prompt(exit_file)})
    return (time.time_ns() - exit_time_ns(exit_file)) / 1e6


async def wakeup_ours(ours: McpServer, exit_file: Path) -> float:
    spawned = await ours.call("spawn", {"prompt": exit_prompt(exit_file)})
    await ours.call("wait", {"ids": [spawned["id"]], "timeout_s": 60})
    return (time.time_ns() - exit_time_ns(exit_file)) / 1e6


def _stand_in_children(server: McpServer) -> list[psutil.Process]:
    found = []
    for child in server.process.children(recursive=True):
        try:
            if str(FAKE_CLAUDE) in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


async def rival_cancel_leaves_child(rival: McpServer) -> bool:
    """Cancel a `claude_code` call whose child hangs: is the child still running afterwards?"""
    children: list[psutil.Process] = []
    async with anyio.create_task_group() as group:
        group.start_soon(rival.call_text, "claude_code", {"prompt": "Hang.\nfake: hang"})
        with anyio.fail_after(30):
            # Another process's child: no event tells us it has started, so poll the process table.
            while not (children := _stand_in_children(rival)):  # noqa: ASYNC110
                await anyio.sleep(0.02)
        group.cancel_scope.cancel()  # the client gives up on the call (notifications/cancelled)
    _gone, alive = await anyio.to_thread.run_sync(lambda: psutil.wait_procs(children, timeout=3))
    for process in alive:
        process.kill()
    return bool(alive)


async def capabilities(ours: McpServer, rival: McpServer, standin: dict[str, Any]) -> dict[str, Any]:
    our_tools = [tool.name for tool in (await ours.client.list_tools()).tools]
    rival_tools = [tool.name for tool in (await rival.client.list_tools()).tools]
    times = standin["times_ms"]
    return {
        "tools": {"overmind": our_tools, "rival": rival_tools},
        "concurrent_children": {"overmind": True, "rival": "only as N blocking tool calls in parallel"},
        "wait": {"overmind": "wait(ids, all|any, timeout) with progress", "rival": "no: every call blocks"},
        "kill": {
            "overmind": "kill(ids, cascade, force): process groups, SIGINT→SIGTERM→SIGKILL",
            "rival": "no kill tool, and a cancelled claude_code call "
            + ("leaves its child running" if await rival_cancel_leaves_child(rival) else "ends its child"),
        },
        "cost_in_result": {
            "overmind": standin["sample"].get("ours_cost_usd"),
            "rival": "no: the answer is the CLI's plain-text stdout",
        },
        "rival_answer_sample": (standin["sample"].get("rival_text") or "")[:200],
        "rival_vs_ours_time_ratio": round(median(times["rival"]) / median(times["ours"]), 3),
    }


# -- the real CLI against the mock Messages API --------------------------------------------------------


def _inherited_setting(name: str) -> bool:
    # As tests/e2e/conftest.py: outside settings that would change where the CLI connects.
    upper = name.upper()
    return upper.startswith(("ANTHROPIC_", "CLAUDE", "XDG_")) or upper.endswith("_PROXY") or upper == "IS_SANDBOX"


def real_cli_env(base_url: str, home: Path) -> dict[str, str]:
    env = {name: value for name, value in child_env().items() if not _inherited_setting(name)}
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY="sk-ant-api03-mock",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        ENABLE_TOOL_SEARCH="false",
    )
    return env


async def real_cli(config: Config, count: int, rounds: int) -> dict[str, Any]:
    from tests.mockapi import MockAnthropicAPI
    from tools.install_claude_cli import ensure_claude_cli

    claude_bin = await anyio.to_thread.run_sync(ensure_claude_cli)
    scratch = config.scratch / "real"
    home, project, bare_dir = scratch / "home", scratch / "project", scratch / "bare"
    for directory in (home, project, bare_dir):
        directory.mkdir(parents=True)
    api = MockAnthropicAPI().start()
    try:
        env = real_cli_env(api.base_url, home)
        overmind_home = scratch / "overmind"
        ours_env = overmind_env(overmind_home, claude_bin=claude_bin, base=env)
        child = Child.claude(claude_bin, REAL_PROMPT)
        bare = BareLoop(bare_dir, env)
        async with overmind_server(overmind_home, env=ours_env) as ours, rival_server(env, claude_bin) as rival:
            for server_call in (
                all_results_ours(ours, REAL_PROMPT, 1, project),
                all_results_rival(rival, REAL_PROMPT, 1, project),
            ):
                await server_call  # warm-up
            return await compare(
                ours, rival, bare, prompt=REAL_PROMPT, child=child, count=count, rounds=rounds, cwd=project
            )
    finally:
        api.stop()


# -- the benchmark -----------------------------------------------------------------------------------


async def run(config: Config) -> dict[str, Any]:
    quick = config.quick
    count, rounds = (2, 1) if quick else (10, 5)
    real_count, real_rounds = (2, 1) if quick else (5, 3)
    wake_samples = 2 if quick else 20
    await ensure_rival()
    project, bare_dir = config.scratch / "project", config.scratch / "bare"
    project.mkdir()
    bare_dir.mkdir()
    # The rival's children would otherwise run in its HOME; give both sides one empty HOME.
    home = Path(tempfile.mkdtemp(dir=config.scratch, prefix="home-"))
    env = child_env(HOME=str(home))
    ours_env = overmind_env(config.scratch / "overmind", base=env)
    child = Child.claude(FAKE_CLAUDE, STAND_IN_PROMPT)
    bare = BareLoop(bare_dir, env)
    async with (
        overmind_server(config.scratch / "overmind", env=ours_env) as ours,
        rival_server(env, FAKE_CLAUDE) as rival,
    ):
        await all_results_ours(ours, STAND_IN_PROMPT, 1, project)  # warm-up
        await all_results_rival(rival, STAND_IN_PROMPT, 1, project)
        standin = await compare(
            ours, rival, bare, prompt=STAND_IN_PROMPT, child=child, count=count, rounds=rounds, cwd=project
        )
        wake: dict[str, list[float]] = {"ours": [], "rival": []}
        for number in range(wake_samples):
            for side in alternate(number, "ours", "rival"):
                exit_file = config.scratch / f"exit-{side}-{number}"
                measure = wakeup_ours(ours, exit_file) if side == "ours" else wakeup_rival(rival, exit_file)
                wake[side].append(await measure)
        can = await capabilities(ours, rival, standin)
    try:
        real = await real_cli(config, real_count, real_rounds)
    except Exception as exc:  # the CLI could not be installed, or the mock failed: say so, keep the rest
        print(f"[rival] real CLI part failed: {exc!r}", file=sys.stderr)
        real = {"error": f"{type(exc).__name__}: {exc}"}
    rows = [_versus(f"stand-in claude ×{count}: time to all results", standin, rounds)]
    if "times_ms" in real:
        rows.append(_versus(f"real CLI + mock API ×{real_count}: time to all results", real, real_rounds))
        rows.append(
            _versus(
                f"real CLI + mock API ×{real_count}, delegate=false (no --mcp-config back to overmind)",
                real,
                real_rounds,
                side="ours_plain",
            )
        )
    rows.append(
        row(
            "wake-up: child exit → answer received, p50",
            ours=median(wake["ours"]),
            baseline=median(wake["rival"]),
            unit="ms",
            baseline_name="rival (claude_code call returns)",
            spread_of="rival p50 over halves of the run (ms)",
            spread_values=_halves(wake["rival"]),
            note=f"{wake_samples} samples each, interleaved",
        )
    )
    details = {"stand_in": standin, "real_cli": real, "wakeup_ms": wake, "capabilities": can, "package": RIVAL}
    return {"rows": rows, "details": details, "notes": _notes(can)}


def _notes(can: dict[str, Any]) -> list[str]:
    """What each server can do at all, as measured above (the table's footnotes)."""
    return [
        f"{RIVAL}: tools {', '.join(can['tools']['rival'])}; overmind-mcp: {', '.join(can['tools']['overmind'])}.",
        f"Concurrency: overmind-mcp spawns and returns at once; the rival {can['concurrent_children']['rival']}.",
        f"Wait: overmind-mcp {can['wait']['overmind']}; rival: {can['wait']['rival']}.",
        f"Kill: overmind-mcp {can['kill']['overmind']}; rival: {can['kill']['rival']}.",
        f"Cost in the result: overmind-mcp cost_usd={can['cost_in_result']['overmind']}; "
        f"rival: {can['cost_in_result']['rival']}.",
        "The rival's children get IS_SANDBOX=1 (its --dangerously-skip-permissions refuses root without it); "
        "overmind's do not need it.",
    ]


def _versus(metric: str, measured: dict[str, Any], rounds: int, side: str = "ours") -> dict[str, Any]:
    times = measured["times_ms"]
    ratios = [o / r for o, r in zip(times[side], times["rival"], strict=True)]
    return row(
        metric,
        ours=median(times[side]),
        baseline=median(times["rival"]),
        unit="ms",
        baseline_name="rival: N parallel claude_code calls",
        spread_of="per-round ratio ours/rival",
        spread_values=ratios,
        note=f"bare loop {median(times['bare']):.0f} ms; {rounds} rounds",
    )


def _halves(values: list[float]) -> list[float]:
    middle = max(1, len(values) // 2)
    return [statistics.median(values[:middle]), statistics.median(values[middle:] or values)]


if os.name != "posix":  # pragma: no cover
    raise ImportError("the benchmarks need Linux (pidfd, /proc)")
