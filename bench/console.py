"""Merchant console benchmark: the gzipped JavaScript shipped, and the first screen's time to
interactive on loopback (navigation start → the dashboard's figures rendered), in Chromium.

    uv run python -m bench.console [--runs 10]

Serves the real app (uvicorn, in process) on a database of its own (dropped afterwards) and
Redis DB 11, signs in with an API key put in sessionStorage before the page loads, and times
each load with a MutationObserver that notes `performance.now()` the moment the figures exist.
The first run has a cold cache; the rest reuse the browser's cache of the hashed assets.
Needs /usr/bin/chromium (apt-get install chromium). Prints a table; budget: 1 s, 300 KB.
BENCH_CONSOLE_DETAIL=1 also prints each load's resource timings (ms from navigation start).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import statistics
import uuid
from pathlib import Path

import asyncpg
import httpx
from playwright.async_api import async_playwright
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from app import migrate
from app.config import Settings
from app.core.resources import Resources
from app.main import create_app
from app.shops import service as shop_service
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support import serving

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "cashback_bench_console"
DIST = Path(__file__).resolve().parents[1] / "console" / "dist"

# Runs before the console's own script: the key to sign in with, and a clock for the moment
# the headline figures are in the DOM.
TIMER = """
sessionStorage.setItem("cashback.api_key", %r);
new MutationObserver((_, observer) => {
  if (document.querySelector("[data-ready=true]")) {
    window.__figuresAt = performance.now();
    observer.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""


DETAIL = """
[performance.getEntriesByType("navigation")[0].responseEnd,
 performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd,
 ...performance.getEntriesByType("resource").map(
   (r) => `${r.name.split("/").slice(-1)[0]} ` +
          `${r.startTime.toFixed(0)}-${r.responseEnd.toFixed(0)}`),
 window.__figuresAt]
"""


def gzipped_js() -> tuple[int, int]:
    """(raw bytes, gzip -9 bytes) of every JavaScript file the console ships."""
    files = sorted((DIST / "assets").glob("*.js"))
    raw = sum(f.stat().st_size for f in files)
    packed = sum(len(gzip.compress(f.read_bytes(), compresslevel=9, mtime=0)) for f in files)
    return raw, packed


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(False)


async def first_screen(base_url: str, redis_url: str, runs: int) -> list[float]:
    admin = await asyncpg.connect(_dsn(base_url))
    await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    url = make_url(base_url).set(database=BENCH_DB).render_as_string(False)
    settings = Settings(
        database_url=url,
        redis_url=redis_url,
        admin_token=SecretStr(uuid.uuid4().hex),
        secret_key=SecretStr(uuid.uuid4().hex),
        queue_name="cashback:bench-console",
    )
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        resources = Resources.open(settings)
        try:
            async with resources.sessionmaker() as session:
                created = await shop_service.create_shop(session, domain="bench.myshopify.com")
                await session.commit()
            async with (
                serving(create_app(settings, resources), lifespan="off") as served,
                async_playwright() as playwright,
            ):
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                # The service is up and has answered before: what is timed is the browser's
                # first visit (cold cache), not the process's first request.
                async with httpx.AsyncClient(base_url=served, timeout=10) as warm_up:
                    auth = {"Authorization": f"Bearer {created.api_key}"}
                    for path in ("/console/", "/v1/me", "/v1/metrics/dashboard"):
                        (await warm_up.get(path, headers=auth)).raise_for_status()
                context = await browser.new_context()
                await context.add_init_script(TIMER % created.api_key)
                timings = []
                for _ in range(runs):
                    page = await context.new_page()
                    await page.goto(f"{served}/console/")
                    await page.wait_for_function("window.__figuresAt !== undefined")
                    timings.append(await page.evaluate("window.__figuresAt"))
                    if os.environ.get("BENCH_CONSOLE_DETAIL"):
                        print(await page.evaluate(DETAIL))
                    await page.close()
                await browser.close()
        finally:
            await resources.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        await admin.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--postgres", default=os.environ.get("CASHBACK_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()
    raw, packed = gzipped_js()
    timings = asyncio.run(first_screen(args.postgres, args.redis, args.runs))
    warm = timings[1:] or timings
    rows = [
        ("console JavaScript", f"{raw / 1024:.1f}", "KB", ""),
        ("console JavaScript, gzip -9", f"{packed / 1024:.1f}", "KB", "≤ 300"),
        ("first screen, cold cache", f"{timings[0]:.0f}", "ms", "≤ 1000"),
        ("first screen, warm (median)", f"{statistics.median(warm):.0f}", "ms", "≤ 1000"),
        ("first screen, warm (max)", f"{max(warm):.0f}", "ms", "≤ 1000"),
    ]
    print(f"{'figure':32} {'value':>8} unit  target")
    for name, value, unit, target in rows:
        print(f"{name:32} {value:>8} {unit:4}  {target}")


if __name__ == "__main__":
    main()
