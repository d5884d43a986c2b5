"""A local stand-in for the Shopify Admin API: store credit accounts (GraphQL) and orders (REST).

It keeps per-account balances and transactions, checks the access token and which input fields
the requested API version accepts, and can be told to misbehave for the next mutations:
`throttle` (GraphQL THROTTLED), `http_429`, `http_503` (not applied), `timeout` (applied, then
answered after the client gave up) or `user_error:CODE`.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.kit.money import format_minor, to_minor

TOKEN = "shpat_test"
NOTIFY_SINCE = "2026-01"
NOTE_SINCE = "2027-01"


@dataclass
class Transaction:
    id: str
    kind: str  # credit | debit
    amount: int  # minor units, positive
    created_at: datetime
    event: str = "ADJUSTMENT"
    note: str | None = None


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
        self.orders: list[dict[str, Any]] = []
        self.order_requests: list[dict[str, str]] = []
        self.page_size = 250
        self.late_answer_s = 1.5
        self.alerts: list[dict[str, Any]] = []  # the merchant's alert webhook, played here too
        self._ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/admin/api/{version}/graphql.json", self._graphql, methods=["POST"]),
                Route("/admin/api/{version}/orders.json", self._orders, methods=["GET"]),
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
    ) -> Transaction:
        """Move credit as Shopify would (also used to play a checkout spending credit)."""
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
        )
        account.balance += amount if kind == "credit" else -amount
        account.transactions.append(transaction)
        return transaction

    # GraphQL.

    def authorized(self, request: Request) -> bool:
        return request.headers.get("X-Shopify-Access-Token") == TOKEN

    async def _graphql(self, request: Request) -> Response:
        if not self.authorized(request):
            return JSONResponse({"errors": "[API] Invalid API key or access token"}, 401)
        version = request.path_params["version"]
        body = await request.json()
        query: str = body["query"]
        variables: dict[str, Any] = body.get("variables") or {}
        owner = variables.get("id", "")
        if "storeCreditAccountCredit(" in query:
            return await self._mutation(version, "credit", owner, variables["creditInput"])
        if "storeCreditAccountDebit(" in query:
            return await self._mutation(version, "debit", owner, variables["debitInput"])
        if "storeCreditAccounts(" in query:
            return self._account_query(version, query, variables)
        return _graphql_error("unknown operation", "BAD_REQUEST")

    async def _mutation(
        self, version: str, kind: str, owner: str, data: dict[str, Any]
    ) -> Response:
        self.mutations.append({"name": kind, "id": owner, "input": data, "version": version})
        fault = self.faults.pop(0) if self.faults else None
        if fault == "throttle":
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
        transaction = self.apply(owner, kind, amount, currency, note=data.get("note"))
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
                "id": t.id,
                "amount": {
                    "amount": format_minor(t.amount if t.kind == "credit" else -t.amount, currency),
                    "currencyCode": currency,
                },
                "createdAt": t.created_at.isoformat().replace("+00:00", "Z"),
                "event": t.event,
                **({"note": t.note} if version >= NOTE_SINCE else {}),
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

    async def _alert(self, request: Request) -> Response:
        self.alerts.append(await request.json())
        return Response(status_code=204)

    # REST orders, paginated with page_info cursors in the Link header.

    async def _orders(self, request: Request) -> Response:
        if not self.authorized(request):
            return JSONResponse({"errors": "[API] Invalid API key or access token"}, 401)
        params = dict(request.query_params)
        self.order_requests.append(params)
        limit = min(int(params.get("limit", 50)), self.page_size)
        if "page_info" in params:
            if set(params) - {"page_info", "limit", "fields"}:
                return JSONResponse({"errors": {"page_info": "only limit may go with it"}}, 400)
            status, start = params["page_info"].split(":")
            offset = int(start)
        else:
            status, offset = params["financial_status"], 0
        matching = [o for o in self.orders if o.get("financial_status") == status]
        page = matching[offset : offset + limit]
        headers = {}
        if offset + limit < len(matching):
            version = request.path_params["version"]
            next_url = (
                f"{self.url}/admin/api/{version}/orders.json"
                f"?limit={limit}&page_info={status}:{offset + limit}"
            )
            headers["Link"] = f'<{next_url}>; rel="next"'
        return JSONResponse({"orders": page}, headers=headers)


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
