"""The ledger's invariants, checked against the database: what `cashback doctor` reports and what
the reliability tests assert after every fault.

Each check is one query that lists what breaks it; an empty list means the promise holds:
- balances: a shop's issued and reversed totals (its dashboard) equal the sums of its ledger
  entries, and no customer's balance (the sum of their entries) is negative;
- credits: what reversals, expiries and redemptions took from a credit never exceeds it
  (reversed + expired + redeemed + left = credited, left >= 0), each belongs to its credit's
  customer (a reversal or expiry to its order too), and at most one expiry per credit;
- expiry: no credit of a ledger-only shop is past its expiry (by more than the window) with
  something left on it;
- one credit per order, and an order holds credit exactly when its status says so;
- every order event is accounted for: none left unhandled past the window, each handled one has
  its order, no order stuck in `received` and no scheduled award overdue past the window;
- every ledger entry has its store-credit sync row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, literal, or_, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from app.credit_sync.models import CreditSync
from app.inbox.models import EventStatus, WebhookEvent
from app.ledger.models import EntryKind, LedgerEntry
from app.metrics.models import OrderStatsHourly
from app.orders.models import Order
from app.orders.state import CREDITED, OrderStatus
from app.shopify.topics import ORDER_TOPICS
from app.shops.models import Shop

# A little more than the sweeper's one minute: work younger than this may still be on its way.
DEFAULT_WINDOW = timedelta(minutes=5)
LISTED_PER_CHECK = 20  # findings kept per check; the count is always complete
EVENT_BATCH = 1000

CHECKS = (
    "balances_match_entries",
    "no_negative_balance",
    "reversals_within_credit",
    "no_expiry_overdue",
    "one_credit_per_order",
    "credit_matches_status",
    "no_event_unhandled",
    "no_event_without_order",
    "no_order_stuck",
    "no_award_overdue",
    "every_entry_has_sync",
)


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    shop_id: int
    subject: str  # e.g. "order 42", "customer 7", "event 9"
    detail: str


@dataclass(slots=True)
class Report:
    checked_at: datetime
    window_s: float  # seconds
    shop_id: int | None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())

    def broken(self) -> set[str]:
        return {name for name, count in self.counts.items() if count}

    def add(self, check: str, found: Sequence[Finding]) -> None:
        self.counts[check] += len(found)
        kept = sum(f.check == check for f in self.findings)
        self.findings.extend(found[: max(LISTED_PER_CHECK - kept, 0)])

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked_at": self.checked_at.isoformat(),
            "window_s": self.window_s,
            "shop_id": self.shop_id,
            "checks": [{"name": n, "ok": not c, "problems": c} for n, c in self.counts.items()],
            "findings": [asdict(f) for f in self.findings],
        }

    def lines(self) -> list[str]:
        out = [
            f"{'BAD' if count else 'ok '}  {name}: {count} problem(s)"
            for name, count in self.counts.items()
        ]
        out += [f"  {f.check}: shop {f.shop_id}, {f.subject}: {f.detail}" for f in self.findings]
        broken = len(self.broken())
        out.append(f"{broken} invariant(s) broken" if broken else "all invariants hold")
        return out


async def examine(
    session: AsyncSession,
    *,
    shop_id: int | None = None,
    window: timedelta = DEFAULT_WINDOW,
    now: datetime | None = None,
    events_since: datetime | None = None,
) -> Report:
    """Check every invariant (of one shop, or all); work younger than `window` is not late.
    `events_since` limits the one check that reads stored deliveries one by one (each order
    event has its order) to those received since then: the weekly audit's week."""
    now = now or datetime.now(UTC)
    cutoff = now - window
    report = Report(checked_at=now, window_s=window.total_seconds(), shop_id=shop_id)
    report.add("balances_match_entries", await _totals_mismatch(session, shop_id))
    report.add("no_negative_balance", await _negative_balances(session, shop_id))
    report.add("reversals_within_credit", await _over_reversed(session, shop_id))
    report.add("no_expiry_overdue", await _overdue_expiries(session, shop_id, cutoff))
    report.add("one_credit_per_order", await _double_credits(session, shop_id))
    report.add("credit_matches_status", await _credit_status_mismatch(session, shop_id))
    report.add("no_event_unhandled", await _unhandled_events(session, shop_id, cutoff))
    report.add(
        "no_event_without_order", await _events_without_order(session, shop_id, events_since)
    )
    report.add("no_order_stuck", await _stuck_orders(session, shop_id, cutoff))
    report.add("no_award_overdue", await _overdue_awards(session, shop_id, cutoff))
    report.add("every_entry_has_sync", await _entries_without_sync(session, shop_id))
    return report


