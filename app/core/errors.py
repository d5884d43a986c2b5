"""RFC 9457 problem details: every error is an exception that knows its status and stable code."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `body.amount`.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="URI naming the kind of problem.", examples=["about:blank"])
    title: str = Field(description="Short, human-readable summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(default=None, description="What went wrong this time.")
    code: str = Field(description="Stable, machine-readable error code.", examples=["not_found"])
    errors: list[FieldError] | None = Field(default=None, description="Field errors (422 only).")


class ProblemError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.extra = extra


class NotFound(ProblemError):
    status, code, title = 404, "not_found", "Not found"


class Unauthorized(ProblemError):
    status, code, title = 401, "unauthorized", "Missing or invalid credentials"


class Forbidden(ProblemError):
    status, code, title = 403, "forbidden", "Not allowed for this API key"


class Conflict(ProblemError):
    status, code, title = 409, "conflict", "Conflict"


class PayloadTooLarge(ProblemError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class UnreadableBody(ProblemError):
    """FastAPI's own answer to a body it cannot decode at all (not UTF-8 JSON)."""

    status, code, title = 400, "bad_request", "Bad request"


class ServiceUnavailable(ProblemError):
    status, code, title = 503, "service_unavailable", "Service temporarily unavailable"


class InvalidCursor(ProblemError):
    status, code, title = 400, "invalid_cursor", "Invalid pagination cursor"


_STATUS_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Missing or invalid credentials"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


# Seconds a client should wait before retrying a 429 or 503 (every one carries `Retry-After`).
RETRY_AFTER_S = 5
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    retry_after: int | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = Problem(type="about:blank", title=title, status=status, detail=detail, code=code)
    content = body.model_dump(exclude_none=True) | extra
    if retry_after is None and status in (429, 503):
        retry_after = RETRY_AFTER_S
    answer_headers = dict(headers or {})
    if retry_after is not None:
        answer_headers["Retry-After"] = str(retry_after)
    return JSONResponse(
        content, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=answer_headers
    )


def problem_of(exc: ProblemError) -> JSONResponse:
    """The problem document of a ProblemError, as every route answers it."""
    return problem_response(exc.status, exc.code, exc.title, exc.detail, **exc.extra)


def http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """The problem document of an HTTPException (the router's 404 and 405, the body limit's
    413), as every route answers it."""
    code, title = _STATUS_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})  # e.g. WWW-Authenticate
    if exc.status_code == 405 and not isinstance(exc, MethodRefused):
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem_response(exc.status_code, code, title, detail, headers=headers)


def problem_responses(*errors: type[ProblemError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: each status it can answer with a problem document."""
    out: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        line = f"{error.title}: `{error.code}`"
        if error.status in out:  # several problems share a status: each with its `code`
            out[error.status]["description"] += f"; {line}"
            continue
        out[error.status] = problem_declaration(line, error.status)
    return out


def problem_declaration(description: str, status: int) -> dict[str, Any]:
    """One OpenAPI response answered with a problem document (429 and 503 with Retry-After)."""
    declared: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status in (429, 503):
        declared["headers"] = dict(RETRY_AFTER_HEADER)
    return declared


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (one route per method: Starlette's own
    `Allow` names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if getattr(getattr(route, "endpoint", None), "refuses", False):
            continue  # a `refuse_methods` route serves nothing
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


class MethodRefused(StarletteHTTPException):
    """405 from `refuse_methods`, whose `Allow` is exact."""


def refuse_methods(router: APIRouter, path: str, allowed: Sequence[str]) -> None:
    """Answer 405 with `Allow: <allowed>` for the other methods of a static path that a
    parameterised sibling would otherwise take: without it `GET /v1/orders/bulk-approve`
    is read as the order id "bulk-approve" (422) rather than a method the path does not take."""

    async def refuse() -> Response:
        raise MethodRefused(405, headers={"Allow": ", ".join(allowed)})

    refuse.refuses = True  # type: ignore[attr-defined]
    router.add_api_route(
        path,
        refuse,
        methods=sorted({"GET", "PUT", "PATCH", "DELETE"} - set(allowed)),
        include_in_schema=False,
        response_model=None,
    )


def is_database_unavailable(exc: BaseException) -> bool:
    """A failure to reach PostgreSQL (refused, reset, timed out, starting up), not a bug."""
    if isinstance(exc, OSError | TimeoutError | sa_exc.TimeoutError | sa_exc.InterfaceError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return (
            exc.connection_invalidated
            or isinstance(exc, sa_exc.OperationalError)
            or (type(exc.orig).__name__ in _CONNECTION_ERRORS)
        )
    return False


def is_rejected_value(exc: BaseException) -> bool:
    """PostgreSQL (or asyncpg before it) refusing a value the request carried: an id past
    BIGINT, a NUL in text. SQLSTATE class 22 is "data exception"."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    causes = [exc.orig, getattr(exc.orig, "__cause__", None)]
    return any(
        str(getattr(cause, "sqlstate", "") or "").startswith("22")
        or type(cause).__name__ == "DataError"
        for cause in causes
        if cause is not None
    )


_CONNECTION_ERRORS = frozenset(
    {
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "AdminShutdownError",
        "TooManyConnectionsError",
    }
)


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_of(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            FieldError(field=".".join(str(p) for p in err["loc"]), message=err["msg"]).model_dump()
            for err in exc.errors()
        ]
        return problem_response(
            422, "validation_error", "Request validation failed", "See `errors`.", errors=errors
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return http_problem(request, exc)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        if is_rejected_value(exc):
            logger.warning("the database refused a value: %r", exc)
            return problem_response(
                422,
                "invalid_value",
                "A value is out of range",
                "A value in the request cannot be stored (too large, or holds a NUL character).",
            )
        if is_database_unavailable(exc):
            logger.warning("database unavailable: %r", exc)
            return problem_response(
                503, "database_unavailable", "Database unavailable", "Retry shortly."
            )
        logger.exception("unhandled error", exc_info=exc)
        return problem_response(500, "internal_error", "Internal server error")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
