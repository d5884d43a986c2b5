"""Review workflow end to end: manual mode, hold rules, actions, mode switches, roles."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from app.orders.models import Order
from app.shops.models import ApiKeyRole, ProcessingMode
from tests.payloads import new_order_id, paid_order
from tests.support import ShopHandle, Stack
from workers.sweeper import redrive


async def deliver_orders(stack: Stack, shop: ShopHandle, count: int, **fields: Any) -> list[int]:
    ids = [new_order_id() for _ in range(count)]
    for external_id in ids:
        response = await stack.deliver(shop, paid_order(id=external_id, **fields))
        assert response.status_code == 200
    await stack.run_worker()
    return ids


async def pending_order(stack: Stack, shop: ShopHandle, **fields: Any) -> dict[str, Any]:
    [external_id] = await deliver_orders(stack, shop, 1, **fields)
    order = await stack.order(shop, external_id)
    assert order["status"] == "pending", order
    return order


async def patch_settings(stack: Stack, shop: ShopHandle, **body: Any) -> Any:
    return await stack.client.patch("/v1/shop/settings", headers=shop.auth, json=body)


async def post(stack: Stack, shop: ShopHandle, path: str, body: Any = None, **kw: Any) -> Any:
    return await stack.client.post(path, headers=shop.auth | kw.pop("headers", {}), json=body)


async def test_manual_mode_queues_and_an_adjusted_approval_credits_exactly_that(
    stack: Stack,
) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    order = await pending_order(stack, shop)
    assert (order["cashback_amount"], order["credited_amount"]) == ("4.38", "0.00")
    assert order["allowed_actions"] == ["approve", "reject", "hold"]
    assert order["review_started_at"] is not None

    path = f"/v1/orders/{order['id']}/approve"
    no_note = await post(stack, shop, path, {"amount": "3.00"})
    assert (no_note.status_code, no_note.json()["code"]) == (422, "note_required")
    approved = await post(stack, shop, path, {"amount": "3.00", "note": "damaged box"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert (body["status"], body["credited_amount"], body["cashback_amount"]) == (
        "processed",
        "3.00",
        "4.38",
    )
    assert body["review_note"] == "damaged box" and body["decided_at"] is not None
    event = body["history"][-1]
    assert (event["action"], event["actor"], event["to_status"]) == (
        "order.approved",
        "owner",
        "processed",
    )
    customer = await stack.client.get(f"/v1/customers/{body['customer_id']}", headers=shop.auth)
    assert customer.json()["balance"] == "3.00"


async def test_reject_needs_a_reason_and_credits_nothing(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    order = await pending_order(stack, shop)
    path = f"/v1/orders/{order['id']}/reject"
    missing = await post(stack, shop, path, {})
    assert (missing.status_code, missing.json()["code"]) == (422, "validation_error")
    assert missing.json()["errors"][0]["field"] == "body.reason"
    rejected = await post(stack, shop, path, {"reason": "fraud suspected"})
    assert (rejected.json()["status"], rejected.json()["status_reason"]) == (
        "rejected",
        "fraud suspected",
    )
    again = await post(stack, shop, f"/v1/orders/{order['id']}/approve")
    assert (again.status_code, again.json()["code"], again.json()["current_status"]) == (
        409,
        "order_status_conflict",
        "rejected",
    )
    assert await stack.credit_count(shop) == 0


HOLD_RULES = [
    ({"cashback_above": "4.00"}, {}, "cashback above 4.00"),
    ({"order_total_above": "100"}, {}, "order total above 100.00"),
    ({"first_order": True}, {}, "first order of the customer"),
    ({"b2b_orders": True}, {"company": {"id": 7, "location_id": 70}}, "B2B order"),
    ({"customer_daily_orders_above": 0}, {}, "more than 0 credited orders for the customer"),
    ({"customer_daily_cashback_above": "4.00"}, {}, "more than 4.00 cashback for the customer"),
    ({"fraud_prone": {"tags": ["high-risk"]}}, {}, "fraud-prone product (tag high-risk)"),
]


@pytest.mark.parametrize(("rules", "fields", "reason"), HOLD_RULES)
async def test_each_hold_rule_holds_an_order_in_automatic_mode(
    stack: Stack, rules: dict[str, Any], fields: dict[str, Any], reason: str
) -> None:
    shop = await stack.create_shop()
    await stack.client.put(
        "/v1/catalog/products/632910392", headers=shop.auth, json={"tags": ["high-risk"]}
    )
    assert (await patch_settings(stack, shop, hold_rules=rules)).status_code == 200
    [external_id] = await deliver_orders(stack, shop, 1, **fields)
    order = await stack.order(shop, external_id)
    assert order["status"] == "held"
    assert any(r.startswith(reason) for r in order["hold_reasons"]), order["hold_reasons"]
    assert await stack.credit_count(shop) == 0


async def test_every_tripped_rule_is_listed(stack: Stack) -> None:
    shop = await stack.create_shop()
    await patch_settings(stack, shop, hold_rules={"first_order": True, "cashback_above": "1"})
    [external_id] = await deliver_orders(stack, shop, 1)
    order = await stack.order(shop, external_id)
    assert order["hold_reasons"] == ["cashback above 1.00", "first order of the customer"]


async def test_release_re_evaluates_in_the_current_mode(stack: Stack) -> None:
    shop = await stack.create_shop()
    await patch_settings(stack, shop, hold_rules={"first_order": True})
    [first] = await deliver_orders(stack, shop, 1)
    held = await stack.order(shop, first)
    assert held["status"] == "held"
    released = await post(stack, shop, f"/v1/orders/{held['id']}/release")
    assert released.json()["status"] == "processed"
    assert released.json()["credited_amount"] == "4.38"
    assert released.json()["hold_reasons"] == []

    await patch_settings(stack, shop, processing_mode="manual")
    newcomer = {"id": 555, "email": "new@example.com", "tags": ""}
    [second] = await deliver_orders(stack, shop, 1, customer=newcomer)
    other = await stack.order(shop, second)
    assert other["status"] == "held"
    response = await post(stack, shop, f"/v1/orders/{other['id']}/release")
    assert response.json()["status"] == "pending"


async def test_switching_to_automatic_with_pending_orders_needs_a_decision(
    stack: Stack,
) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    await deliver_orders(stack, shop, 3)
    refused = await patch_settings(stack, shop, processing_mode="automatic")
    assert (refused.status_code, refused.json()["code"]) == (409, "pending_orders_exist")
    assert refused.json()["pending_count"] == 3
    assert (await stack.client.get("/v1/shop/settings", headers=shop.auth)).json()[
        "processing_mode"
    ] == "manual"

    switched = await patch_settings(
        stack, shop, processing_mode="automatic", pending_orders="process"
    )
    assert switched.status_code == 200, switched.text
    operation = switched.json()["operation"]
    assert (operation["status"], operation["total"]) == ("running", 3)
    await stack.run_worker()
    progress = await stack.client.get(f"/v1/operations/{operation['id']}", headers=shop.auth)
    assert progress.json() | {"finished_at": None, "created_at": None} == operation | {
        "status": "done",
        "succeeded": 3,
        "finished_at": None,
        "created_at": None,
    }
    counts = (await stack.client.get("/v1/orders/counts", headers=shop.auth)).json()["counts"]
    assert (counts["processed"], counts["pending"]) == (3, 0)
    assert await stack.credit_count(shop) == 3
    await stack.run_worker()  # nothing is approved twice
    assert await stack.credit_count(shop) == 3


async def test_keep_leaves_pending_orders_and_new_orders_credit_at_once(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    await deliver_orders(stack, shop, 1)
    kept = await patch_settings(stack, shop, processing_mode="automatic", pending_orders="keep")
    assert kept.json()["operation"] is None
    await deliver_orders(stack, shop, 1)
    counts = (await stack.client.get("/v1/orders/counts", headers=shop.auth)).json()["counts"]
    assert (counts["pending"], counts["processed"]) == (1, 1)


async def test_bulk_approve_of_200_orders_returns_a_result_each(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    await deliver_orders(stack, shop, 198)
    listing = (
        await stack.client.get(
            "/v1/orders", headers=shop.auth, params={"status": "pending", "limit": 200}
        )
    ).json()
    ids = [int(o["id"]) for o in listing["items"]]
    assert len(ids) == 198
    rejected = await post(stack, shop, f"/v1/orders/{ids[0]}/reject", {"reason": "test"})
    assert rejected.status_code == 200
    response = await post(stack, shop, "/v1/orders/bulk-approve", {"ids": [*ids, 999_999]})
    results = response.json()["results"]
    assert len(results) == 199
    assert results[0] == {
        "id": str(ids[0]),
        "ok": False,
        "status": "rejected",
        "code": "order_status_conflict",
        "detail": "cannot approve an order that is rejected",
    }
    assert all(r["ok"] and r["status"] == "processed" for r in results[1:198])
    assert (results[-1]["ok"], results[-1]["code"]) == (False, "order_not_found")
    assert await stack.credit_count(shop) == 197
    too_many = await post(stack, shop, "/v1/orders/bulk-approve", {"ids": list(range(501))})
    assert too_many.status_code == 422


async def test_ten_parallel_approvals_give_one_credit_and_nine_conflicts(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    order = await pending_order(stack, shop)
    responses = await asyncio.gather(
        *(post(stack, shop, f"/v1/orders/{order['id']}/approve") for _ in range(10))
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 9
    assert {r.json()["current_status"] for r in responses if r.status_code == 409} == {"processed"}
    assert await stack.credit_count(shop) == 1


async def test_approve_racing_reject_has_exactly_one_winner(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    for _ in range(3):
        order = await pending_order(stack, shop)
        approve, reject = await asyncio.gather(
            post(stack, shop, f"/v1/orders/{order['id']}/approve"),
            post(stack, shop, f"/v1/orders/{order['id']}/reject", {"reason": "late"}),
        )
        assert sorted((approve.status_code, reject.status_code)) == [200, 409]
    counts = (await stack.client.get("/v1/orders/counts", headers=shop.auth)).json()["counts"]
    assert counts["processed"] + counts["rejected"] == 3
    assert await stack.credit_count(shop) == counts["processed"]


async def test_if_match_refuses_a_stale_version(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    order = await pending_order(stack, shop)
    read = await stack.client.get(f"/v1/orders/{order['id']}", headers=shop.auth)
    tag = read.headers["ETag"]
    held = await post(
        stack,
        shop,
        f"/v1/orders/{order['id']}/hold",
        {"reason": "call customer"},
        headers={"If-Match": tag},
    )
    assert held.status_code == 200 and held.headers["ETag"] != tag
    stale = await post(stack, shop, f"/v1/orders/{order['id']}/approve", headers={"If-Match": tag})
    assert (stale.status_code, stale.json()["code"]) == (412, "version_mismatch")
    fresh = await post(
        stack, shop, f"/v1/orders/{order['id']}/approve", headers={"If-Match": held.headers["ETag"]}
    )
    assert fresh.json()["status"] == "processed"


async def test_award_delay_schedules_credit_until_the_sweeper_finds_it_due(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    await patch_settings(stack, shop, award_delay_days=14)
    [external_id] = await deliver_orders(stack, shop, 1)
    order = await stack.order(shop, external_id)
    assert (order["status"], order["award_amount"]) == ("scheduled", "4.38")
    award_at = datetime.fromisoformat(order["award_at"])
    assert timedelta(days=13, hours=23) < award_at - datetime.now(UTC) <= timedelta(days=14)
    assert await stack.credit_count(shop) == 0

    assert (await redrive(stack.resources, datetime.now(UTC)))["awards"] == 0
    async with stack.resources.sessionmaker() as session:  # the return window passes
        await session.execute(
            update(Order)
            .where(Order.id == int(order["id"]))
            .values(award_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    assert (await redrive(stack.resources, datetime.now(UTC)))["awards"] == 1
    await stack.run_worker()
    done = await stack.order(shop, external_id)
    assert (done["status"], done["credited_amount"]) == ("processed", "4.38")


async def test_process_cashback_confirms_the_amount_first(stack: Stack) -> None:
    shop = await stack.create_shop()
    external_id = new_order_id()
    await stack.deliver(shop, paid_order(id=external_id, customer=None))
    await stack.run_worker()
    order = await stack.order(shop, external_id)
    assert order["status"] == "awaiting_customer"
    path = f"/v1/orders/{order['id']}/process"
    asked = await post(stack, shop, path)
    assert (asked.json()["processed"], asked.json()["calculated_amount"]) == (False, "4.38")
    changed = await post(stack, shop, path, {"expected_amount": "4.00"})
    assert (changed.status_code, changed.json()["code"]) == (409, "calculation_changed")
    no_customer = await post(stack, shop, path, {"expected_amount": "4.38"})
    assert (no_customer.status_code, no_customer.json()["code"]) == (409, "customer_required")

    async with stack.resources.sessionmaker() as session:  # a failed order with a customer
        await session.execute(
            update(Order)
            .where(Order.id == int(order["id"]))
            .values(status="failed", customer_id=None)
        )
        await session.commit()
    await deliver_orders(stack, shop, 1)  # creates the sample customer
    customers = (
        await stack.client.get("/v1/orders", headers=shop.auth, params={"status": "processed"})
    ).json()["items"]
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(Order)
            .where(Order.id == int(order["id"]))
            .values(customer_id=int(customers[0]["customer_id"]))
        )
        await session.commit()
    done = await post(stack, shop, path, {"expected_amount": "4.38"})
    assert done.status_code == 200, done.text
    assert (done.json()["processed"], done.json()["order"]["status"]) == (True, "processed")
    assert done.json()["order"]["history"][-1]["action"] == "order.processed_manually"


async def test_viewer_and_reviewer_keys_get_403_where_they_should(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    order = await pending_order(stack, shop)
    viewer = await stack.add_key(shop, ApiKeyRole.viewer)
    reviewer = await stack.add_key(shop, ApiKeyRole.reviewer)
    review_calls = [
        ("post", f"/v1/orders/{order['id']}/approve", None),
        ("post", f"/v1/orders/{order['id']}/reject", {"reason": "x"}),
        ("post", f"/v1/orders/{order['id']}/hold", {"reason": "x"}),
        ("post", f"/v1/orders/{order['id']}/release", None),
        ("post", f"/v1/orders/{order['id']}/process", None),
        ("post", "/v1/orders/bulk-approve", {"ids": [1]}),
        ("post", "/v1/orders/bulk-reject", {"ids": [1], "reason": "x"}),
        ("get", "/v1/audit-events", None),
    ]
    admin_calls = [
        ("patch", "/v1/shop/settings", {"award_delay_days": 3}),
        ("post", "/v1/api-keys", {"name": "x", "role": "viewer"}),
        ("get", "/v1/api-keys", None),
        ("delete", "/v1/api-keys/1", None),
        ("put", "/v1/program", {"base_rate": "6"}),
    ]
    for method, path, body in review_calls + admin_calls:
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        response = await stack.client.request(method, path, headers=viewer, **kwargs)
        assert (response.status_code, response.json()["code"]) == (403, "forbidden"), path
    for method, path, body in admin_calls:
        kwargs = {"json": body} if body is not None else {}
        response = await stack.client.request(method, path, headers=reviewer, **kwargs)
        assert response.status_code == 403, path
    assert (await stack.client.get("/v1/orders", headers=viewer)).status_code == 200
    held = await stack.client.post(
        f"/v1/orders/{order['id']}/hold", headers=reviewer, json={"reason": "check"}
    )
    assert held.json()["history"][-1]["actor"] == "reviewer"


async def test_no_key_acts_on_another_shops_orders(stack: Stack) -> None:
    alice = await stack.create_shop(mode=ProcessingMode.manual)
    bob = await stack.create_shop(mode=ProcessingMode.manual)
    order = await pending_order(stack, alice)
    for action, body in (
        ("approve", None),
        ("reject", {"reason": "x"}),
        ("hold", {"reason": "x"}),
        ("release", None),
        ("process", None),
    ):
        response = await post(stack, bob, f"/v1/orders/{order['id']}/{action}", body)
        assert (response.status_code, response.json()["code"]) == (404, "order_not_found")
    bulk = await post(stack, bob, "/v1/orders/bulk-approve", {"ids": [int(order["id"])]})
    assert bulk.json()["results"][0]["code"] == "order_not_found"
    assert (await stack.order(alice, int(order["external_id"])))["status"] == "pending"


async def test_review_queue_oldest_first_with_history_and_counts(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    await deliver_orders(stack, shop, 3)
    queue = (
        await stack.client.get(
            "/v1/orders", headers=shop.auth, params={"status": "pending,held", "sort": "created_at"}
        )
    ).json()["items"]
    ids = [int(o["id"]) for o in queue]
    assert ids == sorted(ids) and len(ids) == 3
    assert queue[0]["customer_history"] == {
        "orders": 3,
        "credited_amount": "0.00",
        "reversed_amount": "0.00",
        "verified_email": True,  # as the sample order's customer says
        "account_state": "enabled",
        "account_problem": None,
    }
    assert all(o["review_started_at"] for o in queue)
    counts = (await stack.client.get("/v1/orders/counts", headers=shop.auth)).json()["counts"]
    assert counts["pending"] == 3 and counts["processed"] == 0 and len(counts) == 12


async def test_audit_log_filters_and_exports_csv(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    order = await pending_order(stack, shop)
    await post(stack, shop, f"/v1/orders/{order['id']}/reject", {"reason": "duplicate order"})
    await patch_settings(stack, shop, award_delay_days=7)
    rejected = (
        await stack.client.get(
            "/v1/audit-events", headers=shop.auth, params={"action": "order.rejected"}
        )
    ).json()["items"]
    assert [(e["actor"], e["reason"], e["subject_id"]) for e in rejected] == [
        ("owner", "duplicate order", order["id"])
    ]
    settings = (
        await stack.client.get(
            "/v1/audit-events", headers=shop.auth, params={"action": "settings.updated"}
        )
    ).json()["items"]
    assert (settings[0]["before"], settings[0]["after"]) == (
        {"award_delay_days": 0},
        {"award_delay_days": 7},
    )
    of_order = (
        await stack.client.get(
            "/v1/audit-events", headers=shop.auth, params={"order_id": order["id"]}
        )
    ).json()["items"]
    assert [e["action"] for e in of_order] == [
        "order.rejected",
        "order.status_changed",
        "order.received",
    ]
    export = await stack.client.get("/v1/audit-events", headers=shop.auth | {"Accept": "text/csv"})
    assert export.headers["content-type"].startswith("text/csv")
    lines = export.text.strip().splitlines()
    assert lines[0] == "id,at,actor,action,subject_type,subject_id,reason,before,after"
    assert len(lines) == 1 + 4 and "duplicate order" in export.text


async def test_api_keys_are_created_listed_and_revoked(stack: Stack) -> None:
    shop = await stack.create_shop()
    created = await post(stack, shop, "/v1/api-keys", {"name": "Ana", "role": "reviewer"})
    assert created.status_code == 201
    key = created.json()
    assert (key["name"], key["role"]) == ("Ana", "reviewer")
    ana = {"Authorization": f"Bearer {key['api_key']}"}
    assert (await stack.client.get("/v1/orders", headers=ana)).status_code == 200
    listed = (await stack.client.get("/v1/api-keys", headers=shop.auth)).json()["items"]
    assert [(k["name"], k["role"]) for k in listed] == [("owner", "admin"), ("Ana", "reviewer")]
    assert all("api_key" not in k for k in listed)
    revoked = await stack.client.delete(f"/v1/api-keys/{key['id']}", headers=shop.auth)
    assert revoked.json()["revoked_at"] is not None
    assert (await stack.client.get("/v1/orders", headers=ana)).status_code == 401
    owner_id = listed[0]["id"]
    last = await stack.client.delete(f"/v1/api-keys/{owner_id}", headers=shop.auth)
    assert (last.status_code, last.json()["code"]) == (409, "last_admin_key")


async def test_a_bulk_path_answers_405_with_allow_for_other_methods_not_an_order_lookup(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    for path in ("/v1/orders/bulk-approve", "/v1/orders/bulk-reject"):
        for method in ("GET", "PUT", "DELETE"):
            response = await stack.client.request(method, path, headers=shop.auth)
            assert response.status_code == 405, (method, path, response.text)
            assert response.headers["allow"] == "POST"
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "method_not_allowed"
