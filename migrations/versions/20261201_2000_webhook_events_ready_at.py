"""webhook events ready_at: the drain claims by when an event may be taken, from an index
that holds only the unclaimed events

The claim took every unhandled event in arrival order except the `orders/create` deliveries
younger than `create_settle_s`. Under load most unhandled events are such creates (1.5 s of
them), and the claim read them all to skip them, every batch: a bitmap scan of the whole
partial index and a sort, 3 ms a claim at 400 orders/s (pg_stat_statements). A bitmap scan also
never marks the dead entries that handled events leave in the index, so between two vacuums
every claim visited every event handled since the last. The intake now stamps `ready_at`
(creates: received + settle; the rest: received), and the claim reads the index from its start
in order, stopping at its batch size or at the first event not yet ready.

Revision ID: 5c9e2a7f4b18
Revises: 8b1e4d7a2c93
Create Date: 2026-12-01 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c9e2a7f4b18"
down_revision: str | None = "8b1e4d7a2c93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNCLAIMED = "status = 'received' AND attempts = 0"  # as app.inbox.models.UNCLAIMED


def upgrade() -> None:
    # A stable default: no table rewrite; the events already waiting are ready since received.
    op.add_column(
        "webhook_events",
        sa.Column(
            "ready_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.execute("UPDATE webhook_events SET ready_at = received_at WHERE status = 'received'")
    op.create_index(
        "ix_webhook_events_ready",
        "webhook_events",
        ["ready_at"],
        postgresql_where=sa.text(UNCLAIMED),
    )
    op.drop_index("ix_webhook_events_unhandled", table_name="webhook_events")


def downgrade() -> None:
    op.create_index(
        "ix_webhook_events_unhandled",
        "webhook_events",
        ["received_at"],
        postgresql_where=sa.text("status = 'received'"),
    )
    op.drop_index("ix_webhook_events_ready", table_name="webhook_events")
    op.drop_column("webhook_events", "ready_at")
