"""Credit Shopify expired, read back into the ledger.

A shop that pushes its credit to Shopify sends each credit's `expiresAt`; Shopify then spends
the soonest-expiring credit first at checkout and, when a credit expires, writes a
`StoreCreditAccountExpirationTransaction` for what remained of it (it has no id of its own:
its `creditTransaction` names the credit). The service never debits such a credit on expiry
itself: wherever it reads the account's transactions (a push that checks an unclear attempt,
the reconciliation, the expiry cron) it writes an `expiry` entry for each expiration of a
credit it pushed, once per credit (idempotency key `expiry:<credit entry>`), for at most what
the ledger still has left of it, with a sync row `synced` to that expiration (nothing is
pushed back).
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.money import format_minor
from app.credit_sync.models import CreditSync, SyncStatus
from app.ledger import service as ledger_service
from app.ledger.models import LedgerEntry
from app.metrics import rollup
from app.shopify.admin import StoreCreditAccount

logger = logging.getLogger(__name__)


def expiration_id(credit_transaction_id: str) -> str:
    """What the expiry entry's sync row records: the expiration of that Shopify credit."""
    return f"expiration-of:{credit_transaction_id}"


async def record(session: AsyncSession, shop_id: int, account: StoreCreditAccount) -> int:
    """Write an expiry entry for each expiration among the account's transactions whose credit
    the ledger pushed and has not seen expire; returns how many were written."""
    expired = {
        t.expired_credit_id: t
        for t in account.transactions
        if t.kind == "expiration" and t.expired_credit_id
    }
    if not expired:
        return 0
    pushed: dict[int, str] = dict(
        (
            await session.execute(
                select(
                    CreditSync.ledger_entry_id,
                    func.coalesce(CreditSync.platform_transaction_id, ""),
                ).where(
                    CreditSync.shop_id == shop_id,
                    CreditSync.platform_transaction_id.in_(list(expired)),
                    CreditSync.status == SyncStatus.synced,
                )
            )
        ).all()
    )
    if not pushed:
        return 0
    credits = await ledger_service.lock_credits(session, LedgerEntry.id.in_(list(pushed)))
    written = 0
    for credit, state in zip(
        credits, await ledger_service.credits_left(session, credits), strict=True
    ):
        credit_transaction_id = pushed[credit.id]
        expiration = expired[credit_transaction_id]
        amount = min(expiration.amount, state.left)
        if state.expired or amount <= 0:
            continue
        if expiration.amount != state.left:
            logger.warning(
                "credit %s: Shopify expired %s, the ledger had %s left",
                credit.id,
                format_minor(expiration.amount, credit.currency),
                format_minor(state.left, credit.currency),
            )
        entry_id = await ledger_service.expire(
            session,
            credit,
            amount,
            description=f"Expired on Shopify at {expiration.created_at.isoformat()}",
        )
        if entry_id is None:
            continue
        session.add(
            CreditSync(
                ledger_entry_id=entry_id,
                shop_id=shop_id,
                status=SyncStatus.synced,
                platform_transaction_id=expiration_id(credit_transaction_id),
            )
        )
        await rollup.bump(session, shop_id, credit.order_id or credit.id, expired=amount)
        written += 1
    await session.flush()
    return written
