"""What `GET /v1/events` sends, declared for openapi.yaml: each event's JSON `data` (an object
whose `type` repeats the SSE `event` name) and the SSE event carrying it. Schemathesis reads an
event stream's `schema` as the shape of one event (`event`, `id`, `data`, as OpenAPI 3.1 has
no `itemSchema`) and checks `data` against its `contentSchema`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from app.core.ids import Id
from app.orders.state import OrderStatus

REF_TEMPLATE = "#/components/schemas/{model}"
# `publish.envelope` gives each published event a uuid4 in hex.
PUBLISHED_ID = {
    "type": "string",
    "pattern": "^[0-9a-f]{32}$",
    "examples": ["9f1c0d0c5b6e4f7a8d2e3b4c5a6f7e8d"],
}


class OrderStatusChangedEvent(BaseModel):
    """An order of the shop moved from one status to another (its badge changes)."""

    type: Literal["order.status_changed"]
    order_id: Id
    external_id: str = Field(description="The order's id on Shopify.")
    from_status: OrderStatus
    to_status: OrderStatus
    at: datetime = Field(description="When the status changed.")


class DashboardUpdatedEvent(BaseModel):
    """The shop's dashboard figures changed: refetch `GET /v1/metrics/dashboard`. Sent once
    per committed change, however many orders it touched."""

    type: Literal["dashboard.updated"]


class StreamResyncEvent(BaseModel):
    """Sent first to a client that reconnects with `Last-Event-ID`: events are live-only, so
    it may have missed some; refetch what is on screen."""

    type: Literal["stream.resync"]


# Each SSE `event` name, the model of its `data` and the schema of its `id`.
EVENTS: dict[str, tuple[type[BaseModel], dict[str, Any]]] = {
    "order.status_changed": (OrderStatusChangedEvent, PUBLISHED_ID),
    "dashboard.updated": (DashboardUpdatedEvent, PUBLISHED_ID),
    "stream.resync": (StreamResyncEvent, {"const": "resync"}),
}


def data_components() -> dict[str, Any]:
    """The data models as `components.schemas` entries."""
    _, schema = models_json_schema(
        [(model, "serialization") for model, _ in EVENTS.values()], ref_template=REF_TEMPLATE
    )
    components: dict[str, Any] = schema["$defs"]
    return components


def stream_schema() -> dict[str, Any]:
    """The schema of one SSE event on the stream: one of the named events, its `data` JSON."""
    return {
        "oneOf": [
            {
                "type": "object",
                "title": name,
                "properties": {
                    "event": {"const": name},
                    "id": id_schema,
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"$ref": REF_TEMPLATE.format(model=model.__name__)},
                    },
                },
                "required": ["event", "id", "data"],
            }
            for name, (model, id_schema) in EVENTS.items()
        ]
    }
