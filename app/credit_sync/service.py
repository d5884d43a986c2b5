"""Store credit on the platform: each ledger entry is pushed to the shop's Shopify store-credit
account at most once.

Shopify's store-credit mutations carry no idempotency key, so every push follows one protocol:
record the attempt (`in_flight`, attempts + 1) and commit, call Shopify, store the outcome in a
new transaction. A row found `in_flight` is an attempt whose outcome is unknown: the account's
recent transactions are read first, and nothing is sent again until that attempt is found or
can no longer land.

Recognising our transaction: API versions from 2027-01 take a merchant-only `note`, which
carries the ledger entry id, and a noted transaction matches only its own entry. Older versions
have no marker, so a transaction matches on kind (credit/debit), exact amount, event ADJUSTMENT
(made through the API, not at checkout) and a creation time no earlier than the attempt (less
CLOCK_SKEW), among transactions no other entry has claimed. Limitation: a credit of the same
amount made by someone else in that window would be taken for ours (under-credit, never a
double credit).

Shops installed through the Shopify app have expiring tokens (app.shopify.tokens): a token
about to expire is refreshed before an attempt is recorded, a 401 refreshes it once and the
call is sent again, and a shop whose refresh was refused waits (`needs_reauth`) with its rows
pending, rung again by `resume_pushes` once the merchant authorises the app again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar, cast

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.crypto import SecretBox
from app.core.money import format_minor
from app.core.resources import Resources
from app.core.snapshots import snapshot_from_json
from app.core.uow import Part, Stage, defer_job, unit_of_work, uow_of
from app.credit_sync import expirations
from app.credit_sync.models import CreditSync, SyncStatus
from app.ledger.models import Customer, EntryKind, LedgerEntry
from app.notifications import service as notifications
from app.orders.models import Order
from app.shopify import admin as shopify_admin
from app.shopify import tokens
from app.shopify.admin import (
    AccountTransaction,
    AdminApi,
    AdminApiError,
    Applied,
    MutationOutcome,
    Refused,
    Retryable,
    StoreCreditAccount,
    Unclear,
)
from app.shopify.models import ShopifyGrant
from app.shops.models import Shop

logger = logging.getLogger(__name__)
T = TypeVar("T")

SYNC_JOB = "sync_ledger_entry"
SYNC_FAILED_EVENT = "store_credit.sync_failed"
# An unclear attempt may still land while Shopify works on it: "not among the transactions"
# proves nothing before this long (at least twice the client timeout) after the attempt.
MIN_SETTLE_S = 30.0
# Our clock and Shopify's differ a little: match transactions this far before the attempt.
CLOCK_SKEW = timedelta(minutes=2)
INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"

_DONE = frozenset({SyncStatus.synced, SyncStatus.failed, SyncStatus.skipped})


def sync_job_id(ledger_entry_id: int) -> str:
    return f"sync:{ledger_entry_id}"


def pushes_store_credit(shop: Shop) -> bool:
    return shop.push_store_credit and shop.uninstalled_at is None


def has_admin_access(shop: Shop) -> bool:
    """The shop gave the service a way into its Admin API (not necessarily working now)."""
    return shop.platform_access_token is not None and shop.uninstalled_at is None


_syncs = cast(Table, CreditSync.__table__)  # Core, not the ORM's bulk insert: the hot path
_INSERT_SYNC = (
    insert(_syncs)
    .values(
        ledger_entry_id=bindparam("sync_entry"),
        shop_id=bindparam("sync_shop"),
        status=bindparam("sync_status"),
    )
    .on_conflict_do_nothing(index_elements=[_syncs.c.ledger_entry_id])
    .returning(_syncs.c.ledger_entry_id)
)


async def schedule_sync(session: AsyncSession, shop: Shop, ledger_entry_id: int) -> None:
    """Call right after writing a ledger entry, in the same transaction: the entry gets its
    sync row, and its push is queued once the transaction commits."""
    status = SyncStatus.pending if pushes_store_credit(shop) else SyncStatus.skipped
    held = uow_of(session).get(SyncRows)
    if held is not None:  # a batch: written at once before the commit
        held.rows.append((ledger_entry_id, shop.id, status))
        return
    params = {"sync_entry": ledger_entry_id, "sync_shop": shop.id, "sync_status": status}
    inserted = await session.execute(_INSERT_SYNC, params)
    if inserted.scalar_one_or_none() is not None and status == SyncStatus.pending:
        defer_job(session, SYNC_JOB, ledger_entry_id, job_id=sync_job_id(ledger_entry_id))


@dataclass
class SyncRows(Part):
    """A batch's sync rows, written in one statement before it commits (nothing reads them
    before then); the pushes of new pending rows are queued after the commit."""

    stage = Stage.SYNCS
    batched = True
    rows: list[tuple[int, int, SyncStatus]] = field(default_factory=list)

    async def flush(self, session: AsyncSession) -> None:
        deferred, self.rows = self.rows, []
        if deferred:
            await _write_syncs(session, deferred)


async def _write_syncs(session: AsyncSession, deferred: list[tuple[int, int, SyncStatus]]) -> None:
    rows = [
        {"sync_entry": entry_id, "sync_shop": shop_id, "sync_status": status}
        for entry_id, shop_id, status in sorted(deferred)
    ]
    inserted = await session.execute(_INSERT_SYNC, rows)
    new = set(inserted.scalars())
    for entry_id, _, status in deferred:
        if entry_id in new and status == SyncStatus.pending:
            defer_job(session, SYNC_JOB, entry_id, job_id=sync_job_id(entry_id))


class NoAdminAccess(Exception):
    """The shop has no usable Admin API token."""


def admin_api(shop: Shop, secrets: SecretBox) -> AdminApi:
    if not shop.platform_access_token:
        raise NoAdminAccess(f"{shop.domain} has no Admin API access token")
    try:
        token = secrets.decrypt(shop.platform_access_token)
    except ValueError as exc:
        raise NoAdminAccess(f"{shop.domain}: {exc}") from exc
    base_url = shop.platform_api_base_url or f"https://{shop.domain}"
    return AdminApi(base_url, shop.platform_api_version, token)


class TryAgain(Exception):
    """This try ended without a final outcome; a later try continues after `after_seconds`."""

    def __init__(self, reason: str, after_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.after_seconds = after_seconds


@dataclass(frozen=True, slots=True)
class Push:
    """One store-credit movement to make on Shopify for a ledger entry."""

    ledger_entry_id: int
    shop_id: int
    api: AdminApi
    owner_id: str  # Customer or CompanyLocation GID
    kind: str  # credit | debit
    amount: int  # minor units to move now, positive (a debit's shortfall left out)
    total: int  # the entry's whole amount, positive
    currency: str
    notify: bool
    attempt: int
    attempted_at: datetime
    check_first: bool  # an earlier attempt's outcome is unknown
    expires_at: datetime | None = None  # a credit's expiry: Shopify expires it then

    @property
    def note(self) -> str:
        return f"cashback ledger entry {self.ledger_entry_id}"

    def matches(self, transaction: AccountTransaction) -> bool:
        if (transaction.kind, transaction.amount) != (self.kind, self.amount):
            return False
        if transaction.event not in (None, "ADJUSTMENT"):
            return False  # spent or refunded at checkout, not made by an app
        if transaction.note is not None:
            return transaction.note == self.note
        # No note: an older API version (perhaps the shop's version when the attempt was made).
        return transaction.created_at >= self.attempted_at - CLOCK_SKEW


@dataclass(frozen=True, slots=True)
class RefreshFirst:
    """The shop's token expires soon: refresh it before recording an attempt."""

    shop_id: int


