"""A local stand-in for the Shopify Admin API: store credit accounts, an order's transactions
and the orders list (GraphQL), and the legacy REST orders list.

It keeps per-account balances and transactions (credits with their `expiresAt` and remaining
amount, spent soonest-expiring first; `expire()` writes Shopify's expiration transactions),
checks the access token and which input fields the requested API version accepts, and can be
told to misbehave for the next mutations:
`throttle` (GraphQL THROTTLED), `http_429`, `http_503` (not applied), `timeout` (applied, then
answered after the client gave up), `applies_late` (applied only after the client gave up) or
`user_error:CODE`.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from graphql import GraphQLSchema, build_schema, parse, validate
from graphql.error import GraphQLError
from graphql.execution.values import get_variable_values
from graphql.language import OperationDefinitionNode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.core.money import format_minor, to_minor

TOKEN = "shpat_test"
# The parts of the Admin GraphQL API the service uses: every query is checked against it.
SCHEMA: GraphQLSchema = build_schema((Path(__file__).with_name("admin_schema.graphql")).read_text())
NOTIFY_SINCE = "2026-01"
NOTE_SINCE = "2027-01"


@dataclass
class Transaction:
    id: str  # "" for an expiration: Shopify gives those no id
    kind: str  # credit | debit | expiration
    amount: int  # minor units, positive
    created_at: datetime
    event: str = "ADJUSTMENT"
    note: str | None = None
    expires_at: datetime | None = None  # a credit's `expiresAt`
    remaining: int = 0  # a credit's `remainingAmount`
    credit: Transaction | None = None  # an expiration's `creditTransaction`


@dataclass
class Account:
    id: str
    currency: str
    balance: int = 0
    transactions: list[Transaction] = field(default_factory=list)


class FakeShopify:
    def __init__(self) -> None:
        self.url = ""
        self.accounts: dict[tuple[str, str], Account] = {}
        self.faults: list[str] = []
        self.mutations: list[dict[str, Any]] = []  # {"name", "id", "input", "version"}
        self.account_reads = 0
        self.orders: list[dict[str, Any]] = []  # REST payloads, listed through GraphQL
        self.order_queries: list[dict[str, Any]] = []
        self.list_faults: list[str] = []  # for the next orders listings: "throttle"
        self.page_size = 250
        # Orders' transactions by order id, as `order(id:) { transactions }` answers them.
        self.order_transactions: dict[str, list[dict[str, Any]]] = {}
        self.transaction_reads: list[str] = []  # order ids asked for
        self.down = False  # every GraphQL read answers 503 (Shopify unreachable)
        self.late_answer_s = 1.5
        self.late_apply_s = 0.8  # `applies_late`: after the client's timeout, before settling
        self.sends_in_flight = 0
        self.reads_while_in_flight = 0  # account reads made while a late send was unapplied
        self.schema = SCHEMA
        self.invalid_queries: list[str] = []  # every query the schema refused
        self.alerts: list[dict[str, Any]] = []  # the merchant's alert webhook, played here too
        self._ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/admin/api/{version}/graphql.json", self._graphql, methods=["POST"]),
                Route("/alerts", self._alert, methods=["POST"]),
            ]
        )

    # State, as a test sees it.

    def balance(self, owner: str, currency: str = "USD") -> int:
        account = self.accounts.get((owner, currency))
        return account.balance if account else 0

    def transactions(self, owner: str, currency: str = "USD") -> list[Transaction]:
        account = self.accounts.get((owner, currency))
        return list(account.transactions) if account else []

    def apply(
        self,
        owner: str,
        kind: str,
        amount: int,
        currency: str = "USD",
        *,
        event: str = "ADJUSTMENT",
        note: str | None = None,
        created_at: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> Transaction:
        """Move credit as Shopify would (also used to play a checkout spending credit): a
        debit spends the soonest-expiring credit first, credits without expiry last."""
        key = (owner, currency)
        account = self.accounts.get(key)
        if account is None:
            account = Account(f"gid://shopify/StoreCreditAccount/{next(self._ids)}", currency)
            self.accounts[key] = account
        type_name = "Credit" if kind == "credit" else "Debit"
        transaction = Transaction(
            f"gid://shopify/StoreCreditAccount{type_name}Transaction/{next(self._ids)}",
            kind,
            amount,
            created_at or datetime.now(UTC),
            event,
            note,
            expires_at=expires_at,
            remaining=amount if kind == "credit" else 0,
        )
        if kind == "debit":
            left = amount
            for credit in _soonest_expiring_first(account):
                spent = min(credit.remaining, left)
                credit.remaining -= spent
                left -= spent
        account.balance += amount if kind == "credit" else -amount
        account.transactions.append(transaction)
        return transaction

    def expire(self, now: datetime | None = None) -> list[Transaction]:
        """Expire, as Shopify does, every credit whose `expiresAt` has passed: an expiration
        transaction for what remained of each (none for a credit spent out)."""
        now = now or datetime.now(UTC)
        written = []
        for account in self.accounts.values():
            for credit in _soonest_expiring_first(account):
                if credit.expires_at is None or credit.expires_at > now:
                    continue
                expiration = Transaction(
                    "", "expiration", credit.remaining, now, "ADJUSTMENT", credit=credit
                )
                account.balance -= credit.remaining
                credit.remaining = 0
                account.transactions.append(expiration)
                written.append(expiration)
        return written

    # GraphQL.

    def authorized(self, request: Request) -> bool:
        return request.headers.get("X-Shopify-Access-Token") == TOKEN

    def invalid(self, query: str, variables: dict[str, Any]) -> Response | None:
        """Shopify's answer to a query the schema of the parts used refuses (kept in
        `invalid_queries`); None for a valid one."""
        errors = _check(self.schema, query, variables)
        if not errors:
            return None
        self.invalid_queries.append(query)
        messages = [{"message": e.message, "extensions": {"code": "INVALID"}} for e in errors]
        return JSONResponse({"errors": messages})

    async def _graphql(self, request: Request) -> Response:
        if not self.authorized(request):
            return JSONResponse({"errors": "[API] Invalid API key or access token"}, 401)
        version = request.path_params["version"]
        body = await request.json()
        query: str = body["query"]
        variables: dict[str, Any] = body.get("variables") or {}
        invalid = self.invalid(query, variables)
        if invalid is not None:
            return invalid
        owner = variables.get("id", "")
        if "storeCreditAccountCredit(" in query:
            return await self._mutation(version, "credit", owner, variables["creditInput"])
        if "storeCreditAccountDebit(" in query:
            return await self._mutation(version, "debit", owner, variables["debitInput"])
        if "storeCreditAccounts(" in query:
            return self._account_query(version, query, variables)
        if "remainingAmount" in query:
            return self._credit_query(variables)
        if "order(id:" in query:
            return self._order_query(variables)
        if "orders(first:" in query:
            return self._orders_query(query, variables)
        return _graphql_error("unknown operation", "BAD_REQUEST")

    def add_payment(
        self, order_id: str | int, gateway: str, amount: str, *, kind: str = "SALE"
    ) -> None:
        """A successful payment of the order through `gateway`, in shop money (USD)."""
        self.order_transactions.setdefault(str(order_id), []).append(
            {
                "kind": kind,
                "status": "SUCCESS",
                "gateway": gateway,
                "amountSet": {"shopMoney": {"amount": amount, "currencyCode": "USD"}},
            }
        )

    def _order_query(self, variables: dict[str, Any]) -> Response:
        order_id = str(variables["id"]).removeprefix("gid://shopify/Order/")
        self.transaction_reads.append(order_id)
        if self.down:
            return Response("Service Unavailable", 503)
        transactions = self.order_transactions.get(order_id)
        if transactions is None:
            return JSONResponse({"data": {"order": None}})
        node = {"id": variables["id"], "transactions": transactions}
        return JSONResponse({"data": {"order": node}})

    async def _mutation(
        self, version: str, kind: str, owner: str, data: dict[str, Any]
    ) -> Response:
        self.mutations.append({"name": kind, "id": owner, "input": data, "version": version})
        fault = self.faults.pop(0) if self.faults else None
        if fault == "throttle":
            return _throttled()
        if fault == "http_429":
            return Response("Too Many Requests", 429, headers={"Retry-After": "1.0"})
        if fault == "http_503":
            return Response("Service Unavailable", 503)
        unsupported = {"notify": NOTIFY_SINCE, "note": NOTE_SINCE}
        for name, since in unsupported.items():
            if name in data and version < since:
                message = f"InputObject doesn't accept argument '{name}' in {version}"
                return _graphql_error(message, "argumentNotAccepted")
        field_name = "storeCreditAccountCredit" if kind == "credit" else "storeCreditAccountDebit"
        money = data["creditAmount" if kind == "credit" else "debitAmount"]
        currency = money["currencyCode"]
        amount = to_minor(money["amount"], currency)
        if fault is not None and fault.startswith("user_error:"):
            return _user_error(field_name, fault.removeprefix("user_error:"))
        account = self.accounts.get((owner, currency))
        if kind == "debit" and account is None:
            return _user_error(field_name, "ACCOUNT_NOT_FOUND")
        if kind == "debit" and account is not None and account.balance < amount:
            return _user_error(field_name, "INSUFFICIENT_FUNDS")
        if fault == "applies_late":
            # Shopify is still working on it when the client gives up, and applies it after:
            # "not among the transactions" proves nothing until the settle time has passed.
            self.sends_in_flight += 1
            await asyncio.sleep(self.late_apply_s)
            self.sends_in_flight -= 1
        expires_at = datetime.fromisoformat(data["expiresAt"]) if data.get("expiresAt") else None
        transaction = self.apply(
            owner, kind, amount, currency, note=data.get("note"), expires_at=expires_at
        )
        if fault == "timeout":
            await asyncio.sleep(self.late_answer_s)  # applied; the answer comes too late
        return JSONResponse(
            {
                "data": {
                    field_name: {
                        "storeCreditAccountTransaction": {
                            "id": transaction.id,
                            "amount": {
                                "amount": format_minor(amount, currency),
                                "currencyCode": currency,
                            },
                        },
                        "userErrors": [],
                    }
                }
            }
        )

    def _account_query(self, version: str, query: str, variables: dict[str, Any]) -> Response:
        self.account_reads += 1
        self.reads_while_in_flight += self.sends_in_flight > 0
        if "note" in query.split() and version < NOTE_SINCE:
            return _graphql_error(f"Field 'note' doesn't exist in {version}", "undefinedField")
        currency = str(variables["accounts"]).removeprefix("currency_code:")
        account = self.accounts.get((variables["owner"], currency))
        if account is None:
            return JSONResponse({"data": {"node": {"storeCreditAccounts": {"nodes": []}}}})
        newest_first = list(reversed(account.transactions))
        start = int(variables.get("after") or 0)
        page = newest_first[start : start + 50]
        end = start + len(page)
        nodes = [
            {
                "__typename": f"StoreCreditAccount{t.kind.capitalize()}Transaction",
                **({"id": t.id} if t.id else {}),
                "amount": {
                    "amount": format_minor(t.amount if t.kind == "credit" else -t.amount, currency),
                    "currencyCode": currency,
                },
                "createdAt": _time(t.created_at),
                "event": t.event,
                **({"note": t.note} if version >= NOTE_SINCE else {}),
                **({"creditTransaction": {"id": t.credit.id}} if t.credit else {}),
            }
            for t in page
        ]
        balance = {"amount": format_minor(account.balance, currency), "currencyCode": currency}
        node = {
            "id": account.id,
            "balance": balance,
            "transactions": {
                "pageInfo": {"hasNextPage": end < len(newest_first), "endCursor": str(end)},
                "nodes": nodes,
            },
        }
        return JSONResponse({"data": {"node": {"storeCreditAccounts": {"nodes": [node]}}}})

    def _credit_query(self, variables: dict[str, Any]) -> Response:
        for account in self.accounts.values():
            for t in account.transactions:
                if t.id == variables["id"] and t.kind == "credit":
                    money = {"amount": format_minor(t.remaining, account.currency)}
                    node = {
                        "id": t.id,
                        "expiresAt": _time(t.expires_at) if t.expires_at else None,
                        "remainingAmount": money | {"currencyCode": account.currency},
                    }
                    return JSONResponse({"data": {"node": node}})
        return JSONResponse({"data": {"node": None}})

    async def _alert(self, request: Request) -> Response:
        self.alerts.append(await request.json())
        return Response(status_code=204)

    # Orders, listed by GraphQL with cursors, in GraphQL's shape (the tests keep them as the
    # REST webhook payloads they deliver; Shopify renders one order both ways).

    def _orders_query(self, query: str, variables: dict[str, Any]) -> Response:
        search = str(variables["query"])
        self.order_queries.append({"query": search, "after": variables.get("after")})
        if self.list_faults and self.list_faults.pop(0) == "throttle":
            return _throttled()
        if "updated_at:>=" not in search:
            return _graphql_error("reconciliation must bound updated_at", "BAD_REQUEST")
        asked = re.search(r"orders\(first: (\d+)", query)
        assert asked is not None, "an orders query names its page size"
        first = int(asked.group(1))
        statuses = set(re.findall(r"financial_status:(\w+)", search))
        matching = [o for o in self.orders if o.get("financial_status") in statuses]
        offset = int(variables.get("after") or 0)
        size = min(first, self.page_size)
        page = matching[offset : offset + size]
        end = offset + len(page)
        return JSONResponse(
            {
                "data": {
                    "orders": {
                        "pageInfo": {"hasNextPage": end < len(matching), "endCursor": str(end)},
                        "nodes": [graphql_order(o, self.order_transactions) for o in page],
                    }
                }
            }
        )


def _bag(
    shop: str, shop_currency: str, presentment: dict[str, Any] | None = None
) -> dict[str, Any]:
    money = {"amount": shop, "currencyCode": shop_currency}
    other = (
        {"amount": presentment["amount"], "currencyCode": presentment["currency_code"]}
        if presentment
        else money
    )
    return {"shopMoney": money, "presentmentMoney": other}


def _rest_bag(rest_set: dict[str, Any] | None, plain: str, currency: str) -> dict[str, Any]:
    if rest_set:
        shop = rest_set["shop_money"]
        return _bag(shop["amount"], shop["currency_code"], rest_set.get("presentment_money"))
    return _bag(plain, currency)


def graphql_order(
    rest: dict[str, Any], transactions: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """A REST order payload as Shopify's GraphQL `Order` shows the same order."""
    currency = rest["currency"]
    customer = rest.get("customer")
    company = rest.get("company")
    shipping = rest.get("total_shipping_price_set")
    return {
        "legacyResourceId": str(rest["id"]),
        "name": rest.get("name"),
        "email": rest.get("email"),
        "createdAt": rest.get("created_at"),
        "updatedAt": rest.get("updated_at"),
        "cancelledAt": rest.get("cancelled_at"),
        "test": rest.get("test", False),
        "taxesIncluded": rest.get("taxes_included", False),
        "tags": [t.strip() for t in str(rest.get("tags", "")).split(",") if t.strip()],
        "displayFinancialStatus": str(rest.get("financial_status", "")).upper(),
        "currencyCode": currency,
        "presentmentCurrencyCode": rest.get("presentment_currency") or currency,
        "paymentGatewayNames": rest.get("payment_gateway_names", []),
        "totalPriceSet": _rest_bag(rest.get("total_price_set"), rest["total_price"], currency),
        "totalShippingPriceSet": _rest_bag(shipping, "0.00", currency),
        "customer": None
        if customer is None
        else {
            "legacyResourceId": str(customer["id"]),
            "email": customer.get("email"),
            "firstName": customer.get("first_name"),
            "lastName": customer.get("last_name"),
            "tags": [t.strip() for t in str(customer.get("tags", "")).split(",") if t.strip()],
        },
        "purchasingEntity": None
        if company is None
        else {
            "company": {"id": f"gid://shopify/Company/{company['id']}"},
            "location": {"id": f"gid://shopify/CompanyLocation/{company['location_id']}"}
            if company.get("location_id")
            else None,
        },
        "transactions": transactions.get(str(rest["id"]), []),
        "refunds": [
            {
                "refundLineItems": {
                    "nodes": [
                        {
                            "quantity": item["quantity"],
                            "lineItem": {"id": f"gid://shopify/LineItem/{item['line_item_id']}"},
                        }
                        for item in refund.get("refund_line_items", [])
                    ]
                }
            }
            for refund in rest.get("refunds", [])
        ],
        "lineItems": {
            "nodes": [
                {
                    "id": f"gid://shopify/LineItem/{line['id']}",
                    "name": line.get("name"),
                    "title": line.get("title"),
                    "quantity": line["quantity"],
                    "currentQuantity": line.get("current_quantity", line["quantity"]),
                    "sku": line.get("sku"),
                    "vendor": line.get("vendor"),
                    "isGiftCard": line.get("gift_card", False),
                    "product": None
                    if line.get("product_id") is None
                    else {"legacyResourceId": str(line["product_id"])},
                    "variant": None
                    if line.get("variant_id") is None
                    else {"legacyResourceId": str(line["variant_id"])},
                    "originalUnitPriceSet": _rest_bag(
                        line.get("price_set"), line["price"], currency
                    ),
                    "discountAllocations": [
                        {
                            "allocatedAmountSet": _rest_bag(
                                a.get("amount_set"), a["amount"], currency
                            )
                        }
                        for a in line.get("discount_allocations", [])
                    ],
                    "taxLines": [
                        {"priceSet": _rest_bag(t.get("price_set"), t["price"], currency)}
                        for t in line.get("tax_lines", [])
                    ],
                }
                for line in rest.get("line_items", [])
            ]
        },
    }


