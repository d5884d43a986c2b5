from __future__ import annotations

import pytest
from pydantic import SecretStr

from app.config import Environment, Settings
from tests.payloads import paid_order
from tests.support import ADMIN_TOKEN, ShopHandle, Stack

OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_operator_creates_a_shop_whose_key_and_secret_work(stack: Stack) -> None:
    response = await stack.client.post(
        "/v1/admin/shops",
        headers=OPERATOR,
        json={
            "domain": "Acme.MyShopify.com",
            "currency": "JPY",
            "webhook_secret": "whsec_given_secret",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["domain"], body["currency"], body["processing_mode"]) == (
        "acme.myshopify.com",
        "JPY",
        "automatic",
    )
    assert body["webhook_secret"] == "whsec_given_secret"
    assert body["api_key"].startswith("cbk_")

    shop = ShopHandle(int(body["id"]), body["domain"], body["api_key"], body["webhook_secret"])
    assert (await stack.client.get("/v1/orders", headers=shop.auth)).status_code == 200
    order = paid_order(currency="JPY")
    assert (await stack.deliver(shop, order)).json() == {"result": "accepted"}


async def test_shop_creation_errors(stack: Stack) -> None:
    post = stack.client.post
    assert (await post("/v1/admin/shops", json={"domain": "a.myshopify.com"})).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await post("/v1/admin/shops", headers=wrong, json={"domain": "a.b"})).status_code == 401
    first = await post("/v1/admin/shops", headers=OPERATOR, json={"domain": "dup.myshopify.com"})
    assert first.status_code == 201
    again = await post("/v1/admin/shops", headers=OPERATOR, json={"domain": "dup.myshopify.com"})
    assert (again.status_code, again.json()["code"]) == (409, "shop_exists")
    for bad in ({"domain": "dup2.myshopify.com", "currency": "XYZ"}, {"domain": "not a domain"}):
        response = await post("/v1/admin/shops", headers=OPERATOR, json=bad)
        assert (response.status_code, response.json()["code"]) == (422, "invalid_shop"), bad


def test_placeholder_admin_token_refuses_to_start_outside_development() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        Settings(env=Environment.production)
    with pytest.raises(ValueError, match="CASHBACK_ADMIN_TOKEN still holds the placeholder"):
        Settings(env=Environment.test)
    with pytest.raises(ValueError, match="CASHBACK_SECRET_KEY still holds the placeholder"):
        Settings(env=Environment.production, admin_token=SecretStr("a-real-token"))
    assert Settings(env=Environment.development).admin_token.get_secret_value() == "change-me"