Step = Push | SyncStatus | RefreshFirst | None


async def sync_entry(res: Resources, ledger_entry_id: int) -> SyncStatus | None:
    """One try at pushing the entry. Returns where the row stands (None: not ours to do now);
    raises TryAgain when a later try must continue."""
    step = await _begin_with_fresh_token(res, ledger_entry_id, checked_attempt=None)
    if not isinstance(step, Push):
        return step
    if step.check_first:
        account = await _read_account(res, step, since=step.attempted_at - CLOCK_SKEW)
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            adopted = await _adopt(session, step, account)
            if account is not None:  # the account is read anyway: learn what expired there
                await expirations.record(session, step.shop_id, account)
        if adopted is not None:
            return adopted
        wait = (step.attempted_at + _settle_time(res) - datetime.now(UTC)).total_seconds()
        if wait > 0:
            raise TryAgain(f"attempt {step.attempt} may still land on Shopify", after_seconds=wait)
        step = await _begin_with_fresh_token(res, ledger_entry_id, checked_attempt=step.attempt)
        if not isinstance(step, Push):
            return step
    outcome = await _send(res, step)
    if _unauthorized(outcome):  # once: refresh the token Shopify refused, then send again
        api = await _api_after_401(res, step)
        if isinstance(api, TryAgain):  # refused, so not applied: pending until a token comes
            outcome = Retryable(str(api))
        elif api is not None:
            step = replace(step, api=api)
            outcome = await _send(res, step)
    balance = None
    if isinstance(outcome, Refused) and outcome.code == INSUFFICIENT_FUNDS:
        balance = await _balance(res, step)
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        result = await _store_outcome(session, step, outcome, balance)
    if isinstance(result, TryAgain):
        if isinstance(outcome, Unclear):  # look for it once it can no longer land
            settled_at = step.attempted_at + _settle_time(res)
            result.after_seconds = max((settled_at - datetime.now(UTC)).total_seconds(), 1.0)
        raise result
    return result


