"""`GET /metrics` on the API: the operator token, requests by route template, webhooks by
topic and result, and the queue read from Redis at scrape time."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from app.credit_sync.models import CreditSync, SyncStatus
from tests.payloads import paid_order
from tests.support import ADMIN_TOKEN, Stack, shopify_headers

OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def scrape(stack: Stack) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await stack.client.get("/metrics", headers=OPERATOR)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_metrics_needs_the_operator_token(stack: Stack) -> None:
    shop = await stack.create_shop()
    assert (await stack.client.get("/metrics")).status_code == 401
    assert (await stack.client.get("/metrics", headers=shop.auth)).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (await stack.client.get("/metrics", headers=wrong)).status_code == 401


async def test_requests_are_counted_by_route_template_and_status(stack: Stack) -> None:
    shop = await stack.create_shop()
    for order_id in ("111", "222", "333"):
        response = await stack.client.get(f"/v1/orders/{order_id}", headers=shop.auth)
        assert response.status_code == 404
    assert (await stack.client.get("/v1/orders", headers=shop.auth)).status_code == 200
    assert (await stack.client.get("/no/such/path")).status_code == 404

    samples = await scrape(stack)
    total = "cashback_http_requests_total"
    by_template = sample(samples, total, method="GET", route="/v1/orders/{order_id}", status="404")
    assert by_template == 3
    assert sample(samples, total, method="GET", route="/v1/orders", status="200") == 1
    assert sample(samples, total, method="GET", route="unmatched", status="404") == 1
    assert not any("/v1/orders/111" in dict(labels).values() for _, labels in samples)
    latency = sample(
        samples,
        "cashback_http_request_duration_seconds_count",
        method="GET",
        route="/v1/orders/{order_id}",
    )
    assert latency == 3


async def test_webhooks_are_counted_by_topic_and_result(stack: Stack) -> None:
    shop = await stack.create_shop()
    assert (await stack.deliver(shop, paid_order(), event_id="evt-1")).json() == {
        "result": "accepted"
    }
    assert (await stack.deliver(shop, paid_order(), event_id="evt-1")).json() == {
        "result": "duplicate"
    }
    malformed = await stack.deliver(shop, b"{not json", topic="orders/paid")
    assert malformed.json() == {"result": "malformed"}
    body = json.dumps(paid_order()).encode()
    forged = shopify_headers(shop, body, secret="not-the-secret")
    rejected = await stack.client.post("/webhooks/shopify", content=body, headers=forged)
    assert rejected.status_code == 401
    unknown = shopify_headers(None, body, topic="made/up", domain="nobody.myshopify.com")
    assert (
        await stack.client.post("/webhooks/shopify", content=body, headers=unknown)
    ).status_code == 401

    samples = await scrape(stack)
    total = "cashback_webhooks_total"
    assert sample(samples, total, topic="orders/paid", result="accepted") == 1
    assert sample(samples, total, topic="orders/paid", result="duplicate") == 1
    assert sample(samples, total, topic="orders/paid", result="malformed") == 1
    assert sample(samples, total, topic="orders/paid", result="rejected") == 1
    # A topic nobody knows never becomes a label value of its own.
    assert sample(samples, total, topic="other", result="rejected") == 1
    # Webhooks skip the router (app.shopify.webhooks.WebhookFastPath), and are counted under
    # their route's template all the same, the problem answers too.
    requests = "cashback_http_requests_total"
    route = "/webhooks/shopify"
    assert sample(samples, requests, method="POST", route=route, status="200") == 3
    assert sample(samples, requests, method="POST", route=route, status="401") == 2


async def test_queue_depth_and_age_are_read_from_redis(stack: Stack) -> None:
    shop = await stack.create_shop()
    await stack.deliver(shop, paid_order())
    queue = stack.settings.queue_name

    samples = await scrape(stack)
    assert sample(samples, "cashback_queue_depth", queue=queue) == 1
    age = sample(samples, "cashback_queue_oldest_job_age_seconds", queue=queue)
    assert age is not None
    assert 0 <= age < 60

    await stack.run_worker()
    samples = await scrape(stack)
    assert sample(samples, "cashback_queue_depth", queue=queue) == 0
    assert sample(samples, "cashback_queue_oldest_job_age_seconds", queue=queue) == 0


async def test_failed_store_credit_syncs_are_counted_from_the_database(stack: Stack) -> None:
    shop = await stack.create_shop()
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    assert sample(await scrape(stack), "cashback_store_credit_sync_failed") == 0
    async with stack.resources.sessionmaker() as session:
        [sync] = list(await session.scalars(select(CreditSync)))
        sync.status = SyncStatus.failed  # as an entry Shopify refused for good
        await session.commit()
    assert sample(await scrape(stack), "cashback_store_credit_sync_failed") == 1
