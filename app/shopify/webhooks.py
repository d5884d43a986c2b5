from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import (
    PayloadTooLarge,
    ProblemError,
    Unauthorized,
    http_problem,
    problem_of,
    problem_responses,
)
from app.core.resources import Resources
from app.inbox import service
from app.inbox.intake import Intake
from app.observability.metrics import ApiMetrics
from app.shopify.app_config import WEBHOOK_PATH, app_of

router = APIRouter(tags=["Webhooks"])


class MissingEventId(ProblemError):
    status, code, title = 400, "missing_event_id", "Webhook headers incomplete"


class WebhookHeaderTooLong(ProblemError):
    status, code, title = 400, "webhook_header_too_long", "Webhook header too long"


# The inbox's column sizes (app.inbox.models.WebhookEvent), by header name without prefix.
_HEADER_LIMITS = {"topic": 64, "event-id": 255, "webhook-id": 255, "api-version": 32}


def shopify_header(headers: dict[str, str], name: str) -> str | None:
    """A Shopify header by its name without prefix (`topic`, `hmac-sha256`…): Shopify sends
    `X-Shopify-Topic` and, on its newer deliveries, `shopify-topic`; both are read."""
    return headers.get(f"x-shopify-{name}") or headers.get(f"shopify-{name}")


def triggered_at(value: str | None) -> datetime | None:
    """X-Shopify-Triggered-At (RFC 3339); None when absent or unreadable, never an error."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class WebhookResult(StrEnum):
    accepted = "accepted"
    duplicate = "duplicate"
    malformed = "malformed"


class WebhookAck(BaseModel):
    result: WebhookResult


# The answers, encoded once: the hot path builds no model per request.
_ACKS = {result: WebhookAck(result=result).model_dump_json().encode() for result in WebhookResult}


def intake_of(request: Request) -> Intake:
    """The app's intake, made on first use for the app's current resources."""
    state = request.app.state
    res: Resources = state.resources
    current: tuple[Resources, Intake] | None = getattr(state, "webhook_intake", None)
    if current is None or current[0] is not res:
        app = app_of(res.settings)
        current = (res, Intake(res.engine, res.broker, res.settings, app.secrets if app else ()))
        state.webhook_intake = current
    return current[1]


async def read_body(request: Request, limit: int, declared: str | None) -> bytes:
    """The raw body, refused with 413 past `limit` bytes (`declared`: Content-Length) before
    anything is parsed."""
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body limit is {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    WEBHOOK_PATH,
    operation_id="receiveShopifyWebhook",
    summary="Receive a Shopify webhook",
    description=(
        "Verifies `X-Shopify-Hmac-Sha256` on the raw body, stores the delivery once per topic "
        "and `X-Shopify-Event-Id` (or `X-Shopify-Webhook-Id`), and answers 200 only once it is "
        "committed. Shopify's headers are read with or without the `X-` prefix. Duplicates, "
        "unknown topics and malformed JSON with a valid signature are acknowledged with 200 "
        "too, so Shopify does not retry them."
    ),
    response_model=WebhookAck,
    responses=problem_responses(MissingEventId, Unauthorized, PayloadTooLarge),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def receive_shopify_webhook(request: Request) -> Response:
    intake = intake_of(request)
    # ASGI header names are lower case: one dict, no case-insensitive lookups.
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
    limit = request.app.state.resources.settings.body_limit
    body = await read_body(request, limit, headers.get("content-length"))
    domain = (shopify_header(headers, "shop-domain") or "").strip().lower()
    signature = shopify_header(headers, "hmac-sha256")
    if not domain or not signature:
        raise Unauthorized("missing X-Shopify-Shop-Domain or X-Shopify-Hmac-Sha256")
    shop_id = await intake.verified_shop(domain, body, signature)
    if shop_id is None:
        raise Unauthorized("the signature does not match a known shop")
    topic = (shopify_header(headers, "topic") or "").strip()
    webhook_id = shopify_header(headers, "webhook-id")
    event_key = shopify_header(headers, "event-id") or webhook_id
    if not topic or not event_key:
        raise MissingEventId("X-Shopify-Topic and X-Shopify-Event-Id or -Webhook-Id are required")
    for name, limit in _HEADER_LIMITS.items():
        if len(shopify_header(headers, name) or "") > limit:
            raise WebhookHeaderTooLong(f"X-Shopify-{name} is longer than {limit} characters")
    triggered = triggered_at(shopify_header(headers, "triggered-at"))
    stored = await intake.store(
        shop_id,
        service.Delivery(
            topic=topic,
            event_key=event_key,
            webhook_id=webhook_id,
            api_version=shopify_header(headers, "api-version"),
            body=body,
            triggered_at=triggered,
        ),
    )
    if triggered is not None:
        metrics: ApiMetrics = request.app.state.prometheus
        metrics.record_delivery_lag(topic, (datetime.now(UTC) - triggered).total_seconds())
    if stored.duplicate:
        result = WebhookResult.duplicate
    elif stored.malformed:
        result = WebhookResult.malformed
    else:
        result = WebhookResult.accepted
    return Response(_ACKS[result], media_type="application/json")


class WebhookFastPath:
    """`POST /webhooks/shopify` handed straight to its route's function, past the router.

    The busiest request of the service needs none of what the router does for the others
    (matching a hundred routes, solving dependencies, wrapping the handler for exceptions):
    a fifth of a webhook's CPU at saturation (py-spy). Innermost of the middleware, so the
    request id, metrics, body limit and the rest apply as to any route. Problems are answered
    as every route answers them (a ProblemError, and the body limit's HTTPException); anything
    else goes up to the app's error handler. The route stays declared: the OpenAPI document,
    and every other method and path, go through the router as before."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The declared route: its template labels the request's metrics, as the router's would.
        self.route = next(
            route
            for route in router.routes
            if isinstance(route, APIRoute) and route.path == WEBHOOK_PATH
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != WEBHOOK_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        request = Request(scope, receive)
        try:
            response = await receive_shopify_webhook(request)
        except ProblemError as exc:
            response = problem_of(exc)
        except HTTPException as exc:  # the body limit's 413, raised as the body is read
            response = http_problem(request, exc)
        await response(scope, receive, send)
