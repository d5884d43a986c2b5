from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Header
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse

from app.core.errors import ServiceUnavailable, Unauthorized, problem_responses
from app.deps import CallerDep, ResourcesDep
from app.events.publish import channel
from app.events.schemas import stream_schema
from app.events.stream import event_response

router = APIRouter(tags=["Events"])

SUBSCRIBE_TIMEOUT_S = 2.0

DESCRIPTION = """\
Server-sent events (`text/event-stream`) for the calling key's shop, so badges and figures
update without polling. Each message has `id:`, `event:` (the type) and `data:` (a JSON object
whose `type` repeats it). The response schema is that of one message, its `data` described by
`contentSchema`:

- `order.status_changed` (`OrderStatusChangedEvent`): `order_id`, `external_id`,
  `from_status`, `to_status`, `at`.
- `dashboard.updated` (`DashboardUpdatedEvent`): refetch the dashboard figures.
- `stream.resync` (`StreamResyncEvent`): sent first when the client reconnects with
  `Last-Event-ID`; refetch lists.

Events are live-only: nothing is stored or replayed, and `Last-Event-ID` only triggers
`stream.resync`. The stream opens with the comment `: connected` and `retry: 3000` (reconnect
after 3 s); a comment `: keep-alive` keeps the connection open every 15 s; the server ends a
stream after 30 minutes, and the client reconnects. On the wire:

    : connected
    retry: 3000

    id: 9f1c0d0c5b6e4f7a8d2e3b4c5a6f7e8d
    event: dashboard.updated
    data: {"type":"dashboard.updated"}

    : keep-alive
"""
EXAMPLE = {
    "id": "9f1c0d0c5b6e4f7a8d2e3b4c5a6f7e8d",
    "event": "order.status_changed",
    "data": (
        '{"type":"order.status_changed","order_id":"42","external_id":"820982911946154508",'
        '"from_status":"pending","to_status":"processed","at":"2026-11-25T22:42:13.512332+00:00"}'
    ),
}


@router.get(
    "/v1/events",
    operation_id="streamEvents",
    summary="Stream live events",
    description=DESCRIPTION,
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "The event stream; its schema is that of one event.",
            "content": {"text/event-stream": {"schema": stream_schema(), "example": EXAMPLE}},
        },
        **problem_responses(Unauthorized, ServiceUnavailable),
    },
)
async def stream_events(
    res: ResourcesDep,
    caller: CallerDep,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Sent by `EventSource` when reconnecting."),
    ] = None,
) -> EventSourceResponse:
    pubsub = res.broker.redis.pubsub()
    try:
        # Subscribed before the 200 goes out: an open stream never misses a later event.
        with anyio.fail_after(SUBSCRIBE_TIMEOUT_S):
            await pubsub.subscribe(channel(res.settings.queue_name, caller.shop.id))
    except (OSError, RedisError, TimeoutError) as exc:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        raise ServiceUnavailable("live events are unavailable; retry shortly") from exc
    return event_response(pubsub, resync=last_event_id is not None)
