"""A small client for the Shopify Admin API (GraphQL): store credit, an order's transactions,
and the orders reconciliation lists.

Every call goes through the process's shared httpx client (explicit timeouts, no redirects).
Mutations never raise for a platform answer: they return what happened, so the caller can
tell a refusal (never retry) from a throttle (retry) from an unclear outcome (check first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import orjson

from app.core.money import format_minor, to_minor
from app.shopify import deprecations
from app.shopify.payloads import gateway_kind

logger = logging.getLogger(__name__)

# API versions that accept these input fields; older versions reject unknown fields.
NOTIFY_SINCE = "2026-01"  # StoreCreditAccountCreditInput.notify
NOTE_SINCE = "2027-01"  # credit/debit input `note` and StoreCreditAccountTransaction.note

TRANSACTIONS_PAGE = 50
MAX_TRANSACTION_PAGES = 10
# Orders per reconciliation page: with their lines and refunds nested, a page's query cost
# stays well under Shopify's 1,000-point limit for one query.
ORDERS_PAGE = 10
LINES_PAGE = 50
# Shopify's cost-based limiter: what a mutation costs when the answer does not say.
MUTATION_COST = 10.0


@dataclass(frozen=True, slots=True)
class AdminApi:
    """Where one shop's Admin API lives and how to authenticate."""

    base_url: str
    version: str
    access_token: str

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/admin/api/{self.version}/{path}"

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Shopify-Access-Token": self.access_token, "Accept": "application/json"}

    def supports(self, since: str) -> bool:
        return self.version == "unstable" or self.version >= since


def customer_gid(external_id: str) -> str:
    return f"gid://shopify/Customer/{external_id}"


def order_gid(external_id: str) -> str:
    return f"gid://shopify/Order/{external_id}"


def company_location_gid(location_id: str) -> str:
    return f"gid://shopify/CompanyLocation/{location_id}"


# What a mutation did.


@dataclass(frozen=True, slots=True)
class Applied:
    transaction_id: str


@dataclass(frozen=True, slots=True)
class Refused:
    """Shopify refused the request (userErrors, bad token, invalid input): retrying the same
    call cannot succeed."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Retryable:
    """Certainly not applied (throttled, connection never made): safe to send again."""

    reason: str
    retry_after_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Unclear:
    """The request may have been applied (timeout, 5xx, broken connection): look at the
    account's transactions before sending it again."""

    reason: str


MutationOutcome = Applied | Refused | Retryable | Unclear


class AdminApiError(Exception):
    """A read could not be answered; try again later."""

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True, slots=True)
class AccountTransaction:
    id: str  # "" for an expiration (it has no id of its own: its credit names it)
    kind: str  # credit | debit | expiration | other
    amount: int  # minor units, always positive; `kind` says the direction
    created_at: datetime
    event: str | None
    note: str | None
    expired_credit_id: str | None = None  # an expiration's credit transaction


@dataclass(frozen=True, slots=True)
class StoreCreditAccount:
    id: str
    balance: int  # minor units
    transactions: tuple[AccountTransaction, ...]  # newest first, back to `since`


_CREDIT = """
mutation StoreCreditCredit($id: ID!, $creditInput: StoreCreditAccountCreditInput!) {
  storeCreditAccountCredit(id: $id, creditInput: $creditInput) {
    storeCreditAccountTransaction { id amount { amount currencyCode } }
    userErrors { code field message }
  }
}
"""

_DEBIT = """
mutation StoreCreditDebit($id: ID!, $debitInput: StoreCreditAccountDebitInput!) {
  storeCreditAccountDebit(id: $id, debitInput: $debitInput) {
    storeCreditAccountTransaction { id amount { amount currencyCode } }
    userErrors { code field message }
  }
}
"""

_ACCOUNT = """
query StoreCreditActivity($owner: ID!, $accounts: String!, $after: String) {
  node(id: $owner) {
    ... on HasStoreCreditAccounts {
      storeCreditAccounts(first: 1, query: $accounts) {
        nodes {
          id
          balance { amount currencyCode }
          transactions(first: %(page)d, after: $after, reverse: true) {
            pageInfo { hasNextPage endCursor }
            nodes {
              __typename
              ... on Node { id }
              amount { amount currencyCode }
              createdAt
              event%(note)s
              ... on StoreCreditAccountExpirationTransaction { creditTransaction { id } }
            }
          }
        }
      }
    }
  }
}
"""

