"""dashboard queues and review times: counters kept by the status change, and a histogram of
review times, so the dashboard reads a few rows instead of counting and sorting orders

Revision ID: 3f6d2b8c1a47
Revises: 7d3a1c5e9b20
Create Date: 2026-12-01 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f6d2b8c1a47"
down_revision: str | None = "7d3a1c5e9b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The backfills, from the orders as they are (the dashboard bench runs them on its seed too).
# Shards as app.metrics.rollup.SHARDS; buckets as app.metrics.rollup.review_bucket.
BACKFILL_QUEUES = """
INSERT INTO order_queues (shop_id, shard, pending, held, failed, awaiting_customer)
SELECT shop_id, (id % 4)::smallint,
       count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'held'),
       count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status = 'awaiting_customer')
FROM orders WHERE status IN ('pending', 'held', 'failed', 'awaiting_customer')
GROUP BY shop_id, id % 4
"""

BACKFILL_REVIEW_TIMES = """
INSERT INTO review_times_daily (shop_id, day, bucket, reviews)
SELECT shop_id, day, bucket, count(*)
FROM (
    SELECT shop_id, (decided_at AT TIME ZONE 'UTC')::date AS day,
           floor(16 * log(2.0, greatest(extract(epoch FROM decided_at - review_started_at),
                                        1.0)))::smallint AS bucket
    FROM orders WHERE decided_at IS NOT NULL AND review_started_at IS NOT NULL
) AS decided
GROUP BY shop_id, day, bucket
"""


def upgrade() -> None:
    counter = {"server_default": "0", "nullable": False}
    op.create_table(
        "order_queues",
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("pending", sa.BigInteger(), **counter),
        sa.Column("held", sa.BigInteger(), **counter),
        sa.Column("failed", sa.BigInteger(), **counter),
        sa.Column("awaiting_customer", sa.BigInteger(), **counter),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_order_queues_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", "shard", name=op.f("pk_order_queues")),
    )
    op.create_table(
        "review_times_daily",
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("reviews", sa.Integer(), **counter),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_review_times_daily_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", "day", "bucket", name=op.f("pk_review_times_daily")),
    )
    op.create_index(
        "ix_orders_scheduled_amount",
        "orders",
        ["shop_id"],
        postgresql_include=["award_amount"],
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.execute(BACKFILL_QUEUES)
    op.execute(BACKFILL_REVIEW_TIMES)


def downgrade() -> None:
    op.drop_index("ix_orders_scheduled_amount", table_name="orders")
    op.drop_table("review_times_daily")
    op.drop_table("order_queues")
