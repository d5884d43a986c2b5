from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.core.snapshots import PlatformCustomer
from app.core.uow import HeldRows, Part, uow_of
from app.ledger.credits import CreditLeft, credit_left
from app.ledger.models import CONSUMING, Customer, EntryKind, LedgerEntry
from app.shops.models import Shop


async def upsert_customer(session: AsyncSession, shop_id: int, customer: PlatformCustomer) -> int:
    """Create or refresh the shop's customer by platform id; returns our id.

    A known customer whose details are unchanged is only read: no row lock, so transactions
    crediting orders of the same customer side by side do not wait for each other. An account
    standing the payload does not give (None) keeps the one stored."""
    read = uow_of(session).get(BatchCustomers)
    batch = None if read is None else read.known
    key = (shop_id, customer.external_id)
    if batch is not None and key in batch:
        known_id, stored = batch[key]
        if _details(customer, stored) == stored:
            return known_id
    customers = cast(Table, Customer.__table__)  # Core, not the ORM: the hot path
    c = customers.c
    known = (
        await session.execute(
            select(c.id, *_DETAIL_COLUMNS).where(
                c.shop_id == shop_id, c.external_id == customer.external_id
            )
        )
    ).one_or_none()
    stored_details = None if known is None else cast(CustomerDetails, tuple(known[1:]))
    details = _details(customer, stored_details)
    if known is not None and details == stored_details:
        customer_id = int(known[0])
    else:
        customer_id = (await _write_customers(session, shop_id, [customer]))[customer.external_id]
    if batch is not None:
        batch[key] = (customer_id, details)
    return customer_id


# email, first name, last name, verified email, account state
CustomerDetails = tuple[str | None, str | None, str | None, bool | None, str | None]
_c = cast(Table, Customer.__table__).c
_DETAIL_COLUMNS = (_c.email, _c.first_name, _c.last_name, _c.verified_email, _c.account_state)
_READ_CUSTOMERS = select(_c.id, _c.external_id, *_DETAIL_COLUMNS).where(
    _c.shop_id == bindparam("shop"), _c.external_id.in_(bindparam("ids", expanding=True))
)


@dataclass
class BatchCustomers(Part):
    """A batch's customers as read or written: (shop, external id) -> (our id, details)."""

    known: dict[tuple[int, str], tuple[int, CustomerDetails]] = field(default_factory=dict)


def _details(customer: PlatformCustomer, stored: CustomerDetails | None) -> CustomerDetails:
    """What the row holds once `customer` is written over `stored`."""
    verified = customer.verified_email
    state = _account_state(customer)
    if stored is not None:
        verified = stored[3] if verified is None else verified
        state = stored[4] if state is None else state
    return (customer.email, customer.first_name, customer.last_name, verified, state)


def _account_state(customer: PlatformCustomer) -> str | None:
    return None if customer.state is None else customer.state.strip().lower()[:32] or None


async def prefetch_customers(
    session: AsyncSession, shop_id: int, customers: Sequence[PlatformCustomer]
) -> None:
    """Read a batch's customers at once, and create or refresh in one statement those that
    are new or changed (in external id order, as every batch does); `upsert_customer` answers
    from what this found for the rest of the transaction."""
    if not customers:
        return
    ids = [x.external_id for x in customers]
    rows = await session.execute(_READ_CUSTOMERS, {"shop": shop_id, "ids": ids})
    batch = uow_of(session).open(BatchCustomers).known
    for row in rows:
        batch[shop_id, row.external_id] = (
            int(row.id),
            (row.email, row.first_name, row.last_name, row.verified_email, row.account_state),
        )
    merged: dict[str, CustomerDetails] = {}
    stale = []
    for x in customers:
        stored = batch.get((shop_id, x.external_id))
        merged[x.external_id] = _details(x, stored[1] if stored else None)
        if stored is None or merged[x.external_id] != stored[1]:
            stale.append(x)
    written = await _write_customers(session, shop_id, stale)
    for x in stale:
        batch[shop_id, x.external_id] = (written[x.external_id], merged[x.external_id])


def _upsert_customer() -> Any:
    customers = cast(Table, Customer.__table__)
    c = customers.c
    stmt = insert(customers).values(
        shop_id=bindparam("customer_shop"),
        external_id=bindparam("customer_external_id"),
        email=bindparam("customer_email"),
        first_name=bindparam("customer_first_name"),
        last_name=bindparam("customer_last_name"),
        verified_email=bindparam("customer_verified_email"),
        account_state=bindparam("customer_account_state"),
    )
    return stmt.on_conflict_do_update(
        index_elements=[c.shop_id, c.external_id],
        set_={
            "email": stmt.excluded.email,
            "first_name": stmt.excluded.first_name,
            "last_name": stmt.excluded.last_name,
            # A payload that does not say keeps what an earlier one said.
            "verified_email": func.coalesce(stmt.excluded.verified_email, c.verified_email),
            "account_state": func.coalesce(stmt.excluded.account_state, c.account_state),
            "updated_at": func.now(),
        },
    ).returning(c.external_id, c.id)