def _in_shop(
    column: ColumnElement[int] | InstrumentedAttribute[int], shop_id: int | None
) -> ColumnElement[bool]:
    return true() if shop_id is None else column == shop_id


async def _totals_mismatch(session: AsyncSession, shop_id: int | None) -> list[Finding]:
    """The shop's stored totals (kept in each movement's transaction) against its entries."""
    E, S = LedgerEntry, OrderStatsHourly
    entries = (
        select(
            E.shop_id.label("shop_id"),
            func.sum(E.amount).filter(E.kind == EntryKind.credit).label("issued"),
            func.sum(-E.amount).filter(E.kind == EntryKind.reversal).label("reversed"),
            func.sum(-E.amount).filter(E.kind == EntryKind.expiry).label("expired"),
            func.sum(-E.amount).filter(E.kind == EntryKind.redemption).label("redeemed"),
        )
        .group_by(E.shop_id)
        .where(_in_shop(E.shop_id, shop_id))
        .subquery()
    )
    stats = (
        select(
            S.shop_id.label("shop_id"),
            func.sum(S.cashback_issued).label("issued"),
            func.sum(S.reversed).label("reversed"),
            func.sum(S.expired).label("expired"),
            func.sum(S.redeemed).label("redeemed"),
        )
        .group_by(S.shop_id)
        .where(_in_shop(S.shop_id, shop_id))
        .subquery()
    )
    figures = ("issued", "reversed", "expired", "redeemed")
    in_entries = [func.coalesce(entries.c[name], 0) for name in figures]
    in_stats = [func.coalesce(stats.c[name], 0) for name in figures]
    rows = await session.execute(
        select(func.coalesce(entries.c.shop_id, stats.c.shop_id), *in_entries, *in_stats)
        .select_from(entries.join(stats, entries.c.shop_id == stats.c.shop_id, full=True))
        .where(or_(*(e != t for e, t in zip(in_entries, in_stats, strict=True))))
    )
    return [
        Finding(
            "balances_match_entries",
            row[0],
            f"shop {row[0]}",
            "entries say "
            + ", ".join(f"{n} {v}" for n, v in zip(figures, row[1:5], strict=True))
            + "; shop totals say "
            + ", ".join(f"{n} {v}" for n, v in zip(figures, row[5:9], strict=True)),
        )
        for row in rows
    ]


async def _negative_balances(session: AsyncSession, shop_id: int | None) -> list[Finding]:
    E = LedgerEntry
    rows = await session.execute(
        select(E.shop_id, E.customer_id, func.sum(E.amount))
        .group_by(E.shop_id, E.customer_id)
        .having(func.sum(E.amount) < 0)
        .where(_in_shop(E.shop_id, shop_id))
    )
    return [
        Finding("no_negative_balance", shop, f"customer {cust}", f"balance {total}")
        for shop, cust, total in rows
    ]


