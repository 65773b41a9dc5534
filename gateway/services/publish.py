"""One Publish batch: every envelope is checked in order against the database and against what
the batch itself has accepted so far; the accepted ones are then written with bulk inserts in one
transaction. A refused envelope adds nothing, so it changes nothing.

Checks for each envelope, in order: the key belongs to the caller's region, signs records and is
not revoked; the signature verifies over the bytes as received; the sequence is the next one and
chains to the signer's last envelope (replay, gap and fork refused); the region's adapter maps the
payload; cross-record checks hold (methodology known, capacity within its maximum, project known
and registered, monitoring inside crediting, issuance id new, serials not overlapping).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import timestamp_pb2
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from yrd.interop.v1 import envelope_pb2, records_pb2

from adapters.base import CommonRecord
from adapters.errors import NativeFormatError, UnknownContentTypeError
from adapters.quantities import capacity_within
from adapters.registry import AdapterRegistry
from gateway import errors
from gateway.audit import EntryFields, canonical_json, entry_hash
from gateway.security.identity import Identity
from gateway.security.signing import EnvelopeFields, envelope_hash, signing_input, verify
from gateway.storage.models import (
    AuditEntryRow,
    AuditHeadRow,
    EnvelopeRow,
    IssuanceRow,
    MethodologyRow,
    ProjectRow,
    RecordRow,
    RegionRow,
    SigningKeyRow,
    UnitBlockRow,
)

_PV = records_pb2.SCENARIO_CATEGORY_DISTRIBUTED_PV
_PREFETCH_RANGES = 2000
"""Most stored serial ranges fetched at once for a batch's overlap checks (else: one probe each)."""
# Statements built once: they run for every issuance of every batch.
_ISSUANCE_EXISTS = select(IssuanceRow.issuance_id).where(
    IssuanceRow.region == bindparam("region"), IssuanceRow.issuance_id == bindparam("issuance_id")
)
# A region's issued ranges never overlap each other, so the only stored range that can overlap
# [start, end] is the one starting last at or before end: one index probe.
_LAST_RANGE = (
    select(IssuanceRow.issuance_id, IssuanceRow.serial_end)
    .where(IssuanceRow.region == bindparam("region"), IssuanceRow.serial_start <= bindparam("end"))
    .order_by(IssuanceRow.serial_start.desc())
    .limit(1)
)
_REGISTERED = records_pb2.PROJECT_STATUS_REGISTERED


def _date(value: records_pb2.CalendarDate) -> dt.date:
    return dt.date(value.year, value.month, value.day)


def envelope_fields(env: envelope_pb2.SignedEnvelope) -> EnvelopeFields:
    """The signed fields of an envelope, after checking their shapes."""
    problems: dict[str, str] = {}
    if not env.content_type:
        problems["content_type"] = "required"
    if len(env.key_id) != 32:
        problems["key_id"] = "must be 32 hex characters"
    if env.sequence < 1:
        problems["sequence"] = "must be 1 or more"
    if len(env.previous_hash) != 32:
        problems["previous_hash"] = "must be 32 bytes"
    if len(env.signature) != 64:
        problems["signature"] = "must be 64 bytes"
    if not env.HasField("sign_time"):
        problems["sign_time"] = "required"
    elif not 0 <= env.sign_time.nanos < 1_000_000_000:
        problems["sign_time"] = "nanos out of range"
    if not env.payload:
        problems["payload"] = "required"
    if problems:
        raise errors.EnvelopeMalformed("malformed envelope", field_errors=problems)
    return EnvelopeFields(
        content_type=env.content_type,
        payload=env.payload,
        key_id=env.key_id,
        sequence=env.sequence,
        previous_hash=env.previous_hash,
        sign_time_seconds=env.sign_time.seconds,
        sign_time_nanos=env.sign_time.nanos,
    )


def check_signer(
    key: SigningKeyRow | None, fields: EnvelopeFields, region: str, owner: str = "registry"
) -> None:
    """The key exists, belongs to the caller's region and owner (the registry, or that
    administrator), and is not revoked."""
    meta = {"key_id": fields.key_id}
    if key is None:
        raise errors.SigningKeyUnknown(f"no signing key {fields.key_id}", metadata=meta)
    if key.region != region:
        raise errors.SigningKeyWrongRegion(
            f"key {key.key_id} signs for {key.region}, the caller is {region}",
            metadata={**meta, "key_region": key.region, "caller_region": region},
        )
    if key.owner != owner:
        raise errors.SigningKeyNotForRecords(
            f"key {key.key_id} belongs to {key.owner}, not to the caller ({owner})",
            metadata=meta,
        )
    if key.revoked_at is not None:
        raise errors.SigningKeyRevoked(f"key {key.key_id} was revoked", metadata=meta)


