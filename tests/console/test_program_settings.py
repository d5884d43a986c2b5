"""Program, settings and the audit log in a real browser: validation errors beside their
fields, preview and what-if under the draft, versions, API keys, CSV export."""

from __future__ import annotations

import json

from playwright.async_api import expect

from app.shops.models import ProcessingMode
from tests.console.conftest import Console
from tests.console.helpers import orders
from tests.payloads import paid_order


async def test_the_program_is_checked_previewed_simulated_and_saved(console: Console) -> None:
    stack = console.stack
    shop = await stack.create_shop()
    await orders(stack, shop, 1)
    page = await console.sign_in(shop, "/program")
    base_rate = page.get_by_label("Base rate (percent)")
    await expect(base_rate).to_have_value("5")
    await base_rate.fill("150")
    await page.get_by_role("button", name="Save as a new version").click()
    await expect(page.locator("[data-error=base_rate]")).to_be_visible()
    await expect(page.get_by_role("alert")).to_be_visible()
    await page.get_by_label("Rules and exclusions (JSON list)").fill("[{")
    await page.get_by_role("button", name="Save as a new version").click()
    await expect(page.locator("[data-error=rules]")).to_have_text("not valid JSON")
    await page.get_by_label("Rules and exclusions (JSON list)").fill("[]")

    await base_rate.fill("10")
    await page.locator("[name=preview_order]").fill(json.dumps(paid_order()))
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator("[data-preview='Current program']")).to_contain_text("$4.38")
    await expect(page.locator("[data-preview=Draft]")).to_contain_text("$8.75 on $87.50 eligible")
    await page.get_by_role("button", name="Simulate").click()
    await expect(page.locator("[data-simulation]")).to_contain_text("1 orders: now $4.38")
    await console.screenshot("program")

    await page.get_by_role("button", name="Save as a new version").click()
    await expect(page.get_by_role("status").filter(has_text="Saved")).to_have_text(
        "Saved as version 2."
    )
    await expect(page.locator(".versions")).to_contain_text("Version 2")
    program = (await stack.client.get("/v1/program", headers=shop.auth)).json()
    assert (program["version"], program["base_rate"]) == (2, "10")


async def test_settings_save_and_show_errors_beside_fields(console: Console) -> None:
    stack = console.stack
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    page = await console.sign_in(shop, "/settings")
    ceiling = page.get_by_label("Approval ceiling (most a reviewer may approve per order)")
    await ceiling.fill("lots")
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.locator("[data-error=approval_ceiling]")).to_be_visible()

    await ceiling.fill("50.00")
    await page.get_by_label("Award delay (days after payment)").fill("3")
    await page.get_by_label("Hold a customer's first order").check()
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.get_by_text("Settings saved.")).to_be_visible()
    saved = (await stack.client.get("/v1/shop/settings", headers=shop.auth)).json()
    assert (saved["approval_ceiling"], saved["award_delay_days"]) == ("50.00", 3)
    assert saved["hold_rules"]["first_order"] is True
    await expect(page.locator("[data-connection=none]")).to_contain_text("Not installed")

    await page.locator("[name=key_name]").fill("night shift")
    await page.locator("[name=key_role]").select_option("reviewer")
    await page.get_by_role("button", name="Create key").click()
    new_key = await page.locator("[data-new-key]").text_content()
    assert new_key and new_key.startswith("cbk_")
    await expect(page.locator(".keys table")).to_contain_text("night shift")
    await console.screenshot("settings")
    me = await stack.client.get("/v1/me", headers={"Authorization": f"Bearer {new_key}"})
    assert me.json()["role"] == "reviewer"


async def test_the_audit_log_filters_and_exports_csv(console: Console) -> None:
    stack = console.stack
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    [order] = await orders(stack, shop, 1)
    await stack.client.post(
        f"/v1/orders/{order['id']}/reject", headers=shop.auth, json={"reason": "duplicate"}
    )
    await stack.client.patch("/v1/shop/settings", headers=shop.auth, json={"award_delay_days": 2})
    page = await console.sign_in(shop, "/audit")
    events = page.locator("table.events tbody tr")
    await expect(page.locator("[data-action='order.rejected']")).to_contain_text("duplicate")
    await page.get_by_label("Action").fill("order.rejected")
    await page.get_by_label("Action").press("Tab")
    await expect(events).to_have_count(1)
    await console.screenshot("audit")
    async with page.expect_download() as download:
        await page.get_by_role("button", name="Export CSV").click()
    path = await (await download.value).path()
    lines = path.read_text().splitlines()
    assert lines[0].startswith("id,") or "action" in lines[0]
    assert len(lines) == 2 and "order.rejected" in lines[1]

    await page.get_by_label("Action").fill("nothing.like.this")
    await page.get_by_label("Action").press("Tab")
    await expect(page.get_by_text("No audit events match these filters.")).to_be_visible()
