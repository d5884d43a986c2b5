"""The weekly audit end to end: orders built for the purpose in a New York shop (manual, USD)
and a Tokyo shop (automatic, JPY), reviewed through the API and credited by the real worker;
the week's report read back as JSON and CSV (a viewer key may), an empty week, and the signed
`audit.weekly` alert each shop gets once at its own local Monday 08:00.

The ledger is append-only, so the orders are credited now and the report asked is this week's
(Monday 00:00 to Monday 00:00 in each shop's timezone).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.audit import tasks
from app.core.schedule import slot_on, week_label
from app.shops.models import ApiKeyRole, ProcessingMode
from tests.notifications.helpers import configure, outbox
from tests.notifications.receiver import Receiver, verify_signature
from tests.payloads import customer_account, new_order_id, one_line, paid_order, refund
from tests.support import ShopHandle, Stack


def this_monday(timezone: str) -> date:
    today = datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()
    return today - timedelta(days=today.weekday())


async def paid(stack: Stack, shop: ShopHandle, customer_id: int, **fields: Any) -> int:
    external_id = new_order_id()
    who = customer_account(customer_id, verified_email=True, state="enabled")
    payload = paid_order(id=external_id, customer=who, email=who["email"], **fields)
    assert (await stack.deliver(shop, payload)).status_code == 200
    return external_id


async def act(
    stack: Stack, auth: dict[str, str], order: dict[str, Any], action: str, **body: Any
) -> None:
    response = await stack.client.post(
        f"/v1/orders/{order['id']}/{action}", headers=auth, json=body
    )
    assert response.status_code == 200, response.text


def jpy_order(price: str) -> dict[str, Any]:
    """One line at `price` yen, nothing else."""
    return one_line(price, "JPY")


async def test_the_week_in_figures_for_new_york_and_tokyo(stack: Stack, receiver: Receiver) -> None:
    ny = await stack.create_shop(mode=ProcessingMode.manual)
    ny_secret = await configure(
        stack,
        ny,
        timezone="America/New_York",
        alert_webhook_url=receiver.url("/ny"),
        weekly_audit={"weekday": "mon", "at": "08:00", "frequent_customer_orders_above": 2},
    )
    tokyo = await stack.create_shop(currency="JPY")
    await configure(
        stack,
        tokyo,
        timezone="Asia/Tokyo",
        alert_webhook_url=receiver.url("/tokyo"),
        weekly_audit={"weekday": "mon", "at": "08:00"},
    )
    reviewer = await stack.add_key(ny, ApiKeyRole.reviewer)  # actor "reviewer"
    viewer = await stack.add_key(ny, ApiKeyRole.viewer)

    # New York: every order is the sample order, 4.38 of cashback (5% of 87.50).
    # Customer 1 has three orders, customers 2 and 3 two and three.
    a, b, c = [await paid(stack, ny, 1) for _ in range(3)]
    d, e, g = await paid(stack, ny, 2), await paid(stack, ny, 2), await paid(stack, ny, 2)
    f, h = await paid(stack, ny, 3), await paid(stack, ny, 3)
    # Tokyo (automatic): 5% of 12000 = 600 and of 3333 = 166.65, half-up 167 yen.
    await stack.deliver(tokyo, paid_order(id=new_order_id(), **jpy_order("12000")))
    await stack.deliver(tokyo, paid_order(id=new_order_id(), **jpy_order("3333")))
    await stack.run_worker()
    orders = {x: await stack.order(ny, x) for x in (a, b, c, d, e, f, g, h)}
    assert {o["status"] for o in orders.values()} == {"pending"}

    await act(stack, ny.auth, orders[a], "approve")  # 4.38
    await act(stack, ny.auth, orders[b], "approve", amount="3.00", note="damaged box")
    await act(stack, ny.auth, orders[c], "approve")  # 4.38
    await act(stack, reviewer, orders[d], "reject", reason="fraud suspected")
    await act(stack, reviewer, orders[e], "reject", reason="fraud suspected")
    await act(stack, reviewer, orders[f], "reject", reason="duplicate order")
    await act(stack, reviewer, orders[g], "approve", amount="10.00", note="goodwill")
    await act(stack, reviewer, orders[h], "approve")  # 4.38
    # One of C's two shoes comes back: (2 × 40.00 − 8.00) × 5% / 2 = 1.80 reversed.
    returned = refund(id=new_order_id(), order_id=c)
    assert (await stack.deliver(ny, returned, topic="refunds/create")).status_code == 200
    await stack.run_worker()

    week = week_label(this_monday("America/New_York"))
    response = await stack.client.get("/v1/audit/weekly", headers=viewer, params={"week": week})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["week"] == week and report["timezone"] == "America/New_York"
    assert report["currency"] == "USD"
    # Credited: A, B, C, G, H. Issued 4.38 + 3.00 + 4.38 + 10.00 + 4.38 = 26.14.
    assert (report["orders_credited"], report["cashback_issued"], report["cashback_reversed"]) == (
        5,
        "26.14",
        "1.80",
    )
    assert (report["approvals"], report["adjusted_approvals_count"]) == (5, 2)
    assert [
        (x["order_id"], x["actor"], x["calculated_amount"], x["approved_amount"], x["note"])
        for x in report["adjusted_approvals"]
    ] == [
        (orders[b]["id"], "owner", "4.38", "3.00", "damaged box"),
        (orders[g]["id"], "reviewer", "4.38", "10.00", "goodwill"),
    ]
    assert report["rejections"] == 3
    assert report["rejection_reasons"] == [
        {"reason": "fraud suspected", "count": 2, "by_reviewers": 2},
        {"reason": "duplicate order", "count": 1, "by_reviewers": 1},
    ]
    # Largest first; equal amounts in the order they were credited (A, C, H).
    assert [(x["order_id"], x["amount"]) for x in report["largest_credits"]] == [
        (orders[g]["id"], "10.00"),
        (orders[a]["id"], "4.38"),
        (orders[c]["id"], "4.38"),
        (orders[h]["id"], "4.38"),
        (orders[b]["id"], "3.00"),
    ]
    # More than 2 orders credited: customer 1 only (A, B, C: 4.38 + 3.00 + 4.38 = 11.76).
    assert report["frequent_customer_orders_above"] == 2
    assert [
        (x["external_id"], x["orders"], x["credited_amount"]) for x in report["frequent_customers"]
    ] == [("1", 3, "11.76")]
    assert report["doctor"]["ok"] is True and report["doctor"]["findings"] == []

    # The weeks around it hold none of it.
    for monday in (this_monday("America/New_York") + timedelta(days=d) for d in (-7, 7)):
        around = await stack.client.get(
            "/v1/audit/weekly", headers=viewer, params={"week": week_label(monday)}
        )
        empty = around.json()
        assert (empty["orders_credited"], empty["approvals"], empty["rejections"]) == (0, 0, 0)
        assert empty["largest_credits"] == [] and empty["cashback_issued"] == "0.00"

    fewer = await stack.client.get(
        "/v1/audit/weekly", headers=viewer, params={"week": week, "orders_above": 0}
    )
    assert [x["external_id"] for x in fewer.json()["frequent_customers"]] == ["1", "2", "3"]

    exported = await stack.client.get(
        "/v1/audit/weekly", headers=viewer | {"Accept": "text/csv"}, params={"week": week}
    )
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    summary = {r["name"]: (r["value"], r["currency"]) for r in rows if r["section"] == "summary"}
    assert summary["cashback_issued"] == ("26.14", "USD")
    assert summary["orders_credited"] == ("5", "")
    assert [
        (r["order_id"], r["actor"], r["value"], r["detail"])
        for r in rows
        if r["section"] == "adjusted_approval"
    ] == [
        (orders[b]["id"], "owner", "3.00", "calculated 4.38; damaged box"),
        (orders[g]["id"], "reviewer", "10.00", "calculated 4.38; goodwill"),
    ]

    tokyo_week = week_label(this_monday("Asia/Tokyo"))
    jpy = (
        await stack.client.get("/v1/audit/weekly", headers=tokyo.auth, params={"week": tokyo_week})
    ).json()
    assert (jpy["currency"], jpy["orders_credited"], jpy["cashback_issued"]) == ("JPY", 2, "767")
    assert [x["amount"] for x in jpy["largest_credits"]] == ["600", "167"]
    assert (jpy["approvals"], jpy["rejections"]) == (0, 0)  # automatic: no reviewer involved

    # The alerts: each shop's next local Monday 08:00 sends this week's report, once.
    at_eight = time(8, 0)
    tokyo_due = slot_on(
        this_monday("Asia/Tokyo") + timedelta(days=7), at_eight, ZoneInfo("Asia/Tokyo")
    )
    ny_due = slot_on(
        this_monday("America/New_York") + timedelta(days=7), at_eight, ZoneInfo("America/New_York")
    )
    ctx = {"resources": stack.resources}
    assert await tasks.send_weekly_audits(ctx, tokyo_due - timedelta(minutes=1)) == 0
    assert await tasks.send_weekly_audits(ctx, tokyo_due + timedelta(seconds=30)) == 1
    assert await tasks.send_weekly_audits(ctx, ny_due + timedelta(seconds=30)) == 1  # NY only
    assert await tasks.send_weekly_audits(ctx, ny_due + timedelta(hours=3)) == 0
    await stack.run_worker()
    assert [m.event_key for m in await outbox(stack, ny)] == [f"audit.weekly:{week}"]
    assert [m.event_key for m in await outbox(stack, tokyo)] == [f"audit.weekly:{tokyo_week}"]
    by_path = {r.path: r for r in receiver.requests}
    assert set(by_path) == {"/ny", "/tokyo"} and len(receiver.requests) == 2
    verify_signature(ny_secret, by_path["/ny"])
    sent = by_path["/ny"].json
    assert sent["type"] == "audit.weekly"

    def figures(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k not in ("generated_at", "doctor")}

    assert figures(sent["data"]) == figures(report)
    assert figures(by_path["/tokyo"].json["data"]) == figures(jpy)


async def test_an_empty_week_and_a_week_that_does_not_exist(stack: Stack) -> None:
    shop = await stack.create_shop()
    response = await stack.client.get(
        "/v1/audit/weekly", headers=shop.auth, params={"week": "2026-W01"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["starts_at"], report["ends_at"]) == (
        "2025-12-29T00:00:00Z",  # ISO week 1 of 2026 starts on Monday 2025-12-29 (UTC shop)
        "2026-01-05T00:00:00Z",
    )
    assert (report["orders_credited"], report["cashback_issued"], report["cashback_reversed"]) == (
        0,
        "0.00",
        "0.00",
    )
    for listed in (
        "adjusted_approvals",
        "rejection_reasons",
        "largest_credits",
        "frequent_customers",
    ):
        assert report[listed] == [], listed
    assert report["frequent_customer_orders_above"] == 3  # the default without a setting
    assert report["doctor"]["ok"] is True
    default = await stack.client.get("/v1/audit/weekly", headers=shop.auth)
    assert default.status_code == 200  # the last complete week
    for week, code in (("2026-W54", "invalid_week"), ("2026-48", "validation_error")):
        refused = await stack.client.get(
            "/v1/audit/weekly", headers=shop.auth, params={"week": week}
        )
        assert (refused.status_code, refused.json()["code"]) == (422, code), week
        assert refused.headers["content-type"] == "application/problem+json"
