from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from arq import Retry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import SYSTEM
from app.core.jobs import MAX_TRIES, backoff_seconds, resources, run_job
from app.core.operations import Operation
from app.core.uow import defer_job, unit_of_work
from app.credit_sync import service as credit_sync
from app.orders import lifecycle as order_lifecycle
from app.orders import review, service
from app.orders.models import Order
from app.orders.state import OrderStatus
from app.shopify import admin as shopify_admin
from app.shops.models import Shop
from app.shops.shop_settings import APPROVE_PENDING_JOB

logger = logging.getLogger(__name__)

EVALUATE_ORDER_JOB = "evaluate_order"


def order_job_id(order_id: int) -> str:
    return f"order:{order_id}:evaluate"


async def evaluate_order(ctx: dict[str, Any], order_id: int) -> str | None:
    async def work(session: AsyncSession) -> str | None:
        status = await service.evaluate_order(session, order_id)
        return status.value if status else None

    async def give_up(session: AsyncSession, error: str) -> None:
        order = await order_lifecycle.lock_order(session, order_id)
        if order is not None:
            await order_lifecycle.mark_failed(session, order, error)

    return await run_job(ctx, work, give_up)


async def read_order_payments(ctx: dict[str, Any], order_id: int) -> str | None:
    """Read what gift cards and store credit paid for an order (Shopify's order webhooks carry
    no transactions) and evaluate it with that. The call is made outside any transaction; a
    failed read is retried with backoff, then left to the sweeper, which asks again a minute
    after the order last moved: the order waits, it is never credited on a guess."""
    res = resources(ctx)
    job_try: int = ctx.get("job_try", 1)
    async with res.sessionmaker() as session:
        order = await session.get(Order, order_id)
        if order is None or not service.waits_for_payments(order):
            return None
        external_id, currency = order.external_id, order.currency

    async def read(api: shopify_admin.AdminApi) -> shopify_admin.OrderPayments:
        return await shopify_admin.order_payments(res.http, api, external_id, currency)

    payments = None
    try:
        payments = await credit_sync.read_admin(res, order.shop_id, read)
    except credit_sync.NoAdminAccess:
        pass  # evaluated without them: held for a person to decide
    except (shopify_admin.AdminApiError, credit_sync.TryAgain) as exc:
        final = job_try >= MAX_TRIES
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            await service.payments_unreadable(session, order_id, str(exc), alert=final)
        logger.warning("order %s: transactions unreadable (try %d): %s", order_id, job_try, exc)
        if final:
            return "waiting"
        after = exc.retry_after_seconds if isinstance(exc, shopify_admin.AdminApiError) else None
        if isinstance(exc, credit_sync.TryAgain):
            after = exc.after_seconds
        raise Retry(defer=after if after is not None else backoff_seconds(job_try)) from exc
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        order = await order_lifecycle.lock_order(session, order_id)
        if order is None or not service.waits_for_payments(order):
            return None
        shop = await session.get_one(Shop, order.shop_id)
        await service.payments_read(session, shop, order, payments)
        return str(order.status)


APPROVE_PENDING_BATCH = 100
APPROVE_PENDING_BUDGET_S = 20.0
AWARD_DUE_JOB = "award_due_order"


def award_job_id(order_id: int) -> str:
    return f"order:{order_id}:award"


async def award_due_order(ctx: dict[str, Any], order_id: int) -> str | None:
    async def work(session: AsyncSession) -> str | None:
        status = await service.award_due(session, order_id)
        return status.value if status else None

    async def give_up(session: AsyncSession, error: str) -> None:
        logger.error("scheduled order %s could not be credited: %s", order_id, error)

    return await run_job(ctx, work, give_up)


async def approve_pending_orders(
    ctx: dict[str, Any], operation_id: int, after_id: int = 0
) -> dict[str, int]:
    """Approve a shop's pending orders at their calculated amounts, a batch per transaction,
    counting progress on the operation. Hands over to a fresh job before the time limit."""
    res = resources(ctx)
    started = time.monotonic()
    while time.monotonic() - started < APPROVE_PENDING_BUDGET_S:
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            op = await session.get(Operation, operation_id, with_for_update=True)
            if op is None or op.status == "done":
                return {"after_id": after_id}
            shop = await session.get_one(Shop, op.shop_id)
            ids = list(
                await session.scalars(
                    select(Order.id)
                    .where(
                        Order.shop_id == shop.id,
                        Order.status == OrderStatus.pending,
                        Order.id > after_id,
                    )
                    .order_by(Order.id)
                    .limit(APPROVE_PENDING_BATCH)
                )
            )
            if not ids:
                op.status = "done"
                op.finished_at = datetime.now(UTC)
                return {"after_id": after_id}

            async def act(order_id: int, shop: Shop = shop) -> Order:
                return await review.approve(session, shop, SYSTEM, order_id)

            results = await review.bulk(session, ids, act)
            op.succeeded += sum(r["ok"] for r in results)
            op.failed += sum(not r["ok"] for r in results)
            after_id = ids[-1]
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        defer_job(
            session,
            APPROVE_PENDING_JOB,
            operation_id,
            after_id,
            job_id=f"operation:{operation_id}:{after_id}",
        )
    return {"after_id": after_id}
