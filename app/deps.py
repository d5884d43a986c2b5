"""Request dependencies: resources, the request's unit of work, and who is calling.

A route that only reads, and may read a little in the past, takes `ReadSessionDep` (the replica
when there is one) with `ReadCallerDep`: the caller is still authenticated on the primary (a
revoked key stops at once, a new one works at once), in a short transaction that ends before
the read, so the request holds one connection at a time.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor
from app.core.context import bind
from app.core.errors import Forbidden, Unauthorized
from app.core.ratelimit import client_address, failed_auth_limiter
from app.core.resources import Resources
from app.core.uow import unit_of_work
from app.shopify.install import staff_shop
from app.shopify.session_tokens import looks_like_session_token
from app.shops import service as shop_service
from app.shops.models import ApiKey, ApiKeyRole, Shop


async def get_resources(request: Request) -> Resources:
    res: Resources = request.app.state.resources
    return res


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_session(res: ResourcesDep) -> AsyncIterator[AsyncSession]:
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        yield session


# scope="function": the commit happens before the response is sent, never after.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(res: ResourcesDep) -> AsyncIterator[AsyncSession]:
    async with res.read_sessionmaker() as session:
        yield session


# Reads that tolerate lag: lists, counts, dashboard figures, audit events and exports.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]

_api_key_scheme = HTTPBearer(
    scheme_name="ApiKey",
    description=(
        "A shop's API key: `Authorization: Bearer cbk_…`; or, from the embedded Shopify app, "
        "a Shopify session token (acting as the shop's staff, with the admin role)."
    ),
    auto_error=False,
)
_admin_scheme = HTTPBearer(
    scheme_name="AdminToken",
    description="The operator token (`CASHBACK_ADMIN_TOKEN`).",
    auto_error=False,
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: an API key of the shop, or a staff member of the shop in the embedded
    Shopify app (a session token)."""

    shop: Shop
    role: ApiKeyRole
    actor: Actor

    @classmethod
    def of_key(cls, key: ApiKey, shop: Shop) -> Caller:
        return cls(shop, ApiKeyRole(key.role), Actor(key.name, key.id))


async def guard_failed_auth(request: Request, res: ResourcesDep) -> AsyncIterator[None]:
    """Refuse a client that failed authentication too often (429); count its failures."""
    limiter = failed_auth_limiter(res.broker.redis, res.settings)
    client = client_address(request, res.settings)
    await limiter.check(client)
    try:
        yield
    except Unauthorized:
        await limiter.record_failure(client)
        raise


AuthGuardDep = Annotated[None, Depends(guard_failed_auth, scope="function")]


ApiKeyCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_api_key_scheme)]


async def get_caller(
    _: AuthGuardDep, res: ResourcesDep, session: SessionDep, credentials: ApiKeyCredentials
) -> Caller:
    return await _authenticate(res, session, credentials)


async def get_read_caller(
    _: AuthGuardDep, res: ResourcesDep, credentials: ApiKeyCredentials
) -> Caller:
    async with res.sessionmaker() as session:  # the primary, released before the read
        return await _authenticate(res, session, credentials)


async def _authenticate(
    res: Resources, session: AsyncSession, credentials: HTTPAuthorizationCredentials | None
) -> Caller:
    if credentials is None:
        raise Unauthorized("send `Authorization: Bearer <api key>`")
    if looks_like_session_token(credentials.credentials):
        shop_id, staff_id = await staff_shop(res, credentials.credentials)
        shop = await session.get_one(Shop, shop_id)
        bind(shop_id=shop.id)
        return Caller(shop, ApiKeyRole.admin, Actor(f"shopify staff {staff_id}"))
    found = await shop_service.authenticate(session, credentials.credentials)
    if found is None:
        # One answer for unknown, revoked and another shop's deleted keys: nothing to probe.
        raise Unauthorized("unknown or revoked API key")
    bind(shop_id=found[1].id)  # every log line of the request names the shop
    return Caller.of_key(*found)


CallerDep = Annotated[Caller, Depends(get_caller, scope="function")]
ReadCallerDep = Annotated[Caller, Depends(get_read_caller, scope="function")]


async def get_admin_caller(caller: CallerDep) -> Caller:
    if caller.role != ApiKeyRole.admin:
        raise Forbidden(f"this needs an admin key; this key is a {caller.role} key")
    return caller


# Settings, program and keys: admin keys only.
AdminCallerDep = Annotated[Caller, Depends(get_admin_caller, scope="function")]


def _reviewer(caller: Caller) -> Caller:
    if caller.role not in (ApiKeyRole.admin, ApiKeyRole.reviewer):
        raise Forbidden("this needs a reviewer or admin key; this key is a viewer key")
    return caller


async def get_reviewer_caller(caller: CallerDep) -> Caller:
    return _reviewer(caller)


async def get_read_reviewer_caller(caller: ReadCallerDep) -> Caller:
    return _reviewer(caller)


# Review actions: reviewer and admin keys.
ReviewerCallerDep = Annotated[Caller, Depends(get_reviewer_caller, scope="function")]
ReadReviewerCallerDep = Annotated[Caller, Depends(get_read_reviewer_caller, scope="function")]


async def require_admin_token(
    _: AuthGuardDep,
    res: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_scheme)],
) -> None:
    expected = res.settings.admin_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials else b""
    if not hmac.compare_digest(given, expected):
        raise Unauthorized("send `Authorization: Bearer <CASHBACK_ADMIN_TOKEN>`")


AdminDep = Depends(require_admin_token)
