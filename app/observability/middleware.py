"""One ASGI middleware: the request id (honoured or generated, bound, echoed), request metrics
by route template, and webhook counts read from the route's answer (the route stays plain)."""

from __future__ import annotations

import json
import logging
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.context import REQUEST_ID_HEADER, bound, request_id_from
from app.observability.metrics import ApiMetrics

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/shopify"
UNMATCHED_ROUTE = "unmatched"
REJECTED = "rejected"


def route_template(scope: Scope) -> str:
    """The path template (`/v1/orders/{order_id}`) of the route that answered; never the raw
    path, so label values stay few."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def webhook_result(status: int, body: bytes) -> str:
    if status != 200:
        return REJECTED
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
        headers = Headers(scope=scope)
        request_id = request_id_from(headers.get(REQUEST_ID_HEADER))
        is_webhook = scope["path"] == WEBHOOK_PATH and scope["method"] == "POST"
        status = 500
        webhook_body = bytearray()

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            elif message["type"] == "http.response.body" and is_webhook and status == 200:
                webhook_body.extend(message.get("body", b""))
            await send(message)

        started = time.perf_counter()
        with bound(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_request_id)
            finally:
                self._record(scope, status, time.perf_counter() - started)
                if is_webhook:
                    topic = headers.get("x-shopify-topic", "").strip()
                    self.metrics.record_webhook(topic, webhook_result(status, bytes(webhook_body)))

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        self.metrics.record_request(scope["method"], route_template(scope), status, seconds)
