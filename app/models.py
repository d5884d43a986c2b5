"""Every ORM model, imported in one place so the metadata (and alembic) sees them all."""

from app.audit.models import AuditEvent
from app.catalog.models import Product
from app.kit.db import Base
from app.kit.operations import Operation
from app.ledger.models import Customer, LedgerEntry
from app.orders.models import Order, OrderLine
from app.program.models import ProgramVersion
from app.shops.models import ApiKey, Shop
from app.webhooks.models import WebhookEvent

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "Customer",
    "LedgerEntry",
    "Operation",
    "Order",
    "OrderLine",
    "Product",
    "ProgramVersion",
    "Shop",
    "WebhookEvent",
]
