"""account standing and schedules

The customer's account standing (verified email, account state) for the `unverified_customer`
hold rule, and the shop's review schedule and weekly audit settings. Nullable columns without
defaults: added at once, without rewriting either table.

Revision ID: 5c2e9a7d4b10
Revises: 6f1c2d9a4e3b
Create Date: 2026-11-26 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5c2e9a7d4b10"
down_revision: str | None = "6f1c2d9a4e3b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("verified_email", sa.Boolean(), nullable=True))
    op.add_column("customers", sa.Column("account_state", sa.String(length=32), nullable=True))
    op.add_column(
        "shops",
        sa.Column("review_schedule", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "shops", sa.Column("weekly_audit", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("shops", "weekly_audit")
    op.drop_column("shops", "review_schedule")
    op.drop_column("customers", "account_state")
    op.drop_column("customers", "verified_email")
