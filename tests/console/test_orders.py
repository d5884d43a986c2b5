"""Orders and an order's page in a real browser: badges, filters, search, pages, live badges,
why an order is not credited, Process cashback with a changed amount, and a stale page."""

from __future__ import annotations

from playwright.async_api import expect

from app.shops.models import ApiKeyRole, ProcessingMode
from tests.console.conftest import Console
from tests.console.helpers import deliver_over_http, failed_order, orders, put_program
from tests.payloads import new_order_id, paid_order


async def test_the_list_shows_badges_filters_searches_and_pages(console: Console) -> None:
    stack = console.stack
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    made = await orders(stack, shop, 26)
    approved = await stack.client.post(f"/v1/orders/{made[0]['id']}/approve", headers=shop.auth)
    assert approved.status_code == 200, approved.text
    page = await console.sign_in(shop, "/orders")
    rows = page.locator("table.orders tbody tr")
    await expect(rows).to_have_count(25)
    await expect(page.locator("[data-status=pending]").first).to_have_text("⏳ Pending")
    await page.get_by_role("button", name="Next →").click()
    await expect(rows).to_have_count(1)  # 26 orders: 25 a page
    await page.get_by_role("button", name="← Previous").click()
    await expect(rows).to_have_count(25)

    await page.get_by_label("Status").select_option("processed")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-order", made[0]["external_id"])
    # Which page the approved order lands on depends on the order the worker's two drain loops
    # stored them in; its badge does not.
    await expect(rows.first).to_contain_text("✅ Processed")
    await page.get_by_label("Status").select_option("")
    await page.get_by_label("Order number").fill(made[5]["external_id"])
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-order", made[5]["external_id"])
    await page.get_by_label("Order number").fill("#1042")  # every sample order's name
    await expect(rows).to_have_count(25)
    await page.get_by_label("Order number").fill("#999")
    await expect(page.get_by_text("No orders match these filters.")).to_be_visible()
    await page.get_by_label("Order number").fill("")
    await console.screenshot("orders")

    await page.get_by_label("Customer id").fill("not-a-number")
    await expect(page.get_by_role("alert")).to_contain_text("Could not load the orders:")


async def test_a_badge_changes_live_after_a_signed_webhook(console: Console) -> None:
    stack = console.stack
    shop = await stack.create_shop()
    external_id = new_order_id()
    unpaid = paid_order(id=external_id, financial_status="pending")
    await deliver_over_http(console.url, shop, unpaid, topic="orders/create")
    await stack.run_worker()
    page = await console.sign_in(shop, "/orders")
    badge = page.locator(f"tr[data-order='{external_id}'] .badge")
    await expect(badge).to_have_text("💳 Awaiting payment")
    await expect(page.locator("[data-live=on]")).to_be_visible()

    await deliver_over_http(console.url, shop, paid_order(id=external_id))
    await stack.run_worker()
    await expect(badge).to_have_text("✅ Processed")  # no reload


async def test_an_order_page_explains_the_amount_line_by_line(console: Console) -> None:
    stack = console.stack
    shop = await stack.create_shop()
    [order] = await orders(stack, shop, 1)
    page = await console.sign_in(shop, f"/orders/{order['id']}")
    await expect(page.locator("h1")).to_contain_text("✅ Processed")
    await expect(page.locator("[data-field=cashback_amount]")).to_have_text("$4.38")
    lines = page.locator("table.lines tbody tr")
    await expect(lines).to_have_count(len(order["lines"]))
    for line in order["lines"]:
        await expect(page.locator("table.lines")).to_contain_text(
            f"{line['rate']}% ({line['rate_source']})"
        )
    await expect(page.locator(".history")).to_contain_text("→ Processed")
    await expect(page.get_by_role("heading", name="Customer's ledger")).to_be_visible()
    await expect(page.locator(".order table").last).to_contain_text("$4.38")
    await expect(page.locator(".why")).to_have_count(0)  # credited: nothing to explain
    await console.screenshot("order")


