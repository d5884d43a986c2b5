"""A Python client generated from `openapi.yaml` runs the merchant's scenario against a real
server: create a shop, receive a signed `orders/paid`, review it, read the customer's balance.

Nothing here is hand-written HTTP: every call is one of the generated client's typed functions,
so a schema a generator cannot read, or an answer the generated models cannot parse, fails here.
"""

from __future__ import annotations

import importlib
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn

from app.config import Settings
from app.main import create_app
from app.openapi import SPEC_PATH
from app.shopify.payloads import sign
from tests.payloads import new_order_id, paid_order
from tests.support import ADMIN_TOKEN
from workers.worker import build_worker

pytestmark = pytest.mark.slow

PACKAGE = "cashback_generated_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client openapi-python-client generates from the committed document, imported."""
    root = tmp_path_factory.mktemp("python-client")
    command = [str(GENERATOR), "generate", "--path", str(SPEC_PATH), "--meta", "none"]
    result = subprocess.run(
        [*command, "--output-path", str(root / PACKAGE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The generator only warns about schemas it cannot read, and leaves them out of the client.
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def load(name: str) -> Any:
    """A module of the generated package, e.g. `api.orders.list_orders`."""
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    """The app under a real uvicorn server on 127.0.0.1, on a port the OS picked."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    uv_server = uvicorn.Server(config)
    thread = threading.Thread(target=uv_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv_server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv_server.should_exit = True
        thread.join(timeout=15)
        sock.close()


async def run_worker(settings: Settings) -> None:
    worker = build_worker(settings, burst=True, handle_signals=False, cron_jobs=[])
    try:
        await worker.main()
    finally:
        await worker.close()


async def test_the_generated_client_reviews_an_order_against_a_real_server(
    generated: ModuleType, server: str, settings: Settings
) -> None:
    models = load("models")
    create_shop = load("api.operator.create_shop")
    update_shop_settings = load("api.settings.update_shop_settings")
    receive_shopify_webhook = load("api.webhooks.receive_shopify_webhook")
    list_orders = load("api.orders.list_orders")
    get_order = load("api.orders.get_order")
    approve_order = load("api.review.approve_order")
    get_customer = load("api.customers.get_customer")
    list_customer_ledger = load("api.customers.list_customer_ledger")

    # The operator creates the shop with the operator token.
    operator = generated.AuthenticatedClient(base_url=server, token=ADMIN_TOKEN)
    created = await create_shop.asyncio(
        client=operator, body=models.ShopCreate(domain="client.myshopify.com", currency="USD")
    )
    assert isinstance(created, models.ShopCreated), created
    assert created.processing_mode == models.ProcessingMode.AUTOMATIC
    shop = generated.AuthenticatedClient(base_url=server, token=created.api_key)

    # The merchant reviews every order.
    changed = await update_shop_settings.asyncio(
        client=shop, body=models.SettingsUpdate(processing_mode=models.ProcessingMode.MANUAL)
    )
    assert isinstance(changed, models.SettingsChanged), changed
    assert changed.processing_mode == models.ProcessingMode.MANUAL

    # Shopify sends a signed orders/paid: the signature covers the bytes the client sends.
    external_id = new_order_id()
    body = models.ReceiveShopifyWebhookBody.from_dict(paid_order(id=external_id))
    raw = httpx.Request("POST", server, json=body.to_dict()).content
    ack = await receive_shopify_webhook.asyncio(
        client=generated.Client(base_url=server),
        body=body,
        x_shopify_hmac_sha_256=sign(raw, created.webhook_secret),
        x_shopify_shop_domain=created.domain,
        x_shopify_topic="orders/paid",
        x_shopify_event_id=str(uuid.uuid4()),
        x_shopify_api_version="2026-10",
    )
    assert isinstance(ack, models.WebhookAck), ack
    assert ack.result == models.WebhookResult.ACCEPTED
    await run_worker(settings)

    # The review queue lists it, pending, with its calculated cashback.
    queue = await list_orders.asyncio(
        client=shop, status="pending,held", sort=models.OrderSort.CREATED_AT, limit=50
    )
    assert isinstance(queue, models.OrderList), queue
    [pending] = queue.items
    assert (pending.external_id, pending.status) == (str(external_id), models.OrderStatus.PENDING)
    assert (pending.cashback_amount, pending.currency) == ("4.38", "USD")
    assert queue.next_cursor is None

    # Approving a stale copy is refused with a problem document; the fresh ETag succeeds.
    detail = await get_order.asyncio_detailed(pending.id, client=shop)
    assert isinstance(detail.parsed, models.OrderRead), detail.content
    assert detail.parsed.allowed_actions == [
        models.OrderReadAllowedActionsItem.APPROVE,
        models.OrderReadAllowedActionsItem.REJECT,
        models.OrderReadAllowedActionsItem.HOLD,
    ]
    etag = detail.headers["ETag"]
    stale = await approve_order.asyncio(pending.id, client=shop, if_match='"999"')
    assert isinstance(stale, models.Problem), stale
    assert (stale.status, stale.code) == (412, "version_mismatch")
    approved = await approve_order.asyncio(
        pending.id, client=shop, body=models.ApproveRequest(), if_match=etag
    )
    assert isinstance(approved, models.OrderRead), approved
    assert (approved.status, approved.credited_amount) == (models.OrderStatus.PROCESSED, "4.38")
    again = await approve_order.asyncio(pending.id, client=shop)
    assert isinstance(again, models.Problem) and again.code == "order_status_conflict", again

    # The customer's balance is the credit, as a decimal string with its currency.
    assert isinstance(approved.customer_id, str)
    customer = await get_customer.asyncio(approved.customer_id, client=shop)
    assert isinstance(customer, models.CustomerRead), customer
    assert (customer.balance, customer.currency) == ("4.38", "USD")
    ledger = await list_customer_ledger.asyncio(approved.customer_id, client=shop, limit=10)
    assert isinstance(ledger, models.LedgerEntryList), ledger
    assert [(e.kind, e.amount, e.order_id) for e in ledger.items] == [
        (models.EntryKind.CREDIT, "4.38", pending.id)
    ]
    assert (await list_orders.asyncio(client=shop, status="pending")).items == []
