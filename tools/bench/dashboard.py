"""The web dashboard: page load with 500 missions, output line → page latency, server CPU with 5 dashboards open.

A real stdio server (the dashboard is on its loopback listener) holds 500 missions (quick: 20):
finished commands and stand-in claude tasks, some in trees, and a few that keep running. A real
browser (Debian's Chromium, driven by Playwright) logs in through `overmind dashboard`.

- Page load: the browser's navigation timing (start → load event) of the board with every
  mission listed, against the same page of a second server whose state directory is empty,
  loaded alternately in the same rounds.
- Latency: a command prints its own `time.time()` twice a second; the mission page records
  when each line is in its DOM (a MutationObserver, on the same clock). The baseline is
  `overmind logs -f` following the same mission at the same time: when each line reaches it.
- CPU: the server's own CPU (psutil user + system) over a window while the ticker prints and a
  few claude children idle, with 5 dashboards open (the board, live), against the same window
  with none open.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from tools.bench.common import (
    Config,
    McpServer,
    cpu_percent,
    median,
    overmind_env,
    overmind_server,
    row,
    spread,
    summary,
)

CHROMIUM = Path(os.environ.get("OVERMIND_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Twice a second: slower than the four updates a second a page gets, so what is measured is the
# latency itself, not the coalescing.
TICKER = "import time\nwhile True:\n    print(f'{time.time():.6f}', flush=True)\n    time.sleep(0.5)"
HANG = "Wait for orders.\nfake: say waiting\nfake: hang"
OBSERVE_LOG = """
() => {
  window.arrivals = [];
  new MutationObserver((changes) => {
    const now = Date.now() / 1000;
    for (const change of changes)
      for (const node of change.addedNodes)
        if (node.classList && node.classList.contains('ln')) window.arrivals.push([Number(node.textContent), now]);
  }).observe(document.getElementById('log'), {childList: true});
}
"""


async def run(config: Config) -> dict[str, Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        return {"skipped": "the playwright package is not installed (pip install -e '.[test]')"}
    if not os.access(CHROMIUM, os.X_OK):
        return {"skipped": f"no Chromium at {CHROMIUM} (apt-get install chromium)"}
    missions = 20 if config.quick else 500
    rounds = 3 if config.quick else 7
    samples = 8 if config.quick else 60
    window_s = 2.0 if config.quick else 10.0
    full_home, empty_home = config.scratch / "full", config.scratch / "empty"
    async with (
        overmind_server(full_home) as server,
        overmind_server(empty_home) as empty_server,
        async_playwright() as playwright,
    ):
        await empty_server.call("status", {})
        live = await fill(server, missions)
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            full = await logged_in(browser, full_home)
            empty = await logged_in(browser, empty_home)
            loads: dict[str, list[float]] = {"full": [], "empty": []}
            for round_number in range(rounds):
                order = ["full", "empty"] if round_number % 2 == 0 else ["empty", "full"]
                for which in order:
                    page = full if which == "full" else empty
                    loads[which].append(await page_load_ms(page, missions if which == "full" else 0))
            ticker = await server.call("spawn", {"command": [sys.executable, "-c", TICKER], "name": "ticker"})
            page_ms, console_ms = await line_latency(full_home, full, ticker["id"], samples)
            cpu_open, cpu_none = await cpu_with_dashboards(server, browser, full_home, window_s)
        finally:
            await browser.close()
        await server.call("kill", {"ids": [*live, ticker["id"]], "force": True})
    load_ratios = [ours / base for ours, base in zip(loads["full"], loads["empty"], strict=True)]
    return {
        "missions": missions,
        "rows": [
            row(
                f"page load, {missions} missions listed (start → load event), p50",
                ours=median(loads["full"]),
                baseline=median(loads["empty"]),
                unit="ms",
                baseline_name="the same page, no missions",
                spread_of="ratio per round",
                spread_values=load_ratios,
                digits=1,
            ),
            row(
                "output line → mission page, p50",
                ours=median(page_ms),
                baseline=median(console_ms),
                unit="ms",
                baseline_name="overmind logs -f, same lines",
                spread_of="-",
                digits=1,
                note=f"p90: page {summary(page_ms, 1)['p90']} ms, console {summary(console_ms, 1)['p90']} ms",
            ),
            row(
                "server CPU, 5 dashboards open",
                ours=cpu_open,
                baseline=cpu_none,
                unit="% of a core",
                baseline_name="no dashboard open",
                spread_of="-",
                digits=2,
            ),
        ],
        "page_load_ms": {"full": summary(loads["full"], 1), "empty": summary(loads["empty"], 1)},
        "latency_ms": {"page": summary(page_ms, 1), "console": summary(console_ms, 1)},
        "load_ratio_spread": spread(load_ratios),
    }


async def fill(server: McpServer, count: int) -> list[str]:
    """`count` missions: most ended (commands, stand-in tasks, small trees), a few idling; the idle ones' ids."""
    idle = max(count // 50, 2)
    ids: list[str] = []
    for number in range(count - idle):
        if number % 5 == 0:
            prompt = f"Task {number}.\nfake: turns 2\nfake: answer finished {number}"
            spawned = await server.call("spawn", {"prompt": prompt, "name": f"task-{number}"})
        else:
            parent = ids[-1] if number % 5 in (2, 3) and ids else None
            request: dict[str, Any] = {"command": ["echo", f"done {number}"], "name": f"cmd-{number}"}
            if parent is not None:
                request["parent"] = parent
            spawned = await server.call("spawn", request)
        ids.append(spawned["id"])
    for start in range(0, len(ids), 100):
        await server.call("wait", {"ids": ids[start : start + 100], "timeout_s": 120})
    live = [(await server.call("spawn", {"prompt": HANG, "name": f"idle-{n}"}))["id"] for n in range(idle)]
    return live


@dataclass
class Dashboard:
    page: Any
    base: str


async def logged_in(browser: Any, home: Path) -> Dashboard:
    """A page of a new browser context, logged in to the dashboard of the server on `home`."""
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "overmind_mcp.console", "dashboard", "--no-open", "--json"], env=overmind_env(home)
        )
    url = json.loads(done.stdout)["url"]
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(url)
    return Dashboard(page, url.split("/login", 1)[0])


