"""Who gets in: webhook signatures, API keys, the operator token, and guessing them.

Only a correctly signed delivery stores anything; every failed attempt gets the same answer
whether or not the shop or key exists; a client that keeps failing is slowed to 429.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from app.core.resources import Resources
from app.main import create_app
from app.shops.models import ApiKeyRole
from tests.payloads import new_order_id, paid_order
from tests.reliability.sec_world import count_rows, snapshot
from tests.support import ADMIN_TOKEN, ShopHandle, Stack, shopify_headers

LIMIT = 5
WINDOW_S = 6


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every log record of the test, at every level, with its arguments and extras."""
    stream = io.StringIO()

    class Everything(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stream.write(f"{record.getMessage()} {record.__dict__!r}\n")

    handler = Everything(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def webhook_rows(stack: Stack, *shops: ShopHandle) -> int:
    return sum([count_rows(await snapshot(stack, shop.id)) for shop in shops])


async def test_only_a_correctly_signed_delivery_stores_anything(stack: Stack) -> None:
    shop = await stack.create_shop()
    other = await stack.create_shop()
    body = json.dumps(paid_order(id=new_order_id()), indent=1).encode()
    tampered = body.replace(b'"40.00"', b'"90.00"', 1)
    assert tampered != body
    reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
    missing = shopify_headers(shop, body)
    del missing["X-Shopify-Hmac-Sha256"]
    no_domain = shopify_headers(shop, body)
    del no_domain["X-Shopify-Shop-Domain"]
    refused = {
        "one byte changed": (tampered, shopify_headers(shop, body)),
        "re-serialised JSON": (reserialised, shopify_headers(shop, body)),
        "wrong secret": (body, shopify_headers(shop, body, secret="not-the-secret")),
        "another shop's secret": (body, shopify_headers(shop, body, secret=other.webhook_secret)),
        "signed by one shop, sent as another": (
            body,
            shopify_headers(shop, body, domain=other.domain),
        ),
        "unknown shop domain": (body, shopify_headers(shop, body, domain="ghost.myshopify.com")),
        "missing signature": (body, missing),
        "missing shop domain": (body, no_domain),
        "empty signature": (body, shopify_headers(shop, body) | {"X-Shopify-Hmac-Sha256": ""}),
        "signature not base64": (
            body,
            shopify_headers(shop, body) | {"X-Shopify-Hmac-Sha256": "%%"},
        ),
    }
    before = await snapshot(stack, shop.id), await snapshot(stack, other.id)
    answers = {}
    for name, (payload, headers) in refused.items():
        response = await stack.client.post("/webhooks/shopify", content=payload, headers=headers)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        answers[name] = response.json()
    await stack.run_worker()
    assert (await snapshot(stack, shop.id), await snapshot(stack, other.id)) == before

    # Unknown shop, wrong shop and bad signature look alike: nothing tells them apart.
    probing = ["one byte changed", "wrong secret", "another shop's secret", "unknown shop domain"]
    assert len({json.dumps(answers[name], sort_keys=True) for name in probing}) == 1

    valid = await stack.client.post(
        "/webhooks/shopify", content=body, headers=shopify_headers(shop, body)
    )
    assert valid.json() == {"result": "accepted"}
    assert await webhook_rows(stack, shop) > count_rows(before[0])
    assert await snapshot(stack, other.id) == before[1]


async def test_bad_api_keys_get_one_answer_that_reveals_nothing(stack: Stack) -> None:
    shop = await stack.create_shop()
    other = await stack.create_shop()
    created = await stack.client.post(
        "/v1/api-keys", headers=shop.auth, json={"name": "soon revoked", "role": "viewer"}
    )
    revoked_key = created.json()["api_key"]
    assert (
        await stack.client.delete(f"/v1/api-keys/{created.json()['id']}", headers=shop.auth)
    ).status_code == 200
    other_shop_revoked = await stack.client.post(
        "/v1/api-keys", headers=other.auth, json={"name": "gone", "role": "admin"}
    )
    await stack.client.delete(f"/v1/api-keys/{other_shop_revoked.json()['id']}", headers=other.auth)
    wrong = shop.api_key[:-4] + ("aaaa" if not shop.api_key.endswith("aaaa") else "bbbb")
    bad_keys = {
        "unknown": "cbk_" + "x" * 40,
        "revoked": revoked_key,
        "another shop's revoked": other_shop_revoked.json()["api_key"],
        "one character wrong": wrong,
        "not a key at all": "hello",
    }
    answers = {}
    for name, key in bad_keys.items():
        response = await stack.client.get("/v1/orders", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        answers[name] = json.dumps(response.json(), sort_keys=True)
    assert len(set(answers.values())) == 1, answers

    malformed = [
        {},
        {"Authorization": shop.api_key},
        {"Authorization": f"Basic {shop.api_key}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
    ]
    for headers in malformed:
        response = await stack.client.get("/v1/orders", headers=headers)
        assert (response.status_code, response.json()["code"]) == (401, "unauthorized"), headers
        assert response.headers["content-type"] == "application/problem+json"

    # Another shop's live key works, for that shop only (isolation: test_security_tenancy).
    assert (await stack.client.get("/v1/orders", headers=other.auth)).status_code == 200


@asynccontextmanager
async def client_at(
    stack: Stack, address: str, **settings: object
) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling from `address`, to the app run with a small failed-auth budget."""
    changed = stack.settings.model_copy(
        update={"auth_failure_limit": LIMIT, "auth_failure_window_s": WINDOW_S} | settings
    )
    resources = Resources.open(changed)
    transport = httpx.ASGITransport(app=create_app(changed, resources), client=(address, 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await resources.close()


@pytest.fixture
async def guesser(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with client_at(stack, "203.0.113.7") as client:
        yield client


async def test_guessing_keys_is_slowed_per_client(stack: Stack, guesser: httpx.AsyncClient) -> None:
    shop = await stack.create_shop()
    good = shop.auth
    # Successful requests cost nothing.
    for _ in range(LIMIT * 3):
        assert (await guesser.get("/v1/orders", headers=good)).status_code == 200
    for attempt in range(LIMIT):
        guess = {"Authorization": f"Bearer cbk_guess_{attempt}"}
        assert (await guesser.get("/v1/orders", headers=guess)).status_code == 401
    slowed = await guesser.get("/v1/orders", headers={"Authorization": "Bearer cbk_guess_x"})
    assert slowed.status_code == 429
    assert slowed.headers["content-type"] == "application/problem+json"
    assert slowed.json()["code"] == "too_many_requests"
    assert 1 <= int(slowed.headers["Retry-After"]) <= WINDOW_S
    # While slowed, even the right key is refused: a guesser learns nothing from a hit.
    assert (await guesser.get("/v1/orders", headers=good)).status_code == 429
    # The operator door counts the same failures.
    operator = await guesser.post(
        "/v1/admin/shops",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        json={"domain": "x.myshopify.com"},
    )
    assert operator.status_code == 429
    # X-Forwarded-For is not believed unless a trusted proxy sets it.
    forged = await guesser.get("/v1/orders", headers=good | {"X-Forwarded-For": "198.51.100.1"})
    assert forged.status_code == 429
    # Other clients are unaffected.
    async with client_at(stack, "203.0.113.8") as neighbour:
        assert (await neighbour.get("/v1/orders", headers=good)).status_code == 200
    # The window passes; the client may try again.
    await asyncio.sleep(int(slowed.headers["Retry-After"]) + 0.2)
    assert (await guesser.get("/v1/orders", headers=good)).status_code == 200


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(stack: Stack) -> None:
    shop = await stack.create_shop()
    async with client_at(stack, "10.0.0.2", trust_forwarded_for=True) as proxy:
        attacker = {"X-Forwarded-For": "198.51.100.66"}
        for attempt in range(LIMIT):
            headers = attacker | {"Authorization": f"Bearer cbk_guess_{attempt}"}
            assert (await proxy.get("/v1/orders", headers=headers)).status_code == 401
        assert (await proxy.get("/v1/orders", headers=attacker | shop.auth)).status_code == 429
        # The same proxy carrying another client: not slowed. A forged first hop is ignored:
        # the proxy's own (last) entry names the client.
        other = {"X-Forwarded-For": "198.51.100.66, 198.51.100.67"}
        assert (await proxy.get("/v1/orders", headers=other | shop.auth)).status_code == 200


async def test_keys_and_platform_tokens_never_reach_logs_or_later_responses(
    stack: Stack, logs: io.StringIO
) -> None:
    operator = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    created = await stack.client.post(
        "/v1/admin/shops", headers=operator, json={"domain": "secretive.myshopify.com"}
    )
    assert created.status_code == 201
    shop_key = created.json()["api_key"]
    auth = {"Authorization": f"Bearer {shop_key}"}
    key = await stack.client.post(
        "/v1/api-keys", headers=auth, json={"name": "Ana", "role": ApiKeyRole.reviewer}
    )
    reviewer_key = key.json()["api_key"]
    token = "shpat_" + "f00d" * 8
    patched = await stack.client.patch(
        "/v1/shop/settings", headers=auth, json={"platform_access_token": token}
    )
    assert patched.status_code == 200, patched.text
    assert token not in patched.text
    # Use the keys, fail with them, revoke one.
    assert (
        await stack.client.get("/v1/orders", headers={"Authorization": f"Bearer {reviewer_key}"})
    ).status_code == 200
    await stack.client.get("/v1/orders", headers={"Authorization": f"Bearer {reviewer_key}x"})
    await stack.client.delete(f"/v1/api-keys/{key.json()['id']}", headers=auth)
    await stack.client.get("/v1/orders", headers={"Authorization": f"Bearer {reviewer_key}"})
    await stack.run_worker()

    later = [
        await stack.client.get("/v1/api-keys", headers=auth),
        await stack.client.get("/v1/shop/settings", headers=auth),
        await stack.client.get("/v1/audit-events", headers=auth),
    ]
    for response in later:
        assert response.status_code == 200
        for secret in (shop_key, reviewer_key, token):
            assert secret not in response.text, response.request.url
    written = logs.getvalue()
    assert written  # the capture works: requests were logged
    for secret in (shop_key, reviewer_key, token, ADMIN_TOKEN):
        assert secret not in written
