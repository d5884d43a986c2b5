from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_service
from app.audit.service import Actor
from app.core.errors import Conflict, NotFound
from app.core.money import is_currency
from app.core.pagination import decode_cursor
from app.program.models import ProgramVersion
from app.program.rules import Program
from app.shops.models import ApiKey, ApiKeyRole, ProcessingMode, Shop

API_KEY_PREFIX = "cbk_"
_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)+$")


class ShopExists(Conflict):
    code, title = "shop_exists", "A shop with this domain already exists"


@dataclass(frozen=True, slots=True)
class CreatedShop:
    shop: Shop
    api_key: str  # shown once; only its hash is stored


def hash_api_key(raw: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching).
    return hashlib.sha256(raw.encode()).hexdigest()


def normalize_domain(domain: str) -> str:
    value = domain.strip().lower()
    if not _DOMAIN.match(value):
        raise ValueError(f"not a shop domain: {domain!r}")
    return value


def validate_currency(currency: str) -> str:
    if not is_currency(currency):
        raise ValueError(f"unknown currency {currency!r}: expected an ISO 4217 code")
    return currency


def validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {name!r}: expected an IANA name") from exc
    return name


async def issue_api_key(session: AsyncSession, shop: Shop, *, name: str, role: ApiKeyRole) -> str:
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiKey(shop_id=shop.id, name=name, role=role, prefix=raw[:12], key_hash=hash_api_key(raw))
    )
    await session.flush()
    return raw


async def create_shop(
    session: AsyncSession,
    *,
    domain: str,
    currency: str = "USD",
    mode: ProcessingMode = ProcessingMode.automatic,
    timezone: str = "UTC",
    webhook_secret: str | None = None,
) -> CreatedShop:
    """Create a shop with the default program (version 1) and its first admin key."""
    shop = Shop(
        domain=normalize_domain(domain),
        currency=validate_currency(currency),
        processing_mode=mode,
        timezone=validate_timezone(timezone),
        webhook_secret=webhook_secret or "whsec_" + secrets.token_urlsafe(24),
    )
    try:
        async with session.begin_nested():
            session.add(shop)
            await session.flush()
    except IntegrityError as exc:
        raise ShopExists(f"{shop.domain} is already registered") from exc
    session.add(ProgramVersion(shop_id=shop.id, version=1, rules=Program().model_dump(mode="json")))
    api_key = await issue_api_key(session, shop, name="owner", role=ApiKeyRole.admin)
    return CreatedShop(shop, api_key)


async def get_shop_by_domain(session: AsyncSession, domain: str) -> Shop | None:
    result = await session.execute(select(Shop).where(Shop.domain == domain.strip().lower()))
    return result.scalar_one_or_none()


async def authenticate(session: AsyncSession, raw_key: str) -> tuple[ApiKey, Shop] | None:
    result = await session.execute(
        select(ApiKey, Shop)
        .join(Shop, Shop.id == ApiKey.shop_id)
        .where(ApiKey.key_hash == hash_api_key(raw_key), ApiKey.revoked_at.is_(None))
    )
    row = result.one_or_none()
    return (row[0], row[1]) if row else None


async def any_shop(session: AsyncSession) -> bool:
    return (await session.execute(select(Shop.id).limit(1))).first() is not None


class LastAdminKey(Conflict):
    code, title = "last_admin_key", "The shop's last admin key cannot be revoked"


async def create_api_key(
    session: AsyncSession, shop: Shop, actor: Actor, *, name: str, role: ApiKeyRole
) -> tuple[ApiKey, str]:
    """A new key for the shop, audited; returns it and the raw key (shown once, never stored)."""
    raw = await issue_api_key(session, shop, name=name, role=role)
    key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_api_key(raw)))
    assert key is not None
    audit_service.record(
        session,
        shop_id=shop.id,
        actor=actor,
        action="api_key.created",
        subject_type="api_key",
        subject_id=key.id,
        after={"name": key.name, "role": key.role},
    )
    return key, raw


async def list_api_keys(
    session: AsyncSession, shop_id: int, *, cursor: str | None, limit: int
) -> list[ApiKey]:
    """Up to `limit` + 1 of the shop's keys after `cursor`, oldest first (revoked ones too)."""
    stmt = select(ApiKey).where(ApiKey.shop_id == shop_id)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(ApiKey.id > after)
    return list(await session.scalars(stmt.order_by(ApiKey.id).limit(limit + 1)))


async def revoke_api_key(session: AsyncSession, shop: Shop, actor: Actor, key_id: int) -> ApiKey:
    """The key stops working at once (revoking a revoked key changes nothing). The shop's last
    admin key is kept, so the shop is never locked out of its own settings."""
    key = await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.shop_id == shop.id).with_for_update()
    )
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is not None:
        return key
    if key.role == ApiKeyRole.admin:
        admins = await session.scalar(
            select(func.count()).where(
                ApiKey.shop_id == shop.id,
                ApiKey.role == ApiKeyRole.admin,
                ApiKey.revoked_at.is_(None),
            )
        )
        if (admins or 0) <= 1:
            raise LastAdminKey("create another admin key first")
    key.revoked_at = datetime.now(UTC)
    audit_service.record(
        session,
        shop_id=shop.id,
        actor=actor,
        action="api_key.revoked",
        subject_type="api_key",
        subject_id=key.id,
        before={"name": key.name, "role": key.role},
    )
    return key
