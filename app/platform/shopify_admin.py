"""A small client for the Shopify Admin API: store credit (GraphQL) and paid orders (REST).

Every call goes through the process's shared httpx client (explicit timeouts, no redirects).
Mutations never raise for a platform answer: they return what happened, so the caller can
tell a refusal (never retry) from a throttle (retry) from an unclear outcome (check first).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import orjson

from app.kit.money import format_minor, to_minor
from app.shopify import deprecations

logger = logging.getLogger(__name__)

# API versions that accept these input fields; older versions reject unknown fields.
NOTIFY_SINCE = "2026-01"  # StoreCreditAccountCreditInput.notify
NOTE_SINCE = "2027-01"  # credit/debit input `note` and StoreCreditAccountTransaction.note

TRANSACTIONS_PAGE = 50
MAX_TRANSACTION_PAGES = 10
ORDERS_PAGE = 250
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
    id: str
    kind: str  # credit | debit | other
    amount: int  # minor units, always positive; `kind` says the direction
    created_at: datetime
    event: str | None
    note: str | None


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
            }
          }
        }
      }
    }
  }
}
"""

_TRANSACTION_KINDS = {
    "StoreCreditAccountCreditTransaction": "credit",
    "StoreCreditAccountDebitTransaction": "debit",
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
) -> MutationOutcome:
    credit_input: dict[str, Any] = {"creditAmount": _money(amount, currency)}
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
    return AccountTransaction(
        id=str(node.get("id", "")),
        kind=_TRANSACTION_KINDS.get(str(node.get("__typename")), "other"),
        amount=abs(_minor(node["amount"], currency)),
        created_at=datetime.fromisoformat(str(node["createdAt"])),
        event=node.get("event"),
        note=node.get("note"),
    )


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


async def paid_orders(
    http: httpx.AsyncClient,
    api: AdminApi,
    *,
    financial_status: str,
    updated_at_min: datetime,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of orders in Shopify's REST shape (the webhook's shape), followed by the
    `Link: rel="next"` page_info cursor. Only the cursor is taken from the link, so the
    access token never goes to a host other than the shop's."""
    params: dict[str, str | int] = {
        "status": "any",
        "financial_status": financial_status,
        "updated_at_min": updated_at_min.isoformat(),
        "limit": ORDERS_PAGE,
    }
    while True:
        try:
            response = await http.get(api.url("orders.json"), params=params, headers=api.headers)
        except httpx.HTTPError as exc:
            raise AdminApiError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise AdminApiError(f"orders: HTTP {response.status_code}: {response.text[:300]}")
        orders: list[dict[str, Any]] = orjson.loads(response.content)["orders"]
        yield orders
        next_url = response.links.get("next", {}).get("url")
        page_info = httpx.URL(next_url).params.get("page_info") if next_url else None
        if not page_info:
            return
        # With page_info, Shopify accepts only limit (and fields) next to it.
        params = {"limit": ORDERS_PAGE, "page_info": page_info}