# Built once: a statement built per call costs more client CPU than its round trip.
_UPSERT_CUSTOMER = _upsert_customer()


async def _write_customers(
    session: AsyncSession, shop_id: int, customers: Sequence[PlatformCustomer]
) -> dict[str, int]:
    """Create or refresh customers (one of each external id, in external id order); returns
    their ids."""
    if not customers:
        return {}
    rows = [
        {
            "customer_shop": shop_id,
            "customer_external_id": x.external_id,
            "customer_email": x.email,
            "customer_first_name": x.first_name,
            "customer_last_name": x.last_name,
            "customer_verified_email": x.verified_email,
            "customer_account_state": _account_state(x),
        }
        for x in sorted(customers, key=lambda x: x.external_id)
    ]
    written = await session.execute(_UPSERT_CUSTOMER, rows)
    return {external_id: int(id_) for external_id, id_ in written.all()}


async def account_standing(
    session: AsyncSession, customer_id: int
) -> tuple[bool | None, str | None]:
    """(verified email, account state) of the customer, as last stored."""
    row = (
        await session.execute(
            select(Customer.verified_email, Customer.account_state).where(
                Customer.id == customer_id
            )
        )
    ).one_or_none()
    return (None, None) if row is None else (row[0], row[1])


async def credit(
    session: AsyncSession,
    *,
    shop_id: int,
    customer_id: int,
    order_id: int,
    amount: int,
    currency: str,
    idempotency_key: str,
    description: str | None = None,
    expires_at: datetime | None = None,
) -> int | None:
    """Append a credit entry; returns its id, or None when the key was already written."""
    return await _append(
        session,
        deferred=True,
        shop_id=shop_id,
        customer_id=customer_id,
        order_id=order_id,
        kind=EntryKind.credit,
        amount=amount,
        currency=currency,
        idempotency_key=idempotency_key,
        description=description,
        expires_at=expires_at,
    )


_ENTRY_FIELDS = (
    "shop_id",
    "customer_id",
    "order_id",
    "kind",
    "amount",
    "currency",
    "idempotency_key",
    "reverses_entry_id",
    "description",
    "expires_at",
    "redemption_id",
)
_entries = cast(Table, LedgerEntry.__table__)  # Core, not the ORM's bulk insert: the hot path
# Built once: a statement built per call costs more client CPU than its round trip.
_INSERT_ENTRY = (
    insert(_entries)
    .values({name: bindparam(f"entry_{name}") for name in _ENTRY_FIELDS})
    .on_conflict_do_nothing(index_elements=[_entries.c.shop_id, _entries.c.idempotency_key])
    .returning(_entries.c.id)
)


async def _append(session: AsyncSession, *, deferred: bool = False, **values: object) -> int | None:
    """Insert an entry once per (shop, idempotency key): the only way entries are written.
    `deferred` (a batch's credits): with an id drawn ahead for the batch, the row is held and
    written with the batch's others in one statement (PendingCredits)."""
    unknown = set(values) - set(_ENTRY_FIELDS)
    if unknown:
        raise TypeError(f"not a ledger entry field: {sorted(unknown)}")
    pending = uow_of(session).get(PendingCredits) if deferred else None
    if pending is not None and pending.ids:
        entry_id = pending.ids.pop()
        pending.rows.append({"id": entry_id} | {name: values.get(name) for name in _ENTRY_FIELDS})
        return entry_id
    params = {f"entry_{name}": values.get(name) for name in _ENTRY_FIELDS}
    entry_id = (await session.execute(_INSERT_ENTRY, params)).scalar_one_or_none()
    return None if entry_id is None else int(entry_id)


class CreditWrittenBefore(RuntimeError):
    """A credit a batch drew ahead was already in the ledger (its idempotency key): the
    batch fails, and its events are handled again one by one, where the existing credit is
    found and nothing is written twice."""


@dataclass
class PendingCredits(HeldRows):
    """A batch's credits: their ids drawn from the sequence ahead (`reserve_credit_ids`, one
    statement), their rows written together (one statement) instead of one INSERT each. A
    credit whose key is already written fails the batch (CreditWrittenBefore)."""

    batched = True

    ids: list[int] = field(default_factory=list)  # drawn, not used yet
    rows: list[dict[str, object]] = field(default_factory=list)

    def write(self, session: Session) -> None:
        rows, self.rows = self.rows, []
        if not rows:
            return
        columns = ("id", *_ENTRY_FIELDS)
        arrays = {name: [row[name] for row in rows] for name in columns}
        written = set(session.execute(_INSERT_CREDITS, arrays).scalars())
        if written != {row["id"] for row in rows}:
            raise CreditWrittenBefore("a credit of the batch was already in the ledger")


