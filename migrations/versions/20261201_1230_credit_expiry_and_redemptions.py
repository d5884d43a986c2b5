"""credit expiry and redemptions: `expires_at` on credits, expiry and redemption entries

Credits keep the expiry they were given when written (`expires_at`); expiry and redemption
entries are negative and point at the credit they consume (`reverses_entry_id`), like
reversals. Each reminder of a credit is decided once (`expiry_reminders`: sent, with the amount
left, or 0 when nothing was left to remind of). A redemption (once per shop and merchant reference) spends one or more credits,
an entry each. The hourly figures count what expired and what was spent.

Revision ID: 7e3b1c4d9a20
Revises: 8d3b7e51c0f4
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7e3b1c4d9a20"
down_revision: str | None = "8d3b7e51c0f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "redemptions",
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_redemptions_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_redemptions_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("shop_id", "reference", name=op.f("uq_redemptions_shop_id_reference")),
    )
    op.create_index(
        op.f("ix_redemptions_customer_id"), "redemptions", ["customer_id"], unique=False
    )
    op.add_column(
        "ledger_entries", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("ledger_entries", sa.Column("redemption_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_ledger_entries_redemption_id_redemptions"),
        "ledger_entries",
        "redemptions",
        ["redemption_id"],
        ["id"],
    )
    op.create_index(
        op.f("ix_ledger_entries_redemption_id"), "ledger_entries", ["redemption_id"], unique=False
    )
    op.create_index(
        "ix_ledger_entries_reverses_entry_id", "ledger_entries", ["reverses_entry_id"], unique=False
    )
    op.create_index(
        "ix_ledger_entries_expiring",
        "ledger_entries",
        ["shop_id", "expires_at"],
        unique=False,
        postgresql_where=sa.text("kind = 'credit' AND expires_at IS NOT NULL"),
    )
    op.drop_constraint(op.f("ck_ledger_entries_amount_sign"), "ledger_entries", type_="check")
    op.create_check_constraint(
        op.f("ck_ledger_entries_amount_sign"),
        "ledger_entries",
        "(kind = 'credit' AND amount > 0) OR "
        "(kind IN ('reversal', 'expiry', 'redemption') AND amount < 0)",
    )
    op.create_check_constraint(
        op.f("ck_ledger_entries_consumes_a_credit"),
        "ledger_entries",
        "kind = 'credit' OR reverses_entry_id IS NOT NULL",
    )
    op.create_index(
        "ix_credit_syncs_shop_id_platform_transaction_id",
        "credit_syncs",
        ["shop_id", "platform_transaction_id"],
        unique=False,
    )
    op.create_table(
        "expiry_reminders",
        sa.Column("credit_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("days_before", sa.SmallInteger(), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["credit_entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_expiry_reminders_credit_entry_id_ledger_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_expiry_reminders_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("credit_entry_id", "days_before", name=op.f("pk_expiry_reminders")),
    )
    op.add_column(
        "order_stats_hourly",
        sa.Column("expired", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.add_column(
        "order_stats_hourly",
        sa.Column("redeemed", sa.BigInteger(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("order_stats_hourly", "redeemed")
    op.drop_table("expiry_reminders")
    op.drop_column("order_stats_hourly", "expired")
    op.drop_index("ix_credit_syncs_shop_id_platform_transaction_id", table_name="credit_syncs")
    op.drop_constraint(op.f("ck_ledger_entries_consumes_a_credit"), "ledger_entries", type_="check")
    op.drop_constraint(op.f("ck_ledger_entries_amount_sign"), "ledger_entries", type_="check")
    op.create_check_constraint(
        op.f("ck_ledger_entries_amount_sign"),
        "ledger_entries",
        "(kind = 'credit' AND amount > 0) OR (kind = 'reversal' AND amount < 0)",
    )
    op.drop_index("ix_ledger_entries_expiring", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_reverses_entry_id", table_name="ledger_entries")
    op.drop_index(op.f("ix_ledger_entries_redemption_id"), table_name="ledger_entries")
    op.drop_constraint(
        op.f("fk_ledger_entries_redemption_id_redemptions"), "ledger_entries", type_="foreignkey"
    )
    op.drop_column("ledger_entries", "redemption_id")
    op.drop_column("ledger_entries", "expires_at")
    op.drop_index(op.f("ix_redemptions_customer_id"), table_name="redemptions")
    op.drop_table("redemptions")
