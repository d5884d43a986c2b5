"""create_app(): the FastAPI application with its lifespan, middleware and error handlers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app import api_docs
from app.audit.routes import router as audit_router
from app.catalog.routes import router as catalog_router
from app.config import Settings, get_settings
from app.console.routes import console_router
from app.console.routes import router as me_router
from app.core.bodylimit import BodyLimitMiddleware
from app.core.errors import (
    PROBLEM_MEDIA_TYPE,
    PayloadTooLarge,
    Problem,
    UnreadableBody,
    install_error_handlers,
    problem_responses,
)
from app.core.idempotency import REPLAYED_HEADER, IdempotencyMiddleware, document_idempotency
from app.core.ratelimit import TooManyRequests
from app.core.resources import Resources
from app.events.routes import router as events_router
from app.events.schemas import data_components as event_data_components
from app.health.routes import router as health_router
from app.ledger.routes import router as customers_router
from app.metrics.routes import router as metrics_router
from app.observability.metrics import ApiMetrics
from app.observability.middleware import ObservabilityMiddleware
from app.observability.routes import router as observability_router
from app.orders.routes import review_router
from app.orders.routes import router as orders_router
from app.program.routes import router as program_router
from app.shopify.routes import router as shopify_router
from app.shopify.webhooks import WebhookFastPath
from app.shopify.webhooks import router as webhooks_router
from app.shops.account_routes import router as account_router
from app.shops.routes import router as shops_router

API_VERSION = "1.0.0"  # semver of the HTTP contract: see docs/api/CHANGELOG.md
REF_TEMPLATE = "#/components/schemas/{model}"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
DESCRIPTION = """\
Cashback processing: Shopify order webhooks in, exact store credit out.

Amounts are decimal strings next to their ISO 4217 `currency`; ids are strings; errors are
RFC 9457 `application/problem+json` documents with a stable `code`.
"""


ROUTERS = (
    webhooks_router,
    shopify_router,
    orders_router,
    review_router,
    customers_router,
    program_router,
    metrics_router,
    catalog_router,
    account_router,
    me_router,
    audit_router,
    events_router,
    shops_router,
    health_router,
    observability_router,
    console_router,  # the merchant console's files at /console
)


def _operation_id(route: APIRoute) -> str:
    # Every route declares its own operationId; this is only a fallback.
    return route.name


def create_app(settings: Settings | None = None, resources: Resources | None = None) -> FastAPI:
    """Build the app. `resources` lets tests (and `cashback serve`) share already-open ones."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if resources is not None:
            app.state.resources = resources
            yield
            return
        app.state.resources = Resources.open(settings)
        # What startup built lives as long as the process: keep it out of the collector's
        # full passes, which otherwise stall every request in flight for milliseconds.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.resources.close()

    app = FastAPI(
        title="Cashback API",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        openapi_tags=api_docs.TAGS,
        separate_input_output_schemas=False,
        # The service's own metrics are Prometheus (/metrics), and it installs no OpenTelemetry
        # provider; FastAPI's hooks would look for one on every request (4% of a webhook).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    if resources is not None:
        app.state.resources = resources
    app.add_middleware(WebhookFastPath)  # innermost: everything else wraps webhooks too
    app.add_middleware(IdempotencyMiddleware)  # inside CORS: replays carry CORS headers too
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key"],
            expose_headers=["ETag", "Location", "Retry-After", REPLAYED_HEADER],
        )
    app.state.prometheus = ApiMetrics()
    app.add_middleware(BodyLimitMiddleware, limit=settings.body_limit)
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.prometheus)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = api_docs.document(
                document_idempotency(
                    describe_limits(
                        describe_validation_as_problems(
                            declare_event_data(
                                get_openapi(
                                    title=app.title,
                                    version=app.version,
                                    description=app.description,
                                    routes=app.routes,
                                    tags=api_docs.TAGS,
                                    # One schema per model: generated clients get one
                                    # `Program`, not `Program-Input` and `Program-Output`.
                                    separate_input_output_schemas=False,
                                )
                            )
                        )
                    ),
                    app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def declare_event_data(schema: dict[str, Any]) -> dict[str, Any]:
    """The `data` of each live event (GET /v1/events), which its `contentSchema` refers to."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, component in event_data_components().items():
        components.setdefault(name, component)
    return schema


def describe_validation_as_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents 422 with its own shape; this API answers 422 with a problem document."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            response = operation.get("responses", {}).get("422")
            if response is not None:
                declared = response.get("description", "")
                response["description"] = "Request validation failed (see `errors`): " + (
                    "`validation_error`" + (f"; {declared}" if "`" in declared else "")
                )
                response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": dict(PROBLEM_REF)}}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    problem = Problem.model_json_schema(ref_template=REF_TEMPLATE)
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    return schema


def describe_limits(schema: dict[str, Any]) -> dict[str, Any]:
    """Answers every route may give: 400 for a body that is not text, 413 past the body limit,
    429 after too many failed authentications (app.core.ratelimit)."""
    limits = problem_responses(UnreadableBody, PayloadTooLarge, TooManyRequests)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("400", limits[400])
                responses.setdefault("413", limits[413])
            if operation.get("security"):
                responses.setdefault("429", limits[429])
    _bound_integers(schema)
    return schema


INT64 = (-(2**63), 2**63 - 1)


def _bound_integers(node: Any) -> None:
    """Ids are PostgreSQL BIGINTs: say so for id parameters and id lists (a value past them is
    answered 422 `invalid_value`, see app.core.errors)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("parameters",) and isinstance(value, list):
                for parameter in value:
                    _bound(parameter.get("schema", {}))
            elif key == "ids" and isinstance(value, dict):
                _bound(value.get("items", {}))
            else:
                _bound_integers(value)
    elif isinstance(node, list):
        for value in node:
            _bound_integers(value)


def _bound(schema: dict[str, Any]) -> None:
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "integer":
            option.setdefault("minimum", INT64[0])
            option.setdefault("maximum", INT64[1])
