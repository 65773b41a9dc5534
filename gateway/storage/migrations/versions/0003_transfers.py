"""Two-phase transfers between regions; unit blocks indexed by the transfer reserving them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "transfers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("transfer_id", sa.String(length=120), nullable=False),
        sa.Column("source_region", sa.String(length=6), nullable=False),
        sa.Column("destination_region", sa.String(length=6), nullable=False),
        sa.Column("purpose", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("quantity_grams", sa.BigInteger(), nullable=False),
        sa.Column("request_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("proposal_envelope", sa.LargeBinary(length=32), nullable=False),
        sa.Column("answer_envelope", sa.LargeBinary(length=32), nullable=True),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
        sa.UniqueConstraint("name", name=op.f("uq_transfers_name")),
        sa.UniqueConstraint(
            "source_region", "transfer_id", name=op.f("uq_transfers_source_region")
        ),
    )
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transfers_destination_region"), ["destination_region"], unique=False
        )
        batch_op.create_index("ix_transfers_state_expires", ["state", "expires_at"], unique=False)

    with op.batch_alter_table("unit_blocks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_unit_blocks_reserved_by"), ["reserved_by"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("unit_blocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unit_blocks_reserved_by"))

    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_transfers_state_expires")
        batch_op.drop_index(batch_op.f("ix_transfers_destination_region"))

    op.drop_table("transfers")
