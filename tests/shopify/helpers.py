"""Steps the Shopify app tests share: install through OAuth, signed app webhooks, session
tokens, App Proxy queries."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from sqlalchemy import select

from app.shopify.models import ShopifyGrant
from app.shopify.payloads import sign
from app.shopify.signatures import sign_oauth, sign_proxy
from app.shops.models import ApiKeyRole, Shop
from tests.support import ShopHandle, Stack

CLIENT_ID = "cashback-test-client"
CLIENT_SECRET = "shpss_0123456789abcdef0123456789abcdef"
PUBLIC_URL = "https://cashback.example"
WRONG_SECRET = "shpss_not_the_apps_secret_at_all_000000"


def signed_query(params: dict[str, str], secret: str = CLIENT_SECRET) -> dict[str, str]:
    pairs = list(params.items())
    return {**params, "hmac": sign_oauth(pairs, secret)}


async def install(stack: Stack, shopify_url: str, shop: str) -> httpx.Response:
    """A merchant installs the app from Shopify: app URL, authorize page, callback. Returns
    the callback's answer."""
    query = signed_query({"shop": shop, "timestamp": str(int(time.time()))})
    started = await stack.client.get("/shopify/install", params=query)
    assert started.status_code == 302, started.text
    authorize = started.headers["location"]
    assert authorize.startswith(f"{shopify_url}/shops/{shop}/admin/oauth/authorize?")
    async with httpx.AsyncClient(follow_redirects=False, timeout=5) as browser:
        approved = await browser.get(authorize)
    assert approved.status_code == 302, approved.text
    callback = urlsplit(approved.headers["location"])
    assert (
        f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{PUBLIC_URL}/shopify/callback"
    )
    params = httpx.QueryParams(callback.query)
    return await stack.client.get("/shopify/callback", params=params)


async def installed_shop(stack: Stack, domain: str) -> ShopHandle:
    """The shop an install made, with a fresh admin key to read it through /v1."""
    async with stack.resources.sessionmaker() as session:
        shop = await session.scalar(select(Shop).where(Shop.domain == domain))
        assert shop is not None, f"{domain} was not installed"
        await session.commit()
    handle = ShopHandle(shop.id, shop.domain, "", shop.webhook_secret)
    headers = await stack.add_key(handle, ApiKeyRole.admin)
    handle.api_key = headers["Authorization"].removeprefix("Bearer ")
    return handle


async def grant(stack: Stack, shop_id: int) -> ShopifyGrant:
    async with stack.resources.sessionmaker() as session:
        return await session.get_one(ShopifyGrant, shop_id)


async def deliver(
    stack: Stack,
    domain: str,
    payload: dict[str, Any],
    *,
    topic: str,
    secret: str = CLIENT_SECRET,
) -> httpx.Response:
    """A webhook of the app, signed with the client secret as Shopify signs them."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": domain,
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
    }
    return await stack.client.post("/webhooks/shopify", content=body, headers=headers)


def session_token(
    shop: str,
    *,
    secret: str = CLIENT_SECRET,
    aud: str = CLIENT_ID,
    expires_in_s: int = 60,
    sub: str = "42",
) -> str:
    now = int(time.time())
    claims = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": aud,
        "sub": sub,
        "exp": now + expires_in_s,
        "nbf": now - 1,
        "iat": now - 1,
        "jti": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def proxy_query(
    shop: str, customer_id: str, *, timestamp: int | None = None, secret: str = CLIENT_SECRET
) -> dict[str, str]:
    params = {
        "shop": shop,
        "path_prefix": "/apps/cashback",
        "timestamp": str(timestamp if timestamp is not None else int(time.time())),
        "logged_in_customer_id": customer_id,
    }
    return {**params, "signature": sign_proxy(list(params.items()), secret)}
