"""Record exchange: envelopes, records (the feed), methodologies, projects, issuances, unit
blocks, and each signing key's chain head.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "regions",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_regions")),
    )
    op.create_table(
        "unit_blocks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("origin_region", sa.String(length=6), nullable=False),
        sa.Column("issuance_name", sa.String(length=300), nullable=False),
        sa.Column("project_name", sa.String(length=300), nullable=False),
        sa.Column("vintage", sa.Integer(), nullable=False),
        sa.Column("serial_start", sa.BigInteger(), nullable=False),
        sa.Column("serial_end", sa.BigInteger(), nullable=False),
        sa.Column("holder_region", sa.String(length=6), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reserved_by", sa.String(length=300), nullable=True),
        sa.Column("parent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["unit_blocks.id"], name=op.f("fk_unit_blocks_parent_id_unit_blocks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_blocks")),
    )
    with op.batch_alter_table("unit_blocks", schema=None) as batch_op:
        batch_op.create_index("ix_unit_blocks_holder", ["holder_region", "state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_unit_blocks_issuance_name"), ["issuance_name"], unique=False
        )
        batch_op.create_index(
            "ix_unit_blocks_serials", ["origin_region", "serial_start"], unique=False
        )

    op.create_table(
        "envelopes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("envelope_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("previous_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("content_type", sa.String(length=120), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("sign_time_seconds", sa.BigInteger(), nullable=False),
        sa.Column("sign_time_nanos", sa.Integer(), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["signing_keys.key_id"], name=op.f("fk_envelopes_key_id_signing_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_envelopes")),
        sa.UniqueConstraint("envelope_hash", name=op.f("uq_envelopes_envelope_hash")),
        sa.UniqueConstraint("key_id", "sequence", name=op.f("uq_envelopes_key_id")),
    )
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_envelopes_region"), ["region"], unique=False)

    op.create_table(
        "records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column(
            "envelope_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("envelope_record_index", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["envelope_id"], ["envelopes.id"], name=op.f("fk_records_envelope_id_envelopes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records")),
    )
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_records_current", ["is_current", "kind", "region", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_records_envelope_id"), ["envelope_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_records_name"), ["name"], unique=False)

    op.create_table(
        "issuances",
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("issuance_id", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("project_name", sa.String(length=300), nullable=False),
        sa.Column("vintage", sa.Integer(), nullable=False),
        sa.Column("serial_start", sa.BigInteger(), nullable=False),
        sa.Column("serial_end", sa.BigInteger(), nullable=False),
        sa.Column("quantity_grams", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_issuances_record_id_records")
        ),
        sa.PrimaryKeyConstraint("region", "issuance_id", name=op.f("pk_issuances")),
        sa.UniqueConstraint("name", name=op.f("uq_issuances_name")),
    )
    with op.batch_alter_table("issuances", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_issuances_project_name"), ["project_name"], unique=False
        )
        batch_op.create_index(
            "ix_issuances_serials", ["region", "serial_start", "serial_end"], unique=False
        )

    op.create_table(
        "methodologies",
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("methodology_id", sa.String(length=80), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("ref_id", sa.String(length=80), nullable=False),
        sa.Column("ref_version", sa.String(length=40), nullable=False),
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("category", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("max_capacity_value", sa.String(length=40), nullable=True),
        sa.Column("max_capacity_unit", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_methodologies_record_id_records")
        ),
        sa.PrimaryKeyConstraint(
            "region", "methodology_id", "version", name=op.f("pk_methodologies")
        ),
        sa.UniqueConstraint(
            "region", "ref_id", "ref_version", name=op.f("uq_methodologies_region")
        ),
    )
    op.create_table(
        "projects",
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("project_id", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("methodology_region", sa.String(length=6), nullable=False),
        sa.Column("methodology_id", sa.String(length=80), nullable=False),
        sa.Column("methodology_version", sa.String(length=40), nullable=False),
        sa.Column("crediting_start", sa.Date(), nullable=False),
        sa.Column("crediting_end", sa.Date(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_projects_record_id_records")
        ),
        sa.PrimaryKeyConstraint("region", "project_id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
    )
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_sequence", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("last_hash", sa.LargeBinary(length=32), nullable=True))
    # Keys registered before this revision have signed nothing yet: their chain head is genesis.
    keys = sa.table("signing_keys", sa.column("last_hash", sa.LargeBinary()))
    op.execute(keys.update().values(last_hash=bytes(32)))
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.alter_column("last_hash", existing_type=sa.LargeBinary(length=32), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_column("last_hash")
        batch_op.drop_column("last_sequence")

    op.drop_table("projects")
    op.drop_table("methodologies")
    with op.batch_alter_table("issuances", schema=None) as batch_op:
        batch_op.drop_index("ix_issuances_serials")
        batch_op.drop_index(batch_op.f("ix_issuances_project_name"))

    op.drop_table("issuances")
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_records_name"))
        batch_op.drop_index(batch_op.f("ix_records_envelope_id"))
        batch_op.drop_index("ix_records_current")

    op.drop_table("records")
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_envelopes_region"))

    op.drop_table("envelopes")
    with op.batch_alter_table("unit_blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_unit_blocks_serials")
        batch_op.drop_index(batch_op.f("ix_unit_blocks_issuance_name"))
        batch_op.drop_index("ix_unit_blocks_holder")

    op.drop_table("unit_blocks")
    op.drop_table("regions")
