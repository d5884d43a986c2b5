"""Routes Shopify sends the merchant's browser and the storefront to: install, OAuth callback,
App Proxy. They answer 503 `shopify_app_not_configured` while the app is not configured.

They are Shopify's to call (browser redirects and a storefront proxy), not part of the REST
API that clients are generated from, so they stay out of openapi.yaml (README: "Install on a
Shopify store" describes them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from app.core.errors import problem_responses
from app.deps import ResourcesDep, SessionDep
from app.ledger.schemas import StorefrontBalance
from app.shopify import install, proxy
from app.shopify.app_config import AppNotConfigured, InvalidShopDomain, require_app
from app.shopify.signatures import InvalidSignature

router = APIRouter(tags=["Shopify"], include_in_schema=False)

ShopQuery = Annotated[str, Query(description="The shop's `*.myshopify.com` name.", max_length=255)]
OptionalParam = Annotated[str | None, Query(max_length=2048)]


def _redirect(description: str) -> dict[int | str, dict[str, object]]:
    return {
        302: {"description": description, "headers": {"Location": {"schema": {"type": "string"}}}}
    }


def _params(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


@router.get(
    "/shopify/install",
    operation_id="installShopifyApp",
    summary="Start installing the app on a shop (Shopify's app URL)",
    description=(
        "Checks `hmac` when Shopify sent one and redirects to the shop's OAuth authorize page "
        "with a single-use `state`."
    ),
    status_code=302,
    response_class=RedirectResponse,
    responses={
        **_redirect("To `{admin}/admin/oauth/authorize`."),
        **problem_responses(InvalidShopDomain, InvalidSignature, AppNotConfigured),
    },
)
async def install_shopify_app(
    request: Request,
    session: SessionDep,
    res: ResourcesDep,
    shop: ShopQuery,
    hmac: OptionalParam = None,
    timestamp: OptionalParam = None,
) -> RedirectResponse:
    app = require_app(res.settings)
    url = await install.begin_install(session, app, _params(request))
    return RedirectResponse(url, status_code=302)


@router.get(
    "/shopify/callback",
    operation_id="completeShopifyInstall",
    summary="Finish installing the app (OAuth redirect URL)",
    description=(
        "Checks `hmac`, `state` and `shop`, exchanges the code for an expiring offline token, "
        "creates or revives the shop and redirects to the app in the shop's admin."
    ),
    status_code=302,
    response_class=RedirectResponse,
    responses={
        **_redirect("To the app's page in the shop's admin."),
        **problem_responses(
            InvalidShopDomain,
            install.MissingCode,
            install.CodeRefused,
            InvalidSignature,
            install.InvalidState,
            install.ShopifyUnavailable,
            AppNotConfigured,
        ),
    },
)
async def complete_shopify_install(
    request: Request,
    res: ResourcesDep,
    shop: ShopQuery,
    code: OptionalParam = None,
    state: OptionalParam = None,
    hmac: OptionalParam = None,
    timestamp: OptionalParam = None,
    host: OptionalParam = None,
) -> RedirectResponse:
    app = require_app(res.settings)
    url = await install.complete_install(res, app, _params(request))
    return RedirectResponse(url, status_code=302)


@router.get(
    "/shopify/proxy/balance",
    operation_id="getStorefrontBalance",
    summary="The logged-in customer's cashback balance (Shopify App Proxy)",
    description=(
        "Shopify signs the query (`signature`); unsigned or stale requests get 401. Without "
        "`logged_in_customer_id` the answer carries no data."
    ),
    responses=problem_responses(
        InvalidShopDomain,
        InvalidSignature,
        proxy.StaleProxyRequest,
        proxy.ShopNotInstalled,
        AppNotConfigured,
    ),
)
async def get_storefront_balance(
    request: Request,
    response: Response,
    session: SessionDep,
    res: ResourcesDep,
    shop: ShopQuery,
    signature: OptionalParam = None,
    timestamp: OptionalParam = None,
    logged_in_customer_id: OptionalParam = None,
    path_prefix: OptionalParam = None,
) -> StorefrontBalance:
    app = require_app(res.settings)
    response.headers["Cache-Control"] = "no-store"  # one customer's balance, live
    return await proxy.balance(session, app, _params(request))
