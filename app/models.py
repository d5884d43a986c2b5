"""Every ORM model, imported in one place so the metadata (and alembic) sees them all."""

from app.catalog.models import Product
from app.kit.db import Base
from app.ledger.models import Customer, LedgerEntry
from app.orders.models import Order, OrderLine, OrderStatusChange
from app.program.models import ProgramVersion
from app.shops.models import ApiKey, Shop
from app.webhooks.models import WebhookEvent

__all__ = [
    "ApiKey",
    "Base",
    "Customer",
    "LedgerEntry",
    "Order",
    "OrderLine",
    "OrderStatusChange",
    "Product",
    "ProgramVersion",
    "Shop",
    "WebhookEvent",
]
