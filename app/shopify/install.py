"""Installing the app on a shop, and getting a new grant when the shop lost its own.

Install (OAuth authorization code grant, expiring offline tokens):

1. `GET /shopify/install?shop=…` (the app URL; Shopify adds `hmac`, checked when present):
   a single-use `state` is stored and the merchant is sent to `{admin}/admin/oauth/authorize`
   with the scopes and `redirect_uri = {public}/shopify/callback`.
2. `GET /shopify/callback?code&hmac&shop&state&timestamp&host`: the `hmac` must verify and the
   `state` must be one we issued for that shop, unused and unexpired (it is consumed at once,
   even if what follows fails). The code is exchanged (`expiring=1`), the shop's currency and
   timezone are read, and the shop is created, or revived with all its history after an
   uninstall; its tokens are stored encrypted, paused pushes resume, and a job registers the
   webhook subscriptions. The merchant lands on the app's page in their admin.

Nothing is sent anywhere for a shop name that is not `*.myshopify.com`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ProblemError, Unauthorized
from app.core.money import is_currency
from app.core.resources import Resources
from app.core.uow import defer_job, unit_of_work
from app.credit_sync import service as credit_sync
from app.shopify import oauth, session_tokens, subscriptions, tokens
from app.shopify.admin import AdminApi, AdminApiError
from app.shopify.app_config import SCOPES, ShopifyApp, app_of, shop_domain
from app.shopify.models import OAuthState
from app.shopify.signatures import InvalidSignature, verify_oauth
from app.shops import service as shop_service
from app.shops.models import Shop

logger = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
SUBSCRIBE_JOB = "register_webhook_subscriptions"

Params = Sequence[tuple[str, str]]


class InvalidState(ProblemError):
    status, code, title = 400, "invalid_oauth_state", "Unknown, used or expired OAuth state"


class MissingCode(ProblemError):
    status, code, title = 400, "missing_oauth_code", "The callback carries no code"


class CodeRefused(ProblemError):
    status, code, title = 400, "oauth_code_refused", "Shopify refused the authorization code"


class ShopifyUnavailable(ProblemError):
    status, code, title = 502, "shopify_unavailable", "Shopify could not be reached"


def _param(params: Params, name: str) -> str | None:
    return next((v for k, v in params if k == name), None)


CONSOLE_PATH = "/console/"


async def begin_install(session: AsyncSession, app: ShopifyApp, params: Params) -> str:
    """The URL of Shopify's authorize page for this install, with a new single-use state; or,
    when Shopify opens the app (its app URL, signed, `embedded=1`) in the admin of a shop that
    has it installed, the merchant console, which signs in with App Bridge session tokens (and
    renews a lost grant by token exchange)."""
    shop = shop_domain(_param(params, "shop"))
    if _param(params, "hmac") is not None and not verify_oauth(params, app.secrets):
        raise InvalidSignature("the install link's hmac does not verify")
    if _param(params, "hmac") is not None and _param(params, "embedded") == "1":
        installed = await session.scalar(select(Shop).where(Shop.domain == shop))
        live = installed is not None and installed.uninstalled_at is None
        if live and installed and await tokens.grant_of(session, installed.id) is not None:
            keep = [(k, v) for k, v in params if k in ("shop", "host", "embedded")]
            return f"{CONSOLE_PATH}?{urlencode(keep)}"
    now = datetime.now(UTC)
    await session.execute(delete(OAuthState).where(OAuthState.expires_at < now))
    state = secrets.token_urlsafe(32)
    session.add(OAuthState(state=state, shop_domain=shop, expires_at=now + STATE_TTL))
    query = urlencode(
        {
            "client_id": app.client_id,
            "scope": ",".join(SCOPES),
            "redirect_uri": app.redirect_uri,
            "state": state,
        }
    )
    return f"{app.admin_origin(shop)}/admin/oauth/authorize?{query}"


async def complete_install(res: Resources, app: ShopifyApp, params: Params) -> str:
    """Finish the install; returns where to send the merchant (the app in their admin)."""
    shop = shop_domain(_param(params, "shop"))
    if not verify_oauth(params, app.secrets):
        raise InvalidSignature("the callback's hmac does not verify")
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        consumed = await session.scalar(
            delete(OAuthState)
            .where(
                OAuthState.state == (_param(params, "state") or ""),
                OAuthState.shop_domain == shop,
                OAuthState.expires_at > datetime.now(UTC),
            )
            .returning(OAuthState.state)
        )
    if consumed is None:
        raise InvalidState("start the install again from Shopify")
    code = _param(params, "code")
    if not code:
        raise MissingCode("the callback carries no code")
    try:
        grant = await oauth.exchange_code(res.http, app, shop, code)
    except oauth.TokenRefused as exc:
        raise CodeRefused(str(exc)) from exc
    except oauth.TokenUnavailable as exc:
        raise ShopifyUnavailable(str(exc)) from exc
    api = AdminApi(app.admin_origin(shop), app.api_version, grant.access_token)
    try:
        basics = await subscriptions.shop_basics(res.http, api)
    except AdminApiError as exc:
        raise ShopifyUnavailable(f"cannot read the shop: {exc}") from exc
    if not is_currency(basics.currency):
        raise ShopifyUnavailable(f"the shop's currency {basics.currency!r} is unknown")
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        await _install(session, res, app, shop, grant, basics)
    return app.home_url(shop)


async def _install(
    session: AsyncSession,
    res: Resources,
    app: ShopifyApp,
    domain: str,
    grant: oauth.TokenGrant,
    basics: subscriptions.ShopBasics,
) -> Shop:
    shop = await session.scalar(select(Shop).where(Shop.domain == domain).with_for_update())
    if shop is None:
        try:
            timezone = shop_service.validate_timezone(basics.timezone)
        except ValueError:
            timezone = "UTC"
        try:
            created = await shop_service.create_shop(
                session, domain=domain, currency=basics.currency, timezone=timezone
            )
        except shop_service.ShopExists:  # another callback for the same shop just made it
            shop = await session.scalar(select(Shop).where(Shop.domain == domain).with_for_update())
            assert shop is not None
        else:
            shop = created.shop
            shop.push_store_credit = True  # what installing the app is for
            logger.info("installed on %s (%s, %s)", domain, basics.currency, timezone)
    if shop.uninstalled_at is not None:
        logger.info("reinstalled on %s: the shop and its history come back", domain)
        shop.uninstalled_at = None
    if shop.currency != basics.currency:
        logger.warning(
            "%s: Shopify says %s, the shop keeps %s", domain, basics.currency, shop.currency
        )
    origin = app.admin_origin(domain)
    shop.platform_api_base_url = None if origin == f"https://{domain}" else origin
    shop.platform_api_version = app.api_version
    await grant_arrived(session, shop, grant, res)
    stamp = int(datetime.now(UTC).timestamp() * 1000)
    defer_job(session, SUBSCRIBE_JOB, shop.id, job_id=f"subscriptions:{shop.id}:{stamp}")
    return shop


async def grant_arrived(
    session: AsyncSession, shop: Shop, grant: oauth.TokenGrant, res: Resources
) -> None:
    """Keep a new token pair; a shop that waited for it has its pushes rung again."""
    stored = await tokens.store_grant(session, shop, grant, res.secrets)
    if stored.resumed:
        resumed = await credit_sync.resume_pushes(session, shop.id)
        logger.info("%s authorised again: %d push(es) resumed", shop.domain, resumed)


async def staff_shop(res: Resources, token: str) -> tuple[int, str]:
    """(shop id, staff user id) for a session token of an installed shop, else Unauthorized.
    A shop without a valid offline token gets one by token exchange on the way."""
    app = app_of(res.settings)
    if app is None:
        raise Unauthorized("unknown or revoked API key")
    try:
        staff = session_tokens.verify(token, app)
    except session_tokens.InvalidSessionToken as exc:
        raise Unauthorized(f"invalid session token: {exc}") from exc
    async with res.sessionmaker() as session:
        shop = await session.scalar(select(Shop).where(Shop.domain == staff.shop))
        grant = await tokens.grant_of(session, shop.id) if shop is not None else None
    if shop is None or grant is None or shop.uninstalled_at is not None:
        raise Unauthorized(f"the app is not installed on {staff.shop}")
    if tokens.needs_new_grant(shop, grant):
        await _exchange(res, app, shop.id, staff)
    return shop.id, staff.user_id


async def _exchange(
    res: Resources, app: ShopifyApp, shop_id: int, staff: session_tokens.StaffSession
) -> None:
    try:
        grant = await oauth.exchange_session_token(res.http, app, staff.shop, staff.token)
    except (oauth.TokenRefused, oauth.TokenUnavailable) as exc:
        # The staff member is who they say; only the shop's background work keeps waiting.
        logger.warning("token exchange for %s failed: %s", staff.shop, exc)
        return
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        shop = await session.get_one(Shop, shop_id, with_for_update=True)
        await grant_arrived(session, shop, grant, res)
