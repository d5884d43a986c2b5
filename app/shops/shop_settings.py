"""Shop settings: processing mode, hold rules, award delay, approval ceiling, timezone, and
the schedules of the review call and the weekly audit."""

from __future__ import annotations

import base64
import os
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, HttpUrl, SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_service
from app.audit.service import Actor
from app.core.crypto import SecretBox
from app.core.errors import Conflict, NotFound, ProblemError
from app.core.etags import VersionMismatch, content_tag, etag
from app.core.money import format_minor, to_minor
from app.core.operations import Operation
from app.core.schemas import RequestModel
from app.core.uow import defer_job
from app.orders.holds import HoldRules
from app.orders.models import Order
from app.orders.state import OrderStatus
from app.program.rules import Amount
from app.shops.models import ProcessingMode, Shop
from app.shops.schedules import ReviewSchedule, WeeklyAuditSchedule
from app.shops.service import validate_timezone

APPROVE_PENDING_JOB = "approve_pending_orders"


class PendingOrdersChoice(StrEnum):
    process = "process"  # approve each at its calculated amount, in the background
    keep = "keep"  # leave them pending


class ShopSettings(BaseModel):
    processing_mode: ProcessingMode
    currency: str = Field(description="ISO 4217 code of the shop's money (`approval_ceiling`).")
    timezone: str
    award_delay_days: int = Field(description="Credit waits this many days after payment.")
    approval_ceiling: str | None = Field(description="Most a reviewer may approve per order.")
    hold_rules: HoldRules
    push_store_credit: bool = Field(
        description="Push each credit and reversal to the shop's store credit accounts; "
        "off keeps the ledger only."
    )
    platform_access_token_set: bool = Field(description="An Admin API token is stored.")
    platform_api_version: str
    platform_api_base_url: str | None = Field(
        description="Admin API location; null means the shop's own domain."
    )
    notify_customers: bool = Field(description="Tell customers about their credit.")
    notification_webhook_url: str | None
    alert_webhook_url: str | None
    review_deadline_hours: int | None = Field(
        description="Alert when an order waits for review longer than this."
    )
    review_schedule: ReviewSchedule | None = Field(
        description="The daily review call (`review.due` alerts), in the shop's timezone; "
        "null: none."
    )
    weekly_audit: WeeklyAuditSchedule | None = Field(
        description="The weekly audit (`audit.weekly` alerts), in the shop's timezone; null: none."
    )


class SettingsUpdate(RequestModel):
    processing_mode: ProcessingMode | None = None
    pending_orders: PendingOrdersChoice | None = Field(
        default=None,
        description="Needed to switch manual → automatic while orders are pending.",
    )
    timezone: str | None = None
    award_delay_days: int | None = Field(default=None, ge=0, le=365)
    approval_ceiling: Amount | None = None
    hold_rules: HoldRules | None = None
    push_store_credit: bool | None = None
    platform_access_token: SecretStr | None = Field(
        default=None, description="Admin API access token; stored encrypted, never shown."
    )
    platform_api_version: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    platform_api_base_url: HttpUrl | None = None
    notify_customers: bool | None = None
    notification_webhook_url: HttpUrl | None = None
    alert_webhook_url: HttpUrl | None = None
    review_deadline_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    review_schedule: ReviewSchedule | None = Field(default=None, description="null turns it off.")
    weekly_audit: WeeklyAuditSchedule | None = Field(default=None, description="null turns it off.")


class OperationRead(BaseModel):
    id: str
    kind: str
    status: Literal["running", "done"]
    total: int
    succeeded: int
    failed: int
    created_at: datetime
    finished_at: datetime | None


class SettingsChanged(ShopSettings):
    operation: OperationRead | None = Field(
        description="The background approval of pending orders, when one was started."
    )
    outbound_webhook_secret: str | None = Field(
        description="Signs notification and alert webhooks (Standard Webhooks)."
    )


class PendingOrdersExist(Conflict):
    code, title = "pending_orders_exist", "Orders are waiting for review"


class InvalidSettings(ProblemError):
    status, code, title = 422, "invalid_settings", "The settings are not valid"


def read(shop: Shop) -> ShopSettings:
    return ShopSettings(
        processing_mode=shop.processing_mode,
        currency=shop.currency,
        timezone=shop.timezone,
        award_delay_days=shop.award_delay_days,
        approval_ceiling=(
            format_minor(shop.approval_ceiling, shop.currency)
            if shop.approval_ceiling is not None
            else None
        ),
        hold_rules=HoldRules.model_validate(shop.hold_rules),
        push_store_credit=shop.push_store_credit,
        platform_access_token_set=shop.platform_access_token is not None,
        platform_api_version=shop.platform_api_version,
        platform_api_base_url=shop.platform_api_base_url,
        notify_customers=shop.notify_customers,
        notification_webhook_url=shop.notification_webhook_url,
        alert_webhook_url=shop.alert_webhook_url,
        review_deadline_hours=shop.review_deadline_hours,
        review_schedule=(
            ReviewSchedule.model_validate(shop.review_schedule) if shop.review_schedule else None
        ),
        weekly_audit=(
            WeeklyAuditSchedule.model_validate(shop.weekly_audit) if shop.weekly_audit else None
        ),
    )


