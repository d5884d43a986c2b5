"""Every ORM model, imported in one place so the metadata (and alembic) sees them all."""

from app.audit.models import AuditEvent
from app.catalog.models import Product
from app.core.db import Base
from app.core.idempotency import IdempotencyKey
from app.core.operations import Operation
from app.credit_sync.models import CreditSync
from app.expiry.models import ExpiryReminder
from app.inbox.models import WebhookEvent
from app.ledger.models import Customer, LedgerEntry, Redemption
from app.metrics.models import OrderQueues, OrderStatsHourly, ReviewTimesDaily
from app.notifications.models import OutboxMessage
from app.orders.models import Order, OrderLine
from app.orders.refund_models import Refund
from app.program.models import ProgramVersion
from app.shopify.models import OAuthState, ShopifyGrant
from app.shops.models import ApiKey, Shop

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "CreditSync",
    "Customer",
    "ExpiryReminder",
    "IdempotencyKey",
    "LedgerEntry",
    "OAuthState",
    "Operation",
    "Order",
    "OrderLine",
    "OrderQueues",
    "OrderStatsHourly",
    "OutboxMessage",
    "Product",
    "ProgramVersion",
    "Redemption",
    "Refund",
    "ReviewTimesDaily",
    "Shop",
    "ShopifyGrant",
    "WebhookEvent",
]
