"""One ASGI middleware: the request id (honoured or generated, bound, echoed), request metrics
by route template, and webhook counts read from the route's answer (the route stays plain)."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import REQUEST_ID_HEADER, bind, request_id_from, unbind
from app.observability.metrics import ApiMetrics

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/shopify"
UNMATCHED_ROUTE = "unmatched"
REJECTED = "rejected"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode()
_TOPIC_KEYS = (b"x-shopify-topic", b"shopify-topic")  # both spellings Shopify sends


def route_template(scope: Scope) -> str:
    """The path template (`/v1/orders/{order_id}`) of the route that answered; never the raw
    path, so label values stay few."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


# The webhook route's answers (see app.shopify.webhooks), known without parsing them.
_KNOWN_RESULTS = {
    f'{{"result":"{result}"}}'.encode(): result for result in ("accepted", "duplicate", "malformed")
}


def webhook_result(status: int, body: bytes) -> str:
    if status != 200:
        return REJECTED
    known = _KNOWN_RESULTS.get(body)
    if known is not None:
        return known
    try:
        result = json.loads(body).get("result")
    except (ValueError, AttributeError):
        return "unknown"
    return str(result) if result else "unknown"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Two headers are read: one pass over the raw list, no Headers object.
        caller_id: str | None = None
        topic = ""
        for key, value in scope["headers"]:
            if key == _REQUEST_ID_KEY and caller_id is None:
                caller_id = value.decode("latin-1")
            elif key in _TOPIC_KEYS:
                topic = value.decode("latin-1").strip()
        request_id = request_id_from(caller_id)
        request_id_header = (_REQUEST_ID_KEY, request_id.encode("latin-1"))
        is_webhook = scope["path"] == WEBHOOK_PATH and scope["method"] == "POST"
        status = 500
        webhook_body = bytearray()

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The app never sets X-Request-Id itself: appended, not searched for.
                message["headers"] = [*message.get("headers", ()), request_id_header]
            elif message["type"] == "http.response.body" and is_webhook and status == 200:
                webhook_body.extend(message.get("body", b""))
            await send(message)

        started = time.perf_counter()
        token = bind(request_id=request_id)  # not `bound()`: no generator per request
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            self._record(scope, status, time.perf_counter() - started)
            if is_webhook:
                self.metrics.record_webhook(topic, webhook_result(status, bytes(webhook_body)))
            unbind(token)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        self.metrics.record_request(scope["method"], route_template(scope), status, seconds)