def settings_etag(shop: Shop) -> str:
    """Changes whenever anything the settings show (or hide: the stored secrets) changes."""
    content = read(shop).model_dump(mode="json") | {
        "platform_access_token": shop.platform_access_token,
        "outbound_webhook_secret": shop.outbound_webhook_secret,
    }
    return etag(content_tag(content))


def operation_read(op: Operation) -> OperationRead:
    return OperationRead(
        id=str(op.id),
        kind=op.kind,
        status="done" if op.status == "done" else "running",
        total=op.total,
        succeeded=op.succeeded,
        failed=op.failed,
        created_at=op.created_at,
        finished_at=op.finished_at,
    )


async def pending_count(session: AsyncSession, shop_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(
                Order.shop_id == shop_id, Order.status == OrderStatus.pending
            )
        )
        or 0
    )


async def update(
    session: AsyncSession,
    shop: Shop,
    actor: Actor,
    changes: SettingsUpdate,
    secrets: SecretBox,
    *,
    if_match: str | None = None,
) -> SettingsChanged:
    """Apply the changes. Manual → automatic while orders are pending needs a decision about
    them; automatic → manual only affects orders that come after. With `if_match`, only if
    the settings are still those the caller read."""
    await session.refresh(shop, with_for_update=True)
    if if_match is not None and etag(if_match) != settings_etag(shop):
        raise VersionMismatch(
            "the settings changed since you read them; read them again",
            current_etag=settings_etag(shop),
        )
    before = read(shop).model_dump(mode="json")
    operation = None
    if changes.timezone is not None:
        try:
            shop.timezone = validate_timezone(changes.timezone)
        except ValueError as exc:
            raise InvalidSettings(str(exc)) from exc
    if changes.award_delay_days is not None:
        shop.award_delay_days = changes.award_delay_days
    if "approval_ceiling" in changes.model_fields_set:
        try:
            shop.approval_ceiling = (
                to_minor(changes.approval_ceiling, shop.currency)
                if changes.approval_ceiling is not None
                else None
            )
        except ValueError as exc:
            raise InvalidSettings(str(exc)) from exc
    if changes.hold_rules is not None:
        shop.hold_rules = changes.hold_rules.model_dump(mode="json")
    _apply_platform(shop, changes, secrets)
    switching_to_automatic = (
        changes.processing_mode == ProcessingMode.automatic
        and shop.processing_mode == ProcessingMode.manual
    )
    if switching_to_automatic:
        waiting = await pending_count(session, shop.id)
        if waiting and changes.pending_orders is None:
            raise PendingOrdersExist(
                f"{waiting} orders are pending: send `pending_orders` as `process` (approve "
                "them at their calculated amounts) or `keep` (leave them pending)",
                pending_count=waiting,
            )
        if waiting and changes.pending_orders == PendingOrdersChoice.process:
            operation = Operation(shop_id=shop.id, kind="approve_pending", total=waiting)
            session.add(operation)
            await session.flush()
            defer_job(
                session, APPROVE_PENDING_JOB, operation.id, job_id=f"operation:{operation.id}"
            )
    if changes.processing_mode is not None:
        shop.processing_mode = changes.processing_mode
    after = read(shop).model_dump(mode="json")
    if after != before:
        audit_service.record(
            session,
            shop_id=shop.id,
            actor=actor,
            action="settings.updated",
            subject_type="shop",
            subject_id=shop.id,
            before=_changed(before, after),
            after=_changed(after, before),
        )
    await session.flush()
    if operation is not None:
        await session.refresh(operation)
    return SettingsChanged(
        **read(shop).model_dump(),
        operation=operation_read(operation) if operation is not None else None,
        outbound_webhook_secret=shop.outbound_webhook_secret,
    )


def _apply_platform(shop: Shop, changes: SettingsUpdate, secrets: SecretBox) -> None:
    given = changes.model_fields_set
    if changes.push_store_credit is not None:
        shop.push_store_credit = changes.push_store_credit
    if changes.platform_access_token is not None:
        shop.platform_access_token = secrets.encrypt(
            changes.platform_access_token.get_secret_value()
        )
    if changes.platform_api_version is not None:
        shop.platform_api_version = changes.platform_api_version
    if changes.notify_customers is not None:
        shop.notify_customers = changes.notify_customers
    for field in ("platform_api_base_url", "notification_webhook_url", "alert_webhook_url"):
        if field in given:
            value = getattr(changes, field)
            setattr(shop, field, str(value).rstrip("/") if value is not None else None)
    if "review_deadline_hours" in given:
        shop.review_deadline_hours = changes.review_deadline_hours
    for field in ("review_schedule", "weekly_audit"):
        if field in given:
            value = getattr(changes, field)
            setattr(shop, field, value.model_dump(mode="json") if value is not None else None)
    if (shop.notification_webhook_url or shop.alert_webhook_url) and not (
        shop.outbound_webhook_secret
    ):
        shop.outbound_webhook_secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()


def _changed(one: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in one.items() if other.get(key) != value}


async def get_operation(session: AsyncSession, shop_id: int, operation_id: int) -> Operation:
    op = await session.scalar(
        select(Operation).where(Operation.id == operation_id, Operation.shop_id == shop_id)
    )
    if op is None:
        raise NotFound(f"operation {operation_id} not found")
    return op
