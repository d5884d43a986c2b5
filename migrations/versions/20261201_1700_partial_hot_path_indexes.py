"""partial hot-path indexes: the order, ledger and sync indexes on columns that start out
empty skip the rows where they are empty

Every order row is written three times (the webhook's insert, the snapshot, the decision) and
no update is HOT (its status is indexed), so each version goes into every index. Where the
column is NULL for most versions (an order's name and customer before its snapshot, its
processed and decided times before it gets there; a credit's reversed entry and redemption; a
sync row's Shopify transaction), the index is partial: every query that uses it compares the
column with a value, which implies it is not NULL. Measured in docs/scaling.md.

Revision ID: 8b1e4d7a2c93
Revises: 3f6d2b8c1a47
Create Date: 2026-12-01 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8b1e4d7a2c93"
down_revision: str | None = "3f6d2b8c1a47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, columns, INCLUDE columns, the column that is NULL in the rows left out)
PARTIAL = (
    (
        "ix_orders_shop_id_customer_id_id",
        "orders",
        ["shop_id", "customer_id", "id"],
        [],
        "customer_id",
    ),
    ("ix_orders_shop_id_name", "orders", ["shop_id", "name"], [], "name"),
    (
        "ix_orders_shop_id_decided_at",
        "orders",
        ["shop_id", "decided_at"],
        ["review_started_at"],
        "decided_at",
    ),
    (
        "ix_orders_shop_id_processed_at",
        "orders",
        ["shop_id", "processed_at"],
        ["paid_received_at"],
        "processed_at",
    ),
    (
        "ix_ledger_entries_reverses_entry_id",
        "ledger_entries",
        ["reverses_entry_id"],
        [],
        "reverses_entry_id",
    ),
    ("ix_ledger_entries_redemption_id", "ledger_entries", ["redemption_id"], [], "redemption_id"),
    (
        "ix_credit_syncs_shop_id_platform_transaction_id",
        "credit_syncs",
        ["shop_id", "platform_transaction_id"],
        [],
        "platform_transaction_id",
    ),
)


def upgrade() -> None:
    for name, table, columns, include, nullable in PARTIAL:
        op.drop_index(name, table_name=table)
        op.create_index(
            name,
            table,
            columns,
            postgresql_include=include,
            postgresql_where=f"{nullable} IS NOT NULL",
        )


def downgrade() -> None:
    for name, table, columns, include, _ in PARTIAL:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, postgresql_include=include)
