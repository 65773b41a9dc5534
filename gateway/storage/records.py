"""The records store: every statement of a Publish batch — the locks it takes, the reads its
checks make, and the bulk write of what it accepted (envelopes, records, issuances, their first
unit blocks, the audit entries of the feed) — run in the caller's transaction.

The bulk rows go through ``gateway.storage.bulk`` (COPY on PostgreSQL, the driver's executemany
elsewhere); the statements the checks run for each issuance are built once, at import.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import String, any_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from yrd.interop.v1 import records_pb2

from gateway.storage.audit_log import AuditLog, audit_log
from gateway.storage.bulk import BulkInsert
from gateway.storage.models import (
    AuditEntryRow,
    EnvelopeRow,
    IssuanceRow,
    MethodologyRow,
    ProjectRow,
    RecordRow,
    RegionRow,
    SigningKeyRow,
    UnitBlockRow,
)
from gateway.storage.signers import advance_chain, next_envelope_id

PREFETCH_RANGES = 2000
"""Most stored serial ranges fetched at once for a batch's overlap checks (else: one probe each)."""
_CHUNK = 500
"""Most ids or names one prefetch statement asks for."""

_ISSUANCE_EXISTS = select(IssuanceRow.issuance_id).where(
    IssuanceRow.region == bindparam("region"), IssuanceRow.issuance_id == bindparam("issuance_id")
)
# A region's issued ranges never overlap each other, so the only stored range that can overlap
# [start, end] is the one starting last at or before end: one index probe.
_LAST_RANGE = (
    select(IssuanceRow.serial_start, IssuanceRow.serial_end, IssuanceRow.issuance_id)
    .where(IssuanceRow.region == bindparam("region"), IssuanceRow.serial_start <= bindparam("end"))
    .order_by(IssuanceRow.serial_start.desc())
    .limit(1)
)
# The stored ranges starting inside a batch's span (with _LAST_RANGE before it: all that meet it).
_RANGES_STARTING_IN = (
    select(IssuanceRow.serial_start, IssuanceRow.serial_end, IssuanceRow.issuance_id)
    .where(
        IssuanceRow.region == bindparam("region"),
        IssuanceRow.serial_start >= bindparam("low"),
        IssuanceRow.serial_start <= bindparam("high"),
    )
    .order_by(IssuanceRow.serial_start)
    .limit(PREFETCH_RANGES + 1)
)
# PostgreSQL: the ids as one array, so the primary key is probed for each; a list of hundreds
# of parameters plans (once prepared) as a scan comparing every row with every parameter.
_EXISTING_IDS_PG = select(IssuanceRow.issuance_id).where(
    IssuanceRow.region == bindparam("region"),
    IssuanceRow.issuance_id == any_(bindparam("ids", type_=postgresql.ARRAY(String))),
)
_MAX_RECORD_ID = select(func.max(RecordRow.id))
_PROJECT_COLUMNS = (
    ProjectRow.name,
    ProjectRow.region,
    ProjectRow.project_id,
    ProjectRow.methodology_id,
    ProjectRow.methodology_version,
    ProjectRow.crediting_start,
    ProjectRow.crediting_end,
    ProjectRow.status,
)
_METHODOLOGY_COLUMNS = (
    MethodologyRow.region,
    MethodologyRow.methodology_id,
    MethodologyRow.version,
    MethodologyRow.ref_id,
    MethodologyRow.ref_version,
    MethodologyRow.category,
    MethodologyRow.status,
    MethodologyRow.max_capacity_value,
    MethodologyRow.max_capacity_unit,
)

ProjectColumns = tuple[str, str, str, str, str, dt.date, dt.date | None, int]
"""A stored project as the checks read it: name, region, project id, methodology id and version,
crediting start and end, status."""
MethodologyColumns = tuple[str, str, str, str, str, int, int, str | None, str | None]
"""A stored methodology as the checks read it: region, methodology id, version, the adapter's
reference id and version, category, status, maximum capacity's value and unit."""
SerialRange = tuple[int, int, str]
"""A stored issuance's serials: start, end, issuance id."""


