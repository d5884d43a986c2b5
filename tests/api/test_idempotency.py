"""`Idempotency-Key`: a retried POST gets its first answer and acts once, per caller."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import func, select, update

from app.audit.models import AuditEvent
from app.config import Settings
from app.core import idempotency as idempotency_module
from app.core.errors import ServiceUnavailable, install_error_handlers
from app.core.idempotency import (
    HEADER,
    IdempotencyKey,
    IdempotencyMiddleware,
    caller_scope,
    claim,
    request_hash,
)
from app.core.idempotency_tasks import prune_idempotency_keys
from app.main import create_app
from app.shops.models import ApiKeyRole, ProcessingMode, Shop
from tests.payloads import paid_order
from tests.support import ADMIN_TOKEN, ShopHandle, Stack
from workers.worker import build_worker

STATE_CHANGING_POSTS = {
    "approveOrder",
    "rejectOrder",
    "holdOrder",
    "releaseOrder",
    "processOrder",
    "bulkApproveOrders",
    "bulkRejectOrders",
    "createApiKey",
    "createShop",
    "redeemCredit",
}


def key() -> str:
    return str(uuid.uuid4())


async def pending_order(stack: Stack, shop: ShopHandle) -> dict[str, Any]:
    response = await stack.deliver(shop, paid_order(id=int(uuid.uuid4().int % 10**12)))
    assert response.status_code == 200
    await stack.run_worker()
    [summary] = (
        await stack.client.get("/v1/orders", headers=shop.auth, params={"status": "pending"})
    ).json()["items"]
    return summary  # type: ignore[no-any-return]


async def audit_count(stack: Stack, shop: ShopHandle, action: str) -> int:
    async with stack.resources.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count()).where(
                    AuditEvent.shop_id == shop.id, AuditEvent.action == action
                )
            )
            or 0
        )


async def stored_keys(stack: Stack) -> int:
    async with stack.resources.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(IdempotencyKey)) or 0)


async def test_a_retried_approval_replays_the_first_answer_and_credits_once(
    stack: Stack,
) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    order = await pending_order(stack, shop)
    path = f"/v1/orders/{order['id']}/approve"
    headers = shop.auth | {HEADER: key()}

    first = await stack.client.post(path, headers=headers, json={})
    again = await stack.client.post(path, headers=headers, json={})

    assert first.status_code == 200, first.text
    assert first.json()["status"] == "processed"
    assert "Idempotent-Replayed" not in first.headers
    assert again.status_code == 200, again.text
    assert again.content == first.content
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await stack.credit_count(shop) == 1
    assert await audit_count(stack, shop, "order.approved") == 1

    # Without the key, the same retry is a second attempt, refused by the order's state.
    unkeyed = await stack.client.post(path, headers=shop.auth, json={})
    assert (unkeyed.status_code, unkeyed.json()["code"]) == (409, "order_status_conflict")


async def test_the_same_json_written_differently_is_the_same_request(stack: Stack) -> None:
    shop = await stack.create_shop()
    headers = shop.auth | {HEADER: key(), "Content-Type": "application/json"}
    first = await stack.client.post(
        "/v1/api-keys", headers=headers, content=b'{"name": "till", "role": "viewer"}'
    )
    again = await stack.client.post(
        "/v1/api-keys", headers=headers, content=b'{ "role":"viewer","name":"till" }'
    )
    assert first.status_code == 201, first.text
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    listed = (await stack.client.get("/v1/api-keys", headers=shop.auth)).json()["items"]
    assert [k["name"] for k in listed].count("till") == 1


async def test_the_same_key_for_another_request_is_refused(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    order = await pending_order(stack, shop)
    reused = key()
    headers = shop.auth | {HEADER: reused}
    path = f"/v1/orders/{order['id']}/hold"
    held = await stack.client.post(path, headers=headers, json={"reason": "check address"})
    assert held.status_code == 200, held.text

    other_body = await stack.client.post(path, headers=headers, json={"reason": "other"})
    other_path = await stack.client.post(
        f"/v1/orders/{order['id']}/reject", headers=headers, json={"reason": "check address"}
    )
    for response in (other_body, other_path):
        assert response.status_code == 422
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "idempotency_key_reused"
    detail = (await stack.client.get(f"/v1/orders/{order['id']}", headers=shop.auth)).json()
    assert detail["status"] == "held"
    assert detail["hold_reasons"] == ["check address"]


async def test_keys_belong_to_their_caller(stack: Stack) -> None:
    one, two = await stack.create_shop(), await stack.create_shop()
    second_admin = await stack.add_key(one, ApiKeyRole.admin)
    shared = key()
    answers = [
        await stack.client.post(
            "/v1/api-keys", headers=auth | {HEADER: shared}, json={"name": "pos", "role": "viewer"}
        )
        for auth in (one.auth, two.auth, second_admin)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert all("Idempotent-Replayed" not in a.headers for a in answers)
    assert len({a.json()["api_key"] for a in answers}) == 3
    names_one = [
        k["name"]
        for k in (await stack.client.get("/v1/api-keys", headers=one.auth)).json()["items"]
    ]
    names_two = [
        k["name"]
        for k in (await stack.client.get("/v1/api-keys", headers=two.auth)).json()["items"]
    ]
    assert names_one.count("pos") == 2 and names_two.count("pos") == 1


async def test_the_operator_creating_a_shop_twice_gets_one_shop(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", HEADER: key()}
    body = {"domain": f"idem-{uuid.uuid4().hex[:8]}.myshopify.com"}
    first = await stack.client.post("/v1/admin/shops", headers=headers, json=body)
    again = await stack.client.post("/v1/admin/shops", headers=headers, json=body)
    assert first.status_code == 201, first.text
    assert (again.status_code, again.content) == (201, first.content)
    unkeyed = await stack.client.post(
        "/v1/admin/shops", headers=headers | {HEADER: key()}, json=body
    )
    assert unkeyed.status_code == 409  # a new key is a new attempt: the domain is taken
    async with stack.resources.sessionmaker() as session:
        count = await session.scalar(select(func.count()).where(Shop.domain == body["domain"]))
    assert count == 1


async def test_concurrent_requests_with_one_key_act_once(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    order = await pending_order(stack, shop)
    headers = shop.auth | {HEADER: key()}
    path = f"/v1/orders/{order['id']}/approve"

    answers = await asyncio.gather(
        *(stack.client.post(path, headers=headers, json={}) for _ in range(4))
    )

    fresh = [a for a in answers if a.status_code == 200 and "Idempotent-Replayed" not in a.headers]
    assert len(fresh) == 1
    for answer in answers:
        if answer is fresh[0]:
            continue
        if answer.status_code == 409:
            assert answer.json()["code"] == "idempotency_key_in_use"
            assert int(answer.headers["Retry-After"]) >= 1
        else:
            assert answer.status_code == 200 and answer.content == fresh[0].content
            assert answer.headers["Idempotent-Replayed"] == "true"
    assert await stack.credit_count(shop) == 1
    assert await audit_count(stack, shop, "order.approved") == 1


async def test_a_key_in_flight_answers_409_until_its_lease_ends(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    order = await pending_order(stack, shop)
    path = f"/v1/orders/{order['id']}/approve"
    in_flight = key()
    # The first request holds the key (as one still running, or one whose process died).
    async with stack.resources.sessionmaker() as session, session.begin():
        await claim(
            session,
            caller=caller_scope(shop.auth["Authorization"]),
            key=in_flight,
            fingerprint=request_hash("POST", path, b"{}"),
            method="POST",
            path=path,
            retention=timedelta(hours=48),
        )
    headers = shop.auth | {HEADER: in_flight}

    busy = await stack.client.post(path, headers=headers, json={})
    assert (busy.status_code, busy.json()["code"]) == (409, "idempotency_key_in_use")
    assert busy.headers["Retry-After"] == "1"
    assert await stack.credit_count(shop) == 0

    async with stack.resources.sessionmaker() as session, session.begin():
        await session.execute(
            update(IdempotencyKey).values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    taken_over = await stack.client.post(path, headers=headers, json={})
    assert taken_over.status_code == 200, taken_over.text
    assert await stack.credit_count(shop) == 1


@pytest.mark.parametrize("bad", [b"", b"x" * 256, "clé".encode()])
async def test_a_malformed_key_is_a_400(stack: Stack, bad: bytes) -> None:
    shop = await stack.create_shop()
    response = await stack.client.post(
        "/v1/api-keys",
        headers={b"Authorization": shop.auth["Authorization"].encode(), HEADER.encode(): bad},
        json={"name": "pos", "role": "viewer"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    keys = (await stack.client.get("/v1/api-keys", headers=shop.auth)).json()["items"]
    assert [k["name"] for k in keys] == ["owner"]


async def test_the_longest_printable_key_is_accepted(stack: Stack) -> None:
    shop = await stack.create_shop()
    longest = ("a Z~!" * 51)[:255]
    response = await stack.client.post(
        "/v1/api-keys",
        headers=shop.auth | {HEADER: longest},
        json={"name": "pos", "role": "viewer"},
    )
    assert response.status_code == 201, response.text


async def test_answers_that_mean_retry_are_not_kept(stack: Stack) -> None:
    """A 5xx (or 503) frees the key: the retry with the same key runs again and is kept."""
    calls: list[int] = []
    app = FastAPI()
    app.state.resources = stack.resources
    install_error_handlers(app)
    app.add_middleware(IdempotencyMiddleware)

    @app.post("/v1/flaky", operation_id="flaky")
    async def flaky() -> dict[str, int]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        if len(calls) == 2:
            raise ServiceUnavailable("try again")
        return {"calls": len(calls)}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Authorization": "Bearer anyone", HEADER: key()}
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        statuses = [(await client.post("/v1/flaky", headers=headers)).status_code for _ in range(3)]
        last = await client.post("/v1/flaky", headers=headers)
    assert statuses == [500, 503, 200]
    assert (last.status_code, last.json()) == (200, {"calls": 3})
    assert last.headers["Idempotent-Replayed"] == "true"
    assert len(calls) == 3


async def test_read_only_posts_and_the_webhook_ignore_the_key(stack: Stack) -> None:
    shop = await stack.create_shop()
    headers = shop.auth | {HEADER: key()}
    for _ in range(2):
        preview = await stack.client.post(
            "/v1/cashback/preview", headers=headers, json={"order": paid_order()}
        )
        assert preview.status_code == 200, preview.text
        assert "Idempotent-Replayed" not in preview.headers
    assert await stored_keys(stack) == 0


async def test_old_keys_are_pruned_by_the_worker_cron(stack: Stack) -> None:
    shop = await stack.create_shop()
    old, recent = key(), key()
    for k, name in ((old, "old"), (recent, "recent")):
        created = await stack.client.post(
            "/v1/api-keys", headers=shop.auth | {HEADER: k}, json={"name": name, "role": "viewer"}
        )
        assert created.status_code == 201
    async with stack.resources.sessionmaker() as session, session.begin():
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == old)
            .values(created_at=datetime.now(UTC) - timedelta(hours=49))
        )
    worker = build_worker(stack.settings, burst=True, handle_signals=False)
    try:
        assert "cron:prune_idempotency_keys" in {job.name for job in worker.cron_jobs}
    finally:
        await worker.close()

    assert await prune_idempotency_keys({"resources": stack.resources}) == 1

    async with stack.resources.sessionmaker() as session:
        left = list(await session.scalars(select(IdempotencyKey.key)))
    assert left == [recent]
    # The pruned key is free again; the kept one still replays.
    reused = await stack.client.post(
        "/v1/api-keys", headers=shop.auth | {HEADER: old}, json={"name": "other", "role": "viewer"}
    )
    assert reused.status_code == 201 and "Idempotent-Replayed" not in reused.headers
    replayed = await stack.client.post(
        "/v1/api-keys",
        headers=shop.auth | {HEADER: recent},
        json={"name": "recent", "role": "viewer"},
    )
    assert replayed.headers["Idempotent-Replayed"] == "true"


def test_retention_is_at_least_a_day() -> None:
    assert Settings(idempotency_retention_hours=24).idempotency_retention_hours == 24
    with pytest.raises(ValidationError):
        Settings(idempotency_retention_hours=23)


def test_every_state_changing_post_declares_the_header() -> None:
    schema = create_app(Settings()).openapi()
    declared = {}
    for path, item in schema["paths"].items():
        operation = item.get("post")
        if operation is None:
            continue
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        declared[operation["operationId"]] = HEADER in names
        if HEADER in names:
            responses = operation["responses"]
            assert {"400", "409", "422"} <= responses.keys(), path
            assert "Retry-After" in responses["409"]["headers"], path
            success = next(v for k, v in responses.items() if k.startswith("2"))
            assert "Idempotent-Replayed" in success["headers"], path
    assert {op for op, has in declared.items() if has} == STATE_CHANGING_POSTS
    assert declared["receiveShopifyWebhook"] is False


async def test_a_crash_after_creating_a_key_never_lets_a_retry_make_a_second(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies between the route's commit and the middleware storing the answer (its
    record never happens), and the key's lease runs out: the retry replays the first answer,
    stored with the key itself, and no second key is made."""
    shop = await stack.create_shop()
    headers = shop.auth | {"Idempotency-Key": key()}

    async def died(*_: Any) -> None:
        raise RuntimeError("the process died before storing the answer")

    monkeypatch.setattr(idempotency_module, "_record_sent", died)
    first = await stack.client.post(
        "/v1/api-keys", headers=headers, json={"name": "Ana", "role": "reviewer"}
    )
    assert first.status_code == 201, first.text
    monkeypatch.undo()
    async with stack.resources.sessionmaker() as session:  # the dead process's lease ends
        await session.execute(
            update(IdempotencyKey).values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()

    retried = await stack.client.post(
        "/v1/api-keys", headers=headers, json={"name": "Ana", "role": "reviewer"}
    )
    assert retried.status_code == 201
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.json() == first.json()  # the same key, shown again to the one who made it
    listed = (await stack.client.get("/v1/api-keys", headers=shop.auth)).json()["items"]
    assert [k["name"] for k in listed].count("Ana") == 1