_INSERT_CREDITS = text(
    """
INSERT INTO ledger_entries (id, shop_id, customer_id, order_id, kind, amount, currency,
                            idempotency_key, reverses_entry_id, description, expires_at,
                            redemption_id)
SELECT * FROM unnest(CAST(:id AS bigint[]), CAST(:shop_id AS bigint[]),
                     CAST(:customer_id AS bigint[]), CAST(:order_id AS bigint[]),
                     CAST(:kind AS varchar[]), CAST(:amount AS bigint[]),
                     CAST(:currency AS varchar[]), CAST(:idempotency_key AS varchar[]),
                     CAST(:reverses_entry_id AS bigint[]), CAST(:description AS text[]),
                     CAST(:expires_at AS timestamptz[]), CAST(:redemption_id AS bigint[]))
ON CONFLICT (shop_id, idempotency_key) DO NOTHING
RETURNING id
"""
)
_DRAW_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('ledger_entries', 'id')) FROM generate_series(1, :n)"
)


async def reserve_credit_ids(session: AsyncSession, n: int) -> None:
    """Draw ids for up to `n` credits of this batch (one statement); credits past them are
    written one by one as usual. Ids drawn and not used are gaps, as a rolled-back insert's."""
    pending = uow_of(session).get(PendingCredits)
    if pending is None or n <= 0:
        return
    pending.ids.extend(int(i) for i in await session.scalars(_DRAW_IDS, {"n": n}))


async def balance(session: AsyncSession, customer_id: int) -> int:
    stmt = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.customer_id == customer_id
    )
    return int((await session.execute(stmt)).scalar_one())


async def recent_credits(
    session: AsyncSession, customer_id: int, *, since: datetime
) -> tuple[int, int]:
    """(orders credited, cashback credited) for the customer since `since`."""
    row = (
        await session.execute(
            select(
                func.count(func.distinct(LedgerEntry.order_id)),
                func.coalesce(func.sum(LedgerEntry.amount), 0),
            ).where(
                LedgerEntry.customer_id == customer_id,
                LedgerEntry.kind == EntryKind.credit,
                LedgerEntry.created_at >= since,
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def reverse(
    session: AsyncSession,
    *,
    shop: Shop,
    credit: LedgerEntry,
    amount: int,
    idempotency_key: str,
    description: str | None = None,
) -> int | None:
    """Append a reversal of part of `credit`; returns its id, or None if already written."""
    return await consume(
        session,
        credit,
        EntryKind.reversal,
        amount,
        idempotency_key=idempotency_key,
        description=description,
    )


async def consume(
    session: AsyncSession,
    credit: LedgerEntry,
    kind: EntryKind,
    amount: int,
    *,
    idempotency_key: str,
    description: str | None = None,
    redemption_id: int | None = None,
) -> int | None:
    """Append a negative entry of `kind` taking `amount` from `credit` (lock it first with
    `lock_credits` and take at most what `credits_left` says); None if already written."""
    assert kind in CONSUMING and amount > 0
    return await _append(
        session,
        shop_id=credit.shop_id,
        customer_id=credit.customer_id,
        order_id=credit.order_id,
        kind=kind,
        amount=-amount,
        currency=credit.currency,
        idempotency_key=idempotency_key,
        reverses_entry_id=credit.id,
        description=description,
        redemption_id=redemption_id,
    )


async def expire(
    session: AsyncSession, credit: LedgerEntry, amount: int, *, description: str
) -> int | None:
    """Append the credit's expiry entry: one per credit, ever (its idempotency key)."""
    return await consume(
        session,
        credit,
        EntryKind.expiry,
        amount,
        idempotency_key=f"expiry:{credit.id}",
        description=description,
    )


async def lock_credits(session: AsyncSession, where: ColumnElement[bool]) -> list[LedgerEntry]:
    """The credit entries matching `where`, row-locked in id order: whoever takes from a
    credit (reversal, expiry, redemption) holds its row, so two of them never both take what
    is left. FOR NO KEY UPDATE: new entries pointing at the credit are not held up."""
    stmt = (
        select(LedgerEntry)
        .where(LedgerEntry.kind == EntryKind.credit, where)
        .order_by(LedgerEntry.id)
        .with_for_update(key_share=True)
    )
    return list(await session.scalars(stmt))


async def credits_left(session: AsyncSession, credits: Sequence[LedgerEntry]) -> list[CreditLeft]:
    """What each credit's reversals, expiry and redemptions took, and so what is left."""
    if not credits:
        return []
    E = LedgerEntry
    taken: dict[int | None, dict[str, int]] = {c.id: {} for c in credits}
    for credit_id, kind, part in await session.execute(
        select(E.reverses_entry_id, E.kind, func.sum(-E.amount))
        .where(E.reverses_entry_id.in_([c.id for c in credits]))
        .group_by(E.reverses_entry_id, E.kind)
    ):
        taken[credit_id][kind] = int(part)
    return [credit_left(c.id, c.amount, c.expires_at, taken[c.id]) for c in credits]