class EnvelopeColumns(NamedTuple):
    """An accepted envelope's columns, in the order the bulk insert writes them after its id."""

    envelope_hash: bytes
    key_id: str
    region: str
    sequence: int
    previous_hash: bytes
    content_type: str
    payload: bytes
    sign_time_seconds: int
    sign_time_nanos: int
    signature: bytes


@dataclass(slots=True)
class PlannedRecord:
    """A record accepted by the batch, waiting for the bulk write."""

    envelope: int
    """Its envelope's place among the batch's accepted envelopes."""
    index: int
    record: records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance
    kind: str
    version: str
    body: bytes
    """The serialised ``Record``, as stored."""
    is_current: bool = True
    record_id: int = 0
    """Its id, once written."""
    methodology_ref: tuple[str, str] = ("", "")
    """For a methodology: the reference id and version its region's adapter gives it."""


_INSERT_ENVELOPES = BulkInsert(EnvelopeRow, ("id", *EnvelopeColumns._fields, "received_at"))
_INSERT_RECORDS = BulkInsert(
    RecordRow,
    (
        "id",
        "name",
        "version",
        "kind",
        "region",
        "envelope_id",
        "envelope_record_index",
        "body",
        "is_current",
        "accepted_at",
    ),
)
_INSERT_ISSUANCES = BulkInsert(
    IssuanceRow,
    (
        "region",
        "issuance_id",
        "name",
        "record_id",
        "project_name",
        "vintage",
        "serial_start",
        "serial_end",
        "quantity_grams",
    ),
)
_INSERT_BLOCKS = BulkInsert(
    UnitBlockRow,
    (
        "origin_region",
        "issuance_name",
        "project_name",
        "vintage",
        "serial_start",
        "serial_end",
        "holder_region",
        "state",
        "created_at",
    ),
)
_INSERT_AUDIT = BulkInsert(
    AuditEntryRow,
    (
        "sequence",
        "kind",
        "subject",
        "actor_region",
        "actor",
        "detail",
        "previous_hash",
        "entry_hash",
        "created_at",
    ),
)


def _date(value: records_pb2.CalendarDate) -> dt.date:
    return dt.date(value.year, value.month, value.day)


