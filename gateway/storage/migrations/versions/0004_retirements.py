"""Retirements, and the retirement that consumed each retired block.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "retirements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("retirement_id", sa.String(length=120), nullable=False),
        sa.Column("holder_region", sa.String(length=6), nullable=False),
        sa.Column("purpose", sa.Integer(), nullable=False),
        sa.Column("beneficiary", sa.String(length=300), nullable=False),
        sa.Column("compliance_year", sa.Integer(), nullable=False),
        sa.Column("declared_obligation_grams", sa.BigInteger(), nullable=False),
        sa.Column("quantity_grams", sa.BigInteger(), nullable=False),
        sa.Column("outside_grams", sa.BigInteger(), nullable=False),
        sa.Column("credited_grams", sa.BigInteger(), nullable=False),
        sa.Column("ratio_numerator", sa.BigInteger(), nullable=False),
        sa.Column("ratio_denominator", sa.BigInteger(), nullable=False),
        sa.Column("request_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("envelope_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retirements")),
        sa.UniqueConstraint(
            "holder_region", "retirement_id", name=op.f("uq_retirements_holder_region")
        ),
        sa.UniqueConstraint("name", name=op.f("uq_retirements_name")),
    )
    with op.batch_alter_table("retirements", schema=None) as batch_op:
        batch_op.create_index(
            "ix_retirements_entity_year",
            ["holder_region", "beneficiary", "compliance_year"],
            unique=False,
        )

    with op.batch_alter_table("unit_blocks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retired_by", sa.String(length=300), nullable=True))
        batch_op.create_index(batch_op.f("ix_unit_blocks_retired_by"), ["retired_by"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("unit_blocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unit_blocks_retired_by"))
        batch_op.drop_column("retired_by")

    with op.batch_alter_table("retirements", schema=None) as batch_op:
        batch_op.drop_index("ix_retirements_entity_year")

    op.drop_table("retirements")