async def _begin_with_fresh_token(
    res: Resources, ledger_entry_id: int, *, checked_attempt: int | None
) -> Push | SyncStatus | None:
    """`_begin`, after refreshing the shop's token first when it is about to expire."""
    for _ in range(2):
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            step = await _begin(
                session, res.secrets, ledger_entry_id, checked_attempt=checked_attempt
            )
        if not isinstance(step, RefreshFirst):
            return step
        try:
            await tokens.refresh(res, step.shop_id)
        except tokens.RefreshUnavailable as exc:
            raise TryAgain(f"cannot refresh the Admin API token: {exc}") from exc
    return None  # still due after a refresh: the next try sees it again


def _unauthorized(outcome: MutationOutcome) -> bool:
    return isinstance(outcome, Refused) and outcome.code == "HTTP_401"


def _read_unauthorized(exc: AdminApiError) -> bool:
    return str(exc).startswith("HTTP 401")  # shopify_admin._query's message for a 401


async def _api_after_401(res: Resources, push: Push) -> AdminApi | TryAgain | None:
    return await api_after_401(res, push.shop_id, push.api)


async def api_after_401(
    res: Resources, shop_id: int, refused: AdminApi
) -> AdminApi | TryAgain | None:
    """After Shopify refused `refused`'s token: the shop's API with a refreshed token, or
    TryAgain when there is none to use yet (paused, Shopify unreachable); None for a shop
    made by hand, whose pasted token cannot be refreshed (the refusal stands)."""
    try:
        await tokens.refresh(res, shop_id, rejected_token=refused.access_token)
    except tokens.RefreshUnavailable as exc:
        return TryAgain(f"cannot refresh the Admin API token: {exc}")
    async with res.sessionmaker() as session:
        shop = await session.get_one(Shop, shop_id)
        grant = await tokens.grant_of(session, shop_id)
    if grant is None:
        return None
    if tokens.token_state(grant) is not tokens.TokenState.usable:
        return TryAgain("waiting for the merchant to authorise the app again")
    try:
        api = admin_api(shop, res.secrets)
    except NoAdminAccess as exc:
        return TryAgain(str(exc))
    if api.access_token == refused.access_token:
        return TryAgain("Shopify refused the token and no new one came")
    return api


async def read_admin(res: Resources, shop_id: int, read: Callable[[AdminApi], Awaitable[T]]) -> T:
    """Run a read on the shop's Admin API with a token fit for it: refreshed first when it is
    about to expire, and once more if Shopify answers 401. Raises NoAdminAccess when the shop
    gave no access, TryAgain when it must wait (the merchant must authorise the app again, or
    Shopify's token endpoint is away), AdminApiError when Shopify could not answer."""
    try:
        await tokens.refresh(res, shop_id)
    except tokens.RefreshUnavailable as exc:
        raise TryAgain(f"cannot refresh the Admin API token: {exc}") from exc
    async with res.sessionmaker() as session:
        shop = await session.get_one(Shop, shop_id)
        grant = await tokens.grant_of(session, shop_id)
    if tokens.token_state(grant) is tokens.TokenState.paused:
        raise TryAgain("waiting for the merchant to authorise the app again")
    api = admin_api(shop, res.secrets)
    try:
        return await read(api)
    except AdminApiError as exc:
        if not _read_unauthorized(exc):
            raise
        fresh = await api_after_401(res, shop_id, api)
        if fresh is None:
            raise
        if isinstance(fresh, TryAgain):
            raise fresh from exc
    return await read(fresh)


def _settle_time(res: Resources) -> timedelta:
    return timedelta(seconds=max(MIN_SETTLE_S, 2 * res.settings.http_timeout_s))


