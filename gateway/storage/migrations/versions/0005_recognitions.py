"""Mutual recognitions of methodologies and projects.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "recognitions",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("subject_name", sa.String(length=300), nullable=False),
        sa.Column("requesting_region", sa.String(length=6), nullable=False),
        sa.Column("recognising_region", sa.String(length=6), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("group_id", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("assessment", sa.LargeBinary(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recognitions")),
    )
    with op.batch_alter_table("recognitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recognitions_group_id"), ["group_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_recognitions_recognising_region"), ["recognising_region"], unique=False
        )
        batch_op.create_index(
            "ix_recognitions_subject", ["subject_name", "recognising_region"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("recognitions", schema=None) as batch_op:
        batch_op.drop_index("ix_recognitions_subject")
        batch_op.drop_index(batch_op.f("ix_recognitions_recognising_region"))
        batch_op.drop_index(batch_op.f("ix_recognitions_group_id"))

    op.drop_table("recognitions")