async def test_process_cashback_shows_a_changed_amount_instead_of_applying_it(
    console: Console,
) -> None:
    stack = console.stack
    shop = await stack.create_shop()
    order = await failed_order(stack, shop)
    page = await console.sign_in(shop, f"/orders/{order['id']}")
    await expect(page.locator(".why")).to_contain_text("Processing failed")
    await expect(page.locator(".why")).to_contain_text("Shopify refused the store credit (503)")
    await page.get_by_role("button", name="Process cashback").click()
    await expect(page.locator("[data-field=proposed]")).to_have_text("$4.38")

    await put_program(stack, shop, base_rate="10")  # the calculation changes meanwhile
    asked = await stack.client.post(f"/v1/orders/{order['id']}/process", headers=shop.auth)
    now = asked.json()["calculated_amount"]
    assert now != "4.38"
    await page.locator("[data-confirm=process]").click()
    await expect(page.get_by_role("alert")).to_contain_text(f"the calculated amount is now {now}")
    await expect(page.get_by_role("alert")).to_contain_text("Nothing was credited")
    await expect(page.locator("h1")).to_contain_text("⚠️ Failed")
    assert await stack.credit_count(shop) == 1  # only the first order's credit
    await expect(page.locator("[data-field=proposed]")).to_have_text(f"${now}")

    await page.locator("[data-confirm=process]").click()
    await expect(page.locator("h1")).to_contain_text("✅ Processed")
    await expect(page.get_by_role("status").first).to_contain_text(f"Credited ${now}")
    assert (await stack.order(shop, order["external_id"]))["credited_amount"] == now


async def test_a_stale_page_says_what_happened_and_shows_the_truth(console: Console) -> None:
    stack = console.stack
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    [order] = await orders(stack, shop, 1)
    reviewer = await stack.add_key(shop, ApiKeyRole.reviewer)
    # This reviewer's live connection is down, so their page goes stale.
    await console.page.route("**/v1/events", lambda route: route.abort())
    page = await console.sign_in(reviewer["Authorization"].removeprefix("Bearer "))
    await page.goto(f"{console.url}/console/orders/{order['id']}")
    await page.get_by_role("button", name="Reject").click()
    await page.locator("[data-confirm=reject]").click()
    await expect(page.get_by_role("alert")).to_have_text("Say why: a reason is required.")

    rejected = await stack.client.post(
        f"/v1/orders/{order['id']}/hold", headers=shop.auth, json={"reason": "call the customer"}
    )
    assert rejected.status_code == 200, rejected.text
    await page.get_by_label("Reason (required)").fill("duplicate order")
    await page.locator("[data-confirm=reject]").click()
    await expect(page.get_by_role("alert")).to_contain_text("Reject was not applied")
    await expect(page.get_by_role("alert")).to_contain_text("changed since you read it")
    await expect(page.locator("h1")).to_contain_text("⏸️ Held")  # refetched: the truth


async def test_why_isnt_this_order_credited(console: Console) -> None:
    stack = console.stack
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    [pending] = await orders(stack, shop, 1)
    [guest] = await orders(stack, shop, 1, customer=None)
    await put_program(stack, shop, minimum_eligible_amount="10000.00")
    [nothing] = await orders(stack, shop, 1)
    assert (pending["status"], guest["status"], nothing["status"]) == (
        "pending",
        "awaiting_customer",
        "not_eligible",
    )
    page = await console.sign_in(shop, f"/orders/{pending['id']}")
    why = page.locator(".why")
    await expect(why).to_contain_text("Not processing: auto processing is off")
    await why.get_by_role("link").click()
    await expect(page.locator("h1")).to_have_text("Processing mode")

    await page.goto(f"{console.url}/console/orders/{guest['id']}")
    await expect(why).to_contain_text("Customer not found")
    await expect(why).to_contain_text("credited as soon as the customer's account exists")

    await page.goto(f"{console.url}/console/orders/{nothing['id']}")
    await expect(why).to_contain_text("$0.00 cashback")
    assert {line["reason"] for line in nothing["lines"]} >= {"below_minimum"}
    await expect(why).to_contain_text("below the program's minimum eligible amount")
    await console.screenshot("why")