_ORDER_TRANSACTIONS = """
query OrderTransactions($id: ID!) {
  order(id: $id) {
    id
    transactions {
      kind
      status
      gateway
      amountSet { shopMoney { amount currencyCode } }
    }
  }
}
"""


@dataclass(frozen=True, slots=True)
class OrderPayments:
    """What an order's successful sales and captures took through credit gateways."""

    gift_card: int  # minor units, shop currency
    store_credit: int

    @property
    def credit(self) -> int:
        return self.gift_card + self.store_credit


async def order_payments(
    http: httpx.AsyncClient, api: AdminApi, order_external_id: str, currency: str
) -> OrderPayments:
    """The order's gift card and store credit payments, from its transactions (order
    webhooks carry none). Raises AdminApiError when Shopify cannot answer now."""
    data = await _query(http, api, _ORDER_TRANSACTIONS, {"id": order_gid(order_external_id)})
    order = data.get("order")
    if order is None:
        raise AdminApiError(f"order {order_external_id} not found")
    paid = {"gift_card": 0, "store_credit": 0}
    for transaction in order.get("transactions") or []:
        kind = gateway_kind(str(transaction.get("gateway") or ""))
        if (
            kind is not None
            and str(transaction.get("kind")).upper() in ("SALE", "CAPTURE")
            and str(transaction.get("status")).upper() == "SUCCESS"
        ):
            paid[kind] += _minor(transaction["amountSet"]["shopMoney"], currency)
    return OrderPayments(gift_card=paid["gift_card"], store_credit=paid["store_credit"])


_TRANSACTION_KINDS = {
    "StoreCreditAccountCreditTransaction": "credit",
    "StoreCreditAccountDebitTransaction": "debit",
    "StoreCreditAccountExpirationTransaction": "expiration",
}


async def credit(
    http: httpx.AsyncClient,
    api: AdminApi,
    owner_id: str,
    amount: int,
    currency: str,
    *,
    notify: bool,
    note: str | None,
    expires_at: datetime | None = None,
) -> MutationOutcome:
    credit_input: dict[str, Any] = {"creditAmount": _money(amount, currency)}
    if expires_at is not None:  # Shopify expires what is left of it then, and shows the date
        credit_input["expiresAt"] = expires_at.isoformat()
    if api.supports(NOTIFY_SINCE):
        credit_input["notify"] = notify
    if note is not None and api.supports(NOTE_SINCE):
        credit_input["note"] = note
    variables = {"id": owner_id, "creditInput": credit_input}
    return await _mutate(http, api, _CREDIT, variables, "storeCreditAccountCredit")


async def debit(
    http: httpx.AsyncClient,
    api: AdminApi,
    owner_id: str,
    amount: int,
    currency: str,
    *,
    note: str | None,
) -> MutationOutcome:
    debit_input: dict[str, Any] = {"debitAmount": _money(amount, currency)}
    if note is not None and api.supports(NOTE_SINCE):
        debit_input["note"] = note
    variables = {"id": owner_id, "debitInput": debit_input}
    return await _mutate(http, api, _DEBIT, variables, "storeCreditAccountDebit")


def _money(amount: int, currency: str) -> dict[str, str]:
    return {"amount": format_minor(amount, currency), "currencyCode": currency}


async def _mutate(
    http: httpx.AsyncClient,
    api: AdminApi,
    query: str,
    variables: dict[str, Any],
    field: str,
) -> MutationOutcome:
    try:
        response = await http.post(
            api.url("graphql.json"),
            json={"query": query, "variables": variables},
            headers=api.headers,
        )
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        return Retryable(f"not sent: {type(exc).__name__}: {exc}")
    except httpx.HTTPError as exc:  # sent, or maybe sent: the answer is lost
        return Unclear(f"{type(exc).__name__}: {exc}")
    deprecations.note(api, query, response)
    if response.status_code == 429:
        return Retryable("HTTP 429 throttled", _retry_after_seconds(response))
    if response.status_code >= 500:
        return Unclear(f"HTTP {response.status_code}")
    if response.status_code != 200:
        return Refused(f"HTTP_{response.status_code}", response.text[:500])
    try:
        body = orjson.loads(response.content)
        payload = (body.get("data") or {}).get(field) or {}
        transaction = payload.get("storeCreditAccountTransaction") or {}
        user_errors = payload.get("userErrors") or []
    except (orjson.JSONDecodeError, TypeError, AttributeError) as exc:
        return Unclear(f"unreadable answer: {exc!r}")
    if transaction.get("id"):  # applied, whatever else the answer says
        return Applied(str(transaction["id"]))
    if user_errors:
        message = "; ".join(str(e.get("message")) for e in user_errors)
        return Refused(str(user_errors[0].get("code") or "USER_ERROR"), message)
    if body.get("errors"):
        return _graphql_errors(body["errors"], body.get("extensions"))
    return Unclear("neither a transaction nor an error in the answer")


