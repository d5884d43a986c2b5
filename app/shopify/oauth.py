"""Shopify's token endpoint, `POST {admin}/admin/oauth/access_token`, for the three grants the
app uses. Every answer asked for is an *expiring offline* token: an access token that lives
about an hour (`expires_in`) and a refresh token (`refresh_token_expires_in`) that rotates on
each use.

- authorization code (the install callback): `code`, `expiring=1`;
- token exchange (a session token from the embedded app): `grant_type=urn:ietf:params:oauth:
  grant-type:token-exchange`, the session token as `subject_token`, an offline token asked for;
- refresh: `grant_type=refresh_token`.

A call that cannot reach Shopify, or is answered 429 or 5xx, is retried a few times with
backoff, then raises TokenUnavailable (try again later); any other answer but 200 raises
TokenRefused (revoked, expired or invalid: trying again cannot help). Retrying a refresh whose
answer was lost is safe: Shopify keeps the previous refresh token working until its replacement
is used.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from app.shopify.app_config import ShopifyApp

logger = logging.getLogger(__name__)

TRIES = 3
FIRST_BACKOFF_S = 0.25
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105


class TokenRefused(Exception):
    """Shopify refused the grant for good (revoked, expired, invalid)."""


class TokenUnavailable(Exception):
    """Shopify could not be reached or asked us to wait; the grant may work later."""


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    scopes: str
    access_expires_at: datetime | None  # None: the token does not expire
    refresh_token: str | None
    refresh_expires_at: datetime | None


async def exchange_code(
    http: httpx.AsyncClient, app: ShopifyApp, shop: str, code: str
) -> TokenGrant:
    return await _grant(http, app, shop, {"code": code, "expiring": 1})


async def exchange_session_token(
    http: httpx.AsyncClient, app: ShopifyApp, shop: str, session_token: str
) -> TokenGrant:
    return await _grant(
        http,
        app,
        shop,
        {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": session_token,
            "subject_token_type": ID_TOKEN,
            "requested_token_type": OFFLINE_TOKEN,
            "expiring": 1,
        },
    )


async def refresh(
    http: httpx.AsyncClient, app: ShopifyApp, shop: str, refresh_token: str
) -> TokenGrant:
    return await _grant(
        http, app, shop, {"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


async def _grant(
    http: httpx.AsyncClient, app: ShopifyApp, shop: str, fields: dict[str, Any]
) -> TokenGrant:
    url = f"{app.admin_origin(shop)}/admin/oauth/access_token"
    body = {"client_id": app.client_id, "client_secret": app.client_secret, **fields}
    grant = str(fields.get("grant_type", "authorization_code"))
    why = ""
    for attempt in range(TRIES):
        if attempt:
            await asyncio.sleep(FIRST_BACKOFF_S * 2 ** (attempt - 1))
        asked_at = datetime.now(UTC)
        try:
            response = await http.post(url, json=body, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            why = f"{type(exc).__name__}: {exc}"
            continue
        if response.status_code == 429 or response.status_code >= 500:
            why = f"HTTP {response.status_code}"
            continue
        if response.status_code != 200:
            raise TokenRefused(f"{grant}: HTTP {response.status_code}: {_error(response)}")
        return _read(response, asked_at, grant)
    logger.warning("%s for %s: %s after %d tries", grant, shop, why, TRIES)
    raise TokenUnavailable(f"{grant}: {why}")


def _error(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("error_description") or body.get("error") or body)[:200]
    return str(body)[:200]


def _read(response: httpx.Response, asked_at: datetime, grant: str) -> TokenGrant:
    try:
        body = orjson.loads(response.content)
        access_token = str(body["access_token"])
        expires_in = body.get("expires_in")
        refresh_in = body.get("refresh_token_expires_in")
        return TokenGrant(
            access_token=access_token,
            scopes=str(body.get("scope") or ""),
            # Counted from before the request was sent: never later than Shopify's own clock.
            access_expires_at=asked_at + timedelta(seconds=int(expires_in)) if expires_in else None,
            refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
            refresh_expires_at=(
                asked_at + timedelta(seconds=int(refresh_in)) if refresh_in else None
            ),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise TokenUnavailable(f"{grant}: unreadable answer: {exc!r}") from exc
