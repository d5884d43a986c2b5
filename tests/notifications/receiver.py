"""A stand-in for a merchant's webhook endpoint: a real HTTP server on 127.0.0.1 that records
what it receives and answers as told."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        payload: dict[str, Any] = orjson.loads(self.body)
        return payload


@dataclass
class Receiver:
    base_url: str = ""
    requests: list[Received] = field(default_factory=list)
    status: int = 204
    answers: list[int] = field(default_factory=list)  # answered first, one per request
    delay_s: float = 0.0

    def fail_next(self, times: int, status: int = 500) -> None:
        self.answers += [status] * times

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def _handle(self, request: Request) -> PlainTextResponse:
        self.requests.append(
            Received(request.url.path, dict(request.headers), await request.body())
        )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status = self.answers.pop(0) if self.answers else self.status
        # A 204 carries no body.
        return PlainTextResponse(f"answered {status}" if status != 204 else "", status_code=status)


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{path:path}", receiver._handle, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    receiver.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", timeout_graceful_shutdown=1)
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not serving.done(), "the receiver did not start"
            await asyncio.sleep(0.01)
        yield receiver
    finally:
        server.should_exit = True
        await serving
        sock.close()


def verify_signature(secret: str, received: Received, *, tolerance_s: int = 300) -> None:
    """Standard Webhooks verification as a receiver would write it from the spec."""
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_") :])
    msg_id = received.headers["webhook-id"]
    timestamp = received.headers["webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) <= tolerance_s
    to_sign = msg_id.encode() + b"." + timestamp.encode() + b"." + received.body
    expected = base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1) for s in received.headers["webhook-signature"].split(" ")]
    assert any(
        version == "v1" and hmac.compare_digest(sig, expected) for version, sig in offered
    ), received.headers["webhook-signature"]