async def page_load_ms(dashboard: Dashboard, expected_cards: int) -> float:
    page = dashboard.page
    await page.goto(dashboard.base + "/", wait_until="load")
    cards = await page.locator(".card").count()
    if cards != expected_cards:
        raise RuntimeError(f"the board lists {cards} missions, not {expected_cards}")
    timing = await page.evaluate(
        "() => { const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime; }"
    )
    return float(timing)


async def line_latency(
    home: Path, dashboard: Dashboard, mission_id: str, samples: int
) -> tuple[list[float], list[float]]:
    """Per line, ms from its print to the mission page's DOM, and to `overmind logs -f`."""
    page = dashboard.page
    await page.goto(f"{dashboard.base}/missions/{mission_id}", wait_until="load")
    await page.evaluate(OBSERVE_LOG)
    console_ms: list[float] = []
    follower = await anyio.open_process(
        [sys.executable, "-m", "overmind_mcp.console", "logs", mission_id, "-f", "-n", "1"], env=overmind_env(home)
    )
    try:
        assert follower.stdout is not None
        pending = b""
        with anyio.fail_after(60 + samples):
            async for chunk in follower.stdout:
                now = time.time()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    console_ms.append((now - float(line)) * 1000)
                if len(console_ms) >= samples + 1:
                    break
    finally:
        follower.terminate()
        await follower.wait()
    arrivals = await page.evaluate("() => window.arrivals")
    page_ms = [(arrived - printed) * 1000 for printed, arrived in arrivals]
    # The first of each is what was already there when following started.
    return page_ms[1:] or page_ms, console_ms[1:]


async def cpu_with_dashboards(server: McpServer, browser: Any, home: Path, window_s: float) -> tuple[float, float]:
    """The server's CPU over `window_s` with 5 boards open and live, then with none."""
    dashboards = [await logged_in(browser, home) for _ in range(5)]
    for dashboard in dashboards:
        await dashboard.page.goto(dashboard.base + "/", wait_until="load")
        await dashboard.page.locator("#conn[data-state=live]").wait_for()
    with_open = await server_cpu(server, window_s)
    for dashboard in dashboards:
        await dashboard.page.context.close()
    await server.call("status", {})
    without = await server_cpu(server, window_s)
    return with_open, without


async def server_cpu(server: McpServer, window_s: float) -> float:
    before, started = server.cpu_seconds(), time.perf_counter()
    await anyio.sleep(window_s)  # the window itself: the server works on its own meanwhile
    return cpu_percent(server.cpu_seconds() - before, time.perf_counter() - started)
