"""Every 503 (and 429) tells the client when to come back: `Retry-After`."""

from __future__ import annotations

import uuid

from app.config import Settings
from app.main import create_app
from tests.support import NO_DATABASE, NO_REDIS, Stack


async def test_an_unreachable_database_is_a_503_with_retry_after(stack: Stack) -> None:
    shop = await stack.create_shop()
    async with stack.degraded_client(database_url=NO_DATABASE) as client:
        answers = [
            await client.get("/v1/orders", headers=shop.auth),
            await client.get("/readyz"),
            await client.post(
                "/v1/api-keys",
                headers=shop.auth | {"Idempotency-Key": str(uuid.uuid4())},
                json={"name": "pos", "role": "viewer"},
            ),
        ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert int(answer.headers["Retry-After"]) > 0
    assert answers[0].json()["code"] == "database_unavailable"
    assert answers[1].json()["code"] == "service_unavailable"


async def test_live_events_without_redis_are_a_503_with_retry_after(stack: Stack) -> None:
    shop = await stack.create_shop()
    async with stack.degraded_client(redis_url=NO_REDIS) as client:
        answer = await client.get("/v1/events", headers=shop.auth)
    assert (answer.status_code, answer.json()["code"]) == (503, "service_unavailable")
    assert int(answer.headers["Retry-After"]) > 0


def test_the_schema_declares_retry_after_on_every_429_and_503() -> None:
    schema = create_app(Settings()).openapi()
    declared = 0
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status in ("429", "503"):
                    assert "Retry-After" in response.get("headers", {}), (method, path, status)
                    declared += 1
    assert declared >= 2  # /readyz and /v1/events at least
