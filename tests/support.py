"""Builders and helpers the tests share: signed deliveries, shops, a real worker run."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import uvicorn
from sqlalchemy import func, select

from app.config import Settings
from app.core.resources import Resources
from app.ledger.models import LedgerEntry
from app.main import create_app
from app.shopify.payloads import sign
from app.shops import service as shop_service
from app.shops.models import ApiKeyRole, ProcessingMode, Shop
from workers.worker import build_worker

ADMIN_TOKEN = "test-admin-token"
NO_REDIS = "redis://127.0.0.1:1/0"
NO_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:1/none"


@dataclass
class ShopHandle:
    id: int
    domain: str
    api_key: str
    webhook_secret: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def shopify_headers(
    shop: ShopHandle | None,
    body: bytes,
    *,
    topic: str = "orders/paid",
    event_id: str | None = None,
    secret: str | None = None,
    domain: str | None = None,
) -> dict[str, str]:
    key = secret if secret is not None else (shop.webhook_secret if shop else "x")
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, key),
        "X-Shopify-Shop-Domain": domain or (shop.domain if shop else "nobody.myshopify.com"),
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
    }


@dataclass
class Stack:
    settings: Settings
    resources: Resources
    client: httpx.AsyncClient

    async def create_shop(
        self,
        domain: str | None = None,
        *,
        currency: str = "USD",
        mode: ProcessingMode = ProcessingMode.automatic,
    ) -> ShopHandle:
        domain = domain or f"shop-{uuid.uuid4().hex[:8]}.myshopify.com"
        async with self.resources.sessionmaker() as session:
            created = await shop_service.create_shop(
                session, domain=domain, currency=currency, mode=mode
            )
            await session.commit()
        return ShopHandle(
            created.shop.id, created.shop.domain, created.api_key, created.shop.webhook_secret
        )

    async def add_key(self, shop: ShopHandle, role: ApiKeyRole) -> dict[str, str]:
        """Headers for a new API key of `shop` with `role`."""
        async with self.resources.sessionmaker() as session:
            db_shop = await session.get_one(Shop, shop.id)
            raw = await shop_service.issue_api_key(session, db_shop, name=role.value, role=role)
            await session.commit()
        return {"Authorization": f"Bearer {raw}"}

    async def deliver(
        self,
        shop: ShopHandle,
        payload: dict[str, Any] | bytes,
        *,
        topic: str = "orders/paid",
        event_id: str | None = None,
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = shopify_headers(shop, body, topic=topic, event_id=event_id)
        return await self.client.post("/webhooks/shopify", content=body, headers=headers)

    @asynccontextmanager
    async def degraded_client(self, **unreachable: str) -> AsyncIterator[httpx.AsyncClient]:
        """A client of the same app whose `database_url` or `redis_url` points at nothing."""
        resources = Resources.open(self.settings.model_copy(update=unreachable))
        transport = httpx.ASGITransport(
            app=create_app(self.settings, resources), raise_app_exceptions=False
        )
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client
        finally:
            await resources.close()

    async def order(self, shop: ShopHandle, external_id: int | str) -> dict[str, Any]:
        """The order the platform knows as `external_id`, as GET /v1/orders/{id} shows it."""
        listing = await self.client.get(
            "/v1/orders", headers=shop.auth, params={"external_id": external_id}
        )
        [summary] = listing.json()["items"]
        detail: dict[str, Any] = (
            await self.client.get(f"/v1/orders/{summary['id']}", headers=shop.auth)
        ).json()
        return detail

    async def run_worker(self, *, max_jobs: int = 10) -> None:
        """Run a real arq worker (own engine and Redis connections) until the queue is empty."""
        worker = build_worker(
            self.settings, burst=True, handle_signals=False, max_jobs=max_jobs, cron_jobs=[]
        )
        try:
            await worker.main()
        finally:
            await worker.close()

    async def credit_count(self, shop: ShopHandle) -> int:
        async with self.resources.sessionmaker() as session:
            stmt = select(func.count()).where(LedgerEntry.shop_id == shop.id)
            return int((await session.execute(stmt)).scalar_one())


@asynccontextmanager
async def open_stack(settings: Settings) -> AsyncIterator[Stack]:
    """The real app over ASGI with `settings`, its resources closed (and queue dropped) after."""
    resources = Resources.open(settings)
    app = create_app(settings, resources)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Stack(settings, resources, client)
    finally:
        await resources.broker.redis.delete(settings.queue_name)
        await resources.close()


async def until(check: Callable[[], Awaitable[bool]], limit_s: float, what: str) -> float:
    """Wait for `check` to hold (polling it), at most `limit_s` seconds; returns how long."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < limit_s, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def served(
    settings: Settings, resources: Resources, *, log_level: str = "warning"
) -> AsyncIterator[str]:
    """The app on a real socket (httpx's ASGI transport buffers whole responses, so a stream
    needs one); yields its base URL."""
    async with serving(create_app(settings, resources), log_level=log_level) as url:
        yield url


@asynccontextmanager
async def serving(
    app: Any, *, log_level: str = "warning", lifespan: Literal["auto", "on", "off"] = "auto"
) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port, in this event loop; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level=log_level, lifespan=lifespan, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def started() -> bool:
        return server.started or task.done()

    try:
        await until(started, 10, "the server to start")
        assert server.started, "the server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
