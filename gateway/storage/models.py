"""Typed SQLAlchemy models. Schema changes go through Alembic (gateway/storage/migrations)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite drops the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware values")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention Alembic can rely on."""

    metadata = MetaData(naming_convention=NAMING)


class SigningKeyRow(Base):
    """A record-signing public key bound to a region and an owner within it."""

    __tablename__ = "signing_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    region: Mapped[str] = mapped_column(String(6), index=True)
    owner: Mapped[str] = mapped_column(String(80))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    registered_by: Mapped[str] = mapped_column(String(120))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Sequence of the last envelope accepted from this key: the signer's chain head."""
    last_hash: Mapped[bytes] = mapped_column(LargeBinary(32), default=bytes(32))
    """Hash of that envelope (zeros before the first)."""


class AuditHeadRow(Base):
    """The single row holding the audit log's head; locked to serialise appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditEntryRow(Base):
    """One entry of the append-only hash-chained audit log."""

    __tablename__ = "audit_entries"

    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(80), index=True)
    subject: Mapped[str] = mapped_column(String(300), index=True)
    actor_region: Mapped[str] = mapped_column(String(6))
    actor: Mapped[str] = mapped_column(String(120))
    detail: Mapped[bytes] = mapped_column(LargeBinary)
    previous_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RegionRow(Base):
    """A region the gateway has seen; its row is locked to serialise a region's issuances."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)


