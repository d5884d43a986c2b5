"""Installing the app from Shopify, through real HTTP against the Shopify stand-in."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import func, select

from app.core.resources import Resources
from app.main import create_app
from app.shopify.app_config import SCOPES, WEBHOOK_TOPICS
from app.shopify.models import OAuthState
from app.shopify.subscriptions import topic_enum
from app.shops.models import Shop
from tests.credit_sync.helpers import CUSTOMER
from tests.payloads import paid_order
from tests.shopify.helpers import (
    CLIENT_ID,
    PUBLIC_URL,
    WRONG_SECRET,
    deliver,
    grant,
    install,
    installed_shop,
    signed_query,
)
from tests.shopify.standin import ShopifyStandin
from tests.support import Stack

SHOP = "acme.myshopify.com"


async def test_a_merchant_installs_the_app_and_cashback_flows(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    shopify.shop(SHOP).timezone = "America/Toronto"
    done = await install(stack, shopify.url, SHOP)
    assert done.status_code == 302, done.text
    assert done.headers["location"] == f"{shopify.url}/shops/{SHOP}/admin/apps/{CLIENT_ID}"
    assert shopify.grants == [(SHOP, "authorization_code")]

    shop = await installed_shop(stack, SHOP)
    async with stack.resources.sessionmaker() as session:
        db_shop = await session.get_one(Shop, shop.id)
    assert (db_shop.currency, db_shop.timezone) == ("USD", "America/Toronto")
    assert db_shop.push_store_credit and db_shop.platform_api_version == "2026-10"
    assert db_shop.platform_access_token and "shpat_" not in db_shop.platform_access_token
    shop_grant = await grant(stack, shop.id)
    assert shop_grant.refresh_token and "shprt_" not in shop_grant.refresh_token  # encrypted
    assert shop_grant.access_token_expires_at and shop_grant.refresh_token_expires_at
    assert set(shop_grant.scopes.split(",")) == set(SCOPES)

    await stack.run_worker()  # registers the webhook subscriptions
    subscribed = {(s["topic"], s["uri"]) for s in shopify.shop(SHOP).subscriptions}
    assert subscribed == {(topic_enum(t), f"{PUBLIC_URL}/webhooks/shopify") for t in WEBHOOK_TOPICS}

    paid = await deliver(stack, SHOP, paid_order(), topic="orders/paid")
    assert paid.json() == {"result": "accepted"}
    await stack.run_worker()
    order = await stack.order(shop, "820982911946154508")
    assert (order["status"], order["credited_amount"]) == ("processed", "4.38")
    assert shopify.balance(CUSTOMER) == 438  # pushed to the shop's store credit
    [mutation] = shopify.mutations
    assert mutation["version"] == "2026-10" and mutation["input"]["notify"] is True
    assert shopify.invalid_queries == []
    assert all(path.startswith(f"POST /shops/{SHOP}/") or "GET" in path for path in shopify.seen)


async def test_the_authorize_redirect_carries_scopes_callback_and_a_fresh_state(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    query = signed_query({"shop": SHOP, "timestamp": str(int(time.time()))})
    first = await stack.client.get("/shopify/install", params=query)
    second = await stack.client.get("/shopify/install", params={"shop": SHOP})  # typed by hand
    states = []
    for answer in (first, second):
        assert answer.status_code == 302
        url = urlsplit(answer.headers["location"])
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert params["client_id"] == CLIENT_ID
        assert params["scope"].split(",") == list(SCOPES)
        assert params["redirect_uri"] == f"{PUBLIC_URL}/shopify/callback"
        states.append(params["state"])
    assert states[0] != states[1]
    assert shopify.seen == []  # nothing was sent to Shopify yet


async def test_forged_install_and_callback_hmac_and_state_are_refused(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    forged = signed_query({"shop": SHOP, "timestamp": str(int(time.time()))}, secret=WRONG_SECRET)
    answer = await stack.client.get("/shopify/install", params=forged)
    assert (answer.status_code, answer.json()["code"]) == (401, "invalid_signature")
    assert answer.headers["content-type"] == "application/problem+json"

    start = await stack.client.get("/shopify/install", params={"shop": SHOP})
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    callback = {"code": "code-x", "shop": SHOP, "state": state, "timestamp": str(int(time.time()))}
    answer = await stack.client.get(
        "/shopify/callback", params=signed_query(callback, secret=WRONG_SECRET)
    )
    assert (answer.status_code, answer.json()["code"]) == (401, "invalid_signature")
    unsigned = await stack.client.get("/shopify/callback", params=callback)
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, "invalid_signature")
    made_up = signed_query({**callback, "state": "made-up"})
    answer = await stack.client.get("/shopify/callback", params=made_up)
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_oauth_state")
    other_shop = signed_query({**callback, "shop": "other.myshopify.com"})
    answer = await stack.client.get("/shopify/callback", params=other_shop)
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_oauth_state")
    assert shopify.seen == []  # no code was exchanged

    # The right state is used once, even when what follows fails (here: an unknown code).
    first = await stack.client.get("/shopify/callback", params=signed_query(callback))
    assert (first.status_code, first.json()["code"]) == (400, "oauth_code_refused")
    assert shopify.grants == []
    replay = await stack.client.get("/shopify/callback", params=signed_query(callback))
    assert (replay.status_code, replay.json()["code"]) == (400, "invalid_oauth_state")
    async with stack.resources.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(OAuthState)) == 0


async def test_shop_names_that_are_not_myshopify_never_reach_shopify(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    for name in (
        "evil.example.com",
        "acme.myshopify.com.evil.example",
        "127.0.0.1",
        "acme.myshopify.com/../../x",
        "-acme.myshopify.com",
        "ACME.myshopify.com@evil.example",
        "",
    ):
        query = signed_query({"shop": name, "timestamp": str(int(time.time()))})
        answer = await stack.client.get("/shopify/install", params=query)
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_shop_domain"), name
        callback = signed_query({"shop": name, "code": "c", "state": "s", "timestamp": "1"})
        answer = await stack.client.get("/shopify/callback", params=callback)
        assert answer.status_code in (400, 422), name
    assert shopify.seen == []


async def test_without_an_app_configured_the_routes_say_so(stack: Stack) -> None:
    settings = stack.settings.model_copy(update={"shopify_client_id": None})
    resources = Resources.open(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, resources))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for path in ("/shopify/install", "/shopify/callback", "/shopify/proxy/balance"):
                answer = await client.get(path, params={"shop": SHOP})
                assert (answer.status_code, answer.json()["code"]) == (
                    503,
                    "shopify_app_not_configured",
                ), path
    finally:
        await resources.close()
