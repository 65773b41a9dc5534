"""One Publish batch: every envelope is checked in order against the database and against what
the batch itself has accepted so far; the accepted ones are then written with bulk inserts in one
transaction. A refused envelope adds nothing, so it changes nothing.

Checks for each envelope, in order: the key belongs to the caller's region, signs records and is
not revoked; the signature verifies over the bytes as received; the sequence is the next one and
chains to the signer's last envelope (replay, gap and fork refused); the region's adapter maps the
payload; cross-record checks hold (methodology known, capacity within its maximum, project known
and registered, monitoring inside crediting, issuance id new, serials not overlapping).

A large batch's signatures are checked by a worker process (``gateway.services.verifier``) while
the batch is parsed, checked and written; the checks take them as valid meanwhile, and if one was
not, the transaction is rolled back and the batch checked again with each signature verified in
its turn, so the outcomes are those of the order above.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import (
    Column,
    Connection,
    Dialect,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from yrd.interop.v1 import envelope_pb2, records_pb2

from adapters.base import CommonRecord, RegionAdapter
from adapters.errors import NativeFormatError, UnknownContentTypeError
from adapters.quantities import capacity_within
from adapters.registry import AdapterRegistry
from gateway import errors, protowire
from gateway.security.audit_chain import canonical_json
from gateway.security.identity import Identity
from gateway.security.signing import EnvelopeFields, envelope_hash, signing_input, verify
from gateway.services.intake import check_chain, check_signer, envelope_fields
from gateway.services.verifier import Pending, SignatureWorker
from gateway.storage.audit_log import AuditLog, audit_log
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
    .limit(_PREFETCH_RANGES + 1)
)
# PostgreSQL: the ids as one array, so the primary key is probed for each; a list of hundreds
# of parameters plans (once prepared) as a scan comparing every row with every parameter.
_EXISTING_IDS_PG = select(IssuanceRow.issuance_id).where(
    IssuanceRow.region == bindparam("region"),
    IssuanceRow.issuance_id == any_(bindparam("ids", type_=postgresql.ARRAY(String))),
)
_MAX_RECORD_ID = select(func.max(RecordRow.id))
_REGISTERED = records_pb2.PROJECT_STATUS_REGISTERED
# Record.kind field tags (methodology = 1, project = 2, issuance = 3) and the other two fields.
_RECORD_KIND: dict[type, tuple[bytes, str]] = {
    records_pb2.Methodology: (protowire.tag(1, protowire.LEN), "methodology"),
    records_pb2.Project: (protowire.tag(2, protowire.LEN), "project"),
    records_pb2.Issuance: (protowire.tag(3, protowire.LEN), "issuance"),
}
_RECORD_ACCEPTED_TIME = protowire.tag(4, protowire.LEN)
_RECORD_ENVELOPE_HASH = protowire.tag(5, protowire.LEN) + protowire.varint(64)


def _date(value: records_pb2.CalendarDate) -> dt.date:
    return dt.date(value.year, value.month, value.day)


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


@dataclass(slots=True)
class _Project:
    region: str
    project_id: str
    methodology_id: str
    methodology_version: str
    crediting_start: dt.date
    crediting_end: dt.date | None
    status: int

    @property
    def methodology(self) -> tuple[str, str]:
        return (self.methodology_id, self.methodology_version)


# What the checks need of a stored project, in _Project's order after the name.
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


@dataclass(slots=True)
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


class _Envelope(NamedTuple):
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
class _Head:
    sequence: int
    hash: bytes


@dataclass(slots=True)
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
    job: int = -1
    """Its place in the request sent to the signature worker (-1: verified in ``accept``)."""


class SignaturesUnconfirmed(Exception):
    """A signature taken as valid while the worker checked it was not (or the worker failed)."""


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


class _BulkInsert:
    """An INSERT of many rows given as tuples, handed to the driver's executemany (a COPY on
    PostgreSQL with psycopg).

    Core's executemany builds a parameter dict and runs the type processors for every row; the
    batch's rows need neither (their one timestamp is converted once, by ``stored``), and on the
    hot path that per-row work costs more than the database's own. Columns without a value here
    are left to their defaults (none of these tables has a Python-side default)."""

    def __init__(self, model: type[Any], columns: tuple[str, ...]) -> None:
        self.table = _table(model)
        self.columns = columns
        self._sql: dict[str, str] = {}

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        dialect = conn.dialect
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            # COPY: a third of executemany's time on PostgreSQL, in the same transaction.
            copy_sql = self._sql.get("copy")
            if copy_sql is None:
                quote = dialect.identifier_preparer
                copy_sql = self._sql["copy"] = (
                    f"COPY {quote.format_table(self.table)} "
                    f"({', '.join(quote.quote(c) for c in self.columns)}) FROM STDIN"
                )
            driver = conn.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        if marker is None:  # a driver this module has not been written for: Core does it all
            conn.execute(
                insert(self.table), [dict(zip(self.columns, r, strict=True)) for r in rows]
            )
            return
        sql = self._sql.get(dialect.name)
        if sql is None:
            # Only the model's own table and column names, quoted by the dialect: no outside text.
            quote = dialect.identifier_preparer
            sql = (
                f"INSERT INTO {quote.format_table(self.table)} "  # noqa: S608
                f"({', '.join(quote.quote(c) for c in self.columns)}) "
                f"VALUES ({', '.join([marker] * len(self.columns))})"
            )
            self._sql[dialect.name] = sql
        conn.exec_driver_sql(sql, rows)

    def stored(self, dialect: Dialect, column: str, value: Any) -> Any:
        """``value`` as Core would bind it to ``column`` on this dialect."""
        col: Column[Any] = self.table.c[column]
        process = col.type.dialect_impl(dialect).bind_processor(dialect)
        return process(value) if process is not None else value


_INSERT_ENVELOPES = _BulkInsert(EnvelopeRow, ("id", *_Envelope._fields, "received_at"))
_INSERT_RECORDS = _BulkInsert(
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
_INSERT_ISSUANCES = _BulkInsert(
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
_INSERT_BLOCKS = _BulkInsert(
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
_INSERT_AUDIT = _BulkInsert(
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


def _detail(
    envelope_hash_hex: str,
    key_id: str,
    sequence: int,
    index: int,
    record_id: int,
    body: bytes,
    revision_of: int | None,
    record: CommonRecord,
) -> bytes:
    """``canonical_json`` of an accepted record's audit detail, written from a template (keys in
    sorted order; its strings are hex, which needs no escaping). ``_write_audit`` compares it with
    ``_reference_detail`` once per key and batch."""
    revision = "null" if revision_of is None else str(int(revision_of))
    sha = hashlib.sha256(body).hexdigest()
    if isinstance(record, records_pb2.Issuance):
        return (
            f'{{"envelope_hash":"{envelope_hash_hex}","key_id":"{key_id}",'
            f'"quantity_grams":{int(record.quantity_grams)},"record_id":{int(record_id)},'
            f'"record_index":{int(index)},"record_sha256":"{sha}","revision_of":{revision},'
            f'"sequence":{int(sequence)},'
            f'"serials":[{int(record.serials.start)},{int(record.serials.end)}]}}'
        ).encode()
    return (
        f'{{"envelope_hash":"{envelope_hash_hex}","key_id":"{key_id}",'
        f'"record_id":{int(record_id)},"record_index":{int(index)},"record_sha256":"{sha}",'
        f'"revision_of":{revision},"sequence":{int(sequence)}}}'
    ).encode()


def _reference_detail(
    envelope_hash_hex: str,
    key_id: str,
    sequence: int,
    index: int,
    record_id: int,
    body: bytes,
    revision_of: int | None,
    record: CommonRecord,
) -> bytes:
    """The same detail through ``canonical_json`` (the definition ``_detail`` must match)."""
    detail: dict[str, object] = {
        "envelope_hash": envelope_hash_hex,
        "key_id": key_id,
        "sequence": sequence,
        "record_index": index,
        "record_id": record_id,
        "record_sha256": hashlib.sha256(body).hexdigest(),
        "revision_of": revision_of,
    }
    if isinstance(record, records_pb2.Issuance):
        detail["serials"] = [record.serials.start, record.serials.end]
        detail["quantity_grams"] = record.quantity_grams
    return canonical_json(detail)


_AUDIT_KIND = {kind: f"{kind}.accepted" for kind in ("methodology", "project", "issuance")}


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


@dataclass
class PublishBatch:
    """Checks a batch's envelopes one by one, then writes the accepted ones together."""

    session: Session
    adapters: AdapterRegistry
    caller: Identity
    region: str
    now: dt.datetime
    envelopes: list[_Envelope] = field(default_factory=list)
    planned: list[_Planned] = field(default_factory=list)
    _keys: dict[str, SigningKeyRow | None] = field(default_factory=dict)
    _heads: dict[str, _Head] = field(default_factory=dict)
    _accepted: dict[tuple[str, int], bytes] = field(default_factory=dict)
    """Hash of each envelope this batch accepted, by (key id, sequence)."""
    _adapters: dict[str, RegionAdapter] = field(default_factory=dict)
    _by_ref: dict[tuple[str, str, str], _Methodology | None] = field(default_factory=dict)
    _projects: dict[str, _Project | None] = field(default_factory=dict)
    _issuance_ids: set[str] = field(default_factory=set)
    _ranges: list[tuple[int, int, str]] = field(default_factory=list)
    _current: dict[tuple[str, str], _Planned] = field(default_factory=dict)
    _existing_ids: set[str] = field(default_factory=set)
    _prefetched_ids: set[str] = field(default_factory=set)
    _db_ranges: list[tuple[int, int, str]] = field(default_factory=list)
    _db_span: tuple[int, int] = (1, 0)
    _pending: Pending | None = None
    _trusted: list[int] = field(default_factory=list)
    """Worker jobs whose signature a check took as valid."""

    def __post_init__(self) -> None:
        lock_region(self.session, self.region)
        # Every record of the batch carries the same acceptance time: encoded once.
        delta = self.now - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        stamp = protowire.timestamp(delta.days * 86_400 + delta.seconds, delta.microseconds * 1000)
        self._accepted_time = protowire.delimited(_RECORD_ACCEPTED_TIME, stamp)

    # -- before the checks: parse and prefetch ------------------------------------------------

    def prepare(
        self,
        envelopes: Sequence[envelope_pb2.SignedEnvelope],
        worker: SignatureWorker | None = None,
    ) -> list[Prepared]:
        """Hash and parse every envelope, then fetch in a few queries what the checks will ask.

        With a ``worker``, the signatures are sent to it first and checked while the batch is
        parsed, checked and written: ``accept`` then takes each signature as valid, and
        ``confirm_signatures`` (before the commit) refuses the whole transaction if one was not.
        """
        prepared = [self._shape(env) for env in envelopes]
        if worker is not None:
            self._submit(prepared, worker)
        for p in prepared:
            if p.fields is not None:
                self._parse(p)
        self._prefetch([r for p in prepared for r in p.records])
        return prepared

    def _shape(self, env: envelope_pb2.SignedEnvelope) -> Prepared:
        p = Prepared(env)
        try:
            p.fields = fields = envelope_fields(env)
        except errors.DomainError as exc:
            p.error = exc
            return p
        p.signed = signing_input(fields)
        p.digest = envelope_hash(fields, env.signature, signed=p.signed)
        return p

    def _submit(self, prepared: list[Prepared], worker: SignatureWorker) -> None:
        ids = sorted(
            {p.fields.key_id for p in prepared if p.fields is not None} - self._keys.keys()
        )
        # The keys are locked now rather than at their first envelope: same order (region, keys,
        # audit head), and in key order, as every batch takes them.
        for row in self.session.execute(
            select(SigningKeyRow)
            .where(SigningKeyRow.key_id.in_(ids))
            .order_by(SigningKeyRow.key_id)
            .with_for_update()
        ).scalars():
            self._keys[row.key_id] = row
            self._heads[row.key_id] = _Head(row.last_sequence, row.last_hash)
        for key_id in ids:
            self._keys.setdefault(key_id, None)
        items: list[tuple[bytes, bytes, bytes]] = []
        for p in prepared:
            key = self._keys.get(p.fields.key_id) if p.fields is not None else None
            if key is not None:
                p.job = len(items)
                items.append((key.public_key, p.env.signature, p.signed))
        if items:
            self._pending = worker.submit(items)
            if self._pending is None:  # busy or unavailable: verified here, one by one
                for p in prepared:
                    p.job = -1

    def confirm_signatures(self) -> None:
        """Raise ``SignaturesUnconfirmed`` unless every signature a check took as valid was
        (waits for the worker); the caller then rolls back and publishes the batch again,
        verifying each signature in its turn."""
        if self._pending is None:
            return
        verdicts = self._pending.verdicts()
        if verdicts is None or not all(verdicts[job] for job in self._trusted):
            raise SignaturesUnconfirmed

    def close(self) -> None:
        """Release the worker if its answer was not taken (an error ended the batch early)."""
        if self._pending is not None:
            self._pending.close()

    def _parse(self, p: Prepared) -> None:
        fields = p.fields
        assert fields is not None
        adapter = self._adapters.get(fields.content_type)
        if adapter is None:
            try:
                adapter = self.adapters.for_content_type(fields.content_type)
            except UnknownContentTypeError as exc:
                p.parse_error = errors.ContentTypeUnknown(
                    str(exc), field_errors={"content_type": "no adapter reads it"}
                )
                return
            if adapter.region != self.region:
                p.parse_error = errors.ContentTypeWrongRegion(
                    f"{fields.content_type} is the {adapter.region} format; "
                    f"{self.region} publishes its own",
                    metadata={"content_type_region": adapter.region, "caller_region": self.region},
                )
                return
            self._adapters[fields.content_type] = adapter
        try:
            p.records = adapter.to_common(fields.content_type, fields.payload)
        except NativeFormatError as exc:
            p.parse_error = native_error(exc)

    def _prefetch(self, records: list[CommonRecord]) -> None:
        issuances = [r for r in records if isinstance(r, records_pb2.Issuance)]
        if not issuances:
            return
        conn = self.session.connection()
        ids = sorted({i.issuance_id for i in issuances})
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            if conn.dialect.name == "postgresql":
                found = conn.execute(_EXISTING_IDS_PG, {"region": self.region, "ids": part})
            else:
                found = conn.execute(
                    select(IssuanceRow.issuance_id).where(
                        IssuanceRow.region == self.region, IssuanceRow.issuance_id.in_(part)
                    )
                )
            self._existing_ids.update(found.scalars())
        self._prefetched_ids.update(ids)
        low = min(i.serials.start for i in issuances)
        high = max(i.serials.end for i in issuances)
        # Two index probes, not a scan of every range below the span: the ranges starting inside
        # it, and the one range that can start before it and still reach into it.
        rows: list[tuple[int, int, str]] = [
            (a, b, iid)
            for a, b, iid in conn.execute(
                _RANGES_STARTING_IN, {"region": self.region, "low": low, "high": high}
            )
        ]
        if len(rows) <= _PREFETCH_RANGES:
            # Every stored range that can meet the batch's serials, so no per-issuance probe.
            before = conn.execute(_LAST_RANGE, {"region": self.region, "end": low - 1}).first()
            if before is not None and before[1] >= low:
                rows.insert(0, (before[0], before[1], before[2]))
            self._db_ranges = rows
            self._db_span = (low, high)
        names = sorted({i.project for i in issuances} - self._projects.keys())
        for chunk in range(0, len(names), 500):
            part = names[chunk : chunk + 500]
            for row in conn.execute(select(*_PROJECT_COLUMNS).where(ProjectRow.name.in_(part))):
                self._projects[row[0]] = _Project(*row[1:])
            for name in part:
                self._projects.setdefault(name, None)

    # -- per envelope -----------------------------------------------------------------------------

    def accept(self, p: Prepared) -> tuple[str, ...]:
        """Check one prepared envelope; on success plan its rows and return its record names."""
        fields, digest = p.fields, p.digest
        assert fields is not None
        key = self._key(fields.key_id)
        check_signer(key, fields, self.region)
        assert key is not None
        signature = p.env.signature
        if p.job >= 0:
            # Sent to the worker: valid until confirm_signatures says otherwise.
            self._trusted.append(p.job)
        elif not verify(key.public_key, fields, signature, signed=p.signed):
            raise errors.SignatureInvalid(
                "the signature does not verify over the envelope as received",
                metadata={"key_id": key.key_id},
            )
        key_id = key.key_id
        head = self._heads[key_id]
        check_chain(
            self.session.connection(),
            key_id,
            head.sequence,
            head.hash,
            fields,
            digest,
            self._accepted.get((key_id, fields.sequence)),
        )
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
            _Envelope(
                digest,
                key_id,
                self.region,
                fields.sequence,
                fields.previous_hash,
                fields.content_type,
                fields.payload,
                fields.sign_time_seconds,
                fields.sign_time_nanos,
                signature,
            )
        )
        overlay.commit()
        hash_field = _RECORD_ENVELOPE_HASH + digest.hex().encode()
        for index, record in enumerate(records):
            self._plan(number, index, record, hash_field)
        self._accepted[(key_id, fields.sequence)] = digest
        head.sequence, head.hash = fields.sequence, digest
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

    def _plan(self, envelope: int, index: int, record: CommonRecord, hash_field: bytes) -> None:
        # The stored body is a Record around the adapter's message: its bytes are concatenated
        # as the encoder would write them (kind, accepted_time, envelope_hash), not re-encoded.
        kind_tag, kind = _RECORD_KIND[type(record)]
        version = record.version if isinstance(record, records_pb2.Methodology) else ""
        body = (
            protowire.delimited(kind_tag, record.SerializeToString())
            + self._accepted_time
            + hash_field
        )
        planned = _Planned(envelope, index, record, kind, version, body)
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
            row = (
                self.session.connection()
                .execute(select(*_PROJECT_COLUMNS).where(ProjectRow.name == name))
                .first()
            )
            self._projects[name] = _Project(*row[1:]) if row else None
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
        return clash[2] if clash is not None and clash[1] >= start else None

    # -- the write ------------------------------------------------------------------------------

    def write(self) -> None:
        """Insert everything the batch accepted, in bulk, inside the caller's transaction."""
        if not self.envelopes:
            return
        s = self.session
        # The audit head is locked first and held to the commit: every publish writes its feed
        # rows under it, so feed positions become visible in order (a subscriber's cursor never
        # passes a position a slower transaction fills later), and the ids below can be taken
        # from max(id) without a race.
        conn = s.connection()
        audit = audit_log(conn)
        # The batch's one timestamp, as every UTCDateTime column below stores it.
        stamp = _INSERT_RECORDS.stored(conn.dialect, "accepted_at", self.now)
        first_envelope = next_envelope_id(conn)
        _INSERT_ENVELOPES.run(
            conn, [(first_envelope + i, *e, stamp) for i, e in enumerate(self.envelopes)]
        )
        # Only methodologies and projects have revisions: an issuance id is accepted once.
        names = {(p.record.name, p.version) for p in self.planned if p.kind != "issuance"}
        previous: dict[tuple[str, str], int] = {}
        if names:
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
        first_record = (conn.execute(_MAX_RECORD_ID).scalar() or 0) + 1
        records, issuances, blocks = [], [], []
        for record_id, p in enumerate(self.planned, first_record):
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
        for p in self.planned:
            if isinstance(p.record, records_pb2.Methodology):
                self._save_methodology(p.record, p.record_id)
            elif isinstance(p.record, records_pb2.Project):
                self._save_project(p.record, p.record_id)
        _INSERT_ISSUANCES.run(conn, issuances)
        _INSERT_BLOCKS.run(conn, blocks)
        self._write_audit(conn, audit, previous, stamp)
        for key_id, chain in self._heads.items():
            key = self._keys[key_id]
            if key is not None and chain.sequence != key.last_sequence:
                advance_chain(conn, key_id, chain.sequence, chain.hash)
        s.flush()

    def _write_audit(
        self,
        conn: Connection,
        audit: AuditLog,
        previous: dict[tuple[str, str], int],
        stamp: Any,
    ) -> None:
        rows = audit.extend(
            self._audit_entries(previous),
            actor_region=self.caller.region or "",
            actor=self.caller.actor,
            now=self.now,
            stored_now=stamp,
        )
        _INSERT_AUDIT.run(conn, rows)

    def _audit_entries(
        self, previous: dict[tuple[str, str], int]
    ) -> Iterator[tuple[str, str, bytes]]:
        """(kind, subject, detail) of the batch's audit entries, one per record."""
        envelopes = self.envelopes
        hex_of: dict[int, str] = {}
        plain: dict[str, bool] = {}  # key id → needs no JSON escaping (hex, as key_id_of makes)
        for p in self.planned:
            env = envelopes[p.envelope]
            hash_hex = hex_of.get(p.envelope)
            if hash_hex is None:
                hash_hex = hex_of[p.envelope] = env.envelope_hash.hex()
            revision_of = previous.get((p.record.name, p.version))
            args = (
                hash_hex,
                env.key_id,
                env.sequence,
                p.index,
                p.record_id,
                p.body,
                revision_of,
                p.record,
            )
            fast = plain.get(env.key_id)
            if fast is None:
                fast = plain[env.key_id] = _is_hex(env.key_id)
                if fast and _detail(*args) != _reference_detail(*args):
                    raise RuntimeError("the audit detail template differs from canonical_json")
            detail = _detail(*args) if fast else _reference_detail(*args)
            yield _AUDIT_KIND[p.kind], p.record.name, detail

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
                    ref.methodology_id,
                    ref.version,
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
        region, issuance_id, project_name = i.region, i.issuance_id, i.project
        project = self._find_project(project_name)
        if project is None or project.region != region:
            raise errors.ProjectUnknown(
                f"issuance {issuance_id} names project {project_name}, "
                f"which {region} has not published",
                metadata={"project": project_name},
            )
        if project.status != _REGISTERED:
            status = records_pb2.ProjectStatus.Name(
                records_pb2.ProjectStatus.ValueType(project.status)
            )
            raise errors.ProjectNotRegistered(f"project {project_name} is {status}")
        period = i.monitoring_period
        start, end = _date(period.start), _date(period.end)
        if start < project.crediting_start or (
            project.crediting_end is not None and end > project.crediting_end
        ):
            raise errors.MonitoringOutsideCrediting(
                f"monitoring period {start}..{end} is not inside the crediting period "
                f"{project.crediting_start}..{project.crediting_end or ''}",
                field_errors={"monitoring_period": "outside the crediting period"},
            )
        earlier = self.issuances  # this envelope's own issuances so far (usually none)
        if any(iid == issuance_id for _, _, iid in earlier) or self.batch.issuance_exists(
            region, issuance_id
        ):
            raise errors.IssuanceExists(f"issuance {issuance_id} was accepted before")
        serials = i.serials
        s, e = serials.start, serials.end
        clash = next((iid for a, b, iid in earlier if a <= e and b >= s), None) if earlier else None
        clash = clash or self.batch.overlapping(region, s, e)
        if clash is not None:
            raise errors.SerialsOverlap(
                f"serials {s}..{e} overlap issuance {clash}", metadata={"issuance": clash}
            )
        earlier.append((s, e, issuance_id))

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
