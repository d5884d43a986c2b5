"""shopify app install: grants (token expiries, refresh token, scopes, re-auth) and OAuth states

Two new tables, nothing rewritten: shops installed through the app get a grant row; shops made
by hand have none and keep verifying their webhooks with their own secret.

Revision ID: 5c1f0a9d2e71
Revises: 5c2e9a7d4b10
Create Date: 2026-11-26 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1f0a9d2e71"
down_revision: str | None = "5c2e9a7d4b10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shopify_grants",
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("access_token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("refresh_token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scopes", sa.Text(), server_default="", nullable=False),
        sa.Column("needs_reauth_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reauth_reason", sa.Text(), nullable=True),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_shopify_grants_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_shopify_grants")),
    )
    op.create_table(
        "shopify_oauth_states",
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("shop_domain", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_shopify_oauth_states")),
    )
    op.create_index(
        op.f("ix_shopify_oauth_states_expires_at"), "shopify_oauth_states", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_shopify_oauth_states_expires_at"), table_name="shopify_oauth_states")
    op.drop_table("shopify_oauth_states")
    op.drop_table("shopify_grants")
