"""A shop's expiring offline token: kept fresh, refreshed by one process at a time.

The access token lives about an hour; it is refreshed REFRESH_MARGIN before it expires, and
once more when Shopify answers 401. Refresh tokens rotate (the old one stops working once the
new one is used), so two processes must never refresh the same shop at once: a refresh takes
the shop's grant row `FOR UPDATE` and calls Shopify while holding it. A process that waited
on the lock finds the new pair already there and uses it; nobody keeps a token in memory
across transactions, so every process uses the new pair from its next call on.

A refresh Shopify refuses for good (revoked, expired) marks the shop `needs_reauth` and alerts
the merchant. Pushes then wait, pending, with nothing marked failed, until the merchant opens
the app again (the install flow or a session-token request brings a new grant and resumes them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.crypto import SecretBox
from app.core.resources import Resources
from app.core.uow import unit_of_work
from app.notifications import service as notifications
from app.shopify import oauth
from app.shopify.app_config import app_of
from app.shopify.models import ShopifyGrant
from app.shops.models import Shop

logger = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)
REAUTH_NEEDED_EVENT = "shopify.reauth_needed"


class TokenState(StrEnum):
    usable = "usable"  # use shop.platform_access_token now
    refresh_due = "refresh_due"  # refresh first (it expires within REFRESH_MARGIN)
    paused = "paused"  # needs the merchant: no call can succeed until they open the app


class RefreshUnavailable(Exception):
    """Shopify's token endpoint could not be reached: try again later."""


async def grant_of(session: AsyncSession, shop_id: int) -> ShopifyGrant | None:
    return await session.get(ShopifyGrant, shop_id)


def token_state(grant: ShopifyGrant | None, now: datetime | None = None) -> TokenState:
    """How a shop's calls may go; a shop made by hand (no grant) uses its pasted token."""
    if grant is None:
        return TokenState.usable
    if grant.needs_reauth_at is not None:
        return TokenState.paused
    expires_at = grant.access_token_expires_at
    if expires_at is not None and expires_at - REFRESH_MARGIN <= (now or datetime.now(UTC)):
        return TokenState.refresh_due
    return TokenState.usable


def needs_new_grant(shop: Shop, grant: ShopifyGrant | None, now: datetime | None = None) -> bool:
    """No usable offline token, and no refresh token able to get one."""
    if grant is None or shop.platform_access_token is None or grant.needs_reauth_at is not None:
        return True
    now = now or datetime.now(UTC)
    access_alive = grant.access_token_expires_at is None or grant.access_token_expires_at > now
    refresh_alive = grant.refresh_token is not None and (
        grant.refresh_token_expires_at is None or grant.refresh_token_expires_at > now
    )
    return not (access_alive or refresh_alive)


@dataclass(frozen=True, slots=True)
class Stored:
    grant: ShopifyGrant
    resumed: bool  # the shop was waiting for re-authorisation: its pushes may go again


async def store_grant(
    session: AsyncSession, shop: Shop, new: oauth.TokenGrant, secrets: SecretBox
) -> Stored:
    """Keep a new token pair (install, token exchange or refresh), encrypted."""
    grant = await session.scalar(
        select(ShopifyGrant).where(ShopifyGrant.shop_id == shop.id).with_for_update()
    )
    if grant is None:
        grant = ShopifyGrant(shop_id=shop.id, installed_at=datetime.now(UTC), scopes="")
        session.add(grant)
    shop.platform_access_token = secrets.encrypt(new.access_token)
    grant.access_token_expires_at = new.access_expires_at
    grant.refresh_token = secrets.encrypt(new.refresh_token) if new.refresh_token else None
    grant.refresh_token_expires_at = new.refresh_expires_at
    if new.scopes:
        grant.scopes = new.scopes
    resumed = grant.needs_reauth_at is not None
    grant.needs_reauth_at = None
    grant.reauth_reason = None
    await session.flush()
    return Stored(grant, resumed)


async def refresh(res: Resources, shop_id: int, *, rejected_token: str | None = None) -> None:
    """Refresh the shop's token unless another process just did; with `rejected_token`
    (Shopify answered 401 to it), refresh unless the stored token is already another one.
    Raises RefreshUnavailable when Shopify cannot be reached; a refusal pauses the shop."""
    app = app_of(res.settings)
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        grant = await session.scalar(
            select(ShopifyGrant).where(ShopifyGrant.shop_id == shop_id).with_for_update()
        )
        if grant is None or grant.needs_reauth_at is not None:
            return
        shop = await session.get_one(Shop, shop_id)
        if shop.platform_access_token is None or shop.uninstalled_at is not None:
            return
        if rejected_token is None:
            if token_state(grant) is not TokenState.refresh_due:
                return  # refreshed by whoever held the lock before us
        elif res.secrets.decrypt(shop.platform_access_token) != rejected_token:
            return
        now = datetime.now(UTC)
        if grant.refresh_token is None or (
            grant.refresh_token_expires_at is not None and grant.refresh_token_expires_at <= now
        ):
            await pause(session, shop, grant, "the refresh token has expired")
            return
        if app is None:
            raise RefreshUnavailable("the Shopify app is not configured: cannot refresh tokens")
        try:
            new = await oauth.refresh(
                res.http, app, shop.domain, res.secrets.decrypt(grant.refresh_token)
            )
        except oauth.TokenRefused as exc:
            await pause(session, shop, grant, str(exc))
            return
        except oauth.TokenUnavailable as exc:
            raise RefreshUnavailable(str(exc)) from exc
        await store_grant(session, shop, new, res.secrets)
        logger.info("refreshed the Admin API token of %s", shop.domain)


async def pause(session: AsyncSession, shop: Shop, grant: ShopifyGrant, reason: str) -> None:
    """The merchant must open the app again; tell them, once per pause."""
    now = datetime.now(UTC)
    grant.needs_reauth_at = now
    grant.reauth_reason = reason[:1000]
    logger.warning("%s needs re-authorisation: %s", shop.domain, reason)
    await notifications.enqueue_alert(
        session,
        shop,
        event_key=f"{REAUTH_NEEDED_EVENT}:{int(now.timestamp() * 1000)}",
        event_type=REAUTH_NEEDED_EVENT,
        payload={
            "shop": shop.domain,
            "reason": grant.reauth_reason,
            "action": "Open the Cashback app in your Shopify admin to authorise it again; "
            "store credit waiting to be sent goes out once you do.",
        },
    )


async def drop(session: AsyncSession, shop: Shop) -> None:
    """`app/uninstalled`: the tokens are dead; keep the grant row (its shop's later webhooks,
    `shop/redact` among them, are still signed with the client secret)."""
    shop.platform_access_token = None
    grant = await session.get(ShopifyGrant, shop.id, with_for_update=True)
    if grant is not None:
        grant.access_token_expires_at = None
        grant.refresh_token = None
        grant.refresh_token_expires_at = None


async def record_scopes(session: AsyncSession, shop: Shop, current: list[str]) -> None:
    """`app/scopes_update`: what the merchant granted now."""
    grant = await session.get(ShopifyGrant, shop.id, with_for_update=True)
    if grant is not None:
        grant.scopes = ",".join(current)