def check_chain(
    session: Session,
    key_id: str,
    last_sequence: int,
    last_hash: bytes,
    fields: EnvelopeFields,
    digest: bytes,
    earlier: bytes | None = None,
) -> None:
    """The envelope is exactly the next of its signer's chain (replay, gap and fork refused).

    ``earlier`` is the hash of an envelope with the same sequence accepted earlier in the same
    batch, when there is one.
    """
    meta = {
        "key_id": key_id,
        "expected_sequence": str(last_sequence + 1),
        "sequence": str(fields.sequence),
    }
    if fields.sequence <= last_sequence:
        stored = (
            earlier
            or session.execute(
                select(EnvelopeRow.envelope_hash).where(
                    EnvelopeRow.key_id == key_id, EnvelopeRow.sequence == fields.sequence
                )
            ).scalar_one_or_none()
        )
        if stored == digest:
            raise errors.EnvelopeReplayed(
                f"envelope {fields.sequence} of key {key_id} was accepted before", metadata=meta
            )
        raise errors.SequenceReused(
            f"sequence {fields.sequence} of key {key_id} is taken by another envelope",
            metadata=meta,
        )
    if fields.sequence > last_sequence + 1:
        raise errors.SequenceGap(
            f"expected sequence {last_sequence + 1}, got {fields.sequence}", metadata=meta
        )
    if fields.previous_hash != last_hash:
        raise errors.PreviousHashMismatch(
            "previous_hash is not the hash of the signer's last accepted envelope",
            metadata={**meta, "expected_previous_hash": last_hash.hex()},
        )


def native_error(exc: NativeFormatError) -> errors.NativeRecordInvalid:
    """The domain error for a document an adapter rejected, every issue kept."""
    fields: dict[str, str] = {}
    for issue in exc.issues:
        key = (
            f"row {issue.row}, {issue.column or issue.field}"
            if issue.row is not None
            else issue.field
        )
        fields[key] = f"{fields[key]}; {issue.reason}" if key in fields else issue.reason
    return errors.NativeRecordInvalid(
        str(exc), metadata={"region": exc.region}, field_errors=fields
    )


def lock_region(session: Session, region: str) -> None:
    """Take the region's row lock: one batch of a region is checked and written at a time, in every
    gateway process (FOR UPDATE on PostgreSQL; SQLite has a single writer)."""
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert(RegionRow) if dialect == "postgresql" else sqlite.insert(RegionRow)
    session.execute(ins.values(code=region).on_conflict_do_nothing())
    session.execute(select(RegionRow).where(RegionRow.code == region).with_for_update())


@dataclass
class _Methodology:
    key: tuple[str, str, str]
    ref: tuple[str, str]
    category: int
    status: int
    max_capacity: records_pb2.ExactQuantity | None


@dataclass
class _Project:
    region: str
    project_id: str
    methodology: tuple[str, str]
    crediting_start: dt.date
    crediting_end: dt.date | None
    status: int


@dataclass
class _Planned:
    """A record accepted by the batch, waiting for the bulk write."""

    envelope: int
    index: int
    record: CommonRecord
    kind: str
    version: str
    body: bytes
    is_current: bool = True
    record_id: int = 0


@dataclass
class _Head:
    sequence: int
    hash: bytes


@dataclass
class Prepared:
    """An envelope after the work that needs no database: shape, hash, and the adapter's parse.

    Errors found here are reported at the step the issue orders them (a parse error only after
    the key, signature and chain checks have passed)."""

    env: envelope_pb2.SignedEnvelope
    fields: EnvelopeFields | None = None
    signed: bytes = b""
    digest: bytes = b""
    error: errors.DomainError | None = None
    records: list[CommonRecord] = field(default_factory=list)
    parse_error: errors.DomainError | None = None


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


