"""Browser tests of the merchant console: Debian's Chromium driven by Playwright, against the
real service served by uvicorn on 127.0.0.1, a real worker, PostgreSQL and Redis.

One browser for the session (a new context per test); the service starts per test on the test's
database. Chromium comes from apt (`.ci/run` installs it): Playwright cannot download its own
browsers here.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from app.main import create_app
from tests.support import ShopHandle, Stack, serving

CHROMIUM = os.environ.get("CASHBACK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The README's screenshots: refreshed with CASHBACK_CONSOLE_SCREENSHOTS=1 (else each test's
# screenshots go to its tmp dir, so a test run leaves the checkout as it was).
DOC_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DIST = Path(__file__).resolve().parents[2] / "console" / "dist" / "index.html"


def _require_browser_and_build() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (see .ci/run)")
    if not DIST.exists():
        pytest.fail("the console is not built: cd console && npm ci && npm run build")


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    _require_browser_and_build()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Console:
    """The console in a browser tab, signed in or not."""

    page: Page
    url: str
    stack: Stack
    screenshots: Path = DOC_SCREENSHOTS

    async def open(self, path: str = "/", api_key: str | None = None) -> Page:
        await self.page.goto(f"{self.url}/console{path}")
        if api_key is not None:
            await self.page.get_by_label("API key").fill(api_key)
            await self.page.get_by_role("button", name="Sign in").click()
            await self.page.locator("header .role").wait_for()
        return self.page

    async def sign_in(self, shop: ShopHandle | str, path: str = "/") -> Page:
        key = shop if isinstance(shop, str) else shop.api_key
        return await self.open(path, key)

    async def screenshot(self, name: str) -> None:
        """<name>.png of the whole page once nothing is loading (docs/screenshots: the README's)."""
        await expect(self.page.locator(".loading")).to_have_count(0)  # everything shown
        await self.page.screenshot(path=str(self.screenshots / f"{name}.png"), full_page=True)


@pytest.fixture
async def tab_context(chromium: Browser) -> AsyncIterator[BrowserContext]:
    made = await chromium.new_context(
        locale="en-US", timezone_id="UTC", viewport={"width": 1200, "height": 800}
    )
    made.set_default_timeout(10_000)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def served(stack: Stack) -> AsyncIterator[str]:
    async with serving(create_app(stack.settings, stack.resources), lifespan="off") as url:
        yield url


@pytest.fixture
async def console(
    served: str, tab_context: BrowserContext, stack: Stack, tmp_path: Path
) -> Console:
    # Served first, so the browser closes (ending its event stream) before the service stops.
    shots = DOC_SCREENSHOTS if os.environ.get("CASHBACK_CONSOLE_SCREENSHOTS") == "1" else tmp_path
    return Console(await tab_context.new_page(), served, stack, shots)
