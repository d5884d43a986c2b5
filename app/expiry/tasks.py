"""The worker's side of expiry: a cron every minute expires due credit on ledger-only shops
and sends due reminders; every ten minutes the expirations Shopify wrote are read back for
pushing shops. Each run does what is due by its clock; a missed run is done by the next."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from arq import cron
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.broker import Job
from app.core.jobs import resources
from app.core.uow import unit_of_work
from app.expiry import service

logger = logging.getLogger(__name__)


async def sweep_expiring_credit(ctx: dict[str, Any], now: datetime | None = None) -> dict[str, int]:
    """Expiries then reminders, each in its own transaction (`now`: for tests)."""
    res = resources(ctx)
    now = now or datetime.now(UTC)
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        expired = await service.expire_ledger_credits(session, now)
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        reminded = await service.remind(session, now)
    return {"expired": expired, "reminded": reminded}


async def remind_expiring_on_shopify(ctx: dict[str, Any], credit_id: int, days_before: int) -> bool:
    return await service.remind_on_shopify(resources(ctx), credit_id, days_before)


async def read_shopify_expirations(ctx: dict[str, Any], now: datetime | None = None) -> int:
    res = resources(ctx)
    now = now or datetime.now(UTC)
    async with res.sessionmaker() as session:
        shop_ids = await service.pushing_shops_with_expirations(session, now)
    written = 0
    for shop_id in shop_ids:
        try:
            written += await service.read_shopify_expirations(res, shop_id, now)
        except Exception:  # one shop's Shopify trouble does not stop the others
            logger.exception("reading Shopify's expirations of shop %s failed", shop_id)
    return written


FUNCTIONS: list[WorkerCoroutine] = [remind_expiring_on_shopify]
CRON_JOBS: list[CronJob] = [
    cron(sweep_expiring_credit, second=20, unique=True, timeout=60),
    cron(
        read_shopify_expirations,
        minute=set(range(4, 60, 10)),
        second=40,
        unique=True,
        timeout=300,
    ),
]


async def stale_jobs(session: AsyncSession, cutoff: datetime) -> list[Job]:
    """Nothing to re-drive: each cron run finds what is due by itself."""
    return []
