"""The review queue and the processing mode switch in a real browser: oldest first, keyboard
review, bulk results per order, the "process them now / keep them pending" dialog."""

from __future__ import annotations

from playwright.async_api import expect

from app.shops.models import ApiKeyRole, ProcessingMode
from tests.console.conftest import Console
from tests.console.helpers import orders


async def test_the_queue_is_reviewed_with_the_keyboard(console: Console) -> None:
    stack = console.stack
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    made = await orders(stack, shop, 3)
    page = await console.sign_in(shop, "/review")
    rows = page.locator("table.queue tbody tr")
    await expect(rows).to_have_count(3)
    queue = [await row.get_attribute("data-order") for row in await rows.all()]
    assert sorted(queue) == sorted(o["external_id"] for o in made)  # type: ignore[type-var]
    await expect(rows.first).to_have_attribute("aria-current", "true")
    await expect(rows.first).to_contain_text("waiting for a reviewer")
    await expect(rows.first).to_contain_text("credited")  # the customer's history
    await console.screenshot("review")

    await page.keyboard.press("j")
    current = page.locator("table.queue tbody tr[aria-current=true]")
    await expect(current).to_have_attribute("data-order", queue[1] or "")
    await page.keyboard.press("a")  # approve the current (highlighted) order
    await expect(page.locator("[data-result=ok]")).to_have_count(1)
    await expect(rows).to_have_count(2)
    approved = await stack.order(shop, queue[1] or "")
    assert approved["status"] == "processed", approved["history"]

    await page.keyboard.press("k")
    await expect(current).to_have_attribute("data-order", queue[0] or "")
    await page.keyboard.press("r")
    await expect(page.get_by_label("Reason (required)")).to_be_focused()
    await page.keyboard.type("test order")
    await page.keyboard.press("Enter")
    await expect(rows).to_have_count(1)
    first = await stack.order(shop, queue[0] or "")
    assert (first["status"], first["status_reason"]) == ("rejected", "test order")


async def test_bulk_approve_answers_per_order(console: Console) -> None:
    stack = console.stack
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    made = await orders(stack, shop, 2)
    page = await console.sign_in(shop, "/review")
    rows = page.locator("table.queue tbody tr")
    await expect(rows).to_have_count(2)
    for order in made:
        await page.locator(f"tr[data-order='{order['external_id']}'] input[type=checkbox]").check()
    await expect(page.locator("[data-bulk=approve]")).to_have_text("Approve 2 selected")
    # Someone else rejects the first while it is selected here.
    gone = await stack.client.post(
        f"/v1/orders/{made[0]['id']}/reject", headers=shop.auth, json={"reason": "fraud"}
    )
    assert gone.status_code == 200
    await expect(rows).to_have_count(1)  # live: the queue shows the truth
    await page.locator("[data-bulk=approve]").click()
    await expect(page.locator("[data-result=ok]")).to_have_text(
        [f"Order {made[1]['id']}: done (processed)"]
    )
    await expect(page.locator("[data-result=failed]")).to_contain_text(
        f"Order {made[0]['id']}: not changed"
    )
    await expect(page.get_by_text("Nothing waits for review.")).to_be_visible()


async def test_switching_to_automatic_asks_about_pending_orders_and_shows_progress(
    console: Console,
) -> None:
    stack = console.stack
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    await orders(stack, shop, 2)
    page = await console.sign_in(shop, "/mode")
    switch = page.get_by_role("switch")
    await expect(switch).not_to_be_checked()
    await switch.click()
    dialog = page.get_by_role("dialog", name="Pending orders")
    await expect(dialog).to_contain_text("2 orders are pending.")
    await console.screenshot("mode")
    await dialog.get_by_role("button", name="Process them now").click()
    await expect(page.get_by_text("Auto processing is on")).to_be_visible()
    await expect(switch).to_be_checked()
    operation = page.locator(".operation")
    await expect(operation).to_be_visible()
    await stack.run_worker()
    await expect(page.locator("[data-operation=done]")).to_contain_text("2 of 2 approved")
    processed = {"status": "processed"}
    listing = await stack.client.get("/v1/orders", headers=shop.auth, params=processed)
    assert len(listing.json()["items"]) == 2


async def test_keep_them_pending_leaves_the_queue_alone(console: Console) -> None:
    stack = console.stack
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    await orders(stack, shop, 1)
    page = await console.sign_in(shop, "/mode")
    await page.get_by_role("switch").click()
    await page.get_by_role("button", name="Keep them pending").click()
    await expect(page.get_by_role("switch")).to_be_checked()
    await expect(page.locator(".operation")).to_have_count(0)
    listing = await stack.client.get("/v1/orders", headers=shop.auth, params={"status": "pending"})
    assert len(listing.json()["items"]) == 1


async def test_a_viewer_sees_no_buttons_and_a_reviewer_sees_review_buttons(
    console: Console,
) -> None:
    stack = console.stack
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    [order] = await orders(stack, shop, 1)
    viewer = (await stack.add_key(shop, ApiKeyRole.viewer))["Authorization"][7:]
    reviewer = (await stack.add_key(shop, ApiKeyRole.reviewer))["Authorization"][7:]

    page = await console.sign_in(viewer, f"/orders/{order['id']}")
    await expect(page.locator("h1")).to_contain_text("⏳ Pending")
    look_only = "Your key is a viewer key: you can look, not act."
    await expect(page.get_by_text(look_only)).to_be_visible()
    await expect(page.locator("[data-action]")).to_have_count(0)
    await page.goto(f"{console.url}/console/review")
    await expect(page.locator("table.queue tbody tr")).to_have_count(1)
    await expect(page.locator("[data-bulk]")).to_have_count(0)
    await page.keyboard.press("a")  # no effect for a viewer
    await page.goto(f"{console.url}/console/mode")
    await expect(page.get_by_role("switch")).to_be_disabled()
    await page.get_by_role("button", name="Sign out").click()

    page = await console.sign_in(reviewer, f"/orders/{order['id']}")
    await expect(page.locator("[data-action]")).to_have_text(["Approve", "Reject", "Hold"])
    await page.goto(f"{console.url}/console/mode")
    await expect(page.get_by_text("Only an admin key can change the mode.")).to_be_visible()
    await expect(page.get_by_role("switch")).to_be_disabled()
    assert (await stack.order(shop, order["external_id"]))["status"] == "pending"