async def _begin(
    session: AsyncSession, secrets: SecretBox, ledger_entry_id: int, *, checked_attempt: int | None
) -> Step:
    """Lock the row and decide: nothing to do, check an unknown attempt first, or record a new
    attempt (committed before anything is sent)."""
    sync = await session.scalar(
        select(CreditSync)
        .where(CreditSync.ledger_entry_id == ledger_entry_id)
        .with_for_update(skip_locked=True)
    )
    if sync is None:
        return None  # unknown, or another worker holds it
    if sync.status in _DONE:
        return SyncStatus(sync.status)
    entry = await session.get_one(LedgerEntry, ledger_entry_id)
    shop = await session.get_one(Shop, sync.shop_id)
    if not pushes_store_credit(shop):
        if sync.status == SyncStatus.in_flight:
            why = f"the shop stopped pushing; outcome of attempt {sync.attempts} unknown"
            return await _fail(session, sync, why)
        return await _close(session, sync, SyncStatus.skipped)
    if entry.reverses_entry_id is not None:
        credit_status = await session.scalar(
            select(CreditSync.status).where(CreditSync.ledger_entry_id == entry.reverses_entry_id)
        )
        if credit_status in (SyncStatus.pending, SyncStatus.in_flight):
            return None  # debit after the credit lands; its outcome wakes this entry
        if credit_status in (None, SyncStatus.skipped):
            return await _close(session, sync, SyncStatus.skipped)
        if credit_status == SyncStatus.failed:
            why = f"the credit it reverses (entry {entry.reverses_entry_id}) was never pushed"
            return await _fail(session, sync, why)
    state = tokens.token_state(await tokens.grant_of(session, shop.id))
    if state is tokens.TokenState.paused:
        return None  # waits, pending, until the merchant authorises the app again
    if state is tokens.TokenState.refresh_due:
        return RefreshFirst(shop.id)
    try:
        api = admin_api(shop, secrets)
    except NoAdminAccess as exc:
        return await _fail(session, sync, str(exc))
    push = Push(
        ledger_entry_id=entry.id,
        shop_id=shop.id,
        api=api,
        owner_id=await owner_of(session, entry),
        kind="credit" if entry.kind == EntryKind.credit else "debit",
        amount=abs(entry.amount) - sync.shortfall,
        total=abs(entry.amount),
        currency=entry.currency,
        notify=shop.notify_customers,
        attempt=sync.attempts,
        attempted_at=sync.attempted_at or sync.created_at,
        check_first=True,
        expires_at=entry.expires_at if entry.kind == EntryKind.credit else None,
    )
    if sync.status == SyncStatus.in_flight and sync.attempts != checked_attempt:
        return push
    now = datetime.now(UTC)
    sync.status = SyncStatus.in_flight
    sync.attempts += 1
    sync.attempted_at = now
    return replace(push, attempt=sync.attempts, attempted_at=now, check_first=False)


async def owner_of(session: AsyncSession, entry: LedgerEntry) -> str:
    """B2B credit belongs to the company location that bought (never to the company itself);
    else, and for a B2B order without a location that a reviewer released, to the customer."""
    if entry.order_id is not None:
        stored = await session.scalar(select(Order.snapshot).where(Order.id == entry.order_id))
        location_id = snapshot_from_json(stored).company_location_id if stored else None
        if location_id:
            return shopify_admin.company_location_gid(location_id)
    external_id = await session.scalar(
        select(Customer.external_id).where(Customer.id == entry.customer_id)
    )
    return shopify_admin.customer_gid(str(external_id))


async def _read_account(
    res: Resources, push: Push, *, since: datetime
) -> StoreCreditAccount | None:
    try:
        try:
            return await shopify_admin.store_credit_account(
                res.http, push.api, push.owner_id, push.currency, since=since
            )
        except AdminApiError as exc:
            api = await _api_after_401(res, push) if _read_unauthorized(exc) else None
            if isinstance(api, TryAgain):
                raise api from exc
            if api is None:
                raise
            return await shopify_admin.store_credit_account(
                res.http, api, push.owner_id, push.currency, since=since
            )
    except AdminApiError as exc:
        raise TryAgain(
            f"cannot read the store credit account: {exc}", exc.retry_after_seconds
        ) from exc


async def _balance(res: Resources, push: Push) -> int | None:
    try:
        account = await _read_account(res, push, since=datetime.now(UTC))
    except TryAgain as exc:
        logger.warning(
            "entry %s: balance unreadable after %s: %s",
            push.ledger_entry_id,
            INSUFFICIENT_FUNDS,
            exc,
        )
        return None
    return account.balance if account else 0


