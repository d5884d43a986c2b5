"""The merchant console: who is signed in (`GET /v1/me`) and the built web app at `/console`.

The console (console/, a Vite build committed as console/dist) is a client of the same /v1 API
as any other frontend. `/console/...` serves its files; any other path under it (a client
route such as /console/orders/42) answers index.html, so a reload or a shared link opens the
same screen. When the service runs as a Shopify app, index.html carries the `shopify-api-key`
meta and loads App Bridge from Shopify's CDN, so inside the Shopify admin the console signs its
requests with session tokens; opened directly, it asks for an API key instead.
"""

from __future__ import annotations

import html
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from app.core.errors import NotFound, Unauthorized, problem_responses
from app.deps import CallerDep, ResourcesDep, SessionDep
from app.shopify import tokens
from app.shops.models import ApiKeyRole

DIST = Path(__file__).resolve().parents[2] / "console" / "dist"
APP_BRIDGE_URL = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
_HEAD = "<head>"

router = APIRouter(tags=["Settings"])
console_router = APIRouter(include_in_schema=False)


class ShopifyConnection(BaseModel):
    installed_at: datetime
    scopes: list[str] = Field(description="The access scopes the merchant granted.")
    token_state: tokens.TokenState = Field(
        description="`usable`, `refresh_due`, or `paused` (the merchant must open the app again)."
    )
    needs_reauth: bool
    reauth_reason: str | None
    reauth_url: str | None = Field(description="Where the merchant re-authorises the app.")


class Me(BaseModel):
    shop: str = Field(description="The shop's domain.")
    actor: str = Field(description="The key's name, or the Shopify staff member.")
    role: ApiKeyRole = Field(description="What the caller may do: admin, reviewer or viewer.")
    currency: str
    timezone: str
    shopify: ShopifyConnection | None = Field(
        description="The Shopify app install, when the shop installed the app."
    )


@router.get(
    "/v1/me",
    operation_id="getMe",
    summary="Who is calling",
    description=(
        "The calling key's (or staff member's) shop, role, and the shop's Shopify connection: "
        "a frontend shows only the buttons the role may use."
    ),
    responses=problem_responses(Unauthorized),
)
async def get_me(caller: CallerDep, session: SessionDep, res: ResourcesDep) -> Me:
    grant = await tokens.grant_of(session, caller.shop.id)
    connection = None
    if grant is not None:
        public_url = res.settings.public_url
        connection = ShopifyConnection(
            installed_at=grant.installed_at,
            scopes=[scope for scope in grant.scopes.split(",") if scope],
            token_state=tokens.token_state(grant),
            needs_reauth=grant.needs_reauth_at is not None,
            reauth_reason=grant.reauth_reason,
            reauth_url=f"{public_url}/shopify/install?shop={caller.shop.domain}"
            if public_url
            else None,
        )
    return Me(
        shop=caller.shop.domain,
        actor=caller.actor.name,
        role=caller.role,
        currency=caller.shop.currency,
        timezone=caller.shop.timezone,
        shopify=connection,
    )


@lru_cache(maxsize=4)
def _index(dist: Path, shopify_client_id: str | None) -> str:
    page = (dist / "index.html").read_text()
    if shopify_client_id is None:
        return page
    # App Bridge must be the first script, loaded from Shopify's CDN (not bundled).
    embed = (
        f'<meta name="shopify-api-key" content="{html.escape(shopify_client_id)}" />'
        f'<script src="{APP_BRIDGE_URL}"></script>'
    )
    return page.replace(_HEAD, _HEAD + embed, 1)


def _index_response(request: Request) -> Response:
    if not (DIST / "index.html").is_file():
        raise NotFound("the console is not built: run `npm ci && npm run build` in console/")
    settings = request.app.state.resources.settings
    # Inside the Shopify admin the console is opened with `host` (and `embedded=1`).
    embedded = "host" in request.query_params or request.query_params.get("embedded") == "1"
    client_id = settings.shopify_client_id if embedded else None
    return HTMLResponse(_index(DIST, client_id), headers={"Cache-Control": "no-cache"})


@console_router.get("/console")
async def console_root(request: Request) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/console/{query}", status_code=307)


@console_router.get("/console/{path:path}")
async def console_file(request: Request, path: str) -> Response:
    if path.startswith("assets/"):
        asset = (DIST / path).resolve()
        if asset.is_relative_to(DIST) and asset.is_file():
            # Content-hashed names: a new build is a new name.
            return FileResponse(
                asset, headers={"Cache-Control": "public, max-age=31536000, immutable"}
            )
        raise NotFound(f"no console file {path}")
    return _index_response(request)
