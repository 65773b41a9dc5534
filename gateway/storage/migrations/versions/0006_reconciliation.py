"""Reconciliation: holdings snapshots with their staging rows, signed reports, scheduled job
runs (the claim that makes each scheduled run happen once), and APScheduler's job store.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_apscheduler_jobs_next_run_time"), ["next_run_time"], unique=False
        )

    op.create_table(
        "holdings_snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("snapshot_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("audit_sequence", sa.BigInteger(), nullable=False),
        sa.Column("submitted_by", sa.String(length=120), nullable=False),
        sa.Column("block_count", sa.BigInteger(), nullable=False),
        sa.Column("quantity_grams", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holdings_snapshots")),
    )
    with op.batch_alter_table("holdings_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holdings_snapshots_region"), ["region"], unique=False)

    op.create_table(
        "job_runs",
        sa.Column("job_id", sa.String(length=100), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "scheduled_for", name=op.f("pk_job_runs")),
    )
    op.create_table(
        "reconciliation_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column(
            "snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["holdings_snapshots.id"],
            name=op.f("fk_reconciliation_reports_snapshot_id_holdings_snapshots"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_reports")),
        sa.UniqueConstraint("name", name=op.f("uq_reconciliation_reports_name")),
    )
    with op.batch_alter_table("reconciliation_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconciliation_reports_region"), ["region"], unique=False
        )

    op.create_table(
        "snapshot_blocks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("origin_region", sa.String(length=6), nullable=False),
        sa.Column("serial_start", sa.BigInteger(), nullable=False),
        sa.Column("serial_end", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["holdings_snapshots.id"],
            name=op.f("fk_snapshot_blocks_snapshot_id_holdings_snapshots"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshot_blocks")),
    )
    with op.batch_alter_table("snapshot_blocks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_snapshot_blocks_lookup",
            ["snapshot_id", "side", "origin_region", "serial_start"],
            unique=False,
        )

    op.create_table(
        "snapshot_transfers",
        sa.Column(
            "snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("transfer_name", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["holdings_snapshots.id"],
            name=op.f("fk_snapshot_transfers_snapshot_id_holdings_snapshots"),
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "transfer_name", name=op.f("pk_snapshot_transfers")),
    )


def downgrade() -> None:

    op.drop_table("snapshot_transfers")
    with op.batch_alter_table("snapshot_blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_snapshot_blocks_lookup")

    op.drop_table("snapshot_blocks")
    with op.batch_alter_table("reconciliation_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_reports_region"))

    op.drop_table("reconciliation_reports")
    op.drop_table("job_runs")
    with op.batch_alter_table("holdings_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holdings_snapshots_region"))

    op.drop_table("holdings_snapshots")
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apscheduler_jobs_next_run_time"))

    op.drop_table("apscheduler_jobs")
