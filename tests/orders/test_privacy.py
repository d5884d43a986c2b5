"""Privacy topics: customer redaction, shop deletion."""

from __future__ import annotations

from sqlalchemy import func, select

from app.inbox.models import WebhookEvent
from app.ledger.models import Customer, LedgerEntry
from app.notifications.models import OutboxMessage
from app.orders.models import Order
from app.shops.models import Shop
from tests.payloads import new_order_id, paid_order
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


async def test_a_guest_redaction_erases_the_listed_orders_and_deliveries_with_no_customer_row(
    stack: Stack,
) -> None:
    """A guest checkout leaves no customer account: Shopify's request still names the orders
    (`orders_to_redact`) and the email, and everything naming them is erased."""
    shop = await stack.create_shop()
    guest, other = new_order_id(), new_order_id()
    guest_email = "sam.guest@example.com"
    await stack.deliver(shop, paid_order(id=guest, customer=None, email=guest_email))
    await stack.deliver(shop, paid_order(id=other, customer=None, email="kept@example.com"))
    await stack.run_worker()
    request = {
        "shop_domain": shop.domain,
        "customer": {"id": 999000111, "email": guest_email},  # never seen as an account
        "orders_to_redact": [guest],
    }
    await stack.deliver(shop, request, topic="customers/redact")
    await stack.run_worker()

    async with stack.resources.sessionmaker() as session:
        orders = {o.external_id: o for o in await session.scalars(select(Order).order_by(Order.id))}
        bodies = [e.body for e in await session.scalars(select(WebhookEvent))]
        customers = await session.scalar(select(func.count()).select_from(Customer))
    redacted, kept = orders[str(guest)], orders[str(other)]
    assert redacted.email is None and redacted.snapshot is not None
    assert redacted.snapshot["email"] is None
    assert redacted.status == "awaiting_customer"  # its facts and amounts stay
    assert kept.email == "kept@example.com"  # another guest's order is not touched
    assert not any(guest_email.encode() in body for body in bodies)
    assert not any(str(guest).encode() in body for body in bodies)
    assert any(b"kept@example.com" in body for body in bodies)
    assert customers == 0


async def test_a_data_request_exports_the_listed_guest_orders(stack: Stack) -> None:
    from app.privacy.service import export_customer

    shop = await stack.create_shop()
    guest = new_order_id()
    await stack.deliver(shop, paid_order(id=guest, customer=None, email="g@example.com"))
    await stack.run_worker()
    async with stack.resources.sessionmaker() as session:
        db_shop = await session.get_one(Shop, shop.id)
        export = await export_customer(session, db_shop, "999000222", orders_requested=[str(guest)])
        nothing = await export_customer(session, db_shop, "999000222")
    assert export is not None and nothing is None
    assert export["customer"] == {"id": "999000222"}
    assert [(o["id"], o["cashback_amount"]) for o in export["orders"]] == [(str(guest), "4.38")]
    assert export["ledger"] == []
