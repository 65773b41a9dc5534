"""Snapshot staging rows without the foreign key to their snapshot: checked row by row it cost
more than the bulk insert itself (a trigger per row on PostgreSQL). The rows are written only by
the reconciliation store, in the transaction that writes their snapshot's header.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_FK = "fk_snapshot_blocks_snapshot_id_holdings_snapshots"


def upgrade() -> None:
    with op.batch_alter_table("snapshot_blocks", schema=None) as batch_op:
        batch_op.drop_constraint(_FK, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("snapshot_blocks", schema=None) as batch_op:
        batch_op.create_foreign_key(_FK, "holdings_snapshots", ["snapshot_id"], ["id"])
