"""Duplicate detection across registries: identity subjects (a region's or an external list's
projects with their identity keys normalised for matching, indexed by credit code, grid account
and grid cell), imported external projects, duplicate cases, the issuances they hold, the
administrators' decisions and the findings of a DUPLICATE resolution.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "identity_subjects",
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=True),
        sa.Column("scheme", sa.String(length=20), nullable=True),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        sa.Column("grid_account", sa.String(length=20), nullable=True),
        sa.Column("lat_e7", sa.BigInteger(), nullable=True),
        sa.Column("lon_e7", sa.BigInteger(), nullable=True),
        sa.Column("cell", sa.BigInteger(), nullable=True),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("capacity_w", sa.String(length=40), nullable=True),
        sa.Column("registered_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("credit_start", sa.Date(), nullable=True),
        sa.Column("credit_end", sa.Date(), nullable=True),
        sa.Column("title", sa.Unicode(length=300), nullable=False),
        sa.Column("owner", sa.Unicode(length=300), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_identity_subjects")),
    )
    with op.batch_alter_table("identity_subjects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_subjects_cell"), ["cell"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_identity_subjects_credit_code"), ["credit_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_identity_subjects_grid_account"), ["grid_account"], unique=False
        )

    op.create_table(
        "external_projects",
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("scheme", sa.String(length=20), nullable=False),
        sa.Column("scheme_project_id", sa.String(length=80), nullable=False),
        sa.Column("title", sa.Unicode(length=300), nullable=False),
        sa.Column("owner_credit_code", sa.String(length=18), nullable=True),
        sa.Column("latitude", sa.String(length=20), nullable=True),
        sa.Column("longitude", sa.String(length=20), nullable=True),
        sa.Column("datum", sa.String(length=10), nullable=True),
        sa.Column("grid_account", sa.String(length=20), nullable=True),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("capacity_value", sa.String(length=40), nullable=True),
        sa.Column("capacity_unit", sa.String(length=10), nullable=True),
        sa.Column("registration_date", sa.Date(), nullable=False),
        sa.Column("credit_start", sa.Date(), nullable=True),
        sa.Column("credit_end", sa.Date(), nullable=True),
        sa.Column("import_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(length=120), nullable=False),
        sa.Column("list_digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_external_projects")),
    )

    op.create_table(
        "duplicate_cases",
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("strength", sa.String(length=40), nullable=False),
        sa.Column("first_subject", sa.String(length=200), nullable=False),
        sa.Column("second_subject", sa.String(length=200), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("deciding_regions", sa.Text(), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.String(length=20), nullable=True),
        sa.Column("standing", sa.String(length=200), nullable=True),
        sa.Column("open_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolve_time", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_duplicate_cases")),
        sa.UniqueConstraint(
            "first_subject", "second_subject", name=op.f("uq_duplicate_cases_first_subject")
        ),
    )
    with op.batch_alter_table("duplicate_cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_duplicate_cases_first_subject"), ["first_subject"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_duplicate_cases_second_subject"), ["second_subject"], unique=False
        )

    op.create_table(
        "case_holds",
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("issuance", sa.String(length=300), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["duplicate_cases.case_id"],
            name=op.f("fk_case_holds_case_id_duplicate_cases"),
        ),
        sa.PrimaryKeyConstraint("case_id", "issuance", name=op.f("pk_case_holds")),
    )
    with op.batch_alter_table("case_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_holds_issuance"), ["issuance"], unique=False)

    op.create_table(
        "case_decisions",
        sa.Column("id", _AUTO_ID, nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("admin", sa.String(length=120), nullable=False),
        sa.Column("resolution", sa.String(length=20), nullable=False),
        sa.Column("standing", sa.String(length=200), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("decide_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("envelope_hash", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["duplicate_cases.case_id"],
            name=op.f("fk_case_decisions_case_id_duplicate_cases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_decisions")),
        sa.UniqueConstraint("case_id", "region", "admin", name=op.f("uq_case_decisions_case_id")),
        sa.UniqueConstraint("envelope_hash", name=op.f("uq_case_decisions_envelope_hash")),
    )
    with op.batch_alter_table("case_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_decisions_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_findings",
        sa.Column("id", _AUTO_ID, nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("issuance", sa.String(length=300), nullable=False),
        sa.Column("serial_start", sa.BigInteger(), nullable=False),
        sa.Column("serial_end", sa.BigInteger(), nullable=False),
        sa.Column("holder_region", sa.String(length=6), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("grams", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["duplicate_cases.case_id"],
            name=op.f("fk_case_findings_case_id_duplicate_cases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_findings")),
    )
    with op.batch_alter_table("case_findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_findings_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_findings_case_id"))
    op.drop_table("case_findings")

    with op.batch_alter_table("case_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_decisions_case_id"))
    op.drop_table("case_decisions")

    with op.batch_alter_table("case_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_holds_issuance"))
    op.drop_table("case_holds")

    with op.batch_alter_table("duplicate_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duplicate_cases_second_subject"))
        batch_op.drop_index(batch_op.f("ix_duplicate_cases_first_subject"))
    op.drop_table("duplicate_cases")

    op.drop_table("external_projects")

    with op.batch_alter_table("identity_subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_subjects_grid_account"))
        batch_op.drop_index(batch_op.f("ix_identity_subjects_credit_code"))
        batch_op.drop_index(batch_op.f("ix_identity_subjects_cell"))
    op.drop_table("identity_subjects")
