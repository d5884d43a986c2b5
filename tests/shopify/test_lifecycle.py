"""An app-installed shop's webhooks: signed with the client secret (the previous one during a
rotation), uninstall and reinstall, shop/redact, scopes_update; a hand-made shop keeps its key."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from app.config import Settings
from app.shops.models import Shop
from tests.credit_sync.helpers import CUSTOMER
from tests.payloads import new_order_id, paid_order
from tests.shopify.helpers import (
    CLIENT_SECRET,
    WRONG_SECRET,
    deliver,
    grant,
    install,
    installed_shop,
)
from tests.shopify.standin import ShopifyStandin
from tests.support import Stack

SHOP = "acme.myshopify.com"
PREVIOUS_SECRET = "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"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    update = {"shopify_previous_client_secret": SecretStr(PREVIOUS_SECRET)}
    return settings.model_copy(update=update)


async def test_app_webhooks_verify_with_the_client_secret_and_hand_made_shops_keep_their_key(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    assert (await install(stack, shopify.url, SHOP)).status_code == 302
    order = paid_order(id=new_order_id())
    for secret in (CLIENT_SECRET, PREVIOUS_SECRET):
        answer = await deliver(stack, SHOP, order, topic="orders/paid", secret=secret)
        assert answer.json() == {"result": "accepted"}, secret
    forged = await deliver(stack, SHOP, order, topic="orders/paid", secret=WRONG_SECRET)
    assert (forged.status_code, forged.json()["code"]) == (401, "unauthorized")

    hand_made = await stack.create_shop("by-hand.myshopify.com")
    own_key = await stack.deliver(hand_made, paid_order(id=new_order_id()))
    assert own_key.json() == {"result": "accepted"}
    client_secret = await deliver(
        stack, hand_made.domain, paid_order(id=new_order_id()), topic="orders/paid"
    )
    assert client_secret.status_code == 401  # it did not install the app


async def test_uninstall_stops_everything_and_a_reinstall_brings_the_shop_back(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    assert (await install(stack, shopify.url, SHOP)).status_code == 302
    shop = await installed_shop(stack, SHOP)
    first = new_order_id()
    await deliver(stack, SHOP, paid_order(id=first), topic="orders/paid")
    await stack.run_worker()
    assert shopify.balance(CUSTOMER) == 438

    await deliver(stack, SHOP, {"id": 1, "domain": SHOP}, topic="app/uninstalled")
    shopify.uninstall(SHOP)
    await stack.run_worker()
    async with stack.resources.sessionmaker() as session:
        db_shop = await session.get_one(Shop, shop.id)
    assert db_shop.uninstalled_at is not None and db_shop.platform_access_token is None
    dropped = await grant(stack, shop.id)
    assert (dropped.refresh_token, dropped.access_token_expires_at) == (None, None)

    while_gone = new_order_id()
    await deliver(stack, SHOP, paid_order(id=while_gone), topic="orders/paid")
    await stack.run_worker()
    assert await stack.credit_count(shop) == 1  # not processed while uninstalled

    assert (await install(stack, shopify.url, SHOP)).status_code == 302
    again = await installed_shop(stack, SHOP)
    assert again.id == shop.id  # the same shop, with its history
    assert (await stack.order(shop, first))["credited_amount"] == "4.38"
    async with stack.resources.sessionmaker() as session:
        db_shop = await session.get_one(Shop, shop.id)
    assert db_shop.uninstalled_at is None and db_shop.platform_access_token is not None
    await stack.run_worker()
    assert len(shopify.shop(SHOP).subscriptions) == 11  # none made twice

    after = new_order_id()
    await deliver(stack, SHOP, paid_order(id=after), topic="orders/paid")
    await stack.run_worker()
    assert (await stack.order(shop, after))["credited_amount"] == "4.38"
    assert shopify.balance(CUSTOMER) == 2 * 438


async def test_shop_redact_after_uninstall_erases_and_a_later_install_starts_afresh(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    assert (await install(stack, shopify.url, SHOP)).status_code == 302
    shop = await installed_shop(stack, SHOP)
    await deliver(stack, SHOP, paid_order(id=new_order_id()), topic="orders/paid")
    await stack.run_worker()
    await deliver(stack, SHOP, {"id": 1}, topic="app/uninstalled")
    await stack.run_worker()
    redact = {"shop_id": 1, "shop_domain": SHOP}
    answer = await deliver(stack, SHOP, redact, topic="shop/redact")  # 48 h later, same secret
    assert answer.json() == {"result": "accepted"}
    await stack.run_worker()
    async with stack.resources.sessionmaker() as session:
        assert await session.get(Shop, shop.id) is None

    assert (await install(stack, shopify.url, SHOP)).status_code == 302
    fresh = await installed_shop(stack, SHOP)
    assert fresh.id != shop.id and await stack.credit_count(fresh) == 0


async def test_scopes_update_records_the_granted_scopes(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    assert (await install(stack, shopify.url, SHOP)).status_code == 302
    shop = await installed_shop(stack, SHOP)
    payload = {
        "id": 1,
        "previous": ["read_orders", "read_customers"],
        "current": ["read_orders", "read_customers", "write_store_credit_account_transactions"],
        "updated_at": "2026-11-26T10:00:00.000Z",
    }
    await deliver(stack, SHOP, payload, topic="app/scopes_update")
    await stack.run_worker()
    assert (await grant(stack, shop.id)).scopes == (
        "read_orders,read_customers,write_store_credit_account_transactions"
    )