async def _over_reversed(session: AsyncSession, shop_id: int | None) -> list[Finding]:
    """What reversals, expiries and redemptions took, summed per credit (reversed + expired +
    redeemed + left = credited, left >= 0); entries that take from something not a credit of
    their customer (and order); credits that expired twice."""
    credit, rev = aliased(LedgerEntry), aliased(LedgerEntry)
    taken_by = {
        kind: func.coalesce(func.sum(-rev.amount).filter(rev.kind == kind), 0)
        for kind in (EntryKind.reversal, EntryKind.expiry, EntryKind.redemption)
    }
    over = await session.execute(
        select(
            credit.shop_id,
            credit.order_id,
            credit.id,
            credit.amount,
            *taken_by.values(),
            func.count().filter(rev.kind == EntryKind.expiry),
        )
        .join(rev, rev.reverses_entry_id == credit.id)
        .group_by(credit.id)
        .having(
            or_(
                func.sum(-rev.amount) > credit.amount,
                func.count().filter(rev.kind == EntryKind.expiry) > 1,
            )
        )
        .where(_in_shop(credit.shop_id, shop_id))
    )
    found = [
        Finding(
            "reversals_within_credit",
            row[0],
            f"order {row[1]}" if row[1] else f"ledger entry {row[2]}",
            f"credit {row[2]} of {row[3]} taken {row[4] + row[5] + row[6]}: reversed "
            f"{row[4]}, expired {row[5]} ({row[7]} expiries), redeemed {row[6]}",
        )
        for row in over
    ]
    strays = await session.execute(
        select(rev.shop_id, rev.order_id, rev.id, rev.kind)
        .outerjoin(credit, credit.id == rev.reverses_entry_id)
        .where(
            rev.kind != EntryKind.credit,
            or_(
                credit.id.is_(None),
                credit.kind != EntryKind.credit,
                credit.customer_id != rev.customer_id,
                and_(
                    rev.kind != EntryKind.redemption,
                    credit.order_id.is_distinct_from(rev.order_id),
                ),
            ),
        )
        .where(_in_shop(rev.shop_id, shop_id))
    )
    found += [
        Finding(
            "reversals_within_credit",
            shop,
            f"order {order}",
            f"{kind} {entry} does not take from a credit of its own order and customer",
        )
        for shop, order, entry, kind in strays
    ]
    return found


async def _overdue_expiries(
    session: AsyncSession, shop_id: int | None, cutoff: datetime
) -> list[Finding]:
    """Credits of ledger-only shops past their expiry (by the window) with something left:
    the sweeper writes their expiry each minute. Pushing shops' credits expire on Shopify."""
    credit, taken = aliased(LedgerEntry), aliased(LedgerEntry)
    left = credit.amount + func.coalesce(func.sum(taken.amount), 0)
    rows = await session.execute(
        select(credit.shop_id, credit.id, credit.expires_at, left)
        .join(Shop, Shop.id == credit.shop_id)
        .outerjoin(taken, taken.reverses_entry_id == credit.id)
        .where(
            credit.kind == EntryKind.credit,
            credit.expires_at < cutoff,
            ~and_(Shop.push_store_credit.is_(True), Shop.uninstalled_at.is_(None)),
            _in_shop(credit.shop_id, shop_id),
        )
        .group_by(credit.id)
        .having(left > 0)
    )
    return [
        Finding(
            "no_expiry_overdue",
            shop,
            f"ledger entry {entry}",
            f"expired at {at} with {amount} left",
        )
        for shop, entry, at, amount in rows
    ]


async def _double_credits(session: AsyncSession, shop_id: int | None) -> list[Finding]:
    E = LedgerEntry
    rows = await session.execute(
        select(E.shop_id, E.order_id, func.count(), func.sum(E.amount))
        .where(E.kind == EntryKind.credit, E.order_id.is_not(None))
        .group_by(E.shop_id, E.order_id)
        .having(func.count() > 1)
        .where(_in_shop(E.shop_id, shop_id))
    )
    return [
        Finding("one_credit_per_order", shop, f"order {order}", f"{n} credits totalling {total}")
        for shop, order, n, total in rows
    ]


async def _credit_status_mismatch(session: AsyncSession, shop_id: int | None) -> list[Finding]:
    """Credited statuses have a credit entry; every other status has none."""
    credits = (
        select(LedgerEntry.order_id, func.count().label("n"))
        .where(LedgerEntry.kind == EntryKind.credit)
        .group_by(LedgerEntry.order_id)
        .subquery()
    )
    credited = Order.status.in_([s.value for s in CREDITED])
    has_credit = func.coalesce(credits.c.n, 0) > 0
    rows = await session.execute(
        select(Order.shop_id, Order.id, Order.status, func.coalesce(credits.c.n, 0))
        .outerjoin(credits, credits.c.order_id == Order.id)
        .where(
            or_(and_(credited, ~has_credit), and_(~credited, has_credit)),
            _in_shop(Order.shop_id, shop_id),
        )
    )
    return [
        Finding(
            "credit_matches_status", shop, f"order {order}", f"status {status} with {n} credit(s)"
        )
        for shop, order, status, n in rows
    ]


