"""Benchmark: `overmind tui` start-up time, and its CPU while idle with 200 missions listed.

Start-up is timed in a pseudo-terminal (80×24), as a person starts it: from just before the
process starts to the moment the screen shows the listing's summary ("200 missions"): the
interpreter, the imports, the first read of the store and of each live mission's output, and
Textual's first frame. Its floors, started the same way: a bare Textual app showing one line
(what any Textual app costs), and `overmind ps --tree` (the same reads, printed, no Textual).

Idle CPU is the tui process's user + system CPU over a window in which nothing happens, with
the 200 missions ended (the tree is read on changes only: nothing should run at all) and with
200 running quietly (`sleep`: then the top panel samples their process trees every 2 s). The
baselines are the bare Textual app, and `overmind top` sampling the same missions, over windows of
the same length.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import psutil

from tools.bench.common import Config, alternate, child_env, cpu_percent, median, overmind_env, overmind_server, row
from tools.terminal import Terminal

TUI = [sys.executable, "-m", "overmind_mcp.console", "tui"]
BARE = [sys.executable, "-m", "tools.bench.bare_textual"]
BARE_READY = "bare textual app ready"
PS = [sys.executable, "-m", "overmind_mcp.console", "ps", "--tree"]
TOP = [sys.executable, "-m", "overmind_mcp.console", "top", "--interval", "2"]


def start(argv: list[str], env: dict[str, str], marker: str, scratch: Path) -> tuple[Terminal, float]:
    """Start `argv` in an 80×24 pseudo-terminal; it and the seconds until its screen showed `marker`."""
    terminal = Terminal(argv, env={**env, "TERM": "xterm-256color"}, cwd=scratch)
    shown = terminal.wait_for(marker, timeout=120)
    return terminal, shown - terminal.started


def quit_(terminal: Terminal) -> None:
    terminal.type("q")
    try:
        terminal.wait(timeout=20)
    finally:
        terminal.kill()


def idle_cpu(terminal: Terminal, window_s: float) -> float:
    """% of one core the program used over `window_s` of nothing happening."""
    process = psutil.Process(terminal.pid)
    before = process.cpu_times()
    started = time.perf_counter()
    time.sleep(window_s)  # the idle window itself
    after = process.cpu_times()
    used = (after.user + after.system) - (before.user + before.system)
    return cpu_percent(used, time.perf_counter() - started)


async def spawn_many(server: Any, count: int, argv: list[str]) -> list[str]:
    return [(await server.call("spawn", {"command": argv}))["id"] for _ in range(count)]


async def run(config: Config) -> dict[str, Any]:
    count = 20 if config.quick else 200
    rounds = 2 if config.quick else 8
    idle_rounds = 1 if config.quick else 3
    window_s = 1.0 if config.quick else 10.0
    home = config.scratch / "home"
    env = overmind_env(home)
    # name → (argv, environment, what its screen shows once it is up)
    programs = {"tui": (TUI, env, f"{count} missions"), "bare": (BARE, child_env(), BARE_READY)}
    times: dict[str, list[float]] = {"tui": [], "bare": [], "ps": []}
    idle: dict[str, list[float]] = {"ended": [], "running": [], "bare": [], "top": []}

    def start_up(name: str) -> float:
        if name == "ps":
            started = time.perf_counter()
            subprocess.run(PS, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=60)
            return time.perf_counter() - started
        terminal, seconds = start(*programs[name], config.scratch)
        quit_(terminal)
        return seconds

    def idle_round(name: str) -> float:
        terminal, _seconds = start(*programs[name], config.scratch)
        try:
            time.sleep(1.0)  # what start-up set going (the first CPU samples) settles first
            return idle_cpu(terminal, window_s)
        finally:
            quit_(terminal)

    async with overmind_server(home, env=env) as server:
        ids = await spawn_many(server, count, ["true"])
        await server.call("wait", {"ids": ids, "timeout_s": 120})
        for name in times:  # warm-up: page cache, bytecode
            await anyio.to_thread.run_sync(start_up, name)
        for number in range(rounds):
            for name in (*alternate(number, "tui", "bare"), "ps"):
                times[name].append(await anyio.to_thread.run_sync(start_up, name) * 1000)
        for _ in range(idle_rounds):
            idle["ended"].append(await anyio.to_thread.run_sync(idle_round, "tui"))
            idle["bare"].append(await anyio.to_thread.run_sync(idle_round, "bare"))
        # As many again, running: each a quiet `sleep`, so the top panel samples every one.
        sleepers = await spawn_many(server, count, ["sleep", "3600"])
        programs["tui"] = (TUI, env, f"{2 * count} missions")
        programs["top"] = (TOP, env, f"{count} running")
        for _ in range(idle_rounds):
            idle["running"].append(await anyio.to_thread.run_sync(idle_round, "tui"))
            idle["top"].append(await anyio.to_thread.run_sync(idle_round, "top"))
        await server.call("kill", {"ids": sleepers, "force": True})

    tui_ms, bare_ms, ps_ms = median(times["tui"]), median(times["bare"]), median(times["ps"])
    bare_idle = median(idle["bare"])
    return {
        "rows": [
            row(
                f"tui start-up to its first full screen, {count} missions",
                ours=tui_ms,
                baseline=bare_ms,
                unit="ms",
                baseline_name="a bare Textual app's first screen",
                spread_of="tui per round",
                spread_values=times["tui"],
                digits=0,
                note=f"`overmind ps --tree` over the same missions: {ps_ms:.0f} ms",
            ),
            row(
                f"tui CPU while idle, {count} ended missions listed",
                ours=median(idle["ended"]),
                baseline=bare_idle,
                unit="% of a core",
                baseline_name="a bare Textual app, idle",
                spread_of="per window",
                spread_values=idle["ended"],
                target="as the bare app: nothing is redrawn on a timer",
                met=median(idle["ended"]) <= bare_idle + 0.1,
                digits=2,
            ),
            row(
                f"tui CPU while idle, {count} quiet missions running and {count} ended",
                ours=median(idle["running"]),
                baseline=median(idle["top"]),
                unit="% of a core",
                baseline_name="`overmind top` over the same, every 2 s",
                spread_of="per window",
                spread_values=idle["running"],
                digits=2,
                note=f"the top panel samples its process trees every 2 s; a bare Textual app: {bare_idle:.2f} %",
            ),
        ],
        "details": {"start_up_ms": times, "idle_cpu_percent": idle, "window_s": window_s},
    }
