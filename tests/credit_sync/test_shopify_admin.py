"""The Admin API client against the stand-in, through the app's shared httpx client."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

from app.shopify import admin as shopify_admin
from app.shopify.admin import AdminApi, Applied, Refused, Retryable
from tests.shopify.admin_standin import TOKEN, FakeShopify
from tests.support import Stack

OWNER = "gid://shopify/Customer/7"


def api(shopify: FakeShopify, *, token: str = TOKEN, version: str = "2025-10") -> AdminApi:
    return AdminApi(shopify.url, version, token)


async def test_a_credit_returns_the_transaction_id(stack: Stack, shopify: FakeShopify) -> None:
    outcome = await shopify_admin.credit(
        stack.resources.http, api(shopify), OWNER, 1005, "JPY", notify=True, note="n"
    )
    [transaction] = shopify.transactions(OWNER, "JPY")
    assert outcome == Applied(transaction.id)
    assert shopify.mutations[0]["input"] == {
        "creditAmount": {"amount": "1005", "currencyCode": "JPY"}
    }


async def test_a_wrong_token_is_refused(stack: Stack, shopify: FakeShopify) -> None:
    outcome = await shopify_admin.credit(
        stack.resources.http, api(shopify, token="nope"), OWNER, 100, "USD", notify=False, note=None
    )
    assert isinstance(outcome, Refused) and outcome.code == "HTTP_401"
    assert shopify.mutations == []


async def test_a_connection_never_made_is_safe_to_send_again(stack: Stack) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    outcome = await shopify_admin.debit(
        stack.resources.http, AdminApi(closed, "2025-10", TOKEN), OWNER, 100, "USD", note=None
    )
    assert isinstance(outcome, Retryable) and outcome.reason.startswith("not sent")


async def test_reading_an_account_pages_back_to_the_given_time(
    stack: Stack, shopify: FakeShopify
) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    for minute in range(120):
        shopify.apply(OWNER, "credit", 100, created_at=start + timedelta(minutes=minute))
    http = stack.resources.http

    recent = await shopify_admin.store_credit_account(
        http, api(shopify), OWNER, "USD", since=start + timedelta(minutes=100)
    )
    assert recent is not None and recent.balance == 12_000
    assert (len(recent.transactions), shopify.account_reads) == (50, 1)

    everything = await shopify_admin.store_credit_account(
        http, api(shopify), OWNER, "USD", since=start
    )
    assert everything is not None and len(everything.transactions) == 120
    assert shopify.account_reads == 4
    newest = everything.transactions[0]
    assert (newest.kind, newest.amount, newest.event) == ("credit", 100, "ADJUSTMENT")

    no_euros = await shopify_admin.store_credit_account(
        http, api(shopify), OWNER, "EUR", since=start
    )
    assert no_euros is None