class RecordsStore:
    """The statements of one Publish batch, on the session of its transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- locks ----------------------------------------------------------------------------------

    def lock_region(self, region: str) -> None:
        """Take the region's row lock: one batch of a region is checked and written at a time, in
        every gateway process (FOR UPDATE on PostgreSQL; SQLite has a single writer)."""
        s = self.session
        dialect = s.get_bind().dialect.name
        ins = postgresql.insert(RegionRow) if dialect == "postgresql" else sqlite.insert(RegionRow)
        s.execute(ins.values(code=region).on_conflict_do_nothing())
        s.execute(select(RegionRow).where(RegionRow.code == region).with_for_update())

    def lock_keys(self, key_ids: list[str]) -> list[SigningKeyRow]:
        """The signing keys among ``key_ids``, locked in key order (as every batch takes them)."""
        return list(
            self.session.execute(
                select(SigningKeyRow)
                .where(SigningKeyRow.key_id.in_(key_ids))
                .order_by(SigningKeyRow.key_id)
                .with_for_update()
            ).scalars()
        )

    def lock_key(self, key_id: str) -> SigningKeyRow | None:
        """One signing key, locked; None if there is none."""
        return self.session.execute(
            select(SigningKeyRow).where(SigningKeyRow.key_id == key_id).with_for_update()
        ).scalar_one_or_none()

    def audit_log(self) -> AuditLog:
        """The audit log, its head locked to the commit (the one appender, ``storage.audit_log``).
        Every publish writes its feed rows under it, so feed positions become visible in order
        (a subscriber's cursor never passes a position a slower transaction fills later), and
        envelope and record ids are allocated under it without a race."""
        return audit_log(self.session.connection())

    # -- reads for the checks -------------------------------------------------------------------

    def record_names_of(self, envelope_hash: bytes) -> list[str]:
        """The names of the records an accepted envelope carried, in their order in it (none
        when the envelope was a signed request other than a document)."""
        return list(
            self.session.execute(
                select(RecordRow.name)
                .join(EnvelopeRow, EnvelopeRow.id == RecordRow.envelope_id)
                .where(EnvelopeRow.envelope_hash == envelope_hash)
                .order_by(RecordRow.envelope_record_index, RecordRow.id)
            ).scalars()
        )

    def existing_issuance_ids(self, region: str, ids: list[str]) -> set[str]:
        """Those of ``ids`` that name an issuance of ``region`` already stored."""
        conn = self.session.connection()
        found: set[str] = set()
        for chunk in range(0, len(ids), _CHUNK):
            part = ids[chunk : chunk + _CHUNK]
            if conn.dialect.name == "postgresql":
                rows = conn.execute(_EXISTING_IDS_PG, {"region": region, "ids": part})
            else:
                rows = conn.execute(
                    select(IssuanceRow.issuance_id).where(
                        IssuanceRow.region == region, IssuanceRow.issuance_id.in_(part)
                    )
                )
            found.update(rows.scalars())
        return found

    def ranges_meeting(self, region: str, low: int, high: int) -> list[SerialRange] | None:
        """Every stored serial range of ``region`` that meets [low, high], by start; None when more
        than ``PREFETCH_RANGES`` start inside it (the checks then probe one issuance at a time)."""
        conn = self.session.connection()
        # Two index probes, not a scan of every range below the span: the ranges starting inside
        # it, and the one range that can start before it and still reach into it.
        rows: list[SerialRange] = [
            (a, b, iid)
            for a, b, iid in conn.execute(
                _RANGES_STARTING_IN, {"region": region, "low": low, "high": high}
            )
        ]
        if len(rows) > PREFETCH_RANGES:
            return None
        before = self.last_range(region, low - 1)
        if before is not None and before[1] >= low:
            rows.insert(0, before)
        return rows

    def last_range(self, region: str, end: int) -> SerialRange | None:
        """The stored range of ``region`` starting last at or before ``end``."""
        row = self.session.connection().execute(_LAST_RANGE, {"region": region, "end": end}).first()
        return (row[0], row[1], row[2]) if row is not None else None

    def issuance_exists(self, region: str, issuance_id: str) -> bool:
        found = self.session.connection().execute(
            _ISSUANCE_EXISTS, {"region": region, "issuance_id": issuance_id}
        )
        return found.first() is not None

    def projects(self, names: list[str]) -> list[ProjectColumns]:
        """The stored projects among ``names``."""
        conn = self.session.connection()
        found: list[ProjectColumns] = []
        for chunk in range(0, len(names), _CHUNK):
            part = names[chunk : chunk + _CHUNK]
            found.extend(conn.execute(select(*_PROJECT_COLUMNS).where(ProjectRow.name.in_(part))))
        return found

    def project(self, name: str) -> ProjectColumns | None:
        return (
            self.session.connection()
            .execute(select(*_PROJECT_COLUMNS).where(ProjectRow.name == name))
            .first()
        )

    def methodology_by_ref(
        self, region: str, ref_id: str, ref_version: str
    ) -> MethodologyColumns | None:
        """The methodology of ``region`` its adapter refers to as ``ref_id`` ``ref_version``."""
        return (
            self.session.connection()
            .execute(
                select(*_METHODOLOGY_COLUMNS).where(
                    MethodologyRow.region == region,
                    MethodologyRow.ref_id == ref_id,
                    MethodologyRow.ref_version == ref_version,
                )
            )
            .first()
        )

    # -- the write ------------------------------------------------------------------------------

    def stored_time(self, when: dt.datetime) -> Any:
        """``when`` as every timestamp column this store writes keeps it (converted once for a
        batch's rows, which share it)."""
        return _INSERT_RECORDS.stored(self.session.connection().dialect, "accepted_at", when)

    def write_envelopes(self, envelopes: list[EnvelopeColumns], stamp: Any) -> int:
        """Insert the envelopes under consecutive new ids (the audit head must be locked);
        returns the first id."""
        conn = self.session.connection()
        first = next_envelope_id(conn)
        _INSERT_ENVELOPES.run(conn, [(first + i, *e, stamp) for i, e in enumerate(envelopes)])
        return first

    def supersede(self, names: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Mark the current record of each (name, version) as no longer current; returns their
        ids by (name, version)."""
        if not names:
            return {}
        previous = {
            (name, version): rid
            for rid, name, version in self.session.execute(
                select(RecordRow.id, RecordRow.name, RecordRow.version).where(
                    RecordRow.is_current.is_(True), RecordRow.name.in_({n for n, _ in names})
                )
            )
            if (name, version) in names
        }
        if previous:
            self.session.execute(
                update(RecordRow)
                .where(RecordRow.id.in_(previous.values()))
                .values(is_current=False)
            )
        return previous

    def write_records(self, planned: list[PlannedRecord], first_envelope: int, stamp: Any) -> None:
        """Insert the records under consecutive new ids (set on each), with the methodology and
        project they define and, for an issuance, its row and first unit block held by its
        region (the audit head must be locked)."""
        conn = self.session.connection()
        first_record = (conn.execute(_MAX_RECORD_ID).scalar() or 0) + 1
        records, issuances, blocks = [], [], []
        for record_id, p in enumerate(planned, first_record):
            p.record_id = record_id
            record = p.record
            records.append(
                (
                    record_id,
                    record.name,
                    p.version,
                    p.kind,
                    record.region,
                    first_envelope + p.envelope,
                    p.index,
                    p.body,
                    p.is_current,
                    stamp,
                )
            )
            if isinstance(record, records_pb2.Issuance):
                start, end = record.serials.start, record.serials.end
                region, name, project = record.region, record.name, record.project
                issuances.append(
                    (
                        region,
                        record.issuance_id,
                        name,
                        record_id,
                        project,
                        record.vintage,
                        start,
                        end,
                        record.quantity_grams,
                    )
                )
                blocks.append(
                    (region, name, project, record.vintage, start, end, region, "active", stamp)
                )
        _INSERT_RECORDS.run(conn, records)
        for p in planned:
            if isinstance(p.record, records_pb2.Methodology):
                self._save_methodology(p.record, p.methodology_ref, p.record_id)
            elif isinstance(p.record, records_pb2.Project):
                self._save_project(p.record, p.record_id)
        _INSERT_ISSUANCES.run(conn, issuances)
        _INSERT_BLOCKS.run(conn, blocks)

    def write_audit(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert audit entries chained by ``AuditLog.extend`` (which moved the head), in bulk."""
        _INSERT_AUDIT.run(self.session.connection(), rows)

    def advance_chain(self, key_id: str, sequence: int, last_hash: bytes) -> None:
        """Record a signer's last accepted envelope (the one chain advance, ``storage.signers``)."""
        advance_chain(self.session.connection(), key_id, sequence, last_hash)

    def flush(self) -> None:
        """Send the pending row changes (methodologies, projects, heads) to the database."""
        self.session.flush()

    def _save_methodology(
        self, m: records_pb2.Methodology, ref: tuple[str, str], record_id: int
    ) -> None:
        cap = m.eligibility.max_capacity if m.eligibility.HasField("max_capacity") else None
        row = self.session.get(MethodologyRow, (m.region, m.methodology_id, m.version))
        if row is None:
            row = MethodologyRow(
                region=m.region, methodology_id=m.methodology_id, version=m.version
            )
            self.session.add(row)
        row.ref_id, row.ref_version, row.record_id = ref[0], ref[1], record_id
        row.category, row.status = m.category, m.status
        row.max_capacity_value = cap.value if cap else None
        row.max_capacity_unit = cap.unit if cap else None

    def _save_project(self, p: records_pb2.Project, record_id: int) -> None:
        row = self.session.get(ProjectRow, (p.region, p.project_id))
        if row is None:
            row = ProjectRow(region=p.region, project_id=p.project_id)
            self.session.add(row)
        row.name, row.record_id = p.name, record_id
        row.methodology_region = p.methodology.region
        row.methodology_id, row.methodology_version = (
            p.methodology.methodology_id,
            p.methodology.version,
        )
        row.crediting_start = _date(p.crediting_period.start)
        row.crediting_end = (
            _date(p.crediting_period.end) if p.crediting_period.HasField("end") else None
        )
        row.status = p.status
