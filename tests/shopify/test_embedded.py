"""The embedded app's session tokens on /v1, token exchange, and the storefront App Proxy."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import update

from app.credit_sync.models import SyncStatus
from app.shopify.models import ShopifyGrant
from tests.credit_sync.helpers import CUSTOMER, ledger_entries, sync_row
from tests.payloads import new_order_id, paid_order
from tests.shopify.helpers import (
    WRONG_SECRET,
    deliver,
    grant,
    install,
    installed_shop,
    proxy_query,
    session_token,
)
from tests.shopify.standin import ShopifyStandin
from tests.support import Stack

SHOP = "acme.myshopify.com"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_session_tokens_authenticate_the_shops_staff_and_nothing_else(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    assert (await install(stack, shopify.url, SHOP)).status_code == 302
    shop = await installed_shop(stack, SHOP)
    await deliver(stack, SHOP, paid_order(), topic="orders/paid")
    other = await stack.create_shop("other.myshopify.com")  # made by hand, no app
    await stack.deliver(other, paid_order(id=new_order_id()))
    await stack.run_worker()
    other_order = (await stack.order(other, (await orders(stack, other.auth))[0]))["id"]

    staff = bearer(session_token(SHOP))
    listed = await stack.client.get("/v1/orders", headers=staff)
    assert listed.status_code == 200, listed.text
    assert [o["external_id"] for o in listed.json()["items"]] == ["820982911946154508"]
    assert (await stack.client.get(f"/v1/orders/{other_order}", headers=staff)).status_code == 404
    settings = await stack.client.patch(
        "/v1/shop/settings", headers=staff, json={"processing_mode": "manual"}
    )
    assert settings.status_code == 200, settings.text  # staff act with the admin role

    refused = {
        "wrong aud": session_token(SHOP, aud="another-app"),
        "expired": session_token(SHOP, expires_in_s=-30),
        "wrong secret": session_token(SHOP, secret=WRONG_SECRET),
        "shop without the app": session_token("other.myshopify.com"),
        "unknown shop": session_token("nobody.myshopify.com"),
    }
    for why, token in refused.items():
        answer = await stack.client.get("/v1/orders", headers=bearer(token))
        assert (answer.status_code, answer.json()["code"]) == (401, "unauthorized"), why
        assert answer.headers["content-type"] == "application/problem+json"
    assert (await stack.client.get("/v1/orders", headers=shop.auth)).status_code == 200
    assert shopify.grants == [(SHOP, "authorization_code")]  # the shop's token was fine


async def orders(stack: Stack, headers: dict[str, str]) -> list[str]:
    listed = await stack.client.get("/v1/orders", headers=headers)
    return [o["external_id"] for o in listed.json()["items"]]


async def test_a_paused_shop_gets_a_token_by_exchange_when_staff_open_the_app(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    assert (await install(stack, shopify.url, SHOP)).status_code == 302
    shop = await installed_shop(stack, SHOP)
    await stack.run_worker()
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(ShopifyGrant)
            .where(ShopifyGrant.shop_id == shop.id)
            .values(needs_reauth_at=datetime.now(UTC), reauth_reason="revoked")
        )
        await session.commit()
    await deliver(stack, SHOP, paid_order(), topic="orders/paid")
    await stack.run_worker()
    [entry_id] = await ledger_entries(stack, shop)
    assert (await sync_row(stack, entry_id)).status == SyncStatus.pending

    answer = await stack.client.get("/v1/orders", headers=bearer(session_token(SHOP)))
    assert answer.status_code == 200
    assert shopify.grants[-1] == (SHOP, TOKEN_EXCHANGE)
    assert (await grant(stack, shop.id)).needs_reauth_at is None
    await stack.run_worker()
    assert (await sync_row(stack, entry_id)).status == SyncStatus.synced
    assert shopify.balance(CUSTOMER) == 438

    await stack.client.get("/v1/orders", headers=bearer(session_token(SHOP)))
    assert shopify.grants.count((SHOP, TOKEN_EXCHANGE)) == 1  # a valid token is kept


async def test_the_storefront_shows_the_logged_in_customers_balance(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    assert (await install(stack, shopify.url, SHOP)).status_code == 302
    await deliver(stack, SHOP, paid_order(), topic="orders/paid")
    await stack.run_worker()
    customer = CUSTOMER.rsplit("/", 1)[1]

    answer = await stack.client.get("/shopify/proxy/balance", params=proxy_query(SHOP, customer))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert (body["logged_in"], body["balance"], body["currency"]) == (True, "4.38", "USD")
    assert [(r["kind"], r["amount"], r["order_name"]) for r in body["recent"]] == [
        ("credit", "4.38", "#1042")
    ]

    guest = await stack.client.get("/shopify/proxy/balance", params=proxy_query(SHOP, ""))
    assert guest.json() == {"logged_in": False, "balance": None, "currency": "USD", "recent": []}

    tampered = {**proxy_query(SHOP, customer), "logged_in_customer_id": "999"}
    stale = proxy_query(SHOP, customer, timestamp=int(time.time()) - 301)
    forged = proxy_query(SHOP, customer, secret=WRONG_SECRET)
    unsigned = {k: v for k, v in proxy_query(SHOP, customer).items() if k != "signature"}
    for why, query, code in (
        ("tampered", tampered, "invalid_signature"),
        ("forged", forged, "invalid_signature"),
        ("unsigned", unsigned, "invalid_signature"),
        ("stale", stale, "stale_request"),
    ):
        answer = await stack.client.get("/shopify/proxy/balance", params=query)
        assert (answer.status_code, answer.json()["code"]) == (401, code), why
        assert answer.headers["content-type"] == "application/problem+json"

    hand_made = await stack.create_shop("by-hand.myshopify.com")
    not_app = await stack.client.get(
        "/shopify/proxy/balance", params=proxy_query(hand_made.domain, customer)
    )
    assert (not_app.status_code, not_app.json()["code"]) == (404, "shop_not_installed")
