"""Credit that expires: the expiry sweep, the reminders before it, and Shopify's expirations.

- **Ledger-only shops**: at its `expires_at` (the end of the shop's local day) the sweep
  writes an `expiry` entry for what is left of each credit after reversals and redemptions,
  under the credit's row lock, once per credit (idempotency key `expiry:<credit>`), never
  more than is left: a balance never goes below zero.
- **Shops that push to Shopify**: Shopify expires the credit (it got `expiresAt` with the
  push); the service reads the expiration back (`platform.expirations`) here, a few minutes
  after each credit's expiry, as well as during reconciliation and when a push reads the
  account.
- **Reminders** (`reminder_days_before` of the shop's current program): a `cashback.expiring`
  customer notice per credit and reminder, with the amount left and the date, decided once in
  `expiry_reminders` (concurrent sweeps: one inserts it, one notice). A credit found late gets
  only its closest due reminder; a credit with nothing left (spent, reversed) gets none. On
  Shopify shops the amount left is Shopify's (`remainingAmount`: checkout spends count).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.core.money import format_minor
from app.core.resources import Resources
from app.core.uow import defer_job, unit_of_work
from app.credit_sync import expirations
from app.credit_sync import service as credit_sync
from app.credit_sync.models import CreditSync, SyncStatus
from app.expiry.models import ExpiryReminder
from app.ledger import service as ledger_service
from app.ledger.credits import expiry_due
from app.ledger.models import Customer, EntryKind, LedgerEntry
from app.metrics import rollup
from app.notifications import service as notification_service
from app.notifications.service import OutboxKind
from app.orders.models import Order
from app.program.service import current_program, rules_of
from app.shopify import admin as shopify_admin
from app.shops.models import Shop

logger = logging.getLogger(__name__)

EXPIRING_EVENT = "cashback.expiring"
REMIND_ON_SHOPIFY_JOB = "remind_expiring_on_shopify"
# Credits expired longer ago than this are not looked at again (the doctor reports any left).
LOOKBACK = timedelta(days=400)
# Shopify writes its expiration a little after `expiresAt`: read it back after this.
SHOPIFY_GRACE = timedelta(minutes=5)
# How long after its expiry a pushed credit's expiration is looked for by the cron (after
# that, the daily reconciliation alone): a credit spent out at checkout has none to find.
SHOPIFY_LOOK_FOR = timedelta(days=2)
BATCH = 500


def _pushing() -> ColumnElement[bool]:
    return and_(Shop.push_store_credit.is_(True), Shop.uninstalled_at.is_(None))


def _no_expiry_yet() -> ColumnElement[bool]:
    expiry = aliased(LedgerEntry)
    return ~exists().where(
        expiry.reverses_entry_id == LedgerEntry.id, expiry.kind == EntryKind.expiry
    )


def _left() -> ColumnElement[int]:
    """What is left of the credit (a correlated sum of what took from it)."""
    taken = aliased(LedgerEntry)
    consumed = (
        select(func.coalesce(func.sum(taken.amount), 0))
        .where(taken.reverses_entry_id == LedgerEntry.id)
        .scalar_subquery()
    )
    return LedgerEntry.amount + consumed


async def expire_ledger_credits(session: AsyncSession, now: datetime, limit: int = BATCH) -> int:
    """Write the expiry entries due at `now` on ledger-only shops; returns how many."""
    due = (
        await session.execute(
            select(LedgerEntry.id, LedgerEntry.shop_id)
            .join(Shop, Shop.id == LedgerEntry.shop_id)
            .where(
                LedgerEntry.kind == EntryKind.credit,
                LedgerEntry.expires_at < now,
                LedgerEntry.expires_at > now - LOOKBACK,
                ~_pushing(),
                _no_expiry_yet(),
                _left() > 0,
            )
            .order_by(LedgerEntry.expires_at, LedgerEntry.id)
            .limit(limit)
        )
    ).all()
    if not due:
        return 0
    written = 0
    shops: dict[int, Shop] = {}
    credits = await ledger_service.lock_credits(session, LedgerEntry.id.in_([r[0] for r in due]))
    for credit, state in zip(
        credits, await ledger_service.credits_left(session, credits), strict=True
    ):
        amount = expiry_due(state, now)
        if amount <= 0:
            continue  # spent, reversed or expired meanwhile
        entry_id = await ledger_service.expire(
            session, credit, amount, description=f"Expired at {credit.expires_at}"
        )
        if entry_id is None:
            continue
        shop = shops.get(credit.shop_id)
        if shop is None:
            shop = shops[credit.shop_id] = await session.get_one(Shop, credit.shop_id)
        await credit_sync.schedule_sync(session, shop, entry_id)  # skipped: ledger only
        await rollup.bump(session, shop.id, credit.order_id or credit.id, expired=amount)
        written += 1
    return written


async def remind(session: AsyncSession, now: datetime, limit: int = BATCH) -> int:
    """Send the reminders due at `now` (ledger-only shops), or ring the job that asks Shopify
    what is left first (pushing shops). Returns how many were decided or rung."""
    shops = await session.scalars(
        select(Shop).where(
            Shop.notify_customers.is_(True),
            Shop.notification_webhook_url.is_not(None),
            Shop.outbound_webhook_secret.is_not(None),
            Shop.uninstalled_at.is_(None),
        )
    )
    done = 0
    for shop in list(shops):
        days = sorted(rules_of(await current_program(session, shop.id)).reminder_days_before)
        if not days:
            continue
        for credit_id, days_before in await _due_reminders(session, shop.id, days, now, limit):
            if credit_sync.pushes_store_credit(shop):
                job_id = f"expiring:{credit_id}:{days_before}"
                defer_job(session, REMIND_ON_SHOPIFY_JOB, credit_id, days_before, job_id=job_id)
                done += 1
            elif await _decide(session, shop, credit_id, days_before, remaining=None):
                done += 1
    return done


async def _due_reminders(
    session: AsyncSession, shop_id: int, days: list[int], now: datetime, limit: int
) -> list[tuple[int, int]]:
    """(credit, reminder) pairs due at `now` and not decided yet: a credit expiring between
    the previous reminder's day and this one's is due this one (`credits.due_reminder`)."""
    found: list[tuple[int, int]] = []
    lower = now
    for days_before in days:
        upper = now + timedelta(days=days_before)
        decided = exists().where(
            ExpiryReminder.credit_entry_id == LedgerEntry.id,
            ExpiryReminder.days_before == days_before,
        )
        rows = await session.scalars(
            select(LedgerEntry.id)
            .where(
                LedgerEntry.shop_id == shop_id,
                LedgerEntry.kind == EntryKind.credit,
                LedgerEntry.expires_at > lower,
                LedgerEntry.expires_at <= upper,
                ~decided,
            )
            .order_by(LedgerEntry.expires_at)
            .limit(limit)
        )
        found += [(credit_id, days_before) for credit_id in rows]
        lower = upper
    return found


async def _decide(
    session: AsyncSession, shop: Shop, credit_id: int, days_before: int, *, remaining: int | None
) -> bool:
    """Decide one reminder once: the notice (something left) or nothing. `remaining`: what
    Shopify says is left, for pushing shops; the ledger is asked otherwise."""
    [credit] = await ledger_service.lock_credits(session, LedgerEntry.id == credit_id)
    [state] = await ledger_service.credits_left(session, [credit])
    left = state.left if remaining is None else min(remaining, state.left)
    if credit.expires_at is None:
        return False
    decided = await session.execute(
        insert(ExpiryReminder)
        .values(
            credit_entry_id=credit.id,
            days_before=days_before,
            shop_id=shop.id,
            amount=max(left, 0),
        )
        .on_conflict_do_nothing()
        .returning(ExpiryReminder.credit_entry_id)
    )
    if decided.scalar_one_or_none() is None:
        return False  # another sweep decided it
    if left <= 0:
        return True  # spent or reversed: nothing to remind of
    customer = await session.get_one(Customer, credit.customer_id)
    order = await session.get(Order, credit.order_id) if credit.order_id else None
    cur = credit.currency
    local_day = credit.expires_at.astimezone(ZoneInfo(shop.timezone)).date()
    await notification_service.enqueue_customer_notice(
        session,
        shop,
        event_key=f"expiring:{credit.id}:{days_before}",
        event_type=EXPIRING_EVENT,
        payload={
            "customer": {"id": customer.external_id, "email": customer.email},
            "order": None
            if order is None
            else {"id": str(order.id), "external_id": order.external_id, "name": order.name},
            "credit_entry_id": str(credit.id),
            "amount": format_minor(left, cur),
            "currency": cur,
            "expires_at": credit.expires_at.astimezone(UTC).isoformat(),
            "expires_on": local_day.isoformat(),
            "days_before": days_before,
            "balance": format_minor(await ledger_service.balance(session, customer.id), cur),
        },
    )
    return True


async def remind_on_shopify(res: Resources, credit_id: int, days_before: int) -> bool:
    """A pushing shop's reminder: what is left of the credit on Shopify decides it."""
    async with res.sessionmaker() as session:
        row = (
            await session.execute(
                select(
                    LedgerEntry.shop_id, LedgerEntry.currency, CreditSync.platform_transaction_id
                )
                .join(CreditSync, CreditSync.ledger_entry_id == LedgerEntry.id)
                .where(LedgerEntry.id == credit_id, CreditSync.status == SyncStatus.synced)
            )
        ).one_or_none()
    remaining: int | None
    if row is None or row[2] is None:
        remaining = 0  # never reached Shopify: nothing there to expire or remind of
    else:
        shop_id, currency, transaction_id = row[0], row[1], str(row[2])

        async def read(api: shopify_admin.AdminApi) -> int:
            return await shopify_admin.credit_remaining(res.http, api, transaction_id, currency)

        try:
            remaining = await credit_sync.read_admin(res, shop_id, read)
        except credit_sync.NoAdminAccess:
            remaining = None  # no way into Shopify (any more): the ledger says what is left
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        credit = await session.get_one(LedgerEntry, credit_id)
        shop = await session.get_one(Shop, credit.shop_id)
        if notification_service.endpoint(shop, OutboxKind.customer_notice) is None:
            return False
        return await _decide(session, shop, credit_id, days_before, remaining=remaining)