def _graphql_errors(
    errors: list[dict[str, Any]], extensions: dict[str, Any] | None
) -> Refused | Retryable | Unclear:
    codes = {str((e.get("extensions") or {}).get("code")) for e in errors}
    message = "; ".join(str(e.get("message")) for e in errors)[:1000]
    if "THROTTLED" in codes:
        return Retryable("GraphQL THROTTLED", _throttle_wait_seconds(extensions))
    if "INTERNAL_SERVER_ERROR" in codes:
        return Unclear(f"GraphQL INTERNAL_SERVER_ERROR: {message}")
    # Validation and access errors are answered before anything runs.
    code = next((c for c in sorted(codes) if c != "None"), "GRAPHQL_ERROR")
    return Refused(code, message)


def _throttle_wait_seconds(extensions: dict[str, Any] | None) -> float | None:
    """Seconds until the bucket holds enough points for the request, from throttleStatus."""
    try:
        cost = (extensions or {})["cost"]
        status = cost["throttleStatus"]
        # Query-cost points (Shopify's throttle bucket), not money.
        points_needed = int(cost.get("requestedQueryCost") or MUTATION_COST)
        points_missing = points_needed - int(status["currentlyAvailable"])
        seconds = points_missing / int(status["restoreRate"])
        return max(seconds, 1.0)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def _retry_after_seconds(response: httpx.Response) -> float | None:
    try:
        seconds = int(response.headers["Retry-After"])
        return max(seconds, 1.0)
    except (KeyError, ValueError):
        return None


async def store_credit_account(
    http: httpx.AsyncClient,
    api: AdminApi,
    owner_id: str,
    currency: str,
    *,
    since: datetime,
) -> StoreCreditAccount | None:
    """The owner's account in `currency` with its transactions back to `since` (newest first);
    None when the owner has no account in that currency yet."""
    query = _ACCOUNT % {
        "page": TRANSACTIONS_PAGE,
        "note": "\n              note" if api.supports(NOTE_SINCE) else "",
    }
    after: str | None = None
    account_id, balance = "", 0
    transactions: list[AccountTransaction] = []
    for _ in range(MAX_TRANSACTION_PAGES):
        variables = {"owner": owner_id, "accounts": f"currency_code:{currency}", "after": after}
        data = await _query(http, api, query, variables)
        owner = data.get("node")
        if owner is None:
            raise AdminApiError(f"owner {owner_id} not found")
        accounts = owner["storeCreditAccounts"]["nodes"]
        if not accounts:
            return None
        account = accounts[0]
        account_id = str(account["id"])
        balance = _minor(account["balance"], currency)
        page = account["transactions"]
        for node in page["nodes"]:
            transactions.append(_transaction(node, currency))
        reached_since = bool(transactions) and transactions[-1].created_at < since
        if reached_since or not page["pageInfo"]["hasNextPage"]:
            return StoreCreditAccount(account_id, balance, tuple(transactions))
        after = page["pageInfo"]["endCursor"]
    raise AdminApiError(f"more than {len(transactions)} transactions since {since.isoformat()}")


def _transaction(node: dict[str, Any], currency: str) -> AccountTransaction:
    expired_credit = node.get("creditTransaction") or {}
    return AccountTransaction(
        id=str(node.get("id", "")),
        kind=_TRANSACTION_KINDS.get(str(node.get("__typename")), "other"),
        amount=abs(_minor(node["amount"], currency)),
        created_at=datetime.fromisoformat(str(node["createdAt"])),
        event=node.get("event"),
        note=node.get("note"),
        expired_credit_id=expired_credit.get("id"),
    )


_CREDIT_REMAINING = """
query CreditRemaining($id: ID!) {
  node(id: $id) {
    ... on StoreCreditAccountCreditTransaction {
      id
      expiresAt
      remainingAmount { amount currencyCode }
    }
  }
}
"""


