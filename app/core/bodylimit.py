"""The request body limit for every route, counted as the bytes arrive (chunked bodies too)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem_response

TOO_LARGE = 413


class BodyLimitMiddleware:
    """Refuses a body past `limit` bytes with 413 before any of it is parsed: at once when
    `Content-Length` says so, else as soon as the streamed chunks go past it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            response = problem_response(
                TOO_LARGE, "payload_too_large", "Request body too large", self._detail()
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # An HTTPException passes through FastAPI's body reading untouched and
                    # is rendered as a problem document by the app's handler.
                    raise HTTPException(TOO_LARGE, self._detail())
            return message

        await self.app(scope, limited_receive, send)

    def _detail(self) -> str:
        return f"the body limit is {self.limit} bytes"
