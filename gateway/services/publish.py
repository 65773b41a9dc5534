"""One Publish batch: every envelope is checked in order against the database and against what
the batch itself has accepted so far; the accepted ones are then written with bulk inserts in one
transaction. A refused envelope adds nothing, so it changes nothing.

Checks for each envelope, in order: the key belongs to the caller's region, signs records and is
not revoked; the signature verifies over the bytes as received; the sequence is the next one and
chains to the signer's last envelope (gap and fork refused; an envelope accepted before is answered
with its first answer, the names of the records it carried, and nothing is stored again), and its
``sign_time`` is within the allowed skew of the gateway's clock; the region's adapter maps the
payload; cross-record checks hold (methodology known, capacity within its maximum, project known and
registered, monitoring inside crediting, issuance id new, serials not overlapping: they are
``gateway.services.record_checks``). Every statement is the records store's
(``gateway.storage.records``); the stored bodies are written by ``gateway.protowire``.

A large batch's signatures are checked by a worker process (``gateway.services.verifier``) while
the batch is parsed, checked and written; the checks take them as valid meanwhile, and if one was
not, the transaction is rolled back and the batch checked again with each signature verified in
its turn, so the outcomes are those of the order above.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session
from yrd.interop.v1 import envelope_pb2, records_pb2

from adapters.base import CommonRecord, RegionAdapter
from adapters.errors import NativeFormatError, UnknownContentTypeError
from adapters.registry import AdapterRegistry
from gateway import errors, protowire
from gateway.security.audit_chain import canonical_json
from gateway.security.identity import Identity
from gateway.security.signing import EnvelopeFields, envelope_hash, signing_input, verify
from gateway.services.duplicates import Detector
from gateway.services.intake import (
    check_chain,
    check_signer,
    envelope_fields,
    sign_time_refusal,
)
from gateway.services.record_checks import KnownRecords, RecordChecks
from gateway.services.verifier import Pending, SignatureWorker
from gateway.storage.audit_log import AuditLog
from gateway.storage.models import SigningKeyRow
from gateway.storage.records import EnvelopeColumns, PlannedRecord, RecordsStore
from mutual_recognition import ApprovalPolicy

_KIND: dict[type, str] = {
    records_pb2.Methodology: "methodology",
    records_pb2.Project: "project",
    records_pb2.Issuance: "issuance",
}


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
    untimely: errors.DomainError | None = None
    """The refusal of its ``sign_time`` (raised at the chain check unless it is a replay)."""


class SignaturesUnconfirmed(Exception):
    """A signature taken as valid while the worker checked it was not (or the worker failed)."""


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
    sign_time_skew: dt.timedelta | None = None
    """How far ``sign_time`` may be from ``now`` (None: no window)."""
    approvals: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    """The recognition approval policy: the quorum a duplicate case needs."""
    envelopes: list[EnvelopeColumns] = field(default_factory=list)
    planned: list[PlannedRecord] = field(default_factory=list)
    _keys: dict[str, SigningKeyRow | None] = field(default_factory=dict)
    _heads: dict[str, _Head] = field(default_factory=dict)
    _accepted: dict[tuple[str, int], bytes] = field(default_factory=dict)
    """Hash of each envelope this batch accepted, by (key id, sequence)."""
    _answers: dict[bytes, tuple[str, ...]] = field(default_factory=dict)
    """The record names each envelope this batch accepted was answered with, by its hash."""
    _adapters: dict[str, RegionAdapter] = field(default_factory=dict)
    _current: dict[tuple[str, str], PlannedRecord] = field(default_factory=dict)
    _pending: Pending | None = None
    _trusted: list[int] = field(default_factory=list)
    """Worker jobs whose signature a check took as valid."""

    def __post_init__(self) -> None:
        self.store = RecordsStore(self.session)
        self.store.lock_region(self.region)
        self.known = KnownRecords(self.store, self.adapters, self.region)
        # Every record of the batch carries the same acceptance time: encoded once.
        self._accepted_time = protowire.record_accepted_time(self.now)

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
        self.known.prefetch([r for p in prepared for r in p.records])
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
        p.untimely = sign_time_refusal(fields, self.now, self.sign_time_skew)
        return p

    def _submit(self, prepared: list[Prepared], worker: SignatureWorker) -> None:
        ids = sorted(
            {p.fields.key_id for p in prepared if p.fields is not None} - self._keys.keys()
        )
        # The keys are locked now rather than at their first envelope: same order (region, keys,
        # audit head), and in key order, as every batch takes them.
        for row in self.store.lock_keys(ids):
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
        try:
            check_chain(
                self.session.connection(),
                key_id,
                head.sequence,
                head.hash,
                fields,
                digest,
                self._accepted.get((key_id, fields.sequence)),
                p.untimely,
            )
        except errors.EnvelopeReplayed:
            first = self._first_answer(digest)
            if first is None:
                raise  # accepted before as another request (a transfer's, a decision's)
            return first
        if p.parse_error is not None:
            raise p.parse_error
        records = p.records
        # Check every record against the database and the batch so far, without changing either,
        # so a refusal of any record of the envelope leaves no trace.
        overlay = RecordChecks(self.known)
        for record in records:
            overlay.check(record)
        number = len(self.envelopes)
        self.envelopes.append(
            EnvelopeColumns(
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
        hash_field = protowire.record_envelope_hash(digest)
        for index, record in enumerate(records):
            self._plan(number, index, record, hash_field)
        self._accepted[(key_id, fields.sequence)] = digest
        head.sequence, head.hash = fields.sequence, digest
        names = self._answers[digest] = tuple(r.name for r in records)
        return names

    def _first_answer(self, digest: bytes) -> tuple[str, ...] | None:
        """The record names an envelope accepted before (in this batch or an earlier one) was
        answered with; None when it carried no document (it was another signed request)."""
        if digest in self._answers:
            return self._answers[digest]
        names = tuple(self.store.record_names_of(digest))
        return names or None

    def _key(self, key_id: str) -> SigningKeyRow | None:
        if key_id not in self._keys:
            row = self.store.lock_key(key_id)
            self._keys[key_id] = row
            if row is not None:
                self._heads[key_id] = _Head(row.last_sequence, row.last_hash)
        return self._keys[key_id]

    def _plan(self, envelope: int, index: int, record: CommonRecord, hash_field: bytes) -> None:
        # The stored body is a Record around the adapter's message: its bytes are concatenated
        # as the encoder would write them (kind, accepted_time, envelope_hash), not re-encoded.
        body = protowire.record_body(record, self._accepted_time, hash_field)
        planned = PlannedRecord(envelope, index, record, _KIND[type(record)], "", body)
        if isinstance(record, records_pb2.Methodology):
            planned.version = record.version
            ref = self.adapters.get(record.region).methodology_ref(record)
            planned.methodology_ref = (ref.methodology_id, ref.version)
        key = (record.name, planned.version)
        earlier = self._current.get(key)
        if earlier is not None:
            earlier.is_current = False
        self._current[key] = planned
        self.planned.append(planned)

    # -- lookups shared by the checks -----------------------------------------------------------

    # -- the write ------------------------------------------------------------------------------

    def write(self) -> None:
        """Write everything the batch accepted, in bulk, inside the caller's transaction."""
        if not self.envelopes:
            return
        store = self.store
        # The audit head is locked first and held to the commit: every publish writes its feed
        # rows under it, so feed positions become visible in order (a subscriber's cursor never
        # passes a position a slower transaction fills later), and the ids below are allocated
        # without a race.
        audit = store.audit_log()
        stamp = store.stored_time(self.now)
        first_envelope = store.write_envelopes(self.envelopes, stamp)
        # Only methodologies and projects have revisions: an issuance id is accepted once.
        previous = store.supersede(
            {(p.record.name, p.version) for p in self.planned if p.kind != "issuance"}
        )
        store.write_records(self.planned, first_envelope, stamp)
        store.write_audit(
            audit.extend(
                self._audit_entries(previous),
                actor_region=self.caller.region or "",
                actor=self.caller.actor,
                now=self.now,
                stored_now=stamp,
            )
        )
        self._detect_duplicates(audit)
        for key_id, chain in self._heads.items():
            key = self._keys[key_id]
            if key is not None and chain.sequence != key.last_sequence:
                store.advance_chain(key_id, chain.sequence, chain.hash)
        store.flush()

    def _detect_duplicates(self, audit: AuditLog) -> None:
        """Duplicate detection for the batch's projects (their current revisions), then the holds
        of the open cases of its issuances' projects (``gateway.services.duplicates``)."""
        projects = [p.record for p in self.planned if p.kind == "project" and p.is_current]
        issued = {
            p.record.project for p in self.planned if isinstance(p.record, records_pb2.Issuance)
        }
        if not projects and not issued:
            return
        detector = Detector(
            self.session.connection(),
            audit,
            self.approvals,
            now=self.now,
            actor_region=self.caller.region or "",
            actor=self.caller.actor,
        )
        for project in projects:
            assert isinstance(project, records_pb2.Project)
            ref = project.methodology
            methodology = self.known.methodology_by_ref(
                project.region, ref.methodology_id, ref.version
            )
            assert methodology is not None, "the checks accepted the project with its methodology"
            detector.project_accepted(project, methodology.category)
        if issued:
            detector.issuances_accepted(issued)

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