def _time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _soonest_expiring_first(account: Account) -> list[Transaction]:
    credits = [t for t in account.transactions if t.kind == "credit" and t.remaining > 0]
    never = datetime.max.replace(tzinfo=UTC)
    return sorted(credits, key=lambda t: (t.expires_at is None, t.expires_at or never))


def _check(schema: GraphQLSchema, query: str, variables: dict[str, Any]) -> list[GraphQLError]:
    try:
        document = parse(query)
    except GraphQLError as exc:
        return [exc]
    errors = validate(schema, document)
    if errors:
        return list(errors)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
    return coerced if isinstance(coerced, list) else []


def _throttled() -> Response:
    return JSONResponse(
        {
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {
                "cost": {
                    "requestedQueryCost": 10,
                    "actualQueryCost": None,
                    "throttleStatus": {
                        "maximumAvailable": 2000.0,
                        "currentlyAvailable": 5,
                        "restoreRate": 100.0,
                    },
                }
            },
        }
    )


def _graphql_error(message: str, code: str) -> Response:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]})


def _user_error(field_name: str, code: str) -> Response:
    error = {"code": code, "field": ["input"], "message": f"{code.lower().replace('_', ' ')}"}
    return JSONResponse(
        {"data": {field_name: {"storeCreditAccountTransaction": None, "userErrors": [error]}}}
    )


StandIn = TypeVar("StandIn", bound=FakeShopify)


@asynccontextmanager
async def running(shopify: StandIn) -> AsyncIterator[StandIn]:
    """Serve the stand-in with uvicorn on a free local port, in this event loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        shopify.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "the Shopify stand-in did not start"
    shopify.url = f"http://127.0.0.1:{port}"
    try:
        yield shopify
    finally:
        server.should_exit = True
        await task
        sock.close()