async def _unhandled_events(
    session: AsyncSession, shop_id: int | None, cutoff: datetime
) -> list[Finding]:
    W = WebhookEvent
    rows = await session.execute(
        select(W.shop_id, W.id, W.topic, W.received_at, W.attempts)
        .where(W.status == EventStatus.received, W.received_at < cutoff)
        .order_by(W.received_at)
        .where(_in_shop(W.shop_id, shop_id))
    )
    return [
        Finding(
            "no_event_unhandled",
            shop,
            f"event {event}",
            f"{topic} received {at.isoformat()} still unhandled after {attempts} attempt(s)",
        )
        for shop, event, topic, at, attempts in rows
    ]


async def _events_without_order(
    session: AsyncSession, shop_id: int | None, since: datetime | None = None
) -> list[Finding]:
    """Order events handled successfully whose order is not stored: an order lost."""
    W = WebhookEvent
    received = true() if since is None else W.received_at >= since
    found: list[Finding] = []
    after = 0
    while True:
        batch = (
            await session.execute(
                select(W.shop_id, W.id, W.topic, W.body)
                .where(
                    W.topic.in_(ORDER_TOPICS),
                    W.status == EventStatus.processed,
                    W.id > after,
                    received,
                )
                .order_by(W.id)
                .limit(EVENT_BATCH)
                .where(_in_shop(W.shop_id, shop_id))
            )
        ).all()
        if not batch:
            return found
        after = batch[-1][1]
        wanted: dict[tuple[int, str], list[tuple[int, str]]] = {}
        for shop, event, topic, body in batch:
            external_id = _order_id(body)
            if external_id is None:
                found.append(Finding("no_event_without_order", shop, f"event {event}", "no id"))
                continue
            wanted.setdefault((shop, external_id), []).append((event, topic))
        if not wanted:
            continue
        rows = await session.execute(
            select(Order.shop_id, Order.external_id).where(
                tuple_(Order.shop_id, Order.external_id).in_(list(wanted))
            )
        )
        stored = {(shop, external_id) for shop, external_id in rows}
        for (shop, external_id), events in wanted.items():
            if (shop, external_id) in stored:
                continue
            found += [
                Finding(
                    "no_event_without_order",
                    shop,
                    f"event {event}",
                    f"{topic} for platform order {external_id} was handled, but no order exists",
                )
                for event, topic in events
            ]


def _order_id(body: bytes) -> str | None:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value = payload.get("id") if isinstance(payload, dict) else None
    return None if value is None else str(value)


async def _stuck_orders(
    session: AsyncSession, shop_id: int | None, cutoff: datetime
) -> list[Finding]:
    rows = await session.execute(
        select(Order.shop_id, Order.id, Order.updated_at)
        .where(Order.status == OrderStatus.received, Order.updated_at < cutoff)
        .where(_in_shop(Order.shop_id, shop_id))
    )
    return [
        Finding("no_order_stuck", shop, f"order {order}", f"received since {at.isoformat()}")
        for shop, order, at in rows
    ]


async def _overdue_awards(
    session: AsyncSession, shop_id: int | None, cutoff: datetime
) -> list[Finding]:
    rows = await session.execute(
        select(Order.shop_id, Order.id, Order.award_at)
        .where(Order.status == OrderStatus.scheduled, Order.award_at < cutoff)
        .where(_in_shop(Order.shop_id, shop_id))
    )
    return [
        Finding("no_award_overdue", shop, f"order {order}", f"credit was due {at}")
        for shop, order, at in rows
    ]


async def _entries_without_sync(session: AsyncSession, shop_id: int | None) -> list[Finding]:
    E = LedgerEntry
    rows = await session.execute(
        select(E.shop_id, E.id, literal("no sync row"))
        .outerjoin(CreditSync, CreditSync.ledger_entry_id == E.id)
        .where(CreditSync.ledger_entry_id.is_(None))
        .where(_in_shop(E.shop_id, shop_id))
    )
    return [
        Finding("every_entry_has_sync", shop, f"ledger entry {entry}", detail)
        for shop, entry, detail in rows
    ]