@dataclass
class PublishBatch:
    """Checks a batch's envelopes one by one, then writes the accepted ones together."""

    session: Session
    adapters: AdapterRegistry
    caller: Identity
    region: str
    now: dt.datetime
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    planned: list[_Planned] = field(default_factory=list)
    _keys: dict[str, SigningKeyRow | None] = field(default_factory=dict)
    _heads: dict[str, _Head] = field(default_factory=dict)
    _methodologies: dict[tuple[str, str, str], _Methodology | None] = field(default_factory=dict)
    _by_ref: dict[tuple[str, str, str], _Methodology | None] = field(default_factory=dict)
    _projects: dict[str, _Project | None] = field(default_factory=dict)
    _issuance_ids: set[str] = field(default_factory=set)
    _ranges: list[tuple[int, int, str]] = field(default_factory=list)
    _current: dict[tuple[str, str], _Planned] = field(default_factory=dict)
    _existing_ids: set[str] = field(default_factory=set)
    _prefetched_ids: set[str] = field(default_factory=set)
    _db_ranges: list[tuple[int, int, str]] = field(default_factory=list)
    _db_span: tuple[int, int] = (1, 0)

    def __post_init__(self) -> None:
        lock_region(self.session, self.region)
        accepted = timestamp_pb2.Timestamp()
        accepted.FromDatetime(self.now)
        self._accepted_time = accepted

    # -- before the checks: parse and prefetch ------------------------------------------------

    def prepare(self, envelopes: Sequence[envelope_pb2.SignedEnvelope]) -> list[Prepared]:
        """Hash and parse every envelope, then fetch in a few queries what the checks will ask."""
        prepared = [self._prepare(env) for env in envelopes]
        self._prefetch([r for p in prepared for r in p.records])
        return prepared

    def _prepare(self, env: envelope_pb2.SignedEnvelope) -> Prepared:
        p = Prepared(env)
        try:
            p.fields = envelope_fields(env)
        except errors.DomainError as exc:
            p.error = exc
            return p
        p.signed = signing_input(p.fields)
        p.digest = envelope_hash(p.fields, env.signature, signed=p.signed)
        try:
            adapter = self.adapters.for_content_type(p.fields.content_type)
        except UnknownContentTypeError as exc:
            p.parse_error = errors.ContentTypeUnknown(
                str(exc), field_errors={"content_type": "no adapter reads it"}
            )
            return p
        if adapter.region != self.region:
            p.parse_error = errors.ContentTypeWrongRegion(
                f"{p.fields.content_type} is the {adapter.region} format; "
                f"{self.region} publishes its own",
                metadata={"content_type_region": adapter.region, "caller_region": self.region},
            )
            return p
        try:
            p.records = adapter.to_common(p.fields.content_type, p.fields.payload)
        except NativeFormatError as exc:
            p.parse_error = native_error(exc)
        return p

    def _prefetch(self, records: list[CommonRecord]) -> None:
        issuances = [r for r in records if isinstance(r, records_pb2.Issuance)]
        if not issuances:
            return
        conn = self.session.connection()
        ids = sorted({i.issuance_id for i in issuances})
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            found = conn.execute(
                select(IssuanceRow.issuance_id).where(
                    IssuanceRow.region == self.region, IssuanceRow.issuance_id.in_(part)
                )
            )
            self._existing_ids.update(found.scalars())
        self._prefetched_ids.update(ids)
        low = min(i.serials.start for i in issuances)
        high = max(i.serials.end for i in issuances)
        rows = conn.execute(
            select(IssuanceRow.serial_start, IssuanceRow.serial_end, IssuanceRow.issuance_id)
            .where(
                IssuanceRow.region == self.region,
                IssuanceRow.serial_start <= high,
                IssuanceRow.serial_end >= low,
            )
            .order_by(IssuanceRow.serial_start)
            .limit(_PREFETCH_RANGES + 1)
        ).all()
        if len(rows) <= _PREFETCH_RANGES:
            # Every stored range that can meet the batch's serials, so no per-issuance probe.
            self._db_ranges = [(a, b, iid) for a, b, iid in rows]
            self._db_span = (low, high)
        names = sorted({i.project for i in issuances} - self._projects.keys())
        for chunk in range(0, len(names), 500):
            part = names[chunk : chunk + 500]
            for row in self.session.execute(
                select(ProjectRow).where(ProjectRow.name.in_(part))
            ).scalars():
                self._projects[row.name] = _project_of(row)
            for name in part:
                self._projects.setdefault(name, None)

    # -- per envelope -----------------------------------------------------------------------------

    def accept(self, p: Prepared) -> tuple[str, ...]:
        """Check one prepared envelope; on success plan its rows and return its record names."""
        fields, env, digest = p.fields, p.env, p.digest
        assert fields is not None
        key = self._key(fields.key_id)
        check_signer(key, fields, self.region)
        assert key is not None
        if not verify(key.public_key, fields, env.signature, signed=p.signed):
            raise errors.SignatureInvalid(
                "the signature does not verify over the envelope as received",
                metadata={"key_id": key.key_id},
            )
        self._check_chain(key, fields, digest)
        if p.parse_error is not None:
            raise p.parse_error
        records = p.records
        # Check every record against the database and the batch so far, without changing either,
        # so a refusal of any record of the envelope leaves no trace.
        overlay = _Overlay(self)
        for record in records:
            overlay.check(record)
        number = len(self.envelopes)
        self.envelopes.append(
            {
                "envelope_hash": digest,
                "key_id": key.key_id,
                "region": self.region,
                "sequence": fields.sequence,
                "previous_hash": fields.previous_hash,
                "content_type": fields.content_type,
                "payload": fields.payload,
                "sign_time_seconds": fields.sign_time_seconds,
                "sign_time_nanos": fields.sign_time_nanos,
                "signature": env.signature,
                "received_at": self.now,
            }
        )
        overlay.commit()
        for index, record in enumerate(records):
            self._plan(number, index, record)
        self._heads[key.key_id] = _Head(fields.sequence, digest)
        return tuple(r.name for r in records)

    def _key(self, key_id: str) -> SigningKeyRow | None:
        if key_id not in self._keys:
            row = self.session.execute(
                select(SigningKeyRow).where(SigningKeyRow.key_id == key_id).with_for_update()
            ).scalar_one_or_none()
            self._keys[key_id] = row
            if row is not None:
                self._heads[key_id] = _Head(row.last_sequence, row.last_hash)
        return self._keys[key_id]

    def _check_chain(self, key: SigningKeyRow, fields: EnvelopeFields, digest: bytes) -> None:
        head = self._heads[key.key_id]
        earlier = next(
            (
                e["envelope_hash"]
                for e in self.envelopes
                if e["key_id"] == key.key_id and e["sequence"] == fields.sequence
            ),
            None,
        )
        check_chain(self.session, key.key_id, head.sequence, head.hash, fields, digest, earlier)

    def _plan(self, envelope: int, index: int, record: CommonRecord) -> None:
        wrapper = records_pb2.Record(accepted_time=self._accepted_time)
        if isinstance(record, records_pb2.Methodology):
            kind, version = "methodology", record.version
            wrapper.methodology.CopyFrom(record)
        elif isinstance(record, records_pb2.Project):
            kind, version = "project", ""
            wrapper.project.CopyFrom(record)
        else:
            kind, version = "issuance", ""
            wrapper.issuance.CopyFrom(record)
        wrapper.envelope_hash = self.envelopes[envelope]["envelope_hash"].hex()
        planned = _Planned(envelope, index, record, kind, version, wrapper.SerializeToString())
        earlier = self._current.get((record.name, version))
        if earlier is not None:
            earlier.is_current = False
        self._current[(record.name, version)] = planned
        self.planned.append(planned)

    # -- lookups shared by the checks -----------------------------------------------------------

    def methodology_by_ref(self, region: str, ref_id: str, ref_version: str) -> _Methodology | None:
        key = (region, ref_id, ref_version)
        if key not in self._by_ref:
            row = self.session.execute(
                select(MethodologyRow).where(
                    MethodologyRow.region == region,
                    MethodologyRow.ref_id == ref_id,
                    MethodologyRow.ref_version == ref_version,
                )
            ).scalar_one_or_none()
            self._by_ref[key] = _methodology_of(row) if row else None
        return self._by_ref[key]

    def project(self, name: str) -> _Project | None:
        if name not in self._projects:
            row = self.session.execute(
                select(ProjectRow).where(ProjectRow.name == name)
            ).scalar_one_or_none()
            self._projects[name] = (
                _Project(
                    row.region,
                    row.project_id,
                    (row.methodology_id, row.methodology_version),
                    row.crediting_start,
                    row.crediting_end,
                    row.status,
                )
                if row
                else None
            )
        return self._projects[name]

    def issuance_exists(self, region: str, issuance_id: str) -> bool:
        if issuance_id in self._issuance_ids:
            return True
        if region == self.region and issuance_id in self._prefetched_ids:
            return issuance_id in self._existing_ids
        found = self.session.connection().execute(
            _ISSUANCE_EXISTS, {"region": region, "issuance_id": issuance_id}
        )
        return found.first() is not None

    def overlapping(self, region: str, start: int, end: int) -> str | None:
        """The id of an issuance whose serials overlap [start, end], if any."""
        for ranges in (self._ranges, self._db_ranges):
            i = bisect.bisect_right(ranges, (end, 2**63, "")) - 1
            if i >= 0 and ranges[i][1] >= start:
                return ranges[i][2]
        if region == self.region and self._db_span[0] <= start and end <= self._db_span[1]:
            return None  # the prefetch held every stored range that could meet [start, end]
        clash = (
            self.session.connection().execute(_LAST_RANGE, {"region": region, "end": end}).first()
        )
        return clash[0] if clash is not None and clash[1] >= start else None

    # -- the write ------------------------------------------------------------------------------

    def write(self) -> None:
        """Insert everything the batch accepted, in bulk, inside the caller's transaction."""
        if not self.envelopes:
            return
        s = self.session
        # The audit head is locked first and held to the commit: every publish writes its feed
        # rows under it, so feed positions become visible in order (a subscriber's cursor never
        # passes a position a slower transaction fills later), and the ids below can be taken
        # from max(id) without a race. Core executemany: the ORM adds nothing for rows written once.
        audit_head = s.execute(
            select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
        ).scalar_one()
        conn = s.connection()
        envelopes, records = _table(EnvelopeRow), _table(RecordRow)
        first_envelope = (conn.execute(select(func.max(envelopes.c.id))).scalar() or 0) + 1
        envelope_ids = [first_envelope + i for i in range(len(self.envelopes))]
        conn.execute(
            insert(envelopes),
            [{**row, "id": eid} for row, eid in zip(self.envelopes, envelope_ids, strict=True)],
        )
        names = {(p.record.name, p.version) for p in self.planned}
        previous = {
            (name, version): rid
            for rid, name, version in s.execute(
                select(RecordRow.id, RecordRow.name, RecordRow.version).where(
                    RecordRow.is_current.is_(True), RecordRow.name.in_({n for n, _ in names})
                )
            )
            if (name, version) in names
        }
        if previous:
            s.execute(
                update(RecordRow)
                .where(RecordRow.id.in_(previous.values()))
                .values(is_current=False)
            )
        first_record = (conn.execute(select(func.max(records.c.id))).scalar() or 0) + 1
        record_ids = [first_record + i for i in range(len(self.planned))]
        conn.execute(
            insert(records),
            [
                {
                    "name": p.record.name,
                    "version": p.version,
                    "kind": p.kind,
                    "region": p.record.region,
                    "envelope_id": envelope_ids[p.envelope],
                    "envelope_record_index": p.index,
                    "body": p.body,
                    "is_current": p.is_current,
                    "accepted_at": self.now,
                    "id": rid,
                }
                for p, rid in zip(self.planned, record_ids, strict=True)
            ],
        )
        issuances, blocks = [], []
        for planned, record_id in zip(self.planned, record_ids, strict=True):
            planned.record_id = record_id
            record = planned.record
            if isinstance(record, records_pb2.Methodology):
                self._save_methodology(record, record_id)
            elif isinstance(record, records_pb2.Project):
                self._save_project(record, record_id)
            else:
                issuances.append(
                    {
                        "region": record.region,
                        "issuance_id": record.issuance_id,
                        "name": record.name,
                        "record_id": record_id,
                        "project_name": record.project,
                        "vintage": record.vintage,
                        "serial_start": record.serials.start,
                        "serial_end": record.serials.end,
                        "quantity_grams": record.quantity_grams,
                    }
                )
                blocks.append(
                    {
                        "origin_region": record.region,
                        "issuance_name": record.name,
                        "project_name": record.project,
                        "vintage": record.vintage,
                        "serial_start": record.serials.start,
                        "serial_end": record.serials.end,
                        "holder_region": record.region,
                        "state": "active",
                        "reserved_by": None,
                        "parent_id": None,
                        "created_at": self.now,
                    }
                )
        if issuances:
            conn.execute(insert(_table(IssuanceRow)), issuances)
            conn.execute(insert(_table(UnitBlockRow)), blocks)
        self._write_audit(audit_head, previous)
        for key_id, chain in self._heads.items():
            key = self._keys[key_id]
            if key is not None and chain.sequence != key.last_sequence:
                key.last_sequence, key.last_hash = chain.sequence, chain.hash
        s.flush()

    def _write_audit(self, head: AuditHeadRow, previous: dict[tuple[str, str], int]) -> None:
        sequence, last = head.sequence, head.head_hash
        rows = []
        for p in self.planned:
            env = self.envelopes[p.envelope]
            detail: dict[str, object] = {
                "envelope_hash": env["envelope_hash"].hex(),
                "key_id": env["key_id"],
                "sequence": env["sequence"],
                "record_index": p.index,
                "record_id": p.record_id,
                "record_sha256": hashlib.sha256(p.body).hexdigest(),
                "revision_of": previous.get((p.record.name, p.version)),
            }
            if isinstance(p.record, records_pb2.Issuance):
                detail["serials"] = [p.record.serials.start, p.record.serials.end]
                detail["quantity_grams"] = p.record.quantity_grams
            sequence += 1
            fields = EntryFields(
                sequence=sequence,
                kind=f"{p.kind}.accepted",
                subject=p.record.name,
                actor_region=self.caller.region or "",
                actor=self.caller.actor,
                detail=canonical_json(detail),
                previous_hash=last,
                created_at=self.now,
            )
            last = entry_hash(fields)
            rows.append(
                {
                    "sequence": fields.sequence,
                    "kind": fields.kind,
                    "subject": fields.subject,
                    "actor_region": fields.actor_region,
                    "actor": fields.actor,
                    "detail": fields.detail,
                    "previous_hash": fields.previous_hash,
                    "entry_hash": last,
                    "created_at": self.now,
                }
            )
        self.session.connection().execute(insert(_table(AuditEntryRow)), rows)
        head.sequence, head.head_hash = sequence, last

    def _save_methodology(self, m: records_pb2.Methodology, record_id: int) -> None:
        ref = self.adapters.get(m.region).methodology_ref(m)
        cap = m.eligibility.max_capacity if m.eligibility.HasField("max_capacity") else None
        row = self.session.get(MethodologyRow, (m.region, m.methodology_id, m.version))
        if row is None:
            row = MethodologyRow(
                region=m.region, methodology_id=m.methodology_id, version=m.version
            )
            self.session.add(row)
        row.ref_id, row.ref_version, row.record_id = ref.methodology_id, ref.version, record_id
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


