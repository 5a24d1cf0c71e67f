"""Fixtures for tests in a real browser: Debian's headless Chromium, driven by Playwright.

Playwright's own browser download cannot work offline, so the system's Chromium is launched by
path (`tools/test` installs it with apt-get where it is missing). Without it, or without the
`playwright` package, the tests are skipped with the reason locally and fail in CI (`CI=true`).
Screenshots of what the tests saw are saved for review under test-artifacts/screenshots/
(or $OVERMIND_SCREENSHOTS).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("OVERMIND_CHROMIUM", "/usr/bin/chromium"))
# Headless and off the network: without the background-networking flags Chromium keeps
# trying to reach its vendor's hosts, which a closed network refuses, many at a time.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


def missing(reason: str) -> NoReturn:
    """Fail in CI (``CI=true``: the browser must be there), skip elsewhere; the reason is printed either way."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def screenshots() -> Path:
    directory = Path(os.environ.get("OVERMIND_SCREENSHOTS") or ROOT / "test-artifacts" / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def chromium() -> Path:
    """The system's Chromium, with the playwright package to drive it."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing("the playwright package is not installed: pip install -e '.[test]' (tools/test does)")
    if not CHROMIUM.exists():
        missing(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (tools/test does, where apt-get works)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()
