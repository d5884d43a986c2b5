"""The console embedded in the Shopify admin (App Bridge session tokens the test signs),
standalone when App Bridge is absent, and money and time in the shop's currency and zone."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Route, expect
from sqlalchemy import update

from app.shopify.models import ShopifyGrant
from tests.console.conftest import Console
from tests.payloads import new_order_id, one_line, paid_order

# The Shopify app's settings and its stand-in, as the Shopify app tests have them.
from tests.shopify.conftest import settings, shopify  # noqa: F401
from tests.shopify.helpers import (
    CLIENT_ID,
    PUBLIC_URL,
    install,
    installed_shop,
    session_token,
    signed_query,
)
from tests.shopify.standin import ShopifyStandin

SHOP = "acme.myshopify.com"
APP_BRIDGE = "https://cdn.shopify.com/shopifycloud/app-bridge.js"


def app_bridge_standin(token: str) -> str:
    """What the test serves in place of Shopify's CDN script: `shopify.idToken()` answers a
    session token signed with the app's secret, as App Bridge does inside the admin."""
    return f"window.shopify = {{ idToken: async () => {token!r} }};"


async def test_embedded_the_console_signs_in_with_session_tokens(
    console: Console,
    shopify: ShopifyStandin,  # noqa: F811 (the fixture imported above)
) -> None:
    stack = console.stack
    assert (await install(stack, shopify.url, SHOP)).status_code == 302
    shop = await installed_shop(stack, SHOP)
    token = session_token(SHOP, expires_in_s=300)
    fetched: list[str] = []

    async def serve_app_bridge(route: Route) -> None:
        fetched.append(route.request.url)
        await route.fulfill(content_type="text/javascript", body=app_bridge_standin(token))

    await console.page.route(APP_BRIDGE, serve_app_bridge)
    page = console.page
    # Shopify opens the app URL, signed, inside the admin: an installed shop gets the console.
    opened = signed_query({"shop": SHOP, "host": "YWRtaW4", "embedded": "1", "timestamp": "1"})
    await page.goto(f"{console.url}/shopify/install?{urlencode(opened)}")
    assert page.url == f"{console.url}/console/?shop={SHOP}&host=YWRtaW4&embedded=1"
    await expect(page.locator("header")).to_contain_text(SHOP)
    await expect(page.locator("header .role")).to_have_text("shopify staff 42 · admin")
    await expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    await expect(page.locator("[data-figure=processed_today] .value")).to_have_text("0")
    await expect(page.locator("[data-live=on]")).to_be_visible()  # the stream takes the token
    assert fetched == [APP_BRIDGE]
    meta = page.locator("meta[name=shopify-api-key]")
    await expect(meta).to_have_attribute("content", CLIENT_ID)

    await page.goto(f"{console.url}/console/settings?host=YWRtaW4")
    await expect(page.locator("[data-connection=installed]")).to_contain_text("token usable")
    me = await stack.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["shop"] == SHOP
    # Every request with a session token renews a refused grant, the stream's reconnects
    # included: the embedded page is closed while the grant waits, or it would renew it.
    await expect(page.locator("[data-live=on]")).to_be_visible()  # its requests are answered
    await page.goto("about:blank")
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(ShopifyGrant).values(
                needs_reauth_at=datetime.now(UTC), reauth_reason="refresh token revoked"
            )
        )
        await session.commit()
    # Standalone (an API key), the merchant is told to authorise the app again.
    standalone = Console(await page.context.new_page(), console.url, stack, console.screenshots)
    await standalone.sign_in(shop.api_key, "/settings")
    reauth = standalone.page.get_by_role("link", name="Re-authenticate")
    await expect(reauth).to_have_attribute("href", f"{PUBLIC_URL}/shopify/install?shop={SHOP}")
    await expect(standalone.page.locator("[data-connection=needs_reauth]")).to_contain_text(
        "refresh token revoked"
    )
    # Opening the app in the admin again renews the grant by token exchange.
    await page.goto(f"{console.url}/console/settings?host=YWRtaW4")
    await expect(page.locator("[data-connection=installed]")).to_contain_text("token usable")


async def test_opening_the_app_for_a_shop_without_it_still_installs(
    console: Console,
    shopify: ShopifyStandin,  # noqa: F811 (the fixture imported above)
) -> None:
    opened = signed_query({"shop": SHOP, "host": "YWRtaW4", "embedded": "1", "timestamp": "1"})
    answer = await console.stack.client.get("/shopify/install", params=opened)
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(f"{shopify.url}/shops/{SHOP}/admin/oauth/")
    unsigned = {k: v for k, v in opened.items() if k != "hmac"}
    assert (await install(console.stack, shopify.url, SHOP)).status_code == 302
    # Installed: only a link Shopify signed opens the console; an unsigned one asks Shopify.
    answer = await console.stack.client.get("/shopify/install", params=unsigned)
    assert answer.headers["location"].startswith(f"{shopify.url}/shops/{SHOP}/admin/oauth/")
    answer = await console.stack.client.get("/shopify/install", params=opened)
    assert answer.headers["location"] == f"/console/?shop={SHOP}&host=YWRtaW4&embedded=1"


async def test_without_app_bridge_the_console_asks_for_a_key(console: Console) -> None:
    stack = console.stack
    shop = await stack.create_shop()
    await console.page.route(APP_BRIDGE, lambda route: route.abort())  # the CDN is unreachable
    page = console.page
    await page.goto(f"{console.url}/console/?shop={shop.domain}&host=YWRtaW4&embedded=1")
    await expect(page.get_by_label("API key")).to_be_visible()
    await console.sign_in(shop)
    await expect(page.locator("header")).to_contain_text(shop.domain)
    async with httpx.AsyncClient(base_url=console.url) as client:
        plain = await client.get("/console/orders")  # a client route: index.html
    assert plain.status_code == 200
    assert "shopify-api-key" not in plain.text and "app-bridge" not in plain.text


@pytest.mark.parametrize(
    ("currency", "price", "cashback", "timezone"),
    [("JPY", "12000", "¥600", "Asia/Tokyo"), ("KWD", "12.345", "KWD 0.617", "Asia/Kuwait")],
)
async def test_money_and_time_in_the_shops_currency_and_timezone(
    console: Console, currency: str, price: str, cashback: str, timezone: str
) -> None:
    stack = console.stack
    shop = await stack.create_shop(currency=currency)
    changed = await stack.client.patch(
        "/v1/shop/settings", headers=shop.auth, json={"timezone": timezone}
    )
    assert changed.status_code == 200, changed.text
    payload = paid_order(id=new_order_id(), **one_line(price, currency))
    assert (await stack.deliver(shop, payload)).status_code == 200
    await stack.run_worker()
    order = await stack.order(shop, payload["id"])
    page = await console.sign_in(shop)
    await expect(page.locator("[data-figure=cashback_issued_today] .value")).to_have_text(cashback)

    await page.goto(f"{console.url}/console/orders/{order['id']}")
    await expect(page.locator("[data-field=cashback_amount]")).to_have_text(cashback)
    placed = datetime.fromisoformat(order["created_at"]).astimezone(ZoneInfo(timezone))
    hour = placed.hour % 12 or 12
    shown = f"{placed:%b} {placed.day}, {placed.year}, {hour}:{placed:%M} {placed:%p}"
    await expect(page.locator(".facts")).to_contain_text(shown)
    await console.screenshot(f"order-{currency.lower()}")
