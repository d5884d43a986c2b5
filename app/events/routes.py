from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from app.core.errors import ServiceUnavailable, Unauthorized, problem_responses
from app.deps import CallerDep, ResourcesDep
from app.events.publish import channel
from app.events.stream import event_stream

router = APIRouter(tags=["Events"])

SUBSCRIBE_TIMEOUT_S = 2.0

DESCRIPTION = """\
Server-sent events (`text/event-stream`) for the calling key's shop, so badges and figures
update without polling. Each message has `id:`, `event:` (the type) and `data:` (a JSON object
whose `type` repeats it):

- `order.status_changed`: `order_id`, `external_id`, `from_status`, `to_status`, `at`.
- `stream.resync`: sent first when the client reconnects with `Last-Event-ID`; refetch lists.

Events are live-only: nothing is stored or replayed, and `Last-Event-ID` only triggers
`stream.resync`. A comment line keeps the connection alive every 15 s; the server ends a
stream after 30 minutes and `retry:` tells `EventSource` to reconnect after 3 s.
"""


@router.get(
    "/v1/events",
    operation_id="streamEvents",
    summary="Stream live events",
    description=DESCRIPTION,
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The event stream.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problem_responses(Unauthorized, ServiceUnavailable),
    },
)
async def stream_events(
    request: Request,
    res: ResourcesDep,
    caller: CallerDep,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Sent by `EventSource` when reconnecting."),
    ] = None,
) -> StreamingResponse:
    pubsub = res.broker.redis.pubsub()
    try:
        # Subscribed before the 200 goes out: an open stream never misses a later event.
        with anyio.fail_after(SUBSCRIBE_TIMEOUT_S):
            await pubsub.subscribe(channel(res.settings.queue_name, caller.shop.id))
    except (OSError, RedisError, TimeoutError) as exc:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        raise ServiceUnavailable("live events are unavailable; retry shortly") from exc
    return StreamingResponse(
        event_stream(pubsub, request.is_disconnected, resync=last_event_id is not None),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
