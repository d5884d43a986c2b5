"""The program as merchants and the frontend use it: versions, roles, catalog, preview, what-if."""

from __future__ import annotations

from typing import Any

from app.shops.models import ApiKeyRole
from tests.payloads import new_order_id, paid_order
from tests.support import ShopHandle, Stack


async def put_program(stack: Stack, shop: ShopHandle, **changes: Any) -> dict[str, Any]:
    current = (await stack.client.get("/v1/program", headers=shop.auth)).json()
    body = {k: v for k, v in current.items() if k not in ("version", "created_at")} | changes
    response = await stack.client.put("/v1/program", headers=shop.auth, json=body)
    assert response.status_code == 200, response.text
    program: dict[str, Any] = response.json()
    return program


async def test_a_new_shop_has_the_default_program_as_version_1(stack: Stack) -> None:
    shop = await stack.create_shop()
    program = (await stack.client.get("/v1/program", headers=shop.auth)).json()
    assert (program["version"], program["base_rate"], program["rounding"]) == (1, "5", "half_up")
    assert program["subtract_discounts"] and program["exclude_test_orders"]
    assert not program["include_shipping"] and not program["include_tax"]
    assert program["rules"] == program["tiers"] == program["campaigns"] == []


async def test_each_change_is_a_new_version_and_calculated_orders_keep_theirs(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    first = new_order_id()
    await stack.deliver(shop, paid_order(id=first))
    await stack.run_worker()

    changed = await put_program(stack, shop, base_rate="10")
    assert (changed["version"], changed["base_rate"]) == (2, "10")
    second = new_order_id()
    await stack.deliver(shop, paid_order(id=second))
    await stack.run_worker()

    old, new = await stack.order(shop, first), await stack.order(shop, second)
    assert (old["program_version"], old["credited_amount"]) == (1, "4.38")
    assert (new["program_version"], new["credited_amount"]) == (2, "8.75")
    assert (await stack.client.get("/v1/program", headers=shop.auth)).json()["version"] == 2


async def test_only_admin_keys_change_the_program(stack: Stack) -> None:
    shop = await stack.create_shop()
    for role in (ApiKeyRole.viewer, ApiKeyRole.reviewer):
        headers = await stack.add_key(shop, role)
        assert (await stack.client.get("/v1/program", headers=headers)).status_code == 200
        response = await stack.client.put("/v1/program", headers=headers, json={"base_rate": "9"})
        assert (response.status_code, response.json()["code"]) == (403, "forbidden")
    assert (await stack.client.get("/v1/program", headers=shop.auth)).json()["version"] == 1


async def test_invalid_programs_name_the_field(stack: Stack) -> None:
    shop = await stack.create_shop()
    put = stack.client.put
    bad_rate = await put("/v1/program", headers=shop.auth, json={"base_rate": "150"})
    assert (bad_rate.status_code, bad_rate.json()["code"]) == (422, "validation_error")
    assert bad_rate.json()["errors"][0]["field"] == "body.base_rate"
    bad_rule = await put(
        "/v1/program",
        headers=shop.auth,
        json={"rules": [{"name": "r", "field": "sku", "value": "A"}]},
    )
    assert bad_rule.json()["errors"][0]["field"].startswith("body.rules.0")
    sub_cent = await put(
        "/v1/program", headers=shop.auth, json={"minimum_eligible_amount": "0.001"}
    )
    assert (sub_cent.status_code, sub_cent.json()["code"]) == (422, "invalid_program")
    assert sub_cent.json()["errors"] == [
        {
            "field": "body.minimum_eligible_amount",
            "message": "Decimal('0.001') has more decimals than USD allows",
        }
    ]
    assert (await stack.client.get("/v1/program", headers=shop.auth)).json()["version"] == 1


async def test_catalog_facts_from_webhooks_and_admin_drive_rules_through_the_worker(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    # The admin puts the shoe in the "running" collection; a product webhook then updates
    # its type and tags without losing the collection.
    put = await stack.client.put(
        "/v1/catalog/products/632910392",
        headers=shop.auth,
        json={"title": "Trail Running Shoe", "collections": ["running"]},
    )
    assert put.status_code == 200, put.text
    product = {
        "id": 632910392,
        "title": "Trail Running Shoe",
        "product_type": "Shoes",
        "vendor": "Northpeak",
        "tags": "outdoor, bestseller",
    }
    await stack.deliver(shop, product, topic="products/update")
    await stack.run_worker()
    stored = (await stack.client.get("/v1/catalog/products/632910392", headers=shop.auth)).json()
    assert (stored["product_type"], stored["tags"], stored["collections"]) == (
        "Shoes",
        ["outdoor", "bestseller"],
        ["running"],
    )

    await put_program(
        stack,
        shop,
        rules=[
            {"name": "Running 10%", "field": "collection", "value": "running", "rate": "10"},
            {"name": "No socks", "field": "vendor", "value": "Woolworks", "exclude": True},
        ],
    )
    order_id = new_order_id()
    await stack.deliver(shop, paid_order(id=order_id))
    await stack.run_worker()
    detail = await stack.order(shop, order_id)
    lines = {line["external_id"]: line for line in detail["lines"]}
    assert (lines["466157049"]["rate_source"], lines["466157049"]["cashback_amount"]) == (
        "rule:Running 10%",
        "7.20",
    )
    assert (lines["703073504"]["rate_source"], lines["703073504"]["reason"]) == (
        "excluded:No socks",
        "excluded",
    )
    assert detail["credited_amount"] == "7.20"


async def test_the_customers_tier_sets_the_rate(stack: Stack) -> None:
    shop = await stack.create_shop()
    await put_program(stack, shop, tiers=[{"name": "VIP", "customer_tag": "vip", "rate": "8"}])
    order_id = new_order_id()
    await stack.deliver(shop, paid_order(id=order_id))  # the sample customer is tagged vip
    await stack.run_worker()
    detail = await stack.order(shop, order_id)
    assert detail["credited_amount"] == "7.00"  # 8% of 87.50
    assert {line["rate_source"] for line in detail["lines"]} == {"tier:VIP", "gift_card"}


async def test_preview_shows_current_and_draft_without_storing_anything(stack: Stack) -> None:
    shop = await stack.create_shop()
    viewer = await stack.add_key(shop, ApiKeyRole.viewer)
    response = await stack.client.post(
        "/v1/cashback/preview",
        headers=viewer,
        json={"order": paid_order(), "program": {"base_rate": "10", "include_tax": True}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["current"]["cashback_amount"], body["current"]["program_version"]) == ("4.38", 1)
    assert [line["cashback_amount"] for line in body["current"]["lines"]] == [
        "3.60",
        "0.00",
        "0.78",
    ]
    # 10% of 87.50 plus the 4.61 + 0.99 of tax on eligible lines = 93.10 → 9.31
    assert (body["draft"]["cashback_amount"], body["draft"]["program_version"]) == ("9.31", None)
    assert (await stack.client.get("/v1/orders", headers=shop.auth)).json()["items"] == []

    broken = await stack.client.post(
        "/v1/cashback/preview", headers=shop.auth, json={"order": {"id": 1}}
    )
    assert (broken.status_code, broken.json()["code"]) == (422, "invalid_order")
    euros = await stack.client.post(
        "/v1/cashback/preview", headers=shop.auth, json={"order": paid_order(currency="EUR")}
    )
    assert (euros.status_code, euros.json()["code"]) == (422, "invalid_order")


async def test_simulation_prices_a_draft_over_past_orders(stack: Stack) -> None:
    shop = await stack.create_shop()
    for _ in range(3):
        await stack.deliver(shop, paid_order(id=new_order_id()))
    await stack.deliver(
        shop, paid_order(id=new_order_id(), financial_status="pending"), topic="orders/create"
    )  # never paid: not part of the what-if
    await stack.run_worker()
    body = {
        "program": {"base_rate": "10", "minimum_eligible_amount": "50"},
        "date_from": "2000-01-01",
        "date_to": "2999-12-31",
    }
    response = await stack.client.post("/v1/program/simulate", headers=shop.auth, json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "orders": 3,
        "currency": "USD",
        "current": {"orders_earning": 3, "cashback_amount": "13.14"},
        "draft": {"orders_earning": 3, "cashback_amount": "26.25"},
        "difference": "13.11",
    }
    strict = body | {"program": {"base_rate": "10", "minimum_eligible_amount": "100"}}
    response = await stack.client.post("/v1/program/simulate", headers=shop.auth, json=strict)
    assert response.json()["draft"] == {"orders_earning": 0, "cashback_amount": "0.00"}
    empty = body | {"date_from": "2001-01-01", "date_to": "2001-01-31"}
    response = await stack.client.post("/v1/program/simulate", headers=shop.auth, json=empty)
    assert response.json()["orders"] == 0
