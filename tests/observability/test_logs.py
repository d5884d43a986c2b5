"""Structured logs: the request id on every line, JSON in production, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from app.config import Environment, Settings
from app.core.context import bound
from app.observability.logs import (
    REDACTED,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    wants_json,
)
from tests.payloads import paid_order
from tests.support import NO_REDIS, Stack, shopify_headers

logger = logging.getLogger("tests.observability")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes as JSON lines during the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_x_request_id_is_echoed_or_generated(stack: Stack) -> None:
    given = await stack.client.get("/healthz", headers={"X-Request-Id": "req-42.a"})
    assert given.headers["X-Request-Id"] == "req-42.a"
    generated = await stack.client.get("/healthz")
    assert len(generated.headers["X-Request-Id"]) == 32
    # An id that could forge log lines is replaced, not echoed.
    forged = await stack.client.get("/healthz", headers={"X-Request-Id": "a b\tc" + "x" * 200})
    assert forged.headers["X-Request-Id"] != "a b\tc" + "x" * 200
    assert len(forged.headers["X-Request-Id"]) == 32


async def test_log_lines_of_a_request_carry_its_id(stack: Stack, json_lines: io.StringIO) -> None:
    shop = await stack.create_shop()
    body = json.dumps(paid_order()).encode()
    headers = shopify_headers(shop, body) | {"X-Request-Id": "req-webhook-1"}
    # With Redis away the broker logs a warning inside the request.
    async with stack.degraded_client(redis_url=NO_REDIS) as client:
        response = await client.post("/webhooks/shopify", content=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "req-webhook-1"

    broker = [line for line in lines(json_lines) if line["logger"] == "app.core.broker"]
    assert broker
    assert all(line["request_id"] == "req-webhook-1" for line in broker)
    assert shop.webhook_secret not in json_lines.getvalue()


def test_secrets_and_personal_data_in_extras_are_redacted(json_lines: io.StringIO) -> None:
    with bound(request_id="req-7", shop_id=3, api_key="cbk_bound_secret"):
        logger.info(
            "calling shopify",
            extra={
                "authorization": "Bearer shpat_secret",
                "customer": {"email": "sam@example.com", "id": 12},
                "order_id": 450789469,
            },
        )
    [line] = lines(json_lines)
    assert line["message"] == "calling shopify"
    assert line["level"] == "info"
    assert line["request_id"] == "req-7"
    assert line["shop_id"] == 3
    assert line["order_id"] == 450789469
    assert line["authorization"] == REDACTED
    assert line["api_key"] == REDACTED
    assert line["customer"] == {"email": REDACTED, "id": 12}
    for secret in ("shpat_secret", "sam@example.com", "cbk_bound_secret"):
        assert secret not in json_lines.getvalue()


def test_text_lines_show_the_bound_fields() -> None:
    record = logging.LogRecord("app.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    with bound(request_id="req-9", token="t0ps3cret"):
        text = TextFormatter().format(record)
    assert text.endswith(f"hello you [request_id=req-9 token={REDACTED}]")


def test_json_in_production_or_when_asked_text_otherwise(settings: Settings) -> None:
    assert not wants_json(settings.model_copy(update={"env": Environment.development}))
    assert wants_json(settings.model_copy(update={"env": Environment.production}))
    assert wants_json(settings.model_copy(update={"log_format": "json"}))
    assert not wants_json(
        settings.model_copy(update={"env": Environment.production, "log_format": "text"})
    )


def test_configure_logging_installs_one_root_handler(settings: Settings) -> None:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        stream = io.StringIO()
        handler = configure_logging(settings.model_copy(update={"log_format": "json"}), stream)
        assert root.handlers == [handler]
        logging.getLogger("app.y").warning("careful", extra={"password": "hunter2"})
        line = json.loads(stream.getvalue())
        assert line["password"] == REDACTED
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


async def test_a_job_logs_with_the_request_that_caused_it_and_what_it_works_on(
    stack: Stack, json_lines: io.StringIO
) -> None:
    shop = await stack.create_shop()
    body = json.dumps(paid_order()).encode()
    headers = shopify_headers(shop, body) | {"X-Request-Id": "req-paid-7"}
    response = await stack.client.post("/webhooks/shopify", content=body, headers=headers)
    assert response.status_code == 200
    await stack.run_worker()
    [handled] = [
        line for line in lines(json_lines) if line.get("message") == "webhook event processed"
    ]
    assert handled["request_id"] == "req-paid-7"
    assert (handled["shop_id"], handled["topic"]) == (shop.id, "orders/paid")
    assert isinstance(handled["order_id"], int) and isinstance(handled["event_id"], int)


def test_an_exception_keeps_its_traceback_in_both_formats() -> None:
    try:
        raise ZeroDivisionError("the cause")
    except ZeroDivisionError:
        record = logging.LogRecord(
            "app.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    with bound(request_id="req-3"):
        text = TextFormatter().format(record)
        line = json.loads(JsonFormatter().format(record))
    first, _, traceback = text.partition("\n")
    assert first.endswith("failed [request_id=req-3]")
    assert traceback.startswith("Traceback") and "ZeroDivisionError: the cause" in traceback
    assert line["message"] == "failed" and line["request_id"] == "req-3"
    assert "ZeroDivisionError: the cause" in line["exception"]