def _project_of(row: ProjectRow) -> _Project:
    return _Project(
        row.region,
        row.project_id,
        (row.methodology_id, row.methodology_version),
        row.crediting_start,
        row.crediting_end,
        row.status,
    )


def _methodology_of(row: MethodologyRow) -> _Methodology:
    cap = (
        records_pb2.ExactQuantity(value=row.max_capacity_value, unit=row.max_capacity_unit or "")
        if row.max_capacity_value is not None
        else None
    )
    return _Methodology(
        (row.region, row.methodology_id, row.version),
        (row.ref_id, row.ref_version),
        row.category,
        row.status,
        cap,
    )


class _Overlay:
    """The records of one envelope, checked against the batch and the database; they join the
    batch's view only on commit (so a later record of a refused envelope leaves nothing)."""

    def __init__(self, batch: PublishBatch) -> None:
        self.batch = batch
        self.methodologies: list[_Methodology] = []
        self.projects: list[tuple[str, _Project]] = []
        self.issuances: list[tuple[int, int, str]] = []

    def check(self, record: CommonRecord) -> None:
        if isinstance(record, records_pb2.Methodology):
            self._methodology(record)
        elif isinstance(record, records_pb2.Project):
            self._project(record)
        else:
            self._issuance(record)

    def _find_ref(self, region: str, ref_id: str, ref_version: str) -> _Methodology | None:
        for m in reversed(self.methodologies):
            if m.key[0] == region and m.ref == (ref_id, ref_version):
                return m
        return self.batch.methodology_by_ref(region, ref_id, ref_version)

    def _methodology(self, m: records_pb2.Methodology) -> None:
        ref = self.batch.adapters.get(m.region).methodology_ref(m)
        holder = self._find_ref(m.region, ref.methodology_id, ref.version)
        key = (m.region, m.methodology_id, m.version)
        if holder is not None and holder.key != key:
            raise errors.RecordConflict(
                f"{ref.methodology_id} {ref.version} already names methodology "
                f"{holder.key[1]} version {holder.key[2]}"
            )
        cap = m.eligibility.max_capacity if m.eligibility.HasField("max_capacity") else None
        self.methodologies.append(
            _Methodology(key, (ref.methodology_id, ref.version), m.category, m.status, cap)
        )

    def _project(self, p: records_pb2.Project) -> None:
        ref = p.methodology
        meth = (
            self._find_ref(p.region, ref.methodology_id, ref.version)
            if ref.region == p.region
            else None
        )
        if meth is None:
            raise errors.MethodologyUnknown(
                f"project {p.project_id} names methodology {ref.methodology_id} {ref.version}, "
                f"which {p.region} has not published",
                metadata={"methodology_id": ref.methodology_id, "version": ref.version},
            )
        cap = meth.max_capacity
        if (
            meth.category == _PV
            and cap is not None
            and p.HasField("capacity")
            and not capacity_within(p.capacity, cap)
        ):
            raise errors.CapacityExceedsMethodology(
                f"capacity {p.capacity.value} {p.capacity.unit} exceeds the methodology's "
                f"maximum {cap.value} {cap.unit}",
                field_errors={"capacity": f"above {cap.value} {cap.unit}"},
            )
        existing = self._find_project(p.name)
        if existing is not None and existing.methodology != (ref.methodology_id, ref.version):
            raise errors.RecordConflict(f"project {p.project_id} cannot change its methodology")
        self.projects.append(
            (
                p.name,
                _Project(
                    p.region,
                    p.project_id,
                    (ref.methodology_id, ref.version),
                    _date(p.crediting_period.start),
                    _date(p.crediting_period.end) if p.crediting_period.HasField("end") else None,
                    p.status,
                ),
            )
        )

    def _find_project(self, name: str) -> _Project | None:
        for n, project in reversed(self.projects):
            if n == name:
                return project
        return self.batch.project(name)

    def _issuance(self, i: records_pb2.Issuance) -> None:
        project = self._find_project(i.project)
        if project is None or project.region != i.region:
            raise errors.ProjectUnknown(
                f"issuance {i.issuance_id} names project {i.project}, "
                f"which {i.region} has not published",
                metadata={"project": i.project},
            )
        if project.status != _REGISTERED:
            status = records_pb2.ProjectStatus.Name(
                records_pb2.ProjectStatus.ValueType(project.status)
            )
            raise errors.ProjectNotRegistered(f"project {i.project} is {status}")
        start, end = _date(i.monitoring_period.start), _date(i.monitoring_period.end)
        if start < project.crediting_start or (
            project.crediting_end is not None and end > project.crediting_end
        ):
            raise errors.MonitoringOutsideCrediting(
                f"monitoring period {start}..{end} is not inside the crediting period "
                f"{project.crediting_start}..{project.crediting_end or ''}",
                field_errors={"monitoring_period": "outside the crediting period"},
            )
        if any(iid == i.issuance_id for _, _, iid in self.issuances) or self.batch.issuance_exists(
            i.region, i.issuance_id
        ):
            raise errors.IssuanceExists(f"issuance {i.issuance_id} was accepted before")
        s, e = i.serials.start, i.serials.end
        clash = next((iid for a, b, iid in self.issuances if a <= e and b >= s), None)
        clash = clash or self.batch.overlapping(i.region, s, e)
        if clash is not None:
            raise errors.SerialsOverlap(
                f"serials {s}..{e} overlap issuance {clash}", metadata={"issuance": clash}
            )
        self.issuances.append((s, e, i.issuance_id))

    def commit(self) -> None:
        """Make the envelope's records part of the batch's view."""
        b = self.batch
        for m in self.methodologies:
            b._by_ref[(m.key[0], *m.ref)] = m
        for name, project in self.projects:
            b._projects[name] = project
        for s, e, iid in self.issuances:
            b._issuance_ids.add(iid)
            bisect.insort(b._ranges, (s, e, iid))
