"""order lines digest

A nullable column without a default: added at once, without rewriting the orders table. Orders
stored before it have none, so their next snapshot rewrites their lines once, as before.

Revision ID: 118ade00c0ae
Revises: eb4e07e00cbc
Create Date: 2026-11-26 01:38:05.348642
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "118ade00c0ae"
down_revision: str | None = "eb4e07e00cbc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("lines_digest", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "lines_digest")