async def read_shopify_expirations(
    res: Resources, shop_id: int, now: datetime, *, look_back: timedelta = SHOPIFY_LOOK_FOR
) -> int:
    """Read the expirations of the shop's pushed credits that expired (SHOPIFY_GRACE ago, up
    to `look_back` ago) without an expiry entry yet, one account read per owner; returns the
    expiry entries written."""
    async with res.sessionmaker() as session:
        credits = list(
            await session.scalars(
                select(LedgerEntry)
                .join(CreditSync, CreditSync.ledger_entry_id == LedgerEntry.id)
                .where(
                    LedgerEntry.shop_id == shop_id,
                    LedgerEntry.kind == EntryKind.credit,
                    LedgerEntry.expires_at < now - SHOPIFY_GRACE,
                    LedgerEntry.expires_at > now - look_back,
                    CreditSync.status == SyncStatus.synced,
                    _no_expiry_yet(),
                )
                .order_by(LedgerEntry.expires_at)
                .limit(BATCH)
            )
        )
        owners: dict[tuple[str, str], datetime] = defaultdict(lambda: now)
        for credit in credits:
            assert credit.expires_at is not None
            key = (await credit_sync.owner_of(session, credit), credit.currency)
            owners[key] = min(owners[key], credit.expires_at)
    written = 0
    for (owner, currency), since in owners.items():

        async def read(
            api: shopify_admin.AdminApi,
            owner: str = owner,
            currency: str = currency,
            since: datetime = since,
        ) -> shopify_admin.StoreCreditAccount | None:
            return await shopify_admin.store_credit_account(
                res.http, api, owner, currency, since=since - credit_sync.CLOCK_SKEW
            )

        account = await credit_sync.read_admin(res, shop_id, read)
        if account is None:
            continue
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            written += await expirations.record(session, shop_id, account)
    return written


async def pushing_shops_with_expirations(session: AsyncSession, now: datetime) -> list[int]:
    """Pushing shops with a pushed credit whose expiration should be on Shopify by now."""
    rows = await session.scalars(
        select(LedgerEntry.shop_id)
        .join(Shop, Shop.id == LedgerEntry.shop_id)
        .join(CreditSync, CreditSync.ledger_entry_id == LedgerEntry.id)
        .where(
            LedgerEntry.kind == EntryKind.credit,
            LedgerEntry.expires_at < now - SHOPIFY_GRACE,
            LedgerEntry.expires_at > now - SHOPIFY_LOOK_FOR,
            CreditSync.status == SyncStatus.synced,
            _pushing(),
            _no_expiry_yet(),
        )
        .distinct()
    )
    return list(rows)