async def _send(res: Resources, push: Push) -> MutationOutcome:
    if push.kind == "credit":
        return await shopify_admin.credit(
            res.http,
            push.api,
            push.owner_id,
            push.amount,
            push.currency,
            notify=push.notify,
            note=push.note,
            expires_at=push.expires_at,
        )
    return await shopify_admin.debit(
        res.http, push.api, push.owner_id, push.amount, push.currency, note=push.note
    )


async def _adopt(
    session: AsyncSession, push: Push, account: StoreCreditAccount | None
) -> SyncStatus | None:
    """Mark the entry synced if the unknown attempt is among the account's transactions."""
    candidates = [t for t in reversed(account.transactions) if push.matches(t)] if account else []
    if not candidates:
        return None
    await _lock_owner(session, push)
    claimed = set(
        await session.scalars(
            select(CreditSync.platform_transaction_id).where(
                CreditSync.shop_id == push.shop_id,
                CreditSync.platform_transaction_id.in_([t.id for t in candidates]),
                CreditSync.ledger_entry_id != push.ledger_entry_id,
            )
        )
    )
    for transaction in candidates:  # oldest first
        if transaction.id not in claimed:
            return await _record_applied(session, push, transaction.id)
    return None


async def _lock_owner(session: AsyncSession, push: Push) -> None:
    """Serialise claims of one account's transactions (matching by amount needs it)."""
    key = f"credit-sync:{push.shop_id}:{push.owner_id}:{push.currency}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))


async def _store_outcome(
    session: AsyncSession, push: Push, outcome: MutationOutcome, balance: int | None
) -> SyncStatus | TryAgain:
    if isinstance(outcome, Applied):
        return await _record_applied(session, push, outcome.transaction_id)
    sync = await _lock(session, push.ledger_entry_id)
    if sync.status != SyncStatus.in_flight or sync.attempts != push.attempt:
        logger.warning(
            "entry %s: outcome of attempt %d came late", push.ledger_entry_id, push.attempt
        )
        return SyncStatus(sync.status)
    if isinstance(outcome, Retryable):
        sync.status = SyncStatus.pending  # certainly not applied
        sync.error = outcome.reason
        return TryAgain(outcome.reason, outcome.retry_after_seconds)
    if isinstance(outcome, Unclear):
        sync.error = f"attempt {push.attempt} unclear: {outcome.reason}"  # stays in_flight
        return TryAgain(sync.error)
    if outcome.code == INSUFFICIENT_FUNDS and push.kind == "debit":
        return await _shortfall(session, sync, push, balance)
    return await _fail(session, sync, f"{outcome.code}: {outcome.message}")


async def _shortfall(
    session: AsyncSession, sync: CreditSync, push: Push, balance: int | None
) -> SyncStatus | TryAgain:
    """The customer spent the credit: debit what the balance allows, record the rest as the
    shortfall. Nothing left to debit: synced, with the whole remainder as shortfall."""
    if balance is None:
        sync.status = SyncStatus.pending  # refused, so not applied
        return TryAgain("insufficient funds and the balance is unreadable")
    possible = min(balance, push.amount)
    if possible == push.amount:
        why = f"{INSUFFICIENT_FUNDS} with a balance of {format_minor(balance, push.currency)}"
        return await _fail(session, sync, why)
    sync.shortfall = push.total - possible
    if possible == 0:
        sync.error = None
        return await _close(session, sync, SyncStatus.synced)
    sync.status = SyncStatus.pending
    sync.error = (
        f"{INSUFFICIENT_FUNDS}: debiting {format_minor(possible, push.currency)} of "
        f"{format_minor(push.total, push.currency)}"
    )
    next_job = f"{sync_job_id(sync.ledger_entry_id)}:attempt-{sync.attempts + 1}"
    defer_job(session, SYNC_JOB, sync.ledger_entry_id, job_id=next_job)
    return SyncStatus.pending


