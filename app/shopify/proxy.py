"""The App Proxy: `https://{shop}/apps/cashback/balance` on the storefront, proxied by Shopify
to `GET /shopify/proxy/balance`.

Shopify adds `shop`, `path_prefix`, `timestamp`, `logged_in_customer_id` (empty for a guest)
and `signature`, a hex HMAC-SHA256 with the client secret of the other parameters (see
app.shopify.signatures). An unsigned, wrongly signed or stale request (timestamp more than
PROXY_MAX_SKEW_S away) is answered 401; a request naming no customer gets no data.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound, ProblemError
from app.ledger import queries as ledger_queries
from app.ledger.schemas import StorefrontBalance
from app.shopify.app_config import ShopifyApp, shop_domain
from app.shopify.models import ShopifyGrant
from app.shopify.signatures import PROXY_MAX_SKEW_S, InvalidSignature, fresh, verify_proxy
from app.shops.models import Shop


class StaleProxyRequest(ProblemError):
    status, code, title = 401, "stale_request", "The request was signed too long ago"


class ShopNotInstalled(NotFound):
    code, title = "shop_not_installed", "The app is not installed on this shop"


async def balance(
    session: AsyncSession, app: ShopifyApp, params: Sequence[tuple[str, str]]
) -> StorefrontBalance:
    if not verify_proxy(params, app.secrets):
        raise InvalidSignature("sign the query as Shopify's App Proxy does")
    query = dict(params)
    if not fresh(query.get("timestamp"), max_skew_s=PROXY_MAX_SKEW_S):
        raise StaleProxyRequest(f"timestamp more than {PROXY_MAX_SKEW_S} s from now")
    domain = shop_domain(query.get("shop"))
    shop = await session.scalar(
        select(Shop)
        .join(ShopifyGrant, ShopifyGrant.shop_id == Shop.id)
        .where(Shop.domain == domain, Shop.uninstalled_at.is_(None))
    )
    if shop is None:
        raise ShopNotInstalled(f"the app is not installed on {domain}")
    customer = (query.get("logged_in_customer_id") or "").strip() or None
    return await ledger_queries.storefront_balance(session, shop.id, shop.currency, customer)
