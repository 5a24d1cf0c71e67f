"""The dashboard in a real browser, against a real stdio server and its running missions.

Login through the link `overmind dashboard` prints; a running stand-in mission appears on the
board; its log grows on its page without a reload; the kill button ends it; and the refusals:
401 without a session, a POST without the anti-CSRF token or from a foreign origin.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

import pytest

from overmind_mcp.settings import Settings
from tests.conftest import assert_no_leftovers
from tests.helpers import call, script, stdio_server
from tests.test_console import overmind_json

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.async_api import Browser

pytestmark = pytest.mark.anyio

TICKER = "import time\nfor n in range(100000):\n    print(f'tick {n}', flush=True)\n    time.sleep(0.3)"


async def test_login_watch_follow_and_kill(settings: Settings, browser: Browser, screenshots: Path) -> None:
    from playwright.async_api import expect

    async with stdio_server(settings) as (client, _process):
        ticker = await call(client, "spawn", command=[sys.executable, "-c", TICKER], name="ticker")
        agent = await call(client, "spawn", prompt=script("turns 2", "say looking around", "hang"), name="agent")
        login = await overmind_json(settings, "dashboard", "--no-open")
        base = login["url"].split("/login", 1)[0]
        context = await browser.new_context(viewport={"width": 1200, "height": 800})
        page = await context.new_page()

        # No session: 401, and a page that says how to get one.
        response = await page.goto(base + "/")
        assert response is not None and response.status == 401
        await expect(page.locator("h1")).to_have_text("Log in to the dashboard")
        await page.screenshot(path=screenshots / "dashboard-1-login.png")

        # The one-time link: a session cookie, and no code left in the address.
        await page.goto(login["url"])
        assert page.url == base + "/"
        [cookie] = await context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        # The running missions appear, each in its group, with what it is doing.
        card = page.locator(f"#m-{ticker['id']}")
        await expect(card).to_be_visible()
        await expect(page.locator("#conn")).to_have_text("live")
        await expect(page.locator(f'section[data-group="working"] #m-{ticker["id"]}')).to_be_visible()
        await expect(page.locator(f"#m-{agent['id']} .last")).to_have_text("looking around")
        await expect(page.locator(f"#m-{agent['id']} .tool")).to_have_text("→ Bash")
        first_line = await card.locator(".last").inner_text()
        # The board follows the ticker's output without a reload.
        await expect(card.locator(".last")).not_to_have_text(first_line)
        await page.screenshot(path=screenshots / "dashboard-2-board.png", full_page=True)
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.screenshot(path=screenshots / "dashboard-3-board-phone.png", full_page=True)
        await page.set_viewport_size({"width": 1200, "height": 800})

        # Its page: the log grows there without a reload.
        await card.locator("a.name").click()
        await page.wait_for_url(f"{base}/missions/{ticker['id']}")
        await page.evaluate("window.loadedOnce = true")
        lines = page.locator("#log .ln")
        before = await lines.count()
        await expect(lines).not_to_have_count(before)
        await page.wait_for_function("n => document.querySelectorAll('#log .ln').length >= n", arg=before + 3)
        assert await page.evaluate("window.loadedOnce") is True, "the page was reloaded"
        texts = await lines.all_inner_texts()
        numbers = [int(text.split()[1]) for text in texts if text.startswith("tick ")]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "lines in order, none twice"
        await page.screenshot(path=screenshots / "dashboard-4-mission.png", full_page=True)

        # The refusals, with the session cookie: no anti-CSRF token, and a foreign origin.
        kill_url = f"{base}/missions/{ticker['id']}/kill"
        token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
        assert token
        without_token = await page.evaluate(
            "async url => (await fetch(url, {method: 'POST', headers: {Accept: 'application/json'}})).status",
            kill_url,
        )
        assert without_token == 403
        foreign = await context.request.post(kill_url, headers={"Origin": "http://evil.example", "X-CSRF-Token": token})
        assert foreign.status == 403
        assert (await call(client, "result", id=ticker["id"]))["status"] == "running"

        # The kill button ends it (and its subtree), once the person confirms.
        page.once("dialog", lambda dialog: dialog.accept())
        await page.locator("#kill").click()
        await expect(page.locator("#toast")).to_contain_text("ended ticker")
        await expect(page.locator("#head-top dd.st-stopped")).to_be_visible()
        assert (await call(client, "result", id=ticker["id"]))["status"] == "stopped"
        await expect(page.locator("#head-top #kill")).to_have_count(0)
        await page.screenshot(path=screenshots / "dashboard-5-killed.png", full_page=True)

        # Back on the board, the ended mission has moved to its group.
        await page.goto(base + "/")
        await expect(page.locator(f'section[data-group="done"] #m-{ticker["id"]}')).to_be_visible()
        assert re.search(r"\b2 missions\b", await page.locator("#totals").inner_text())
        await call(client, "kill", ids=[agent["id"]])
        await expect(page.locator(f'section[data-group="done"] #m-{agent["id"]}')).to_be_visible()
        await page.screenshot(path=screenshots / "dashboard-6-done.png", full_page=True)
        await context.close()
    await assert_no_leftovers(settings)