async def _record_applied(session: AsyncSession, push: Push, transaction_id: str) -> SyncStatus:
    await _lock_owner(session, push)  # always before the row, as in _adopt
    sync = await _lock(session, push.ledger_entry_id)
    if sync.status == SyncStatus.synced:
        if sync.platform_transaction_id != transaction_id:
            logger.error(
                "entry %s pushed twice: %s and %s",
                push.ledger_entry_id,
                sync.platform_transaction_id,
                transaction_id,
            )
        return SyncStatus.synced
    wrong_claim = await session.scalar(
        select(CreditSync)
        .where(
            CreditSync.shop_id == push.shop_id,
            CreditSync.platform_transaction_id == transaction_id,
            CreditSync.ledger_entry_id != push.ledger_entry_id,
        )
        .with_for_update()
    )
    if wrong_claim is not None:
        # Matched by amount while this entry's call was still under way: let it look again.
        wrong_claim.status = SyncStatus.in_flight
        wrong_claim.platform_transaction_id = None
        wrong_claim.error = f"{transaction_id} belongs to entry {push.ledger_entry_id}"
        job_id = f"{sync_job_id(wrong_claim.ledger_entry_id)}:recheck"
        defer_job(session, SYNC_JOB, wrong_claim.ledger_entry_id, job_id=job_id)
    sync.platform_transaction_id = transaction_id
    sync.error = None
    return await _close(session, sync, SyncStatus.synced)


async def _lock(session: AsyncSession, ledger_entry_id: int) -> CreditSync:
    return await session.get_one(CreditSync, ledger_entry_id, with_for_update=True)


async def _close(session: AsyncSession, sync: CreditSync, status: SyncStatus) -> SyncStatus:
    """Settle the row; reversals waiting for this credit can go now."""
    sync.status = status
    waiting = await session.scalars(
        select(CreditSync.ledger_entry_id)
        .join(LedgerEntry, LedgerEntry.id == CreditSync.ledger_entry_id)
        .where(
            LedgerEntry.reverses_entry_id == sync.ledger_entry_id,
            CreditSync.status == SyncStatus.pending,
        )
    )
    for entry_id in waiting:  # its own job id: the reversal's first job may still be running
        job_id = f"{sync_job_id(entry_id)}:after:{sync.ledger_entry_id}"
        defer_job(session, SYNC_JOB, entry_id, job_id=job_id)
    return status


async def _fail(session: AsyncSession, sync: CreditSync, error: str) -> SyncStatus:
    sync.error = error[:4000]
    status = await _close(session, sync, SyncStatus.failed)
    shop = await session.get_one(Shop, sync.shop_id)
    entry = await session.get_one(LedgerEntry, sync.ledger_entry_id)
    await notifications.enqueue_alert(
        session,
        shop,
        event_key=f"sync:{entry.id}:failed",
        event_type=SYNC_FAILED_EVENT,
        payload={
            "ledger_entry_id": str(entry.id),
            "customer_id": str(entry.customer_id),
            "order_id": str(entry.order_id) if entry.order_id else None,
            "kind": entry.kind,
            "amount": format_minor(entry.amount, entry.currency),
            "currency": entry.currency,
            "attempts": sync.attempts,
            "error": sync.error,
        },
    )
    return status


async def give_up(session: AsyncSession, ledger_entry_id: int, error: str) -> None:
    """Out of tries: the row fails (and the merchant is alerted) unless it settled already."""
    sync = await _lock(session, ledger_entry_id)
    if sync.status == SyncStatus.in_flight:
        error = f"outcome of attempt {sync.attempts} unknown (check Shopify first): {error}"
    if sync.status in (SyncStatus.pending, SyncStatus.in_flight):
        await _fail(session, sync, error)


async def resume_pushes(session: AsyncSession, shop_id: int) -> int:
    """Ring again every push of the shop that waited (its token was paused); returns how many."""
    waiting = list(
        await session.scalars(
            select(CreditSync.ledger_entry_id).where(
                CreditSync.shop_id == shop_id,
                CreditSync.status.in_([SyncStatus.pending, SyncStatus.in_flight]),
            )
        )
    )
    stamp = int(datetime.now(UTC).timestamp() * 1000)
    for entry_id in waiting:  # a job id of its own: the entry's first job may still be queued
        defer_job(session, SYNC_JOB, entry_id, job_id=f"{sync_job_id(entry_id)}:resumed:{stamp}")
    return len(waiting)


async def stale_syncs(session: AsyncSession, cutoff: datetime, limit: int) -> list[int]:
    result = await session.scalars(
        select(CreditSync.ledger_entry_id)
        .where(
            CreditSync.status.in_([SyncStatus.pending, SyncStatus.in_flight]),
            CreditSync.updated_at < cutoff,
            # A paused shop's pushes are rung again when the merchant authorises the app.
            ~select(ShopifyGrant.shop_id)
            .where(
                ShopifyGrant.shop_id == CreditSync.shop_id,
                ShopifyGrant.needs_reauth_at.is_not(None),
            )
            .exists(),
        )
        .order_by(CreditSync.updated_at)
        .limit(limit)
    )
    return list(result)
