"""Request dependencies: resources, the request's unit of work, and who is calling."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor
from app.kit.errors import Forbidden, Unauthorized
from app.kit.ratelimit import client_address, failed_auth_limiter
from app.kit.resources import Resources
from app.kit.uow import unit_of_work
from app.observability.context import bind
from app.shops import service as shop_service
from app.shops.models import ApiKey, ApiKeyRole, Shop


async def get_resources(request: Request) -> Resources:
    res: Resources = request.app.state.resources
    return res


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_session(res: ResourcesDep) -> AsyncIterator[AsyncSession]:
    async with unit_of_work(res.sessionmaker, res.doorbell) as session:
        yield session


# scope="function": the commit happens before the response is sent, never after.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

_api_key_scheme = HTTPBearer(
    scheme_name="ApiKey",
    description="A shop's API key: `Authorization: Bearer cbk_…`.",
    auto_error=False,
)
_admin_scheme = HTTPBearer(
    scheme_name="AdminToken",
    description="The operator token (`CASHBACK_ADMIN_TOKEN`).",
    auto_error=False,
)


@dataclass(frozen=True, slots=True)
class Caller:
    key: ApiKey
    shop: Shop

    @property
    def actor(self) -> Actor:
        return Actor(self.key.name, self.key.id)


async def guard_failed_auth(request: Request, res: ResourcesDep) -> AsyncIterator[None]:
    """Refuse a client that failed authentication too often (429); count its failures."""
    limiter = failed_auth_limiter(res.doorbell.redis, res.settings)
    client = client_address(request, res.settings)
    await limiter.check(client)
    try:
        yield
    except Unauthorized:
        await limiter.record_failure(client)
        raise


AuthGuardDep = Annotated[None, Depends(guard_failed_auth, scope="function")]


async def get_caller(
    _: AuthGuardDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_api_key_scheme)],
) -> Caller:
    if credentials is None:
        raise Unauthorized("send `Authorization: Bearer <api key>`")
    found = await shop_service.authenticate(session, credentials.credentials)
    if found is None:
        # One answer for unknown, revoked and another shop's deleted keys: nothing to probe.
        raise Unauthorized("unknown or revoked API key")
    bind(shop_id=found[1].id)  # every log line of the request names the shop
    return Caller(*found)


CallerDep = Annotated[Caller, Depends(get_caller, scope="function")]


async def get_admin_caller(caller: CallerDep) -> Caller:
    if caller.key.role != ApiKeyRole.admin:
        raise Forbidden(f"this needs an admin key; this key is a {caller.key.role} key")
    return caller


# Settings, program and keys: admin keys only.
AdminCallerDep = Annotated[Caller, Depends(get_admin_caller, scope="function")]


async def get_reviewer_caller(caller: CallerDep) -> Caller:
    if caller.key.role not in (ApiKeyRole.admin, ApiKeyRole.reviewer):
        raise Forbidden("this needs a reviewer or admin key; this key is a viewer key")
    return caller


# Review actions: reviewer and admin keys.
ReviewerCallerDep = Annotated[Caller, Depends(get_reviewer_caller, scope="function")]


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
