"""Shopify as an app meets it, standing in on 127.0.0.1: the Admin API of the platform stand-in
(store credit) plus, per shop under `/shops/{shop}` (CASHBACK_SHOPIFY_ADMIN_URL points there):

- `GET  /admin/oauth/authorize`: the merchant approves at once; redirects to `redirect_uri`
  with a single-use `code`, `hmac` (client secret), `state`, `shop`, `timestamp` and `host`;
- `POST /admin/oauth/access_token`: authorization code (`expiring=1` gives an expiring pair),
  token exchange (a session token signed with the client secret) and refresh (rotates: the old
  refresh token stops working; expired or revoked ones are refused with `invalid_grant`);
- `POST /admin/api/{version}/graphql.json`: each query and its variables are first checked
  against `admin_schema.graphql`; answers `shop`, `webhookSubscriptions`,
  `webhookSubscriptionCreate` and the store-credit calls, for a live token of that shop only.

Every request is recorded (`seen`), so a test can tell that none was made.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.shopify.signatures import sign_oauth
from tests.shopify.admin_standin import FakeShopify


@dataclass
class Issued:
    shop: str
    expires_at: datetime


@dataclass
class ShopState:
    currency: str = "USD"
    timezone: str = "America/Toronto"
    subscriptions: list[dict[str, str]] = field(default_factory=list)


class _Recorder:
    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


class ShopifyStandin(FakeShopify):
    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__()
        self.client_id, self.client_secret = client_id, client_secret
        self.seen: list[str] = []
        self.shops: dict[str, ShopState] = {}
        self.codes: dict[str, str] = {}  # code: shop
        self.access_tokens: dict[str, Issued] = {}
        self.refresh_tokens: dict[str, Issued] = {}
        self.grants: list[tuple[str, str]] = []  # (shop, grant type), every one answered
        self.access_ttl_s = 3600
        self.refresh_ttl_s = 90 * 24 * 3600
        self.refresh_gate: asyncio.Event | None = None  # set: refreshes are answered
        self.refresh_waiting = asyncio.Event()  # a refresh is waiting at the gate
        self.deprecated_reason: str | None = None
        self._serial = itertools.count(1)
        shop_routes = [
            Route("/admin/oauth/authorize", self._authorize, methods=["GET"]),
            Route("/admin/oauth/access_token", self._access_token, methods=["POST"]),
            Route("/admin/api/{version}/graphql.json", self._graphql, methods=["POST"]),
        ]
        self.app.router.routes.append(Mount("/shops/{shop}", routes=shop_routes))
        inner = self.app
        self.app = _Recorder(inner, self.seen)  # type: ignore[assignment]

    # What a test sets up or reads.

    def shop(self, domain: str) -> ShopState:
        return self.shops.setdefault(domain, ShopState())

    def refreshes(self, shop: str) -> int:
        return self.grants.count((shop, "refresh_token"))

    def expire_access(self, shop: str) -> None:
        """Shopify's clock passed the hour: the shop's access tokens answer 401 from now on."""
        past = datetime.now(UTC) - timedelta(seconds=1)
        for issued in self.access_tokens.values():
            if issued.shop == shop:
                issued.expires_at = past

    def revoke_refresh(self, shop: str) -> None:
        for token in [t for t, i in self.refresh_tokens.items() if i.shop == shop]:
            del self.refresh_tokens[token]

    def uninstall(self, shop: str) -> None:
        for tokens in (self.access_tokens, self.refresh_tokens):
            for token in [t for t, i in tokens.items() if i.shop == shop]:
                del tokens[token]

    # OAuth.

    async def _authorize(self, request: Request) -> Response:
        shop = request.path_params["shop"]
        q = request.query_params
        if q.get("client_id") != self.client_id:
            return JSONResponse({"error": "unknown client_id"}, 400)
        code = f"code-{next(self._serial)}"
        self.codes[code] = shop
        host = base64.b64encode(
            f"admin.shopify.com/store/{shop.removesuffix('.myshopify.com')}".encode()
        ).decode()
        params = [
            ("code", code),
            ("host", host),
            ("shop", shop),
            ("state", q.get("state", "")),
            ("timestamp", str(int(time.time()))),
        ]
        params.append(("hmac", sign_oauth(params, self.client_secret)))
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(params)}", status_code=302)

    async def _access_token(self, request: Request) -> Response:
        shop = request.path_params["shop"]
        body: dict[str, Any] = await request.json()
        if (body.get("client_id"), body.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return JSONResponse({"error": "invalid_client"}, 401)
        grant_type = str(body.get("grant_type", "authorization_code"))
        if grant_type == "authorization_code":
            if self.codes.pop(str(body.get("code")), None) != shop:
                return _invalid_grant("unknown or used code")
            expiring = str(body.get("expiring")) == "1"
        elif grant_type == "refresh_token":
            issued = self.refresh_tokens.pop(str(body.get("refresh_token")), None)
            if issued is None or issued.shop != shop or issued.expires_at <= datetime.now(UTC):
                return _invalid_grant("refresh token revoked or expired")
            if self.refresh_gate is not None:
                self.refresh_waiting.set()
                await self.refresh_gate.wait()
            expiring = True
        elif grant_type == "urn:ietf:params:oauth:grant-type:token-exchange":
            try:
                claims = jwt.decode(
                    str(body.get("subject_token")),
                    self.client_secret,
                    algorithms=["HS256"],
                    audience=self.client_id,
                )
            except jwt.PyJWTError as exc:
                return _invalid_grant(str(exc))
            if claims.get("dest") != f"https://{shop}":
                return _invalid_grant("session token of another shop")
            expiring = str(body.get("expiring")) == "1"
        else:
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        self.grants.append((shop, grant_type))
        return JSONResponse(self._issue(shop, expiring=expiring))

    def _issue(self, shop: str, *, expiring: bool) -> dict[str, Any]:
        n = next(self._serial)
        now = datetime.now(UTC)
        store = shop.removesuffix(".myshopify.com")
        access, refresh = f"shpat_{store}_{n}", f"shprt_{store}_{n}"
        answer: dict[str, Any] = {"access_token": access, "scope": ",".join(_SCOPES)}
        if not expiring:
            self.access_tokens[access] = Issued(shop, now + timedelta(days=3650))
            return answer
        self.access_tokens[access] = Issued(shop, now + timedelta(seconds=self.access_ttl_s))
        self.refresh_tokens[refresh] = Issued(shop, now + timedelta(seconds=self.refresh_ttl_s))
        return answer | {
            "expires_in": self.access_ttl_s,
            "refresh_token": refresh,
            "refresh_token_expires_in": self.refresh_ttl_s,
        }

    # Admin GraphQL for app tokens.

    def authorized(self, request: Request) -> bool:
        shop = request.path_params.get("shop")
        if shop is None:  # the platform tests' fixed token, at the root
            return super().authorized(request)
        issued = self.access_tokens.get(request.headers.get("X-Shopify-Access-Token", ""))
        return issued is not None and issued.shop == shop and issued.expires_at > datetime.now(UTC)

    async def _graphql(self, request: Request) -> Response:
        if not self.authorized(request):
            return JSONResponse({"errors": "[API] Invalid API key or access token"}, 401)
        body = await request.json()
        query, variables = str(body["query"]), body.get("variables") or {}
        invalid = self.invalid(query, variables)
        if invalid is not None:
            return invalid
        shop = request.path_params.get("shop", "")
        headers = (
            {"X-Shopify-API-Deprecated-Reason": self.deprecated_reason}
            if self.deprecated_reason
            else {}
        )
        if "webhookSubscriptionCreate(" in query:
            return JSONResponse(self._create_subscription(shop, variables), headers=headers)
        if "webhookSubscriptions(" in query:
            nodes = self.shop(shop).subscriptions
            page = {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}
            return JSONResponse({"data": {"webhookSubscriptions": page}}, headers=headers)
        if "shop {" in query:
            state = self.shop(shop)
            data = {"shop": {"currencyCode": state.currency, "ianaTimezone": state.timezone}}
            return JSONResponse({"data": data}, headers=headers)
        answer = await super()._graphql(request)
        answer.headers.update(headers)
        return answer

    def _create_subscription(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        subscription = {
            "id": f"gid://shopify/WebhookSubscription/{next(self._serial)}",
            "topic": variables["topic"],
            "uri": variables["webhookSubscription"]["uri"],
        }
        self.shop(shop).subscriptions.append(subscription)
        payload = {"webhookSubscription": subscription, "userErrors": []}
        return {"data": {"webhookSubscriptionCreate": payload}}


_SCOPES = (
    "read_orders",
    "read_customers",
    "read_products",
    "read_store_credit_accounts",
    "read_store_credit_account_transactions",
    "write_store_credit_account_transactions",
)


def _invalid_grant(description: str) -> Response:
    return JSONResponse({"error": "invalid_grant", "error_description": description}, 400)
