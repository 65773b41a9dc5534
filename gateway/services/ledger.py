"""The unit ledger and two-phase cross-region transfers.

A transfer is PROPOSED (its blocks reserved), then resolves exactly once: COMPLETED (blocks move to
the destination), REJECTED, CANCELLED or EXPIRED (blocks released). Every request is a signed
envelope of the caller's registry key; every call is one transaction with row locks, so several
gateway processes on one PostgreSQL stay correct. The numbered checks (metadata["check"]) run on
propose and again on accept:

1. the caller is the source (propose, cancel) or the destination (accept, reject);
2. the signing key is the caller's registry key and the signature verifies;
3. the transfer id is new — or the same id with a byte-identical request, answered as the first;
4. every serial exists, is held by the source, and is active (not reserved, retired, cancelled);
5. the destination recognises the units (through the recognition policy);
6. source and destination differ.

Performance (each step measured with bench/transfers.py):

- the statements are SQLAlchemy Core, compiled once and run on the DBAPI cursor
  (``gateway.storage.direct``): no ORM unit of work, no per-call compilation, no row read back
  after it was written; a transfer's final writes go out together (one statement on PostgreSQL);
- everything that needs no database — the envelope's shape, signing input and hash, the
  signature when the key is known, the payload's parsing and validation — is done before the
  transaction; errors found early are raised where those checks always stood, so the answers and
  their order do not depend on what was done early;
- proposals, answers and retirements that arrive together share one transaction (group commit,
  ``gateway.storage.group_commit``), each in a savepoint of its own: one commit — on PostgreSQL
  one WAL flush — for the lot, and the same effects as one after another.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

import structlog
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage
from sqlalchemy import Connection, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from yrd.interop.v1 import envelope_pb2, transfer_pb2, transfer_service_pb2

from gateway import errors
from gateway.contract import (
    ACTIVE,
    ANSWER_TYPE,
    CANCELLED,
    CANCELLED_T,
    COMPLETED,
    DECISION,
    EXPIRED,
    PROPOSAL_TYPE,
    PROPOSED,
    REJECTED,
    RESERVED,
    RETIRED,
    RETIREMENT_TYPE,
)
from gateway.security.identity import Identity, Role
from gateway.services import Clock, page_limit, page_of, utc_now
from gateway.services.signed import (
    PreparedEnvelope,
    SignedRequest,
    advance_chain,
    insert_envelope,
    lock_signing_keys,
    open_prepared,
    prepare_signed,
)
from gateway.storage.db import Database, UnitOfWork
from gateway.storage.direct import Statement, Writes
from gateway.storage.group_commit import GroupCommit
from gateway.storage.models import (
    IssuanceRow,
    RetirementRow,
    TransferRow,
    UnitBlockRow,
)
from gateway.storage.repositories import AuditChain, audit_chain
from mutual_recognition import EtsOffsetPolicy

log = structlog.get_logger("yrdgw.ledger")

TONNE = 1_000_000
_RETIRE_PURPOSES = (
    transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
    transfer_pb2.TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY,
    transfer_pb2.TRANSFER_PURPOSE_CHARITABLE,
)
M = TypeVar("M", bound=ProtoMessage)


class RecognitionPolicy(Protocol):
    """Answers check 5: does ``region`` recognise these units?"""

    def verdict(
        self, session: Session, region: str, block: UnitBlockRow
    ) -> tuple[str | None, Fraction | None]:
        """(None when recognised, else a human-readable reason; the adjustment ratio ``region``
        applies when the block offsets its ETS, None meaning 1)."""
        ...


class AllowAllRecognition:
    """Every region recognises every unit: the stand-in until mutual recognition is enforced."""

    _announced = False

    def __init__(self) -> None:
        if not AllowAllRecognition._announced:  # once per process, not once per service
            AllowAllRecognition._announced = True
            log.warning(
                "recognition.allow_all",
                detail="check 5 (destination recognises the units) passes every transfer",
            )

    def verdict(
        self, session: Session, region: str, block: UnitBlockRow
    ) -> tuple[str | None, Fraction | None]:
        return None, None


@dataclass(frozen=True, slots=True)
class BlockView:
    """A ledger block as handed out."""

    id: int
    origin_region: str
    issuance: str
    project: str
    vintage: int
    serial_start: int
    serial_end: int
    holder_region: str
    state: str
    reserved_by: str | None
    parent_id: int | None

    @classmethod
    def of(cls, b: UnitBlockRow) -> BlockView:
        return cls(
            b.id,
            b.origin_region,
            b.issuance_name,
            b.project_name,
            b.vintage,
            b.serial_start,
            b.serial_end,
            b.holder_region,
            b.state,
            b.reserved_by,
            b.parent_id,
        )


@dataclass(frozen=True, slots=True)
class TransferView:
    """A transfer and its blocks."""

    name: str
    transfer_id: str
    source_region: str
    destination_region: str
    purpose: int
    state: str
    quantity_grams: int
    proposed_at: dt.datetime
    expires_at: dt.datetime
    resolved_at: dt.datetime | None
    reason: str | None
    blocks: tuple[BlockView, ...]


@dataclass(frozen=True, slots=True)
class RetirementView:
    """A retirement and the blocks it consumed."""

    name: str
    retirement_id: str
    holder_region: str
    purpose: int
    beneficiary: str
    compliance_year: int
    quantity_grams: int
    credited_grams: int
    ratio: Fraction
    retired_at: dt.datetime
    blocks: tuple[BlockView, ...]


# -- the tables and the statements, built once ---------------------------------------------------


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_B, _T, _R = _table(UnitBlockRow), _table(TransferRow), _table(RetirementRow)


def _inserter(table: Table) -> Statement:
    """INSERT of every column but a generated id, its values named ``v_<column>``."""
    return Statement(
        insert(table).values(
            {
                c.key: bindparam(f"v_{c.key}", type_=c.type)
                for c in table.c
                if not (c.primary_key and c.autoincrement is not False)
            }
        )
    )


def _values(**values: Any) -> dict[str, Any]:
    """Parameters of an ``_inserter`` statement."""
    return {f"v_{k}": v for k, v in values.items()}


@dataclass(slots=True)
class _Block:
    """A ledger block as read, changed in memory, then written back by explicit statements."""

    id: int
    origin_region: str
    issuance_name: str
    project_name: str
    vintage: int
    serial_start: int
    serial_end: int
    holder_region: str
    state: str
    reserved_by: str | None
    retired_by: str | None
    parent_id: int | None
    created_at: dt.datetime

    @property
    def size(self) -> int:
        return self.serial_end - self.serial_start + 1

    def view(self) -> BlockView:
        return BlockView(
            self.id,
            self.origin_region,
            self.issuance_name,
            self.project_name,
            self.vintage,
            self.serial_start,
            self.serial_end,
            self.holder_region,
            self.state,
            self.reserved_by,
            self.parent_id,
        )

    def as_row(self) -> UnitBlockRow:
        """A detached model instance, for a recognition policy (which reads it, never writes)."""
        return UnitBlockRow(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True, slots=True)
class _Transfer:
    """A transfer as read (the columns of ``transfers``)."""

    id: int
    name: str
    transfer_id: str
    source_region: str
    destination_region: str
    purpose: int
    state: str
    quantity_grams: int
    request_sha256: bytes
    proposal_envelope: bytes
    answer_envelope: bytes | None
    proposed_at: dt.datetime
    expires_at: dt.datetime
    resolved_at: dt.datetime | None
    reason: str | None

    def view(self, blocks: Iterable[_Block]) -> TransferView:
        return TransferView(
            self.name,
            self.transfer_id,
            self.source_region,
            self.destination_region,
            self.purpose,
            self.state,
            self.quantity_grams,
            self.proposed_at,
            self.expires_at,
            self.resolved_at,
            self.reason,
            tuple(b.view() for b in blocks),
        )


@dataclass(frozen=True, slots=True)
class _Retirement:
    """The columns of ``retirements`` a retirement is answered with."""

    name: str
    retirement_id: str
    holder_region: str
    purpose: int
    beneficiary: str
    compliance_year: int
    quantity_grams: int
    credited_grams: int
    ratio_numerator: int
    ratio_denominator: int
    request_sha256: bytes
    retired_at: dt.datetime


def _columns(table: Table, shape: type[Any]) -> tuple[Any, ...]:
    """The columns of ``table`` in the order of the fields of ``shape``."""
    return tuple(table.c[f.name] for f in fields(shape))


_BLOCK_COLUMNS = _columns(_B, _Block)
_TRANSFER_COLUMNS = _columns(_T, _Transfer)
_IN_ORDER = (_B.c.origin_region, _B.c.serial_start)


def _blocks(rows: Iterable[Sequence[Any]]) -> list[_Block]:
    return [_Block(*r) for r in rows]


def _sorted(blocks: list[_Block]) -> list[_Block]:
    blocks.sort(key=lambda b: (b.origin_region, b.serial_start))
    return blocks


# Blocks never overlap, so those overlapping [first, last] are the one holding `first` — the last
# to start at or before it — and those starting after it up to `last`: two bounded index range
# reads on (origin_region, serial_start), however many blocks the origin has (a plain
# `serial_start <= last AND serial_end >= first` scans every block of the origin before `last`).
_HOLDING_FIRST = (
    select(func.max(_B.c.serial_start))
    .where(_B.c.origin_region == bindparam("origin"), _B.c.serial_start <= bindparam("first"))
    .scalar_subquery()
)
_BLOCKS_IN_RANGE = Statement(
    select(*_BLOCK_COLUMNS)
    .where(
        _B.c.origin_region == bindparam("origin"),
        _B.c.serial_start >= func.coalesce(_HOLDING_FIRST, bindparam("first")),
        _B.c.serial_start <= bindparam("last"),
        _B.c.serial_end >= bindparam("first"),
    )
    .order_by(_B.c.serial_start)
    .with_for_update()
)
_BLOCKS_OF_VINTAGE = Statement(
    select(*_BLOCK_COLUMNS)
    .where(
        _B.c.holder_region == bindparam("holder"),
        _B.c.state == ACTIVE,
        _B.c.project_name == bindparam("project"),
        _B.c.vintage == bindparam("vintage"),
    )
    .order_by(*_IN_ORDER)
    .with_for_update()
)
_RESERVED_BY = Statement(
    select(*_BLOCK_COLUMNS).where(_B.c.reserved_by == bindparam("t_name")).order_by(*_IN_ORDER)
)
_RETIRED_BY = Statement(
    select(*_BLOCK_COLUMNS).where(_B.c.retired_by == bindparam("r_name")).order_by(*_IN_ORDER)
)
_INSERT_BLOCK = _inserter(_B)
_NARROW_BLOCK = Statement(
    update(_B)
    .where(_B.c.id == bindparam("b_id"))
    .values(serial_start=bindparam("b_start"), serial_end=bindparam("b_end"))
)
_RESERVE = Statement(
    update(_B)
    .where(_B.c.id == bindparam("b_id"))
    .values(state=RESERVED, reserved_by=bindparam("t_name"))
)
_RETIRE = Statement(
    update(_B)
    .where(_B.c.id == bindparam("b_id"))
    .values(state=RETIRED, retired_by=bindparam("r_name"))
)
# A resolved transfer's blocks become active again: at the destination (completed) or where they
# were (released). The changed rows come back, so they are never read twice.
_MOVE_RESERVED = Statement(
    update(_B)
    .where(_B.c.reserved_by == bindparam("t_name"))
    .values(state=ACTIVE, reserved_by=None, holder_region=bindparam("to"))
    .returning(*_BLOCK_COLUMNS)
)
_RELEASE_RESERVED = Statement(
    update(_B)
    .where(_B.c.reserved_by == bindparam("t_name"))
    .values(state=ACTIVE, reserved_by=None)
    .returning(*_BLOCK_COLUMNS)
)

_TRANSFER_BY_NAME = select(*_TRANSFER_COLUMNS).where(_T.c.name == bindparam("t_name"))
_TRANSFER = Statement(_TRANSFER_BY_NAME)
_TRANSFER_LOCKED = Statement(_TRANSFER_BY_NAME.with_for_update())
_INSERT_TRANSFER = _inserter(_T)
_RESOLVED: dict[str, Any] = {
    "state": bindparam("outcome"),
    "resolved_at": bindparam("now"),
    "answer_envelope": bindparam("envelope"),
    "reason": bindparam("why"),
}
# The answer in one statement when it passes every check on the transfer (it exists, the caller
# is its destination — or source, to cancel —, it is pending and, unless cancelled, not past its
# deadline). No row: the checks are made one by one, and the first to fail answers.
_RESOLVE_AS_DESTINATION = Statement(
    update(_T)
    .where(
        _T.c.name == bindparam("t_name"),
        _T.c.destination_region == bindparam("caller"),
        _T.c.state == PROPOSED,
        _T.c.expires_at > bindparam("now"),
    )
    .values(**_RESOLVED)
    .returning(*_TRANSFER_COLUMNS)
)
_RESOLVE_AS_SOURCE = Statement(
    update(_T)
    .where(
        _T.c.name == bindparam("t_name"),
        _T.c.source_region == bindparam("caller"),
        _T.c.state == PROPOSED,
    )
    .values(**_RESOLVED)
    .returning(*_TRANSFER_COLUMNS)
)
_RESOLVE = Statement(
    update(_T).where(_T.c.id == bindparam("t_id")).values(**_RESOLVED).returning(*_TRANSFER_COLUMNS)
)
_DUE = Statement(
    select(*_TRANSFER_COLUMNS)
    .where(_T.c.state == PROPOSED, _T.c.expires_at <= bindparam("now"))
    .order_by(_T.c.id)
    .with_for_update()
)

_RETIREMENT = Statement(select(*_columns(_R, _Retirement)).where(_R.c.name == bindparam("r_name")))
_INSERT_RETIREMENT = _inserter(_R)
_EARLIER_OFFSETS = Statement(
    select(
        func.coalesce(func.sum(_R.c.credited_grams), 0),
        func.coalesce(func.sum(_R.c.outside_grams), 0),
    ).where(
        _R.c.holder_region == bindparam("holder"),
        _R.c.beneficiary == bindparam("beneficiary"),
        _R.c.compliance_year == bindparam("year"),
        _R.c.purpose == transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
    )
)


@dataclass(frozen=True, slots=True)
class _Incoming(Generic[M]):
    """A signed request checked as far as it can be before its transaction."""

    prepared: PreparedEnvelope
    body: M
    """The payload parsed (empty when it does not parse)."""
    invalid: errors.DomainError | None
    """Why the payload is refused (None: it is not), raised once the signature is checked."""

    @property
    def payload_sha256(self) -> bytes:
        return hashlib.sha256(self.prepared.fields.payload).digest()

    @property
    def key_id(self) -> str:
        return self.prepared.fields.key_id


def _decode(
    kind: type[M], payload: bytes, validate: Callable[[M], None] | None = None
) -> tuple[M, errors.DomainError | None]:
    """The payload parsed as ``kind`` and validated, or the error to raise where those checks
    stand (after the signature's)."""
    try:
        message = kind.FromString(payload)
    except DecodeError as exc:
        err = errors.PayloadMalformed(f"payload is not a {kind.DESCRIPTOR.name}")
        err.__cause__ = exc
        return kind(), err
    if validate is not None:
        try:
            validate(message)
        except errors.DomainError as exc:
            return message, exc
    return message, None


def _transfer(
    statement: Statement, conn: Connection, values: Mapping[str, Any]
) -> _Transfer | None:
    """The transfer a statement returns (a SELECT or an UPDATE … RETURNING), if any."""
    row = statement.first(conn, values)
    return None if row is None else _Transfer(*row)


def _moved(blocks: Sequence[_Block]) -> list[list[object]]:
    """The ranges a transfer moved, as its audit entry names them."""
    return [[b.origin_region, b.serial_start, b.serial_end] for b in blocks]


def _check(err: errors.DomainError, number: int) -> errors.DomainError:
    err.metadata.setdefault("check", str(number))
    return err


class LedgerService:
    """Transfers and the ledger's invariants. Every public method's effects commit atomically, in
    one transaction (which requests arriving together may share: see the module's docstring)."""

    def __init__(
        self,
        db: Database,
        clock: Clock = utc_now,
        recognition: RecognitionPolicy | None = None,
        proposal_ttl: dt.timedelta = dt.timedelta(hours=24),
        ets_policies: Mapping[str, EtsOffsetPolicy] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.recognition = recognition or AllowAllRecognition()
        self.proposal_ttl = proposal_ttl
        self.ets_policies = dict(ets_policies or {})
        # Proposals, answers and retirements arriving together share a transaction.
        self._writes = GroupCommit(db, prelude=lock_signing_keys)

    # -- the signed request ---------------------------------------------------------------------

    @staticmethod
    def _receive(
        caller: Identity,
        env: envelope_pb2.SignedEnvelope,
        content_type: str,
        kind: type[M],
        validate: Callable[[M], None] | None = None,
    ) -> _Incoming[M]:
        """Check 1, what check 2 can do before the transaction (see ``prepare_signed``), and
        the payload parsed as ``kind`` (its refusal waits for the signature's check)."""
        if caller.role is not Role.REGISTRY or caller.region is None:
            raise _check(errors.PermissionDenied("only registries sign transfer requests"), 1)
        try:
            prepared = prepare_signed(caller, env, content_type)
        except (errors.EnvelopeMalformed, errors.PayloadMalformed):
            raise
        except errors.DomainError as exc:
            raise _check(exc, 2) from exc
        body, invalid = _decode(kind, prepared.fields.payload, validate)
        return _Incoming(prepared, body, invalid)

    @staticmethod
    def _open(unit: UnitOfWork, caller: Identity, incoming: _Incoming[Any]) -> SignedRequest:
        """Check 2: the caller's registry key signed exactly these bytes; then the payload's own
        refusal, if any.

        Every ledger write takes its locks in one order — signing key, audit head, transfer,
        blocks — so concurrent proposals, answers and expiries across gateway processes queue
        instead of deadlocking, and a retried request always sees the first one's transfer.
        """
        try:
            signed = open_prepared(unit, caller, incoming.prepared, advance=True)
        except (errors.EnvelopeMalformed, errors.PayloadMalformed):
            raise
        except errors.DomainError as exc:
            raise _check(exc, 2) from exc
        if incoming.invalid is not None:
            raise incoming.invalid
        return signed

    def _recognised(
        self, unit: UnitOfWork, region: str, blocks: Sequence[_Block]
    ) -> dict[tuple[str, int], Fraction | None]:
        """Check 5: ``region`` recognises every block (asked once per project and vintage);
        returns the ETS ratio in force for each."""
        ratios: dict[tuple[str, int], Fraction | None] = {}
        if type(self.recognition) is AllowAllRecognition:
            return ratios  # it answers without looking: no need to build the rows it would get
        for block in blocks:
            key = (block.project_name, block.vintage)
            if key in ratios:
                continue
            reason, ratios[key] = self.recognition.verdict(unit.session, region, block.as_row())
            if reason is not None:
                raise _check(
                    errors.NotRecognised(
                        f"{region} does not recognise {block.project_name} "
                        f"(vintage {block.vintage}): {reason}",
                        metadata={"project": block.project_name},
                    ),
                    5,
                )
        return ratios

    @staticmethod
    def _repeat(
        unit: UnitOfWork, caller: Identity, signed: SignedRequest, name: str, now: dt.datetime
    ) -> None:
        """A request repeated under its id with byte-identical content. Resent as the very same
        envelope, nothing is stored; signed anew, its envelope takes its place in the signer's
        chain (so a client that re-signs its retries stays in step) and is audited."""
        try:
            advance_chain(unit, signed)
        except errors.EnvelopeReplayed:
            return
        insert_envelope(unit.conn, signed, now)
        signed.audit.append(
            kind="request.repeated",
            subject=name,
            actor_region=caller.region or "",
            actor=caller.actor,
            detail={"envelope_hash": signed.digest.hex(), "sequence": signed.fields.sequence},
            now=now,
        )

    # -- propose --------------------------------------------------------------------------------

    def propose(self, caller: Identity, env: envelope_pb2.SignedEnvelope) -> TransferView:
        """Reserve the source's units for the destination (checks 1–6)."""
        now = self.clock()
        incoming = self._receive(
            caller,
            env,
            PROPOSAL_TYPE,
            transfer_service_pb2.TransferProposal,
            self._validate_proposal,
        )
        proposal = incoming.body
        source = caller.region
        assert source is not None
        name = f"regions/{source}/transfers/{proposal.transfer_id}"
        request_sha = incoming.payload_sha256

        def work(unit: UnitOfWork) -> TransferView:
            signed = self._open(unit, caller, incoming)
            conn = unit.conn
            existing = _transfer(_TRANSFER, conn, {"t_name": name})
            if existing is not None:
                if existing.request_sha256 == request_sha:
                    # The same request again: the first answer, and the chain moves on.
                    self._repeat(unit, caller, signed, existing.name, now)
                    return self._view(conn, existing)
                raise _check(
                    errors.TransferIdReused(
                        f"transfer id {proposal.transfer_id} was used for another request",
                        metadata={"transfer": name},
                    ),
                    3,
                )
            if proposal.destination_region == source:
                raise _check(errors.SameRegion("source and destination are the same region"), 6)
            advance_chain(unit, signed)
            blocks = self._select(conn, source, proposal.units)
            self._recognised(unit, proposal.destination_region, blocks)
            quantity = sum(b.size for b in blocks)
            purpose = proposal.purpose or transfer_pb2.TRANSFER_PURPOSE_TRANSFER
            expires = now + self.proposal_ttl
            for block in blocks:
                block.state, block.reserved_by = RESERVED, name
            _sorted(blocks)
            # Every check passed: the writes go out together (on PostgreSQL as one statement).
            writes = Writes()
            insert_envelope(conn, signed, now, writes)
            writes.add(
                _INSERT_TRANSFER,
                _values(
                    name=name,
                    transfer_id=proposal.transfer_id,
                    source_region=source,
                    destination_region=proposal.destination_region,
                    purpose=purpose,
                    state=PROPOSED,
                    quantity_grams=quantity,
                    request_sha256=request_sha,
                    proposal_envelope=signed.digest,
                    answer_envelope=None,
                    proposed_at=now,
                    expires_at=expires,
                    resolved_at=None,
                    reason=None,
                ),
            )
            for block in blocks:
                writes.add(_RESERVE, {"b_id": block.id, "t_name": name})
            self._audit(
                signed.audit,
                caller,
                "transfer.proposed",
                now,
                signed.digest,
                blocks,
                name=name,
                source=source,
                destination=proposal.destination_region,
                quantity=quantity,
                reason=None,
                writes=writes,
            )
            writes.run(conn)
            return TransferView(
                name,
                proposal.transfer_id,
                source,
                proposal.destination_region,
                purpose,
                PROPOSED,
                quantity,
                now,
                expires,
                None,
                None,
                tuple(b.view() for b in blocks),
            )

        return self._writes.run(work, incoming.key_id)

    @staticmethod
    def _validate_proposal(p: transfer_service_pb2.TransferProposal) -> None:
        problems: dict[str, str] = {}
        if not p.transfer_id or len(p.transfer_id) > 120 or "/" in p.transfer_id:
            problems["transfer_id"] = "required, at most 120 characters, no '/'"
        if len(p.destination_region) != 6 or not p.destination_region.isdigit():
            problems["destination_region"] = "a six-digit region code"
        kind = p.units.WhichOneof("selection")
        if kind is None:
            problems["units"] = "serial ranges or a quantity are required"
        elif kind == "ranges":
            ranges = sorted((r.start, r.end) for r in p.units.ranges.ranges)
            if not ranges:
                problems["units.ranges"] = "at least one range"
            if any(s < 0 or e < s for s, e in ranges):
                problems["units.ranges"] = "each range needs 0 <= start <= end"
            if any(b[0] <= a[1] for a, b in itertools.pairwise(ranges)):
                problems["units.ranges"] = "ranges overlap each other"
        elif p.units.quantity.quantity_grams <= 0:
            problems["units.quantity.quantity_grams"] = "must be a positive number of grams"
        if p.purpose not in (
            transfer_pb2.TRANSFER_PURPOSE_UNSPECIFIED,
            transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
            transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
        ):
            problems["purpose"] = "a transfer's purpose is TRANSFER or ETS_OFFSET"
        if problems:
            raise errors.InvalidArgument("invalid transfer proposal", field_errors=problems)

    def _select(
        self, conn: Connection, source: str, units: transfer_pb2.UnitSelection
    ) -> list[_Block]:
        """Check 4, and the blocks carved to exactly the units asked for (locked)."""
        if units.WhichOneof("selection") == "ranges":
            origin = units.ranges.origin_region
            chosen: list[_Block] = []
            for r in sorted(units.ranges.ranges, key=lambda r: r.start):
                chosen.extend(self._carve_range(conn, source, origin, r.start, r.end))
            return chosen
        q = units.quantity
        blocks = _blocks(
            _BLOCKS_OF_VINTAGE.rows(
                conn, {"holder": source, "project": q.project, "vintage": q.vintage}
            )
        )
        wanted, chosen = q.quantity_grams, []
        for block in blocks:
            if wanted == 0:
                break
            take = min(block.size, wanted)
            chosen.append(_split(conn, block, block.serial_start, block.serial_start + take - 1))
            wanted -= take
        if wanted:
            raise _check(
                errors.InsufficientUnits(
                    f"{source} holds {q.quantity_grams - wanted} active grams of {q.project} "
                    f"vintage {q.vintage}, {q.quantity_grams} asked",
                ),
                4,
            )
        return chosen

    @staticmethod
    def _carve_range(
        conn: Connection, source: str, origin: str, start: int, end: int
    ) -> list[_Block]:
        blocks = _blocks(
            _BLOCKS_IN_RANGE.rows(conn, {"origin": origin, "first": start, "last": end})
        )
        meta = {"origin_region": origin, "range": f"{start}-{end}"}
        cursor = start
        for block in blocks:
            if block.serial_start > cursor:
                break
            cursor = block.serial_end + 1
        if not blocks or blocks[0].serial_start > start or cursor <= end:
            raise _check(
                errors.SerialsUnknown(
                    f"serials {start}..{end} of {origin} are not all issued", metadata=meta
                ),
                4,
            )
        for block in blocks:
            if block.holder_region != source:
                raise _check(
                    errors.SerialsNotHeld(
                        f"serials {max(start, block.serial_start)}..{min(end, block.serial_end)} "
                        f"are held by {block.holder_region}",
                        metadata=meta,
                    ),
                    4,
                )
            if block.state != ACTIVE:
                raise _check(
                    errors.SerialsNotActive(
                        f"serials {max(start, block.serial_start)}..{min(end, block.serial_end)} "
                        f"are {block.state}"
                        + (f" by {block.reserved_by}" if block.reserved_by else ""),
                        metadata=meta,
                    ),
                    4,
                )
        return [_split(conn, b, max(start, b.serial_start), min(end, b.serial_end)) for b in blocks]

    # -- retirement -----------------------------------------------------------------------------

    def retire(self, caller: Identity, env: envelope_pb2.SignedEnvelope) -> RetirementView:
        """Retire units the caller holds, for good (checks 1–5, and 7 for ETS offsets)."""
        now = self.clock()
        incoming = self._receive(
            caller, env, RETIREMENT_TYPE, transfer_service_pb2.RetirementOrder, self._validate_order
        )
        order = incoming.body
        holder = caller.region
        assert holder is not None
        name = f"regions/{holder}/retirements/{order.retirement_id}"
        request_sha = incoming.payload_sha256

        def work(unit: UnitOfWork) -> RetirementView:
            signed = self._open(unit, caller, incoming)
            conn = unit.conn
            found = _RETIREMENT.first(conn, {"r_name": name})
            existing = None if found is None else _Retirement(*found)
            if existing is not None:
                if existing.request_sha256 == request_sha:
                    self._repeat(unit, caller, signed, existing.name, now)
                    return self._retirement_view(conn, existing)
                raise _check(
                    errors.RetirementIdReused(
                        f"retirement id {order.retirement_id} was used for another request",
                        metadata={"retirement": name},
                    ),
                    3,
                )
            advance_chain(unit, signed)
            blocks = self._select(conn, holder, order.units)
            quantity = sum(b.size for b in blocks)
            exact, outside = Fraction(0), Fraction(0)
            ets = order.purpose == transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET
            ratios = self._recognised(unit, holder, blocks) if ets else {}
            for block in blocks:
                ratio = ratios.get((block.project_name, block.vintage)) or Fraction(1)
                exact += block.size * ratio
                if block.origin_region != holder:
                    outside += block.size * ratio
            credited = math.floor(exact)
            if ets:
                self._check_ets(
                    conn, holder, order, quantity, credited, math.floor(outside), blocks
                )
            effective = exact / quantity
            beneficiary = order.beneficiary.strip()
            writes = Writes()
            insert_envelope(conn, signed, now, writes)
            writes.add(
                _INSERT_RETIREMENT,
                _values(
                    name=name,
                    retirement_id=order.retirement_id,
                    holder_region=holder,
                    purpose=order.purpose,
                    beneficiary=beneficiary,
                    compliance_year=order.compliance_year,
                    declared_obligation_grams=order.declared_obligation_grams,
                    quantity_grams=quantity,
                    outside_grams=math.floor(outside),
                    credited_grams=credited,
                    ratio_numerator=effective.numerator,
                    ratio_denominator=effective.denominator,
                    request_sha256=request_sha,
                    envelope_hash=signed.digest,
                    retired_at=now,
                ),
            )
            for block in blocks:
                writes.add(_RETIRE, {"b_id": block.id, "r_name": name})
                block.state, block.retired_by = RETIRED, name
            _sorted(blocks)
            signed.audit.append(
                kind="units.retired",
                subject=name,
                actor_region=holder,
                actor=caller.actor,
                detail={
                    "envelope_hash": signed.digest.hex(),
                    "purpose": transfer_pb2.TransferPurpose.Name(order.purpose),
                    "beneficiary": beneficiary,
                    "compliance_year": order.compliance_year,
                    "quantity_grams": quantity,
                    "credited_grams": credited,
                    "ratio": f"{effective.numerator}/{effective.denominator}",
                    "rounding": str(exact - credited),
                    "blocks": _moved(blocks),
                },
                now=now,
                writes=writes,
            )
            writes.run(conn)
            return RetirementView(
                name,
                order.retirement_id,
                holder,
                order.purpose,
                beneficiary,
                order.compliance_year,
                quantity,
                credited,
                effective,
                now,
                tuple(b.view() for b in blocks),
            )

        return self._writes.run(work, incoming.key_id)

    @staticmethod
    def _validate_order(order: transfer_service_pb2.RetirementOrder) -> None:
        problems: dict[str, str] = {}
        if not order.retirement_id or len(order.retirement_id) > 120 or "/" in order.retirement_id:
            problems["retirement_id"] = "required, at most 120 characters, no '/'"
        if order.purpose not in _RETIRE_PURPOSES:
            problems["purpose"] = "ETS_OFFSET, VOLUNTARY_NEUTRALITY or CHARITABLE"
        if not order.beneficiary.strip():
            problems["beneficiary"] = "required"
        if order.units.WhichOneof("selection") is None:
            problems["units"] = "serial ranges or a quantity are required"
        if order.purpose == transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET:
            if order.compliance_year < 2000:
                problems["compliance_year"] = "required for an ETS offset"
            if order.declared_obligation_grams <= 0:
                problems["declared_obligation_grams"] = "required for an ETS offset"
        if problems:
            raise errors.InvalidArgument("invalid retirement order", field_errors=problems)

    def _check_ets(
        self,
        conn: Connection,
        region: str,
        order: transfer_service_pb2.RetirementOrder,
        quantity: int,
        credited: int,
        credited_outside: int,
        blocks: Sequence[_Block],
    ) -> None:
        """Check 7: the ETS region's offset policy."""
        policy = self.ets_policies.get(region)
        if policy is None:
            raise _check(errors.EtsRegionWithoutPolicy(f"{region} runs no ETS offset policy"), 7)
        if quantity % TONNE:
            raise _check(
                errors.EtsNotWholeTonnes(
                    f"{quantity} g is not a whole number of tonnes",
                    field_errors={"units": "whole tonnes only"},
                ),
                7,
            )
        if policy.vintage_window_years is not None:
            lowest = order.compliance_year - policy.vintage_window_years
            for block in blocks:
                if not lowest <= block.vintage <= order.compliance_year:
                    raise _check(
                        errors.EtsVintageOutsideWindow(
                            f"vintage {block.vintage} is outside {lowest}..{order.compliance_year}"
                        ),
                        7,
                    )
        sums = _EARLIER_OFFSETS.first(
            conn,
            {
                "holder": region,
                "beneficiary": order.beneficiary.strip(),
                "year": order.compliance_year,
            },
        )
        assert sums is not None
        earlier, earlier_outside = sums
        obligation = order.declared_obligation_grams
        cap = Fraction(policy.max_share) * obligation
        meta = {"earlier_grams": str(earlier), "cap_grams": str(math.floor(cap))}
        if earlier + credited > cap:
            raise _check(
                errors.EtsCapExceeded(
                    f"{earlier} g offset before + {credited} g now > {math.floor(cap)} g "
                    f"({policy.max_share} of {obligation} g)",
                    metadata=meta,
                ),
                7,
            )
        if policy.max_outside_share is not None:
            outside_cap = Fraction(policy.max_outside_share) * obligation
            if earlier_outside + credited_outside > outside_cap:
                raise _check(
                    errors.EtsOutsideCapExceeded(
                        f"{earlier_outside + credited_outside} g from outside {region} > "
                        f"{math.floor(outside_cap)} g",
                    ),
                    7,
                )

    @staticmethod
    def _retirement_view(conn: Connection, row: _Retirement) -> RetirementView:
        blocks = _blocks(_RETIRED_BY.rows(conn, {"r_name": row.name}))
        return RetirementView(
            row.name,
            row.retirement_id,
            row.holder_region,
            row.purpose,
            row.beneficiary,
            row.compliance_year,
            row.quantity_grams,
            row.credited_grams,
            Fraction(row.ratio_numerator, row.ratio_denominator),
            row.retired_at,
            tuple(b.view() for b in blocks),
        )

    # -- answers --------------------------------------------------------------------------------

    def accept(self, caller: Identity, env: envelope_pb2.SignedEnvelope) -> TransferView:
        """The destination takes the reserved units: they move atomically (checks re-run)."""
        return self._answer(caller, env, COMPLETED)

    def reject(self, caller: Identity, env: envelope_pb2.SignedEnvelope) -> TransferView:
        """The destination refuses: the units are released."""
        return self._answer(caller, env, REJECTED)

    def cancel(self, caller: Identity, env: envelope_pb2.SignedEnvelope) -> TransferView:
        """The source withdraws its proposal while pending: the units are released."""
        return self._answer(caller, env, CANCELLED_T)

    def _answer(
        self, caller: Identity, env: envelope_pb2.SignedEnvelope, outcome: str
    ) -> TransferView:
        now = self.clock()
        incoming = self._receive(
            caller,
            env,
            ANSWER_TYPE,
            transfer_service_pb2.TransferAnswer,
            partial(self._validate_answer, outcome=outcome),
        )
        answer = incoming.body
        why = answer.reason.strip() or None

        def work(unit: UnitOfWork) -> TransferView:
            signed = self._open(unit, caller, incoming)
            conn = unit.conn
            resolution = {
                "t_name": answer.transfer,
                "caller": caller.region,
                "now": now,
                "outcome": outcome,
                "envelope": signed.digest,
                "why": why,
            }
            row = None
            if outcome == COMPLETED or why is not None:
                resolve = _RESOLVE_AS_SOURCE if outcome == CANCELLED_T else _RESOLVE_AS_DESTINATION
                row = _transfer(resolve, conn, resolution)
            if row is None:
                # The answer is refused, or is the very same answer again: find out which, with
                # the checks in their order.
                found = _transfer(_TRANSFER_LOCKED, conn, {"t_name": answer.transfer})
                if self._answered_before(
                    found, answer.transfer, caller, outcome, signed.digest, why, now
                ):
                    assert found is not None
                    return self._view(conn, found)  # the same answer again: the first result
                assert found is not None
                row = _transfer(_RESOLVE, conn, {**resolution, "t_id": found.id})
                assert row is not None
            if outcome == COMPLETED:
                moved = _MOVE_RESERVED.rows(
                    conn, {"t_name": row.name, "to": row.destination_region}
                )
            else:
                moved = _RELEASE_RESERVED.rows(conn, {"t_name": row.name})
            blocks = _sorted(_blocks(moved))
            if outcome == COMPLETED:
                self._recognised(unit, row.destination_region, blocks)
            advance_chain(unit, signed)
            writes = Writes()
            insert_envelope(conn, signed, now, writes)
            self._audit(
                signed.audit,
                caller,
                f"transfer.{outcome.lower()}",
                now,
                signed.digest,
                blocks,
                name=row.name,
                source=row.source_region,
                destination=row.destination_region,
                quantity=row.quantity_grams,
                reason=row.reason,
                writes=writes,
            )
            writes.run(conn)
            # Answered as a repeat of it is (and as GetTransfer shows it): a resolved transfer
            # lists no blocks; the audit entry keeps the ranges it moved.
            return self._view(conn, row)

        return self._writes.run(work, incoming.key_id)

    @staticmethod
    def _validate_answer(answer: transfer_service_pb2.TransferAnswer, outcome: str) -> None:
        """Check 2, the part the payload decides: the answer signed is the answer asked for."""
        if answer.decision == DECISION[outcome]:
            return
        signed = transfer_service_pb2.TransferDecision.Name(answer.decision)
        wanted = transfer_service_pb2.TransferDecision.Name(DECISION[outcome])
        raise _check(
            errors.AnswerDecisionMismatch(
                f"the signed answer's decision is {signed}; this RPC takes {wanted}",
                field_errors={"decision": f"must be {wanted}"},
                metadata={"decision": signed},
            ),
            2,
        )

    @staticmethod
    def _answered_before(
        row: _Transfer | None,
        name: str,
        caller: Identity,
        outcome: str,
        digest: bytes,
        why: str | None,
        now: dt.datetime,
    ) -> bool:
        """The checks on the transfer an answer names, in order: raises the first that fails;
        True when this very answer resolved it already, False when it may be resolved now."""
        if row is None:
            raise errors.TransferNotFound(f"no transfer {name}", metadata={"transfer": name})
        if outcome == CANCELLED_T:
            if row.source_region != caller.region:
                raise _check(
                    errors.CallerNotSource(f"only {row.source_region} cancels {row.name}"), 1
                )
        elif row.destination_region != caller.region:
            raise _check(
                errors.CallerNotDestination(f"only {row.destination_region} answers {row.name}"),
                1,
            )
        if row.state != PROPOSED:
            if row.answer_envelope == digest and row.state == outcome:
                # The same answer to the same RPC again. (Replayed on another RPC, it resolved
                # nothing that RPC asks for: refused below.)
                return True
            raise errors.TransferNotPending(
                f"{row.name} is already {row.state}", metadata={"state": row.state}
            )
        if outcome != CANCELLED_T and now >= row.expires_at:
            raise errors.TransferExpired(f"{row.name} expired at {row.expires_at.isoformat()}")
        if outcome in (REJECTED, CANCELLED_T) and why is None:
            raise errors.InvalidArgument(
                "a reason is required", field_errors={"reason": "required"}
            )
        return False

    def expire_due(self, now: dt.datetime | None = None) -> list[str]:
        """Expire every proposal past its deadline, releasing its units; returns their names."""
        now = now or self.clock()
        gateway = Identity(Role.GATEWAY, None)
        expired: list[str] = []
        with self.db.transaction() as session:
            conn = session.connection()
            audit = audit_chain(conn)
            for due in _DUE.rows(conn, {"now": now}):
                row = _transfer(
                    _RESOLVE,
                    conn,
                    {
                        "t_id": _Transfer(*due).id,
                        "outcome": EXPIRED,
                        "now": now,
                        "envelope": None,
                        "why": "not answered before its deadline",
                    },
                )
                assert row is not None
                blocks = _sorted(_blocks(_RELEASE_RESERVED.rows(conn, {"t_name": row.name})))
                self._audit(
                    audit,
                    gateway,
                    "transfer.expired",
                    now,
                    b"",
                    blocks,
                    name=row.name,
                    source=row.source_region,
                    destination=row.destination_region,
                    quantity=row.quantity_grams,
                    reason=row.reason,
                )
                expired.append(row.name)
        return expired

    # -- reading --------------------------------------------------------------------------------

    def get(self, name: str) -> TransferView:
        with self.db.transaction() as session:
            conn = session.connection()
            row = _transfer(_TRANSFER, conn, {"t_name": name})
            if row is None:
                raise errors.TransferNotFound(f"no transfer {name}", metadata={"transfer": name})
            return self._view(conn, row)

    def list_transfers(
        self,
        *,
        source: str = "",
        destination: str = "",
        state: str = "",
        page_size: int = 0,
        after: int = 0,
    ) -> tuple[list[TransferView], int]:
        """Transfers in id order, page by page; returns the page and the id to resume after."""
        limit = page_limit(page_size)
        stmt = select(*_TRANSFER_COLUMNS).where(_T.c.id > after).order_by(_T.c.id).limit(limit + 1)
        if source:
            stmt = stmt.where(_T.c.source_region == source)
        if destination:
            stmt = stmt.where(_T.c.destination_region == destination)
        if state:
            stmt = stmt.where(_T.c.state == state)
        with self.db.transaction() as session:
            conn = session.connection()
            rows, last = page_of([_Transfer(*r) for r in conn.execute(stmt)], limit)
            return [self._view(conn, r) for r in rows], (last.id if last is not None else 0)

    def blocks(
        self,
        *,
        holder: str = "",
        origin: str = "",
        state: str = "",
        page_size: int = 0,
        after: int = 0,
    ) -> tuple[list[BlockView], int]:
        """Ledger blocks in id order, page by page."""
        limit = page_limit(page_size)
        stmt = select(*_BLOCK_COLUMNS).where(_B.c.id > after).order_by(_B.c.id).limit(limit + 1)
        if holder:
            stmt = stmt.where(_B.c.holder_region == holder)
        if origin:
            stmt = stmt.where(_B.c.origin_region == origin)
        if state:
            stmt = stmt.where(_B.c.state == state)
        with self.db.transaction() as session:
            rows, last = page_of(_blocks(session.connection().execute(stmt)), limit)
        return [b.view() for b in rows], (last.id if last is not None else 0)

    @staticmethod
    def _view(conn: Connection, row: _Transfer) -> TransferView:
        # A resolved transfer's blocks have moved on (split, moved again); the audit trail keeps
        # the ranges it moved. A pending one lists the blocks it reserves.
        blocks = (
            _blocks(_RESERVED_BY.rows(conn, {"t_name": row.name})) if row.state == PROPOSED else []
        )
        return row.view(blocks)

    @staticmethod
    def _audit(
        audit: AuditChain,
        actor: Identity,
        kind: str,
        now: dt.datetime,
        envelope: bytes,
        blocks: Sequence[_Block],
        *,
        name: str,
        source: str,
        destination: str,
        quantity: int,
        reason: str | None,
        writes: Writes | None = None,
    ) -> None:
        audit.append(
            kind=kind,
            subject=name,
            actor_region=actor.region or "",
            actor=actor.actor,
            detail={
                "envelope_hash": envelope.hex(),
                "source": source,
                "destination": destination,
                "quantity_grams": quantity,
                "blocks": _moved(blocks),
                "reason": reason,
            },
            now=now,
            writes=writes,
        )


def _split(conn: Connection, block: _Block, start: int, end: int) -> _Block:
    """Carve [start, end] out of block: the block keeps that range; the rest become children."""
    assert block.serial_start <= start <= end <= block.serial_end
    children = [
        _values(
            origin_region=block.origin_region,
            issuance_name=block.issuance_name,
            project_name=block.project_name,
            vintage=block.vintage,
            serial_start=a,
            serial_end=b,
            holder_region=block.holder_region,
            state=block.state,
            reserved_by=block.reserved_by,
            retired_by=None,
            parent_id=block.id,
            created_at=block.created_at,
        )
        for a, b in ((block.serial_start, start - 1), (end + 1, block.serial_end))
        if a <= b
    ]
    if children:
        _INSERT_BLOCK.executemany(conn, children)
        _NARROW_BLOCK.execute(conn, {"b_id": block.id, "b_start": start, "b_end": end})
        block.serial_start, block.serial_end = start, end
    return block


@dataclass(frozen=True, slots=True)
class InvariantReport:
    """The ledger's invariants, checked with set-based SQL."""

    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_invariants(db: Database) -> InvariantReport:
    """Every serial of every issuance is in exactly one block; blocks never overlap; issued =
    active + reserved + retired + cancelled per origin; a reserved block belongs to exactly one
    pending transfer."""
    problems: list[str] = []
    with db.transaction() as session:
        prev_end = func.lag(UnitBlockRow.serial_end).over(
            partition_by=UnitBlockRow.origin_region, order_by=UnitBlockRow.serial_start
        )
        ordered = select(
            UnitBlockRow.id,
            UnitBlockRow.origin_region,
            UnitBlockRow.serial_start,
            prev_end.label("prev_end"),
        ).subquery()
        for block_id, origin, start, _ in session.execute(
            select(ordered).where(ordered.c.prev_end >= ordered.c.serial_start)
        ):
            problems.append(
                f"block {block_id} of {origin} starting at {start} overlaps the one before it"
            )
        per_issuance = (
            select(
                IssuanceRow.name,
                IssuanceRow.quantity_grams,
                IssuanceRow.serial_start,
                IssuanceRow.serial_end,
                func.coalesce(
                    func.sum(UnitBlockRow.serial_end - UnitBlockRow.serial_start + 1), 0
                ).label("in_blocks"),
                func.min(UnitBlockRow.serial_start).label("lo"),
                func.max(UnitBlockRow.serial_end).label("hi"),
            )
            .outerjoin(UnitBlockRow, UnitBlockRow.issuance_name == IssuanceRow.name)
            .group_by(
                IssuanceRow.name,
                IssuanceRow.quantity_grams,
                IssuanceRow.serial_start,
                IssuanceRow.serial_end,
            )
        )
        for name, quantity, s, e, in_blocks, lo, hi in session.execute(per_issuance):
            if in_blocks != quantity or lo != s or hi != e:
                problems.append(
                    f"issuance {name}: {quantity} g issued on {s}..{e}, "
                    f"blocks cover {in_blocks} g on {lo}..{hi}"
                )
        orphans = session.execute(
            select(UnitBlockRow.id, UnitBlockRow.reserved_by)
            .outerjoin(TransferRow, TransferRow.name == UnitBlockRow.reserved_by)
            .where(
                (UnitBlockRow.state == RESERVED)
                & ((TransferRow.id.is_(None)) | (TransferRow.state != PROPOSED))
            )
        ).all()
        problems += [
            f"block {i} is reserved by {t!r}, which is not a pending transfer" for i, t in orphans
        ]
        stray = (
            session.execute(
                select(UnitBlockRow.id).where(
                    (UnitBlockRow.state != RESERVED) & UnitBlockRow.reserved_by.is_not(None)
                )
            )
            .scalars()
            .all()
        )
        problems += [f"block {i} is not reserved but names a transfer" for i in stray]
        unowned = (
            session.execute(
                select(UnitBlockRow.id).where(
                    (UnitBlockRow.state == RETIRED) & UnitBlockRow.retired_by.is_(None)
                )
            )
            .scalars()
            .all()
        )
        problems += [f"retired block {i} names no retirement" for i in unowned]
        issued = dict(
            session.execute(
                select(IssuanceRow.region, func.sum(IssuanceRow.quantity_grams)).group_by(
                    IssuanceRow.region
                )
            ).all()
        )
        held = dict(
            session.execute(
                select(
                    UnitBlockRow.origin_region,
                    func.sum(UnitBlockRow.serial_end - UnitBlockRow.serial_start + 1),
                )
                .where(UnitBlockRow.state.in_((ACTIVE, RESERVED, RETIRED, CANCELLED)))
                .group_by(UnitBlockRow.origin_region)
            ).all()
        )
        for origin in sorted(issued.keys() | held.keys()):
            if issued.get(origin, 0) != held.get(origin, 0):
                problems.append(
                    f"{origin}: issued {issued.get(origin, 0)} g, "
                    f"blocks hold {held.get(origin, 0)} g"
                )
    return InvariantReport(tuple(problems))
