"""POST /webhooks/shopify: what is stored, what is refused, and what is answered."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text

from app.core.broker import Job
from app.inbox.models import EventStatus, WebhookEvent
from tests.payloads import paid_order
from tests.support import NO_DATABASE, NO_REDIS, ShopHandle, Stack, shopify_headers


async def stored_events(stack: Stack) -> list[WebhookEvent]:
    async with stack.resources.sessionmaker() as session:
        return list((await session.scalars(select(WebhookEvent).order_by(WebhookEvent.id))).all())


async def queued_jobs(stack: Stack) -> int:
    return int(await stack.resources.broker.redis.zcard(stack.settings.queue_name))


async def test_a_signed_delivery_is_stored_byte_for_byte_and_queued(stack: Stack) -> None:
    shop = await stack.create_shop()
    body = json.dumps(paid_order()).encode()
    headers = shopify_headers(shop, body, event_id="evt-1")
    response = await stack.client.post("/webhooks/shopify", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"result": "accepted"}
    [event] = await stored_events(stack)
    assert (event.shop_id, event.topic, event.event_key) == (shop.id, "orders/paid", "evt-1")
    assert event.body == body
    assert event.status == EventStatus.received
    assert event.api_version == "2026-10"
    assert await queued_jobs(stack) == 1


async def test_header_names_are_case_insensitive(stack: Stack) -> None:
    shop = await stack.create_shop()
    body = json.dumps(paid_order()).encode()
    headers = {k.lower(): v for k, v in shopify_headers(shop, body).items()}
    response = await stack.client.post("/webhooks/shopify", content=body, headers=headers)
    assert response.json() == {"result": "accepted"}
    assert len(await stored_events(stack)) == 1


async def test_a_redelivered_event_is_acknowledged_once_stored_once(stack: Stack) -> None:
    shop = await stack.create_shop()
    first = await stack.deliver(shop, paid_order(), event_id="evt-same")
    again = await stack.deliver(shop, paid_order(), event_id="evt-same")
    assert (first.json()["result"], again.json()["result"]) == ("accepted", "duplicate")
    assert len(await stored_events(stack)) == 1
    assert await queued_jobs(stack) == 1


async def test_the_webhook_id_dedupes_when_there_is_no_event_id(stack: Stack) -> None:
    shop = await stack.create_shop()
    body = json.dumps(paid_order()).encode()
    headers = shopify_headers(shop, body)
    del headers["X-Shopify-Event-Id"]
    for _ in range(2):
        await stack.client.post("/webhooks/shopify", content=body, headers=headers)
    [event] = await stored_events(stack)
    assert event.event_key == headers["X-Shopify-Webhook-Id"]


async def refused(stack: Stack, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    response = await stack.client.post("/webhooks/shopify", content=body, headers=headers)
    assert response.headers["content-type"] == "application/problem+json"
    assert await stored_events(stack) == []
    problem: dict[str, Any] = response.json() | {"http_status": response.status_code}
    return problem


async def test_bad_signatures_store_nothing(stack: Stack) -> None:
    shop = await stack.create_shop()
    other = await stack.create_shop()
    body = json.dumps(paid_order()).encode()
    tampered = body.replace(b'"40.00"', b'"90.00"', 1)
    reserialised = json.dumps(json.loads(body), indent=2).encode()
    cases = {
        "one byte changed": (tampered, shopify_headers(shop, body)),
        "re-serialised JSON": (reserialised, shopify_headers(shop, body)),
        "wrong secret": (body, shopify_headers(shop, body, secret="not-the-secret")),
        "another shop's secret": (body, shopify_headers(shop, body, secret=other.webhook_secret)),
        "unknown shop": (body, shopify_headers(None, body, domain="ghost.myshopify.com")),
    }
    for name, (payload, headers) in cases.items():
        problem = await refused(stack, payload, headers)
        assert (problem["http_status"], problem["code"]) == (401, "unauthorized"), name
    missing = shopify_headers(shop, body)
    del missing["X-Shopify-Hmac-Sha256"]
    assert (await refused(stack, body, missing))["http_status"] == 401


async def test_an_oversize_body_is_refused_before_parsing(stack: Stack) -> None:
    shop = await stack.create_shop()
    body = b'{"pad": "' + b"x" * stack.settings.body_limit + b'"}'
    problem = await refused(stack, body, shopify_headers(shop, body))
    assert (problem["http_status"], problem["code"]) == (413, "payload_too_large")


async def test_missing_topic_or_ids_is_a_client_error(stack: Stack) -> None:
    shop = await stack.create_shop()
    body = json.dumps(paid_order()).encode()
    headers = shopify_headers(shop, body)
    del headers["X-Shopify-Event-Id"], headers["X-Shopify-Webhook-Id"]
    problem = await refused(stack, body, headers)
    assert (problem["http_status"], problem["code"]) == (400, "missing_event_id")


async def test_unknown_topics_are_stored_and_acknowledged(stack: Stack) -> None:
    shop = await stack.create_shop()
    response = await stack.deliver(shop, {"id": 1}, topic="inventory_levels/update")
    assert response.json() == {"result": "accepted"}
    [event] = await stored_events(stack)
    assert event.topic == "inventory_levels/update"


async def test_malformed_json_with_a_valid_signature_is_kept_as_failed(stack: Stack) -> None:
    shop = await stack.create_shop()
    response = await stack.deliver(shop, b'{"id": 12, "line_items": [')
    assert response.status_code == 200
    assert response.json() == {"result": "malformed"}
    [event] = await stored_events(stack)
    assert event.status == EventStatus.failed
    assert event.error is not None and "malformed JSON" in event.error
    assert await queued_jobs(stack) == 0  # nothing a worker could do with it


async def test_redis_down_still_stores_and_answers_200(stack: Stack) -> None:
    shop = await stack.create_shop()
    body = json.dumps(paid_order()).encode()
    async with stack.degraded_client(redis_url=NO_REDIS) as client:
        response = await client.post(
            "/webhooks/shopify", content=body, headers=shopify_headers(shop, body)
        )
    assert response.json() == {"result": "accepted"}
    [event] = await stored_events(stack)
    assert event.status == EventStatus.received  # the sweeper will ring for it


async def test_database_down_answers_503_so_shopify_retries(stack: Stack) -> None:
    shop = ShopHandle(1, "acme.myshopify.com", "k", "s")
    body = json.dumps(paid_order()).encode()
    async with stack.degraded_client(database_url=NO_DATABASE) as client:
        response = await client.post(
            "/webhooks/shopify", content=body, headers=shopify_headers(shop, body)
        )
        ready = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert "Retry-After" in response.headers
    assert ready.status_code == 503


async def test_the_admin_token_placeholder_is_not_a_key(stack: Stack) -> None:
    # An operator token never authenticates a shop's REST call, and vice versa.
    token = SecretStr(stack.settings.admin_token.get_secret_value())
    response = await stack.client.get(
        "/v1/orders", headers={"Authorization": f"Bearer {token.get_secret_value()}"}
    )
    assert response.status_code == 401


async def test_a_bucket_is_rung_once_however_many_writes_it_sees(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes in one ring bucket (100 ms) ask Redis for its drain job once; the next bucket
    rings again. Every delivery is still stored, and a worker handles them all."""
    clock = [1_800_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])  # the ring buckets' clock
    calls: list[list[str]] = []
    broker = stack.resources.broker
    enqueue_all = broker._enqueue_all

    async def counted(jobs: list[Job]) -> list[Job]:
        calls.append([job.job_id for job in jobs])
        return await enqueue_all(jobs)

    monkeypatch.setattr(broker, "_enqueue_all", counted)
    shop = await stack.create_shop()
    for n in range(5):
        body = json.dumps(paid_order(id=n + 1)).encode()
        headers = shopify_headers(shop, body, event_id=f"evt-{n}")
        assert (
            await stack.client.post("/webhooks/shopify", content=body, headers=headers)
        ).status_code == 200
    assert len(calls) == 1
    clock[0] += 0.15  # the next bucket
    body = json.dumps(paid_order(id=99)).encode()
    headers = shopify_headers(shop, body, event_id="evt-99")
    await stack.client.post("/webhooks/shopify", content=body, headers=headers)
    assert len(calls) == 2 and calls[0] != calls[1]
    assert len(await stored_events(stack)) == 6
    monkeypatch.undo()
    await stack.run_worker()
    assert {event.status for event in await stored_events(stack)} == {EventStatus.processed}


async def transactions_of_events(stack: Stack) -> int:
    """How many transactions wrote the shop's inbox rows (a statement's rows share its xmin)."""
    async with stack.resources.sessionmaker() as session:
        return int(
            await session.scalar(text("SELECT count(DISTINCT xmin::text) FROM webhook_events"))
        )


async def test_deliveries_a_moment_apart_share_one_write_after_a_small_one(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a moderate rate each delivery would be written alone: after a small write the
    intake waits `intake_linger_s`, and the deliveries of that moment share one statement and
    one commit. Each is answered only after it, and each is stored."""
    monkeypatch.setattr(stack.resources.settings, "intake_linger_s", 0.5)
    shop = await stack.create_shop()

    async def deliver(n: int) -> int:
        await asyncio.sleep(0.02 * n)  # a moment apart, well inside the linger
        body = json.dumps(paid_order(id=n + 1)).encode()
        headers = shopify_headers(shop, body, event_id=f"evt-{n}")
        response = await stack.client.post("/webhooks/shopify", content=body, headers=headers)
        return response.status_code

    assert await asyncio.gather(*(deliver(n) for n in range(4))) == [200] * 4
    assert len(await stored_events(stack)) == 4
    assert await transactions_of_events(stack) == 1
