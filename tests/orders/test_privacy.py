"""Privacy topics: customer redaction, shop deletion."""

from __future__ import annotations

from sqlalchemy import func, select

from app.ledger.models import Customer, LedgerEntry
from app.notifications.models import OutboxMessage
from app.orders.models import Order
from app.shops.models import Shop
from app.webhooks.models import WebhookEvent
from tests.payloads import paid_order
from tests.support import Stack

CUSTOMER = "115310627314723954"


async def test_customer_redaction_erases_personal_data_and_keeps_the_money(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    await stack.client.patch(
        "/v1/shop/settings",
        headers=shop.auth,
        json={"notification_webhook_url": "http://127.0.0.1:1/down"},
    )
    await stack.deliver(shop, paid_order())
    await stack.run_worker()  # the credit notice waits in the outbox (the receiver is down)
    request = {
        "shop_domain": shop.domain,
        "customer": {"id": int(CUSTOMER), "email": "maria.lopez@example.com"},
        "orders_to_redact": [820982911946154508],
    }
    await stack.deliver(shop, request, topic="customers/redact")
    await stack.run_worker()

    async with stack.resources.sessionmaker() as session:
        customer = await session.scalar(select(Customer).where(Customer.external_id == CUSTOMER))
        order = await session.scalar(select(Order))
        bodies = [e.body for e in await session.scalars(select(WebhookEvent))]
        balance = await session.scalar(select(func.sum(LedgerEntry.amount)))
        [notice] = list(await session.scalars(select(OutboxMessage.payload)))
    assert customer is not None and order is not None
    assert (customer.email, customer.first_name, customer.last_name) == (None, None, None)
    assert order.email is None and order.snapshot is not None
    assert order.snapshot["customer"]["email"] is None
    assert not any(b"maria.lopez@example.com" in body for body in bodies)
    assert notice["customer"] == {"id": CUSTOMER, "email": None}
    assert (order.cashback_amount, balance) == (438, 438)  # amounts and ids stay
    detail = await stack.client.get(f"/v1/orders/{order.id}", headers=shop.auth)
    assert detail.json()["credited_amount"] == "4.38"


async def test_shop_redaction_deletes_the_shops_data_ledger_included(stack: Stack) -> None:
    shop = await stack.create_shop()
    other = await stack.create_shop()
    for each in (shop, other):
        await stack.deliver(each, paid_order())
    await stack.run_worker()
    await stack.deliver(shop, {"shop_domain": shop.domain}, topic="shop/redact")
    await stack.run_worker()
    async with stack.resources.sessionmaker() as session:
        shops = list(await session.scalars(select(Shop.id)))
        entries = await session.scalar(select(func.count()).select_from(LedgerEntry))
    assert shops == [other.id]
    assert entries == 1  # the other shop's credit
    assert (await stack.client.get("/v1/orders", headers=shop.auth)).status_code == 401
