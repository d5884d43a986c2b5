"""shopify deliveries as sent

Shopify shares one X-Shopify-Event-Id among every delivery a merchant action produces (a
refund sends refunds/create and orders/updated with one id), so the inbox is unique per shop,
topic and event key instead of per shop and event key. Every stored row stays: rows unique on
(shop, event key) are unique on (shop, topic, event key) too. The new index is built before the
old constraint goes, so no moment is without one.

Deliveries also keep when Shopify triggered them; orders keep what Shopify's transactions said
about how they were paid (gift card and store credit parts); a refund whose money is known only
in another currency keeps that amount until it can be valued. Shops still on the old default
API version (2025-10, out of support) move to 2026-10. All new columns are nullable without a
default: added at once, without rewriting a table.

Revision ID: 6f1c2d9a4e3b
Revises: 118ade00c0ae
Create Date: 2026-12-01 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "6f1c2d9a4e3b"
down_revision: str | None = "118ade00c0ae"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_DEFAULT_VERSION = "2025-10"
NEW_DEFAULT_VERSION = "2026-10"


def upgrade() -> None:
    op.create_unique_constraint(
        op.f("uq_webhook_events_shop_id_topic_event_key"),
        "webhook_events",
        ["shop_id", "topic", "event_key"],
    )
    op.drop_constraint(
        op.f("uq_webhook_events_shop_id_event_key"), "webhook_events", type_="unique"
    )
    op.add_column(
        "webhook_events", sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("orders", sa.Column("payments", postgresql.JSONB(), nullable=True))
    op.add_column("refunds", sa.Column("amount_currency", sa.String(length=3), nullable=True))
    op.add_column("refunds", sa.Column("amount_in_currency", sa.BigInteger(), nullable=True))
    op.alter_column("shops", "platform_api_version", server_default=NEW_DEFAULT_VERSION)
    op.execute(
        sa.text(
            "UPDATE shops SET platform_api_version = :new WHERE platform_api_version = :old"
        ).bindparams(new=NEW_DEFAULT_VERSION, old=OLD_DEFAULT_VERSION)
    )


def downgrade() -> None:
    op.alter_column("shops", "platform_api_version", server_default=OLD_DEFAULT_VERSION)
    op.drop_column("refunds", "amount_in_currency")
    op.drop_column("refunds", "amount_currency")
    op.drop_column("orders", "payments")
    op.drop_column("webhook_events", "triggered_at")
    # Rows that differ only by topic cannot all stay under the older, narrower key: keep the
    # first of each (shop, event key).
    op.execute(
        "DELETE FROM webhook_events w USING webhook_events o"
        " WHERE w.shop_id = o.shop_id AND w.event_key = o.event_key AND w.id > o.id"
    )
    op.create_unique_constraint(
        op.f("uq_webhook_events_shop_id_event_key"), "webhook_events", ["shop_id", "event_key"]
    )
    op.drop_constraint(
        op.f("uq_webhook_events_shop_id_topic_event_key"), "webhook_events", type_="unique"
    )
