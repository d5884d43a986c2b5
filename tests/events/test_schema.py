"""Every event the code sends is the one openapi.yaml declares for GET /v1/events: its SSE
fields match the stream's schema (that of one event) and its JSON `data` the `contentSchema`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import yaml
from sse_starlette import ServerSentEvent

from app.events.publish import DASHBOARD_UPDATED, Event, envelope, order_status_changed
from app.events.stream import event_from_message, resync_event
from app.openapi import SPEC_PATH
from app.orders.state import OrderStatus
from tests.api_clients.test_contract import validator

SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
OPERATION = SPEC["paths"]["/v1/events"]["get"]
STREAM = OPERATION["responses"]["200"]["content"]["text/event-stream"]
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CHANGED = order_status_changed(7, "1001", OrderStatus.pending, OrderStatus.processed, AT)


def fields(event: ServerSentEvent) -> dict[str, str]:
    """The event as a client reads it (comments and blank lines skipped)."""
    read: dict[str, str] = {}
    for line in event.encode().decode().split("\n"):
        if line and not line.startswith(":"):
            name, _, value = line.partition(":")
            read[name] = value.removeprefix(" ")
    return read


def problems(message: dict[str, Any]) -> list[str]:
    errors = [e.message for e in validator(STREAM["schema"], SPEC).iter_errors(message)]
    if errors:
        return errors
    (declared,) = (
        alternative
        for alternative in STREAM["schema"]["oneOf"]
        if alternative["properties"]["event"]["const"] == message["event"]
    )
    data = declared["properties"]["data"]
    assert data["contentMediaType"] == "application/json"
    content = validator(data["contentSchema"], SPEC)
    return [e.message for e in content.iter_errors(orjson.loads(message["data"]))]


def published(event: Event) -> dict[str, str]:
    """The event as the stream relays it from the shop's channel."""
    relayed = event_from_message(envelope(event))
    assert relayed is not None
    return fields(relayed)


@pytest.mark.parametrize(
    "message",
    [published(CHANGED), published(DASHBOARD_UPDATED), fields(resync_event())],
    ids=["order.status_changed", "dashboard.updated", "stream.resync"],
)
def test_every_event_the_code_sends_is_declared(message: dict[str, str]) -> None:
    assert problems(message) == []


@pytest.mark.parametrize(
    "event",
    [
        {**CHANGED, "order_id": 7},  # ids are strings
        {**CHANGED, "to_status": "paid"},  # not an order status
        {key: value for key, value in CHANGED.items() if key != "at"},
        {"type": "order.created"},  # no such event
    ],
    ids=["integer id", "unknown status", "no at", "undeclared event"],
)
def test_an_event_unlike_its_declaration_is_caught(event: Event) -> None:
    assert problems(published(event)) != []


def test_the_declared_example_is_an_event() -> None:
    assert problems(STREAM["example"]) == []
    assert orjson.loads(STREAM["example"]["data"])["type"] == STREAM["example"]["event"]
