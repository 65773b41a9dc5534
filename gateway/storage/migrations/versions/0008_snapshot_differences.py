"""Snapshots keep their totals per origin and state (``snapshot_totals``) and, in
``snapshot_blocks``, only the blocks the two sides do not hold identically; the staging rows lose
their foreign key to the snapshot (checked row by row, it cost more than the bulk insert itself).
Snapshots stored before keep all their blocks and get their totals here. A downgrade drops the
totals: snapshots staged since then cannot be reconciled by the older code.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_FK = "fk_snapshot_blocks_snapshot_id_holdings_snapshots"


def upgrade() -> None:
    op.create_table(
        "snapshot_totals",
        sa.Column(
            "snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("origin_region", sa.String(length=6), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("registry_grams", sa.BigInteger(), nullable=False),
        sa.Column("ledger_grams", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["holdings_snapshots.id"],
            name=op.f("fk_snapshot_totals_snapshot_id_holdings_snapshots"),
        ),
        sa.PrimaryKeyConstraint(
            "snapshot_id", "origin_region", "state", name=op.f("pk_snapshot_totals")
        ),
    )
    op.execute(
        "INSERT INTO snapshot_totals "
        "(snapshot_id, origin_region, state, registry_grams, ledger_grams) "
        "SELECT snapshot_id, origin_region, state, "
        "SUM(CASE WHEN side = 'registry' THEN serial_end - serial_start + 1 ELSE 0 END), "
        "SUM(CASE WHEN side = 'ledger' THEN serial_end - serial_start + 1 ELSE 0 END) "
        "FROM snapshot_blocks GROUP BY snapshot_id, origin_region, state"
    )
    with op.batch_alter_table("snapshot_blocks", schema=None) as batch_op:
        batch_op.drop_constraint(_FK, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("snapshot_blocks", schema=None) as batch_op:
        batch_op.create_foreign_key(_FK, "holdings_snapshots", ["snapshot_id"], ["id"])
    op.drop_table("snapshot_totals")