async def credit_remaining(
    http: httpx.AsyncClient, api: AdminApi, credit_transaction_id: str, currency: str
) -> int:
    """What is left of one of our credits on Shopify (spent at checkout, debited, expired:
    all counted). Raises AdminApiError when Shopify cannot answer now."""
    data = await _query(http, api, _CREDIT_REMAINING, {"id": credit_transaction_id})
    node = data.get("node")
    if not node or "remainingAmount" not in node:
        raise AdminApiError(f"credit transaction {credit_transaction_id} not found")
    return _minor(node["remainingAmount"], currency)


def _minor(money: dict[str, Any], currency: str) -> int:
    if money.get("currencyCode") != currency:
        raise AdminApiError(f"expected {currency}, got {money.get('currencyCode')}")
    try:
        # MoneyV2 amounts may carry fewer or more trailing zeros than the currency has.
        return to_minor(Decimal(str(money["amount"])).normalize(), currency)
    except (InvalidOperation, ValueError) as exc:
        raise AdminApiError(f"unreadable amount {money!r}") from exc


async def _query(
    http: httpx.AsyncClient, api: AdminApi, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    try:
        response = await http.post(
            api.url("graphql.json"),
            json={"query": query, "variables": variables},
            headers=api.headers,
        )
    except httpx.HTTPError as exc:
        raise AdminApiError(f"{type(exc).__name__}: {exc}") from exc
    deprecations.note(api, query, response)
    if response.status_code == 429:
        raise AdminApiError("HTTP 429 throttled", _retry_after_seconds(response))
    if response.status_code != 200:
        raise AdminApiError(f"HTTP {response.status_code}: {response.text[:300]}")
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise AdminApiError(f"unreadable answer: {exc}") from exc
    if body.get("errors"):
        outcome = _graphql_errors(body["errors"], body.get("extensions"))
        retry_after_seconds = (
            outcome.retry_after_seconds if isinstance(outcome, Retryable) else None
        )
        raise AdminApiError(f"GraphQL errors: {body['errors']!r}"[:1000], retry_after_seconds)
    data: dict[str, Any] = body["data"]
    return data


_ORDERS = """
query ReconcileOrders($query: String!, $after: String) {
  orders(first: %(page)d, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      legacyResourceId
      name
      email
      createdAt
      updatedAt
      cancelledAt
      test
      taxesIncluded
      tags
      displayFinancialStatus
      currencyCode
      presentmentCurrencyCode
      paymentGatewayNames
      totalPriceSet { ...Bag }
      totalShippingPriceSet { ...Bag }
      customer { legacyResourceId email firstName lastName tags }
      purchasingEntity {
        ... on PurchasingCompany { company { id } location { id } }
      }
      transactions { kind status gateway amountSet { shopMoney { amount currencyCode } } }
      refunds { refundLineItems(first: %(lines)d) { nodes { quantity lineItem { id } } } }
      lineItems(first: %(lines)d) {
        nodes {
          id
          name
          title
          quantity
          currentQuantity
          sku
          vendor
          isGiftCard
          product { legacyResourceId }
          variant { legacyResourceId }
          originalUnitPriceSet { ...Bag }
          discountAllocations { allocatedAmountSet { ...Bag } }
          taxLines { priceSet { ...Bag } }
        }
      }
    }
  }
}

fragment Bag on MoneyBag {
  shopMoney { amount currencyCode }
  presentmentMoney { amount currencyCode }
}
"""
MAX_THROTTLE_WAITS = 5


async def orders_updated_since(
    http: httpx.AsyncClient,
    api: AdminApi,
    *,
    financial_statuses: tuple[str, ...],
    updated_at_min: datetime,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of the shop's orders updated since `updated_at_min` in those financial statuses,
    through the GraphQL Admin API (REST is legacy for new apps), by cursor. Each order comes
    in the webhook's REST shape (`rest_order`), so it is read like any delivery. A throttled
    page is asked again once Shopify's bucket has refilled (a few times at most)."""
    statuses = " OR ".join(f"financial_status:{status}" for status in financial_statuses)
    search = f"updated_at:>='{updated_at_min.isoformat()}' AND ({statuses})"
    query = _ORDERS % {"page": ORDERS_PAGE, "lines": LINES_PAGE}
    after: str | None = None
    while True:
        variables = {"query": search, "after": after}
        for wait in range(MAX_THROTTLE_WAITS + 1):
            try:
                data = await _query(http, api, query, variables)
                break
            except AdminApiError as exc:
                if exc.retry_after_seconds is None or wait == MAX_THROTTLE_WAITS:
                    raise
                await asyncio.sleep(exc.retry_after_seconds)
        page = data["orders"]
        yield [rest_order(node) for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return
        after = page["pageInfo"]["endCursor"]


def _legacy_id(gid: str | None) -> str | None:
    return gid.rsplit("/", 1)[-1] if gid else None


def _bag(bag: dict[str, Any] | None) -> dict[str, Any] | None:
    """A GraphQL MoneyBag as the REST `*_set` object."""
    if not bag:
        return None

    def money(m: dict[str, Any] | None) -> dict[str, Any] | None:
        return {"amount": m["amount"], "currency_code": m["currencyCode"]} if m else None

    return {
        "shop_money": money(bag.get("shopMoney")),
        "presentment_money": money(bag.get("presentmentMoney")),
    }


def rest_order(node: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL order in the shape of Shopify's REST order webhook (the one the adapter
    reads): ids without their GID prefix, amounts as `*_set` bags, snake_case names."""
    customer = node.get("customer")
    entity = node.get("purchasingEntity") or {}
    company = None
    if entity.get("company"):
        location = entity.get("location") or {}
        company = {
            "id": _legacy_id(entity["company"].get("id")),
            "location_id": _legacy_id(location.get("id")),
        }
    total = _bag(node.get("totalPriceSet"))
    return {
        "id": node["legacyResourceId"],
        "name": node.get("name"),
        "email": node.get("email"),
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "test": bool(node.get("test")),
        "taxes_included": bool(node.get("taxesIncluded")),
        "tags": ", ".join(node.get("tags") or []),
        "financial_status": str(node.get("displayFinancialStatus") or "").lower() or None,
        "currency": node["currencyCode"],
        "presentment_currency": node.get("presentmentCurrencyCode"),
        "payment_gateway_names": node.get("paymentGatewayNames") or [],
        "total_price": total["shop_money"]["amount"] if total and total["shop_money"] else "0",
        "total_price_set": total,
        "total_shipping_price_set": _bag(node.get("totalShippingPriceSet")),
        "customer": None
        if customer is None
        else {
            "id": customer["legacyResourceId"],
            "email": customer.get("email"),
            "first_name": customer.get("firstName"),
            "last_name": customer.get("lastName"),
            "tags": ", ".join(customer.get("tags") or []),
        },
        "company": company,
        "transactions": [
            {
                "kind": str(t.get("kind", "")).lower(),
                "status": str(t.get("status", "")).lower(),
                "gateway": t.get("gateway") or "",
                "amount": t["amountSet"]["shopMoney"]["amount"],
                "currency": t["amountSet"]["shopMoney"]["currencyCode"],
            }
            for t in node.get("transactions") or []
        ],
        "refunds": [
            {
                "refund_line_items": [
                    {
                        "line_item_id": _legacy_id(item["lineItem"]["id"]),
                        "quantity": item["quantity"],
                    }
                    for item in (refund.get("refundLineItems") or {}).get("nodes", [])
                ]
            }
            for refund in node.get("refunds") or []
        ],
        "line_items": [_rest_line(line) for line in (node.get("lineItems") or {}).get("nodes", [])],
    }


def _rest_line(line: dict[str, Any]) -> dict[str, Any]:
    price = _bag(line.get("originalUnitPriceSet"))
    return {
        "id": _legacy_id(line["id"]),
        "name": line.get("name"),
        "title": line.get("title") or "",
        "quantity": line["quantity"],
        "current_quantity": line.get("currentQuantity"),
        "sku": line.get("sku"),
        "vendor": line.get("vendor"),
        "gift_card": bool(line.get("isGiftCard")),
        "product_id": (line.get("product") or {}).get("legacyResourceId"),
        "variant_id": (line.get("variant") or {}).get("legacyResourceId"),
        "price": price["shop_money"]["amount"] if price and price["shop_money"] else "0",
        "price_set": price,
        "discount_allocations": [
            {"amount_set": _bag(a.get("allocatedAmountSet"))}
            for a in line.get("discountAllocations") or []
        ],
        "tax_lines": [{"price_set": _bag(t.get("priceSet"))} for t in line.get("taxLines") or []],
    }
