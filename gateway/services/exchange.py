"""Signed record exchange: publish (verify, chain, adapt, check, store, audit) and the feed.

A batch of envelopes is one database transaction; each envelope is a savepoint inside it, so a
refused envelope changes nothing and the ones around it still land. Acknowledgements are returned
only after the commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import timestamp_pb2
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from yrd.interop.v1 import envelope_pb2, records_pb2

from adapters.base import CommonRecord
from adapters.errors import NativeFormatError, NotExpressibleError, UnknownContentTypeError
from adapters.quantities import capacity_within
from adapters.registry import AdapterRegistry
from gateway import errors
from gateway.errors import DomainError
from gateway.security.identity import Identity, Role
from gateway.security.signing import EnvelopeFields, envelope_hash, verify
from gateway.services import Clock, utc_now
from gateway.storage.db import Database
from gateway.storage.models import (
    EnvelopeRow,
    IssuanceRow,
    MethodologyRow,
    ProjectRow,
    RecordRow,
    RegionRow,
    SigningKeyRow,
    UnitBlockRow,
)
from gateway.storage.repositories import AuditLogRepository

MAX_BATCH = 1000
"""Most envelopes accepted in one Publish message."""
DEFAULT_FEED_BATCH = 500
MAX_FEED_BATCH = 5000
KIND_NAMES = ("methodology", "project", "issuance")
_PV = records_pb2.SCENARIO_CATEGORY_DISTRIBUTED_PV


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """What happened to one envelope."""

    envelope_hash: bytes
    record_names: tuple[str, ...] = ()
    error: DomainError | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One accepted record with the envelope it came in."""

    position: int
    record: records_pb2.Record
    envelope: envelope_pb2.SignedEnvelope
    envelope_record_index: int
    accepted_at: dt.datetime
    native_payload: bytes = b""
    native_content_type: str = ""
    native_unavailable_reason: str = ""


class FeedNotifier:
    """Wakes followers when records are accepted in this process (others poll)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def generation(self) -> int:
        with self._condition:
            return self._generation

    def wait(self, seen: int, timeout: float) -> int:
        """Wait for a notification after ``seen`` or the timeout; returns the new generation."""
        with self._condition:
            self._condition.wait_for(lambda: self._generation != seen, timeout=timeout)
            return self._generation


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


def _issue_key(issue: object) -> str:
    row, column, field = (getattr(issue, a) for a in ("row", "column", "field"))
    return f"row {row}, {column or field}" if row is not None else str(field)


def native_error(exc: NativeFormatError) -> errors.NativeRecordInvalid:
    """The domain error for a document an adapter rejected, every issue kept."""
    fields: dict[str, str] = {}
    for issue in exc.issues:
        key = _issue_key(issue)
        fields[key] = f"{fields[key]}; {issue.reason}" if key in fields else issue.reason
    return errors.NativeRecordInvalid(
        str(exc), metadata={"region": exc.region}, field_errors=fields
    )


def _lock_region(session: Session, region: str) -> None:
    """Take the region's row lock: a region's issuances are checked and stored one at a time."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(RegionRow).values(code=region).on_conflict_do_nothing())
    else:
        session.execute(sqlite.insert(RegionRow).values(code=region).on_conflict_do_nothing())
    session.execute(select(RegionRow).where(RegionRow.code == region).with_for_update())


