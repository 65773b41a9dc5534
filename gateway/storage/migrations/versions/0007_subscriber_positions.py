"""Federation status: each region's feed position as its registry last asked for or reached.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriber_positions",
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("region", name=op.f("pk_subscriber_positions")),
    )


def downgrade() -> None:
    op.drop_table("subscriber_positions")
