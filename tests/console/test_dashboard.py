"""Dashboard and sign-in in a real browser: the four headline figures first, live figures."""

from __future__ import annotations

from playwright.async_api import expect

from tests.console.conftest import Console
from tests.payloads import new_order_id, paid_order


async def test_a_wrong_key_is_told_so_and_a_right_key_opens_the_dashboard(
    console: Console,
) -> None:
    shop = await console.stack.create_shop()
    page = await console.open("/")
    await page.get_by_label("API key").fill("cbk_wrong")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("unknown or revoked API key")

    await page.get_by_label("API key").fill(shop.api_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("header")).to_contain_text(shop.domain)
    await expect(page.locator("[data-figure=processed_today] .value")).to_have_text("0")
    await expect(page.get_by_text("No cashback issued in the last 30 days.")).to_be_visible()
    await expect(page.get_by_text("No customer has earned cashback yet.")).to_be_visible()


async def test_the_dashboard_figures_change_live_when_an_order_is_credited(
    console: Console,
) -> None:
    stack = console.stack
    shop = await stack.create_shop()
    page = await console.sign_in(shop)
    headline = page.locator(".figures.headline .figure .label")
    await expect(headline).to_have_text(
        [
            "Orders processed today",
            "Cashback issued today (total $0.00)",
            "Pending queue",
            "Failed processing",
        ]
    )
    await expect(page.locator("[data-live=on]")).to_be_visible()

    assert (await stack.deliver(shop, paid_order(id=new_order_id()))).status_code == 200
    await stack.run_worker()
    # No reload: the event stream's dashboard.updated refetches the figures.
    await expect(page.locator("[data-figure=processed_today] .value")).to_have_text("1")
    await expect(page.locator("[data-figure=cashback_issued_today] .value")).to_have_text("$4.38")
    await expect(page.locator(".chart rect")).not_to_have_count(0)
    await expect(page.locator(".dashboard table")).to_contain_text("$4.38")
    await console.screenshot("dashboard")