class ExchangeService:
    """Publish and read records; every public method is one transaction."""

    def __init__(
        self,
        db: Database,
        adapters: AdapterRegistry,
        clock: Clock = utc_now,
        notifier: FeedNotifier | None = None,
    ) -> None:
        self.db = db
        self.adapters = adapters
        self.clock = clock
        self.notifier = notifier or FeedNotifier()

    # -- publish ------------------------------------------------------------------------------

    def publish(
        self, caller: Identity, envelopes: Sequence[envelope_pb2.SignedEnvelope]
    ) -> list[PublishOutcome]:
        """Check and store each envelope in order; one outcome per envelope."""
        if caller.role is not Role.REGISTRY or caller.region is None:
            raise errors.PermissionDenied("only registries publish records")
        if len(envelopes) > MAX_BATCH:
            raise errors.InvalidArgument(
                f"at most {MAX_BATCH} envelopes per message",
                field_errors={"envelopes": f"{len(envelopes)} > {MAX_BATCH}"},
            )
        now = self.clock()
        outcomes: list[PublishOutcome] = []
        with self.db.transaction() as session:
            for env in envelopes:
                digest = b""
                try:
                    fields = envelope_fields(env)
                    digest = envelope_hash(fields, env.signature)
                    with session.begin_nested():
                        names = self._accept(
                            session, caller, caller.region, env, fields, digest, now
                        )
                    outcomes.append(PublishOutcome(digest, names))
                except DomainError as exc:
                    outcomes.append(PublishOutcome(digest, error=exc))
        if any(o.accepted for o in outcomes):
            self.notifier.notify()
        return outcomes

    def _accept(
        self,
        session: Session,
        caller: Identity,
        region: str,
        env: envelope_pb2.SignedEnvelope,
        fields: EnvelopeFields,
        digest: bytes,
        now: dt.datetime,
    ) -> tuple[str, ...]:
        key = session.execute(
            select(SigningKeyRow).where(SigningKeyRow.key_id == fields.key_id).with_for_update()
        ).scalar_one_or_none()
        meta = {"key_id": fields.key_id}
        if key is None:
            raise errors.SigningKeyUnknown(f"no signing key {fields.key_id}", metadata=meta)
        if key.region != region:
            raise errors.SigningKeyWrongRegion(
                f"key {key.key_id} signs for {key.region}, the caller is {region}",
                metadata={**meta, "key_region": key.region, "caller_region": region},
            )
        if key.owner != "registry":
            raise errors.SigningKeyNotForRecords(
                f"key {key.key_id} belongs to {key.owner}; records are signed by the registry key",
                metadata=meta,
            )
        if key.revoked_at is not None:
            raise errors.SigningKeyRevoked(f"key {key.key_id} was revoked", metadata=meta)
        if not verify(key.public_key, fields, env.signature):
            raise errors.SignatureInvalid(
                "the signature does not verify over the envelope as received", metadata=meta
            )
        self._check_chain(session, key, fields, digest)
        try:
            adapter = self.adapters.for_content_type(fields.content_type)
        except UnknownContentTypeError as exc:
            raise errors.ContentTypeUnknown(
                str(exc), field_errors={"content_type": "no adapter reads it"}
            ) from exc
        if adapter.region != region:
            raise errors.ContentTypeWrongRegion(
                f"{fields.content_type} is the {adapter.region} format; {region} publishes its own",
                metadata={"content_type_region": adapter.region, "caller_region": region},
            )
        try:
            records = adapter.to_common(fields.content_type, fields.payload)
        except NativeFormatError as exc:
            raise native_error(exc) from exc
        _lock_region(session, region)
        row = EnvelopeRow(
            envelope_hash=digest,
            key_id=key.key_id,
            region=region,
            sequence=fields.sequence,
            previous_hash=fields.previous_hash,
            content_type=fields.content_type,
            payload=fields.payload,
            sign_time_seconds=fields.sign_time_seconds,
            sign_time_nanos=fields.sign_time_nanos,
            signature=env.signature,
            received_at=now,
        )
        session.add(row)
        session.flush()
        audit = AuditLogRepository(session)
        names: list[str] = []
        for index, record in enumerate(records):
            names.append(self._store(session, audit, caller, row, index, record, now))
        key.last_sequence, key.last_hash = fields.sequence, digest
        return tuple(names)

    @staticmethod
    def _check_chain(
        session: Session, key: SigningKeyRow, fields: EnvelopeFields, digest: bytes
    ) -> None:
        meta = {
            "key_id": key.key_id,
            "expected_sequence": str(key.last_sequence + 1),
            "sequence": str(fields.sequence),
        }
        if fields.sequence <= key.last_sequence:
            stored = session.execute(
                select(EnvelopeRow.envelope_hash).where(
                    EnvelopeRow.key_id == key.key_id, EnvelopeRow.sequence == fields.sequence
                )
            ).scalar_one_or_none()
            if stored == digest:
                raise errors.EnvelopeReplayed(
                    f"envelope {fields.sequence} of key {key.key_id} was accepted before",
                    metadata=meta,
                )
            raise errors.SequenceReused(
                f"sequence {fields.sequence} of key {key.key_id} is taken by another envelope",
                metadata=meta,
            )
        if fields.sequence > key.last_sequence + 1:
            raise errors.SequenceGap(
                f"expected sequence {key.last_sequence + 1}, got {fields.sequence}", metadata=meta
            )
        if fields.previous_hash != key.last_hash:
            raise errors.PreviousHashMismatch(
                "previous_hash is not the hash of the signer's last accepted envelope",
                metadata={**meta, "expected_previous_hash": key.last_hash.hex()},
            )

    def _store(
        self,
        session: Session,
        audit: AuditLogRepository,
        caller: Identity,
        envelope: EnvelopeRow,
        index: int,
        record: CommonRecord,
        now: dt.datetime,
    ) -> str:
        accepted = timestamp_pb2.Timestamp()
        accepted.FromDatetime(now)
        wrapper = records_pb2.Record(
            accepted_time=accepted, envelope_hash=envelope.envelope_hash.hex()
        )
        version = ""
        if isinstance(record, records_pb2.Methodology):
            kind, version = "methodology", record.version
            wrapper.methodology.CopyFrom(record)
        elif isinstance(record, records_pb2.Project):
            kind = "project"
            wrapper.project.CopyFrom(record)
        else:
            kind = "issuance"
            wrapper.issuance.CopyFrom(record)
        body = wrapper.SerializeToString()
        previous = session.execute(
            select(RecordRow.id).where(
                RecordRow.name == record.name, RecordRow.version == version, RecordRow.is_current
            )
        ).scalar_one_or_none()
        row = RecordRow(
            name=record.name,
            version=version,
            kind=kind,
            region=record.region,
            envelope_id=envelope.id,
            envelope_record_index=index,
            body=body,
            is_current=True,
            accepted_at=now,
        )
        if isinstance(record, records_pb2.Methodology):
            self._check_methodology(session, record)
        elif isinstance(record, records_pb2.Project):
            self._check_project(session, record)
        else:
            self._check_issuance(session, record)
        if previous is not None:
            session.execute(
                update(RecordRow).where(RecordRow.id == previous).values(is_current=False)
            )
        session.add(row)
        session.flush()
        detail: dict[str, object] = {
            "envelope_hash": envelope.envelope_hash.hex(),
            "key_id": envelope.key_id,
            "sequence": envelope.sequence,
            "record_index": index,
            "record_sha256": hashlib.sha256(body).hexdigest(),
            "revision_of": previous,
        }
        if isinstance(record, records_pb2.Methodology):
            self._save_methodology(session, record, row.id)
        elif isinstance(record, records_pb2.Project):
            self._save_project(session, record, row.id)
        else:
            block = self._save_issuance(session, record, row.id, now)
            detail["unit_block"] = block.id
            detail["serials"] = [record.serials.start, record.serials.end]
            detail["quantity_grams"] = record.quantity_grams
        audit.append(
            kind=f"{kind}.accepted",
            subject=record.name,
            actor_region=caller.region or "",
            actor=caller.actor,
            detail=detail,
            now=now,
        )
        return record.name

    # -- cross-record checks ------------------------------------------------------------------

    def _check_methodology(self, session: Session, m: records_pb2.Methodology) -> None:
        ref = self.adapters.get(m.region).methodology_ref(m)
        holder = session.execute(
            select(MethodologyRow).where(
                MethodologyRow.region == m.region,
                MethodologyRow.ref_id == ref.methodology_id,
                MethodologyRow.ref_version == ref.version,
            )
        ).scalar_one_or_none()
        if holder is not None and (holder.methodology_id, holder.version) != (
            m.methodology_id,
            m.version,
        ):
            raise errors.RecordConflict(
                f"{ref.methodology_id} {ref.version} already names methodology "
                f"{holder.methodology_id} version {holder.version}"
            )

    def _check_project(self, session: Session, p: records_pb2.Project) -> None:
        ref = p.methodology
        meth = session.execute(
            select(MethodologyRow).where(
                MethodologyRow.region == p.region,
                MethodologyRow.ref_id == ref.methodology_id,
                MethodologyRow.ref_version == ref.version,
            )
        ).scalar_one_or_none()
        if ref.region != p.region or meth is None:
            raise errors.MethodologyUnknown(
                f"project {p.project_id} names methodology {ref.methodology_id} {ref.version}, "
                f"which {p.region} has not published",
                metadata={"methodology_id": ref.methodology_id, "version": ref.version},
            )
        if meth.category == _PV and meth.max_capacity_value is not None and p.HasField("capacity"):
            maximum = records_pb2.ExactQuantity(
                value=meth.max_capacity_value, unit=meth.max_capacity_unit or ""
            )
            if not capacity_within(p.capacity, maximum):
                raise errors.CapacityExceedsMethodology(
                    f"capacity {p.capacity.value} {p.capacity.unit} exceeds the methodology's "
                    f"maximum {maximum.value} {maximum.unit}",
                    field_errors={"capacity": f"above {maximum.value} {maximum.unit}"},
                )
        existing = session.get(ProjectRow, (p.region, p.project_id))
        if existing is not None and (
            existing.methodology_id,
            existing.methodology_version,
        ) != (ref.methodology_id, ref.version):
            raise errors.RecordConflict(
                f"project {p.project_id} cannot change its methodology in a new revision"
            )

    @staticmethod
    def _check_issuance(session: Session, i: records_pb2.Issuance) -> None:
        project = session.execute(
            select(ProjectRow).where(ProjectRow.name == i.project)
        ).scalar_one_or_none()
        if project is None or project.region != i.region:
            raise errors.ProjectUnknown(
                f"issuance {i.issuance_id} names project {i.project}, "
                f"which {i.region} has not published",
                metadata={"project": i.project},
            )
        if project.status != records_pb2.PROJECT_STATUS_REGISTERED:
            raise errors.ProjectNotRegistered(
                f"project {i.project} is "
                f"{records_pb2.ProjectStatus.Name(records_pb2.ProjectStatus.ValueType(project.status))}"
            )
        start, end = _date(i.monitoring_period.start), _date(i.monitoring_period.end)
        if start < project.crediting_start or (
            project.crediting_end is not None and end > project.crediting_end
        ):
            raise errors.MonitoringOutsideCrediting(
                f"monitoring period {start}..{end} is not inside the crediting period "
                f"{project.crediting_start}..{project.crediting_end or ''}",
                field_errors={"monitoring_period": "outside the crediting period"},
            )
        if session.get(IssuanceRow, (i.region, i.issuance_id)) is not None:
            raise errors.IssuanceExists(f"issuance {i.issuance_id} was accepted before")
        # A region's issued ranges never overlap each other, so the only stored range that can
        # overlap [start, end] is the one starting last at or before end: one index probe.
        clash = session.execute(
            select(IssuanceRow.issuance_id, IssuanceRow.serial_start, IssuanceRow.serial_end)
            .where(IssuanceRow.region == i.region, IssuanceRow.serial_start <= i.serials.end)
            .order_by(IssuanceRow.serial_start.desc())
            .limit(1)
        ).first()
        if clash is not None and clash[2] < i.serials.start:
            clash = None
        if clash is not None:
            raise errors.SerialsOverlap(
                f"serials {i.serials.start}..{i.serials.end} overlap issuance {clash[0]} "
                f"({clash[1]}..{clash[2]})",
                metadata={"issuance": clash[0]},
            )

    # -- current-state rows -------------------------------------------------------------------

    def _save_methodology(
        self, session: Session, m: records_pb2.Methodology, record_id: int
    ) -> None:
        ref = self.adapters.get(m.region).methodology_ref(m)
        cap = m.eligibility.max_capacity if m.eligibility.HasField("max_capacity") else None
        row = session.get(MethodologyRow, (m.region, m.methodology_id, m.version))
        if row is None:
            row = MethodologyRow(
                region=m.region, methodology_id=m.methodology_id, version=m.version
            )
            session.add(row)
        row.ref_id, row.ref_version, row.record_id = ref.methodology_id, ref.version, record_id
        row.category, row.status = m.category, m.status
        row.max_capacity_value = cap.value if cap else None
        row.max_capacity_unit = cap.unit if cap else None

    @staticmethod
    def _save_project(session: Session, p: records_pb2.Project, record_id: int) -> None:
        row = session.get(ProjectRow, (p.region, p.project_id))
        if row is None:
            row = ProjectRow(region=p.region, project_id=p.project_id)
            session.add(row)
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

    @staticmethod
    def _save_issuance(
        session: Session, i: records_pb2.Issuance, record_id: int, now: dt.datetime
    ) -> UnitBlockRow:
        session.add(
            IssuanceRow(
                region=i.region,
                issuance_id=i.issuance_id,
                name=i.name,
                record_id=record_id,
                project_name=i.project,
                vintage=i.vintage,
                serial_start=i.serials.start,
                serial_end=i.serials.end,
                quantity_grams=i.quantity_grams,
            )
        )
        block = UnitBlockRow(
            origin_region=i.region,
            issuance_name=i.name,
            project_name=i.project,
            vintage=i.vintage,
            serial_start=i.serials.start,
            serial_end=i.serials.end,
            holder_region=i.region,
            state="active",
            created_at=now,
        )
        session.add(block)
        session.flush()
        return block

    # -- reading ------------------------------------------------------------------------------

    _ITEM_COLUMNS = (
        RecordRow.id,
        RecordRow.body,
        RecordRow.envelope_record_index,
        RecordRow.accepted_at,
        EnvelopeRow.content_type,
        EnvelopeRow.payload,
        EnvelopeRow.key_id,
        EnvelopeRow.sequence,
        EnvelopeRow.previous_hash,
        EnvelopeRow.sign_time_seconds,
        EnvelopeRow.sign_time_nanos,
        EnvelopeRow.signature,
    )

    def _items(
        self, where: Sequence[ColumnElement[bool]], limit: int, native_region: str | None
    ) -> list[FeedItem]:
        stmt = (
            select(*self._ITEM_COLUMNS)
            .join(EnvelopeRow, EnvelopeRow.id == RecordRow.envelope_id)
            .where(*where)
            .order_by(RecordRow.id)
            .limit(limit)
        )
        with self.db.transaction() as session:
            rows = session.execute(stmt).all()
        adapter = self.adapters.get(native_region) if native_region else None
        items = []
        for row in rows:
            record = records_pb2.Record.FromString(row.body)
            envelope = envelope_pb2.SignedEnvelope(
                content_type=row.content_type,
                payload=row.payload,
                key_id=row.key_id,
                sequence=row.sequence,
                previous_hash=row.previous_hash,
                sign_time=timestamp_pb2.Timestamp(
                    seconds=row.sign_time_seconds, nanos=row.sign_time_nanos
                ),
                signature=row.signature,
            )
            native, native_type, why = b"", "", ""
            if adapter is not None:
                try:
                    native, native_type = (
                        adapter.from_common(_inner(record)),
                        adapter.content_types[0],
                    )
                except NotExpressibleError as exc:
                    why = str(exc)
            items.append(
                FeedItem(
                    row.id,
                    record,
                    envelope,
                    row.envelope_record_index,
                    row.accepted_at,
                    native,
                    native_type,
                    why,
                )
            )
        return items

    def read_feed(
        self,
        after: int,
        *,
        regions: Sequence[str] = (),
        kinds: Sequence[str] = (),
        limit: int = DEFAULT_FEED_BATCH,
        native_region: str | None = None,
    ) -> list[FeedItem]:
        """Accepted records after feed position ``after``, in order, with their envelopes.

        With ``native_region``, each record is also rendered in that region's format where the
        format expresses it exactly, and otherwise carries the reason it does not.
        """
        if not 1 <= limit <= MAX_FEED_BATCH:
            raise errors.InvalidArgument(
                f"batch size must be 1..{MAX_FEED_BATCH}",
                field_errors={"max_batch_size": "out of range"},
            )
        where: list[ColumnElement[bool]] = [RecordRow.id > after]
        if regions:
            where.append(RecordRow.region.in_(regions))
        if kinds:
            where.append(RecordRow.kind.in_(kinds))
        return self._items(where, limit, native_region)

    def get_record(self, name: str) -> FeedItem:
        """The current revision of a record (the newest version, for a methodology)."""
        found = self._items(
            [RecordRow.name == name, RecordRow.is_current.is_(True)], MAX_FEED_BATCH, None
        )
        if not found:
            raise errors.RecordNotFound(f"no record {name}", metadata={"name": name})
        return found[-1]

    def list_records(
        self, *, region: str = "", kind: str = "", page_size: int = 0, after: int = 0
    ) -> tuple[list[FeedItem], int]:
        """Current records in feed order, page by page; returns the page and the position to
        resume after (0 on the last page)."""
        if not 0 <= page_size <= 1000:
            raise errors.InvalidArgument(
                "page_size must be 0..1000", field_errors={"page_size": "out of range"}
            )
        limit = page_size or 100
        where: list[ColumnElement[bool]] = [RecordRow.is_current.is_(True), RecordRow.id > after]
        if region:
            where.append(RecordRow.region == region)
        if kind:
            where.append(RecordRow.kind == kind)
        items = self._items(where, limit + 1, None)
        more = len(items) > limit
        items = items[:limit]
        return items, (items[-1].position if more else 0)


def _inner(record: records_pb2.Record) -> CommonRecord:
    """The methodology, project or issuance inside a Record."""
    if record.HasField("methodology"):
        return record.methodology
    if record.HasField("project"):
        return record.project
    return record.issuance
