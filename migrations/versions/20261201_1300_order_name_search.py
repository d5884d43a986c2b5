"""order name search: an index for GET /v1/orders?name=#1042 (the console's search box)

Revision ID: 7d3a1c5e9b20
Revises: 7e3b1c4d9a20
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7d3a1c5e9b20"
down_revision: str | None = "7e3b1c4d9a20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_shop_id_name", "orders", ["shop_id", "name"])


def downgrade() -> None:
    op.drop_index("ix_orders_shop_id_name", table_name="orders")