class EnvelopeRow(Base):
    """A signed envelope exactly as received (payload bytes untouched)."""

    __tablename__ = "envelopes"
    __table_args__ = (UniqueConstraint("key_id", "sequence"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    envelope_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("signing_keys.key_id"))
    region: Mapped[str] = mapped_column(String(6), index=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    previous_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    content_type: Mapped[str] = mapped_column(String(120))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    sign_time_seconds: Mapped[int] = mapped_column(BigInteger)
    sign_time_nanos: Mapped[int] = mapped_column(Integer)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RecordRow(Base):
    """One accepted record revision; its id is the feed position (the subscriber's cursor)."""

    __tablename__ = "records"
    __table_args__ = (Index("ix_records_current", "is_current", "kind", "region", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), index=True)
    version: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    region: Mapped[str] = mapped_column(String(6))
    envelope_id: Mapped[int] = mapped_column(ForeignKey("envelopes.id"), index=True)
    envelope_record_index: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    """The serialised yrd.interop.v1.Record (common schema)."""
    is_current: Mapped[bool] = mapped_column(Boolean)
    accepted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class MethodologyRow(Base):
    """The current revision of each methodology version, for cross-record checks."""

    __tablename__ = "methodologies"
    __table_args__ = (UniqueConstraint("region", "ref_id", "ref_version"),)

    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    methodology_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    ref_id: Mapped[str] = mapped_column(String(80))
    """How the region's projects name it (adapter.methodology_ref)."""
    ref_version: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"))
    category: Mapped[int] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(Integer)
    max_capacity_value: Mapped[str | None] = mapped_column(String(40), nullable=True)
    max_capacity_unit: Mapped[str | None] = mapped_column(String(20), nullable=True)


class ProjectRow(Base):
    """The current revision of each project, for cross-record checks."""

    __tablename__ = "projects"

    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"))
    methodology_region: Mapped[str] = mapped_column(String(6))
    methodology_id: Mapped[str] = mapped_column(String(80))
    methodology_version: Mapped[str] = mapped_column(String(40))
    crediting_start: Mapped[dt.date] = mapped_column(Date)
    crediting_end: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    status: Mapped[int] = mapped_column(Integer)


class IssuanceRow(Base):
    """Every issuance with its serial block (immutable once accepted)."""

    __tablename__ = "issuances"
    __table_args__ = (Index("ix_issuances_serials", "region", "serial_start", "serial_end"),)

    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    issuance_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"))
    project_name: Mapped[str] = mapped_column(String(300), index=True)
    vintage: Mapped[int] = mapped_column(Integer)
    serial_start: Mapped[int] = mapped_column(BigInteger)
    serial_end: Mapped[int] = mapped_column(BigInteger)
    quantity_grams: Mapped[int] = mapped_column(BigInteger)


class UnitBlockRow(Base):
    """A block of units in the ledger: who holds which serials, in which state."""

    __tablename__ = "unit_blocks"
    __table_args__ = (
        Index("ix_unit_blocks_holder", "holder_region", "state"),
        Index("ix_unit_blocks_serials", "origin_region", "serial_start"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    origin_region: Mapped[str] = mapped_column(String(6))
    issuance_name: Mapped[str] = mapped_column(String(300), index=True)
    project_name: Mapped[str] = mapped_column(String(300))
    vintage: Mapped[int] = mapped_column(Integer)
    serial_start: Mapped[int] = mapped_column(BigInteger)
    serial_end: Mapped[int] = mapped_column(BigInteger)
    holder_region: Mapped[str] = mapped_column(String(6))
    state: Mapped[str] = mapped_column(String(20))
    reserved_by: Mapped[str | None] = mapped_column(String(300), nullable=True, index=True)
    retired_by: Mapped[str | None] = mapped_column(String(300), nullable=True, index=True)
    """The retirement that consumed the block (retired blocks never move again)."""
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("unit_blocks.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class TransferRow(Base):
    """A cross-region transfer: two-phase, resolved exactly once."""

    __tablename__ = "transfers"
    __table_args__ = (
        UniqueConstraint("source_region", "transfer_id"),
        Index("ix_transfers_state_expires", "state", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    transfer_id: Mapped[str] = mapped_column(String(120))
    source_region: Mapped[str] = mapped_column(String(6))
    destination_region: Mapped[str] = mapped_column(String(6), index=True)
    purpose: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    quantity_grams: Mapped[int] = mapped_column(BigInteger)
    request_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    """SHA-256 of the proposal's payload: the same id must come with byte-identical requests."""
    proposal_envelope: Mapped[bytes] = mapped_column(LargeBinary(32))
    answer_envelope: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    proposed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class RetirementRow(Base):
    """A retirement: units used for good (ETS offset, neutrality, charity)."""

    __tablename__ = "retirements"
    __table_args__ = (
        UniqueConstraint("holder_region", "retirement_id"),
        Index("ix_retirements_entity_year", "holder_region", "beneficiary", "compliance_year"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    retirement_id: Mapped[str] = mapped_column(String(120))
    holder_region: Mapped[str] = mapped_column(String(6))
    purpose: Mapped[int] = mapped_column(Integer)
    beneficiary: Mapped[str] = mapped_column(String(300))
    compliance_year: Mapped[int] = mapped_column(Integer)
    declared_obligation_grams: Mapped[int] = mapped_column(BigInteger)
    quantity_grams: Mapped[int] = mapped_column(BigInteger)
    outside_grams: Mapped[int] = mapped_column(BigInteger)
    """Of the quantity, grams issued outside the holder region (for the outside-region cap)."""
    credited_grams: Mapped[int] = mapped_column(BigInteger)
    ratio_numerator: Mapped[int] = mapped_column(BigInteger)
    ratio_denominator: Mapped[int] = mapped_column(BigInteger)
    request_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    envelope_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    retired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RecognitionRow(Base):
    """A recognition as the domain package defines it (JSON), indexed for the transfer check."""

    __tablename__ = "recognitions"
    __table_args__ = (Index("ix_recognitions_subject", "subject_name", "recognising_region"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    subject_name: Mapped[str] = mapped_column(String(300))
    requesting_region: Mapped[str] = mapped_column(String(6))
    recognising_region: Mapped[str] = mapped_column(String(6), index=True)
    state: Mapped[str] = mapped_column(String(20))
    group_id: Mapped[str] = mapped_column(String(200), index=True)
    body: Mapped[str] = mapped_column(Text)
    """mutual_recognition.model.Recognition as JSON (gateway.recognition_codec)."""
    assessment: Mapped[bytes] = mapped_column(LargeBinary)
    """The serialised yrd.interop.v1.EquivalenceAssessment attached at request time."""
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class HoldingsSnapshotRow(Base):
    """A registry's holdings snapshot and, taken in the same transaction, the ledger's view."""

    __tablename__ = "holdings_snapshots"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    region: Mapped[str] = mapped_column(String(6), index=True)
    snapshot_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    """The time the registry says its snapshot describes."""
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    """When the gateway took its own side (under the audit-head lock)."""
    audit_sequence: Mapped[int] = mapped_column(BigInteger)
    """Size of the audit log when the ledger side was taken: the end of the transfer window."""
    submitted_by: Mapped[str] = mapped_column(String(120))
    block_count: Mapped[int] = mapped_column(BigInteger)
    quantity_grams: Mapped[int] = mapped_column(BigInteger)


class SnapshotBlockRow(Base):
    """Staging rows: one block of a snapshot, on the registry's side or the ledger's, that the
    other side does not hold identically (snapshots stored before 0008 have every block)."""

    __tablename__ = "snapshot_blocks"
    __table_args__ = (
        Index("ix_snapshot_blocks_lookup", "snapshot_id", "side", "origin_region", "serial_start"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    """Its ``holdings_snapshots`` row's id; no foreign key, which bulk staging cannot afford
    (the store writes both in one transaction)."""
    side: Mapped[str] = mapped_column(String(8))
    """``registry`` (what the registry claims) or ``ledger`` (what the ledger gives it)."""
    origin_region: Mapped[str] = mapped_column(String(6))
    serial_start: Mapped[int] = mapped_column(BigInteger)
    serial_end: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(20))


class SnapshotTotalRow(Base):
    """Grams per origin and state on each side of a snapshot, as it was staged (stage 1 of a
    run compares them; ``snapshot_blocks`` keeps only the blocks the sides do not share)."""

    __tablename__ = "snapshot_totals"

    snapshot_id: Mapped[int] = mapped_column(ForeignKey("holdings_snapshots.id"), primary_key=True)
    origin_region: Mapped[str] = mapped_column(String(6), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), primary_key=True)
    registry_grams: Mapped[int] = mapped_column(BigInteger)
    ledger_grams: Mapped[int] = mapped_column(BigInteger)


class SnapshotTransferRow(Base):
    """Staging rows: a transfer the registry believes completed since its previous snapshot."""

    __tablename__ = "snapshot_transfers"

    snapshot_id: Mapped[int] = mapped_column(ForeignKey("holdings_snapshots.id"), primary_key=True)
    transfer_name: Mapped[str] = mapped_column(String(300), primary_key=True)


class ReconciliationReportRow(Base):
    """A signed reconciliation report (the serialised yrd.interop.v1.ReconciliationReport)."""

    __tablename__ = "reconciliation_reports"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    region: Mapped[str] = mapped_column(String(6), index=True)
    snapshot_id: Mapped[int | None] = mapped_column(
        ForeignKey("holdings_snapshots.id"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(40))
    finished_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    body: Mapped[bytes] = mapped_column(LargeBinary)


class JobRunRow(Base):
    """One run of a scheduled job: the row is the claim, so each scheduled time runs once."""

    __tablename__ = "job_runs"

    job_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    scheduled_for: Mapped[dt.datetime] = mapped_column(UTCDateTime(), primary_key=True)
    claimed_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(40), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class SchedulerJobRow(Base):
    """APScheduler 3's SQLAlchemyJobStore table, created here so that Alembic owns the schema
    (the job store's own ``create(checkfirst=True)`` then finds it and does nothing)."""

    __tablename__ = "apscheduler_jobs"

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True, nullable=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)


class SubscriberPositionRow(Base):
    """How far a region's registry has read the feed: what it asked for, or reached since."""

    __tablename__ = "subscriber_positions"

    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    """The later of the cursor last requested and the feed position the stream reached."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class IdentitySubjectRow(Base):
    """A registration the duplicate detection matches: a region's project or an external list's
    project, with its identity keys normalised for matching (WGS-84, grid cell, watts)."""

    __tablename__ = "identity_subjects"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    """``regions/{region}/projects/{id}`` or ``schemes/{scheme}/projects/{id}``."""
    kind: Mapped[str] = mapped_column(String(10))
    """``project`` (a region's) or ``external`` (an imported list's)."""
    region: Mapped[str | None] = mapped_column(String(6), nullable=True)
    scheme: Mapped[str | None] = mapped_column(String(20), nullable=True)
    credit_code: Mapped[str | None] = mapped_column(String(18), nullable=True, index=True)
    grid_account: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    lat_e7: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """WGS-84 latitude in degrees × 10⁷, rounded (None without a site)."""
    lon_e7: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cell: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    """Grid cell of the WGS-84 site (mutual_recognition.duplicates.cell_of)."""
    category: Mapped[str] = mapped_column(String(40))
    """ScenarioCategory name, e.g. ``SCENARIO_CATEGORY_DISTRIBUTED_PV``."""
    capacity_w: Mapped[str | None] = mapped_column(String(40), nullable=True)
    """Installed capacity in watts as an exact decimal string (None when not given)."""
    registered_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    credit_start: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    credit_end: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    title: Mapped[str] = mapped_column(Unicode(300))
    owner: Mapped[str] = mapped_column(Unicode(300))
    """Owner name ("" for an external project)."""


class ExternalProjectRow(Base):
    """A project of another scheme (CCER, an ETS) exactly as an operator's list gave it."""

    __tablename__ = "external_projects"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    """``schemes/{scheme}/projects/{scheme_project_id}``."""
    scheme: Mapped[str] = mapped_column(String(20))
    scheme_project_id: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(Unicode(300))
    owner_credit_code: Mapped[str | None] = mapped_column(String(18), nullable=True)
    latitude: Mapped[str | None] = mapped_column(String(20), nullable=True)
    longitude: Mapped[str | None] = mapped_column(String(20), nullable=True)
    datum: Mapped[str | None] = mapped_column(String(10), nullable=True)
    """As listed: ``WGS84``, ``GCJ02`` or ``BD09``."""
    grid_account: Mapped[str | None] = mapped_column(String(20), nullable=True)
    category: Mapped[str] = mapped_column(String(40))
    capacity_value: Mapped[str | None] = mapped_column(String(40), nullable=True)
    capacity_unit: Mapped[str | None] = mapped_column(String(10), nullable=True)
    registration_date: Mapped[dt.date] = mapped_column(Date)
    credit_start: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    credit_end: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    import_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    imported_by: Mapped[str] = mapped_column(String(120))
    list_digest: Mapped[str] = mapped_column(String(64))
    """SHA-256 (hex) of the imported list's rows."""


class DuplicateCaseRow(Base):
    """A suspected double registration of one physical project: one per pair of subjects."""

    __tablename__ = "duplicate_cases"
    __table_args__ = (UniqueConstraint("first_subject", "second_subject"),)

    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """``dc-`` + 12 hex of sha256(first|second)."""
    state: Mapped[str] = mapped_column(String(20))
    """``OPEN``, ``DISTINCT`` or ``DUPLICATE``."""
    rule: Mapped[str] = mapped_column(String(40))
    """DuplicateRule name."""
    strength: Mapped[str] = mapped_column(String(40))
    """MatchStrength name."""
    first_subject: Mapped[str] = mapped_column(String(200), index=True)
    """The earlier registration."""
    second_subject: Mapped[str] = mapped_column(String(200), index=True)
    evidence: Mapped[str] = mapped_column(Text)
    """The match evidence as JSON (mutual_recognition.duplicates.Evidence)."""
    deciding_regions: Mapped[str] = mapped_column(Text)
    """Comma-separated regions whose administrators decide."""
    required_approvals: Mapped[int] = mapped_column(Integer)
    resolution: Mapped[str | None] = mapped_column(String(20), nullable=True)
    standing: Mapped[str | None] = mapped_column(String(200), nullable=True)
    open_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    resolve_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CaseHoldRow(Base):
    """An issuance a duplicate case holds or held, and what became of it."""

    __tablename__ = "case_holds"

    case_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("duplicate_cases.case_id"), primary_key=True
    )
    issuance: Mapped[str] = mapped_column(String(300), primary_key=True, index=True)
    """Resource name of the issuance."""
    outcome: Mapped[str] = mapped_column(String(20))
    """``held`` while the case is open, then ``released`` or ``cancelled``."""


class CaseDecisionRow(Base):
    """One administrator's signed decision on a duplicate case."""

    __tablename__ = "case_decisions"
    __table_args__ = (UniqueConstraint("case_id", "region", "admin"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("duplicate_cases.case_id"), index=True
    )
    region: Mapped[str] = mapped_column(String(6))
    admin: Mapped[str] = mapped_column(String(120))
    resolution: Mapped[str] = mapped_column(String(20))
    """``DISTINCT`` or ``DUPLICATE``."""
    standing: Mapped[str | None] = mapped_column(String(200), nullable=True)
    comment: Mapped[str] = mapped_column(Text)
    decide_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    envelope_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    """SHA-256 of the signed envelope (kept in ``envelopes``), as recognition decisions keep it."""


class CaseFindingRow(Base):
    """Units of an issuance a DUPLICATE resolution cancelled that had already moved or retired."""

    __tablename__ = "case_findings"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("duplicate_cases.case_id"), index=True
    )
    issuance: Mapped[str] = mapped_column(String(300))
    serial_start: Mapped[int] = mapped_column(BigInteger)
    serial_end: Mapped[int] = mapped_column(BigInteger)
    holder_region: Mapped[str] = mapped_column(String(6))
    state: Mapped[str] = mapped_column(String(20))
    """Stored block state name: ``retired`` or ``cancelled``."""
    grams: Mapped[int] = mapped_column(BigInteger)
