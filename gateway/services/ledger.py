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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import structlog
from google.protobuf.message import DecodeError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from yrd.interop.v1 import envelope_pb2, transfer_pb2, transfer_service_pb2

from gateway import errors
from gateway.config import EtsOffsetPolicy
from gateway.security.identity import Identity, Role
from gateway.services import Clock, page_limit, utc_now
from gateway.services.signed import SignedRequest, lock_audit_head, open_signed, store_signed
from gateway.storage.db import Database
from gateway.storage.models import (
    IssuanceRow,
    RetirementRow,
    TransferRow,
    UnitBlockRow,
)
from gateway.storage.repositories import AuditLogRepository

log = structlog.get_logger("yrdgw.ledger")

PROPOSAL_TYPE = "application/vnd.yrd.transfer-proposal+proto"
RETIREMENT_TYPE = "application/vnd.yrd.retirement-order+proto"
TONNE = 1_000_000
_RETIRE_PURPOSES = (
    transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
    transfer_pb2.TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY,
    transfer_pb2.TRANSFER_PURPOSE_CHARITABLE,
)
ANSWER_TYPE = "application/vnd.yrd.transfer-answer+proto"
ACTIVE, RESERVED, RETIRED, CANCELLED = "active", "reserved", "retired", "cancelled"
PROPOSED, COMPLETED, REJECTED, CANCELLED_T, EXPIRED = (
    "PROPOSED",
    "COMPLETED",
    "REJECTED",
    "CANCELLED",
    "EXPIRED",
)
STATE_PROTO = {
    PROPOSED: transfer_pb2.TRANSFER_STATE_PROPOSED,
    COMPLETED: transfer_pb2.TRANSFER_STATE_COMPLETED,
    REJECTED: transfer_pb2.TRANSFER_STATE_REJECTED,
    CANCELLED_T: transfer_pb2.TRANSFER_STATE_CANCELLED,
    EXPIRED: transfer_pb2.TRANSFER_STATE_EXPIRED,
}


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


def _check(err: errors.DomainError, number: int) -> errors.DomainError:
    err.metadata.setdefault("check", str(number))
    return err


class LedgerService:
    """Transfers and the ledger's invariants; every public method is one transaction."""

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

    # -- the signed request ---------------------------------------------------------------------

    def _open(
        self,
        session: Session,
        caller: Identity,
        env: envelope_pb2.SignedEnvelope,
        content_type: str,
    ) -> SignedRequest:
        """Checks 1–2: the caller's registry key signed exactly these bytes.

        Every ledger write takes its locks in one order — signing key, audit head, transfer,
        blocks — so concurrent proposals, answers and expiries across gateway processes queue
        instead of deadlocking, and a retried request always sees the first one's transfer.
        """
        if caller.role is not Role.REGISTRY or caller.region is None:
            raise _check(errors.PermissionDenied("only registries sign transfer requests"), 1)
        try:
            return open_signed(session, caller, env, content_type)
        except (errors.EnvelopeMalformed, errors.PayloadMalformed):
            raise
        except errors.DomainError as exc:
            raise _check(exc, 2) from exc

    def _recognised(
        self, session: Session, region: str, blocks: Sequence[UnitBlockRow]
    ) -> dict[tuple[str, int], Fraction | None]:
        """Check 5: ``region`` recognises every block (asked once per project and vintage);
        returns the ETS ratio in force for each."""
        ratios: dict[tuple[str, int], Fraction | None] = {}
        for block in blocks:
            key = (block.project_name, block.vintage)
            if key in ratios:
                continue
            reason, ratios[key] = self.recognition.verdict(session, region, block)
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

    def _repeat(
        self, session: Session, caller: Identity, signed: SignedRequest, name: str, now: dt.datetime
    ) -> None:
        """A request repeated under its id with byte-identical content. Resent as the very same
        envelope, nothing is stored; signed anew, its envelope takes its place in the signer's
        chain (so a client that re-signs its retries stays in step) and is audited."""
        try:
            store_signed(session, signed, now)
        except errors.EnvelopeReplayed:
            return
        AuditLogRepository(session).append(
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
        with self.db.transaction() as session:
            signed = self._open(session, caller, env, PROPOSAL_TYPE)
            try:
                proposal = transfer_service_pb2.TransferProposal.FromString(signed.payload)
            except DecodeError as exc:
                raise errors.PayloadMalformed("payload is not a TransferProposal") from exc
            source = caller.region
            assert source is not None
            self._validate_proposal(proposal)
            name = f"regions/{source}/transfers/{proposal.transfer_id}"
            request_sha = hashlib.sha256(signed.payload).digest()
            existing = session.execute(
                select(TransferRow).where(TransferRow.name == name)
            ).scalar_one_or_none()
            if existing is not None:
                if existing.request_sha256 == request_sha:
                    # The same request again: the first answer, and the chain moves on.
                    self._repeat(session, caller, signed, existing.name, now)
                    return self._view(session, existing)
                raise _check(
                    errors.TransferIdReused(
                        f"transfer id {proposal.transfer_id} was used for another request",
                        metadata={"transfer": name},
                    ),
                    3,
                )
            if proposal.destination_region == source:
                raise _check(errors.SameRegion("source and destination are the same region"), 6)
            store_signed(session, signed, now)
            blocks = self._select(session, source, proposal.units)
            self._recognised(session, proposal.destination_region, blocks)
            quantity = sum(b.serial_end - b.serial_start + 1 for b in blocks)
            row = TransferRow(
                name=name,
                transfer_id=proposal.transfer_id,
                source_region=source,
                destination_region=proposal.destination_region,
                purpose=proposal.purpose or transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
                state=PROPOSED,
                quantity_grams=quantity,
                request_sha256=request_sha,
                proposal_envelope=signed.digest,
                proposed_at=now,
                expires_at=now + self.proposal_ttl,
            )
            session.add(row)
            for block in blocks:
                block.state, block.reserved_by = RESERVED, name
            session.flush()
            self._audit(session, caller, "transfer.proposed", row, now, signed.digest, blocks)
            return self._view(session, row)

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
        self, session: Session, source: str, units: transfer_pb2.UnitSelection
    ) -> list[UnitBlockRow]:
        """Check 4, and the blocks carved to exactly the units asked for (locked)."""
        if units.WhichOneof("selection") == "ranges":
            origin = units.ranges.origin_region
            chosen: list[UnitBlockRow] = []
            for r in sorted(units.ranges.ranges, key=lambda r: r.start):
                chosen.extend(self._carve_range(session, source, origin, r.start, r.end))
            return chosen
        q = units.quantity
        blocks = (
            session.execute(
                select(UnitBlockRow)
                .where(
                    UnitBlockRow.holder_region == source,
                    UnitBlockRow.state == ACTIVE,
                    UnitBlockRow.project_name == q.project,
                    UnitBlockRow.vintage == q.vintage,
                )
                .order_by(UnitBlockRow.origin_region, UnitBlockRow.serial_start)
                .with_for_update()
            )
            .scalars()
            .all()
        )
        wanted, chosen = q.quantity_grams, []
        for block in blocks:
            if wanted == 0:
                break
            size = block.serial_end - block.serial_start + 1
            take = min(size, wanted)
            chosen.append(_split(session, block, block.serial_start, block.serial_start + take - 1))
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

    def _carve_range(
        self, session: Session, source: str, origin: str, start: int, end: int
    ) -> list[UnitBlockRow]:
        blocks = (
            session.execute(
                select(UnitBlockRow)
                .where(
                    UnitBlockRow.origin_region == origin,
                    UnitBlockRow.serial_start <= end,
                    UnitBlockRow.serial_end >= start,
                )
                .order_by(UnitBlockRow.serial_start)
                .with_for_update()
            )
            .scalars()
            .all()
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
        return [
            _split(session, b, max(start, b.serial_start), min(end, b.serial_end)) for b in blocks
        ]

    # -- retirement -----------------------------------------------------------------------------

    def retire(self, caller: Identity, env: envelope_pb2.SignedEnvelope) -> RetirementView:
        """Retire units the caller holds, for good (checks 1–5, and 7 for ETS offsets)."""
        now = self.clock()
        with self.db.transaction() as session:
            signed = self._open(session, caller, env, RETIREMENT_TYPE)
            try:
                order = transfer_service_pb2.RetirementOrder.FromString(signed.payload)
            except DecodeError as exc:
                raise errors.PayloadMalformed("payload is not a RetirementOrder") from exc
            holder = caller.region
            assert holder is not None
            self._validate_order(order)
            name = f"regions/{holder}/retirements/{order.retirement_id}"
            request_sha = hashlib.sha256(signed.payload).digest()
            existing = session.execute(
                select(RetirementRow).where(RetirementRow.name == name)
            ).scalar_one_or_none()
            if existing is not None:
                if existing.request_sha256 == request_sha:
                    self._repeat(session, caller, signed, existing.name, now)
                    return self._retirement_view(session, existing)
                raise _check(
                    errors.RetirementIdReused(
                        f"retirement id {order.retirement_id} was used for another request",
                        metadata={"retirement": name},
                    ),
                    3,
                )
            store_signed(session, signed, now)
            blocks = self._select(session, holder, order.units)
            quantity = sum(b.serial_end - b.serial_start + 1 for b in blocks)
            exact, outside = Fraction(0), Fraction(0)
            ets = order.purpose == transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET
            ratios = self._recognised(session, holder, blocks) if ets else {}
            for block in blocks:
                size = block.serial_end - block.serial_start + 1
                ratio = ratios.get((block.project_name, block.vintage)) or Fraction(1)
                exact += size * ratio
                if block.origin_region != holder:
                    outside += size * ratio
            credited = math.floor(exact)
            if ets:
                self._check_ets(
                    session, holder, order, quantity, credited, math.floor(outside), blocks
                )
            effective = exact / quantity
            row = RetirementRow(
                name=name,
                retirement_id=order.retirement_id,
                holder_region=holder,
                purpose=order.purpose,
                beneficiary=order.beneficiary.strip(),
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
            )
            session.add(row)
            for block in blocks:
                block.state, block.retired_by = RETIRED, name
            session.flush()
            AuditLogRepository(session).append(
                kind="units.retired",
                subject=name,
                actor_region=holder,
                actor=caller.actor,
                detail={
                    "envelope_hash": signed.digest.hex(),
                    "purpose": transfer_pb2.TransferPurpose.Name(order.purpose),
                    "beneficiary": row.beneficiary,
                    "compliance_year": row.compliance_year,
                    "quantity_grams": quantity,
                    "credited_grams": credited,
                    "ratio": f"{effective.numerator}/{effective.denominator}",
                    "rounding": str(exact - credited),
                    "blocks": [[b.origin_region, b.serial_start, b.serial_end] for b in blocks],
                },
                now=now,
            )
            return self._retirement_view(session, row)

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
        session: Session,
        region: str,
        order: transfer_service_pb2.RetirementOrder,
        quantity: int,
        credited: int,
        credited_outside: int,
        blocks: Sequence[UnitBlockRow],
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
        earlier, earlier_outside = session.execute(
            select(
                func.coalesce(func.sum(RetirementRow.credited_grams), 0),
                func.coalesce(func.sum(RetirementRow.outside_grams), 0),
            ).where(
                RetirementRow.holder_region == region,
                RetirementRow.beneficiary == order.beneficiary.strip(),
                RetirementRow.compliance_year == order.compliance_year,
                RetirementRow.purpose == transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
            )
        ).one()
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
    def _retirement_view(session: Session, row: RetirementRow) -> RetirementView:
        blocks = session.execute(
            select(UnitBlockRow)
            .where(UnitBlockRow.retired_by == row.name)
            .order_by(UnitBlockRow.origin_region, UnitBlockRow.serial_start)
        ).scalars()
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
            tuple(BlockView.of(b) for b in blocks),
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
        with self.db.transaction() as session:
            signed = self._open(session, caller, env, ANSWER_TYPE)
            try:
                answer = transfer_service_pb2.TransferAnswer.FromString(signed.payload)
            except DecodeError as exc:
                raise errors.PayloadMalformed("payload is not a TransferAnswer") from exc
            row = session.execute(
                select(TransferRow).where(TransferRow.name == answer.transfer).with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise errors.TransferNotFound(
                    f"no transfer {answer.transfer}", metadata={"transfer": answer.transfer}
                )
            if outcome == CANCELLED_T:
                if row.source_region != caller.region:
                    raise _check(
                        errors.CallerNotSource(f"only {row.source_region} cancels {row.name}"), 1
                    )
            elif row.destination_region != caller.region:
                raise _check(
                    errors.CallerNotDestination(
                        f"only {row.destination_region} answers {row.name}"
                    ),
                    1,
                )
            if row.state != PROPOSED:
                if row.answer_envelope == signed.digest:
                    return self._view(session, row)  # the same answer again: the first result
                raise errors.TransferNotPending(
                    f"{row.name} is already {row.state}", metadata={"state": row.state}
                )
            if outcome != CANCELLED_T and now >= row.expires_at:
                raise errors.TransferExpired(f"{row.name} expired at {row.expires_at.isoformat()}")
            if outcome in (REJECTED, CANCELLED_T) and not answer.reason.strip():
                raise errors.InvalidArgument(
                    "a reason is required", field_errors={"reason": "required"}
                )
            blocks = self._reserved(session, row)
            if outcome == COMPLETED:
                self._recognised(session, row.destination_region, blocks)
            store_signed(session, signed, now)
            for block in blocks:
                if outcome == COMPLETED:
                    block.holder_region = row.destination_region
                block.state, block.reserved_by = ACTIVE, None
            row.state, row.resolved_at, row.answer_envelope = outcome, now, signed.digest
            row.reason = answer.reason.strip() or None
            session.flush()
            self._audit(
                session, caller, f"transfer.{outcome.lower()}", row, now, signed.digest, blocks
            )
            return self._view(session, row, blocks)

    def expire_due(self, now: dt.datetime | None = None) -> list[str]:
        """Expire every proposal past its deadline, releasing its units; returns their names."""
        now = now or self.clock()
        gateway = Identity(Role.GATEWAY, None)
        expired: list[str] = []
        with self.db.transaction() as session:
            lock_audit_head(session)
            rows = (
                session.execute(
                    select(TransferRow)
                    .where(TransferRow.state == PROPOSED, TransferRow.expires_at <= now)
                    .order_by(TransferRow.id)
                    .with_for_update()
                )
                .scalars()
                .all()
            )
            for row in rows:
                blocks = self._reserved(session, row)
                for block in blocks:
                    block.state, block.reserved_by = ACTIVE, None
                row.state, row.resolved_at, row.reason = (
                    EXPIRED,
                    now,
                    "not answered before its deadline",
                )
                session.flush()
                self._audit(session, gateway, "transfer.expired", row, now, b"", blocks)
                expired.append(row.name)
        return expired

    @staticmethod
    def _reserved(session: Session, row: TransferRow) -> list[UnitBlockRow]:
        return list(
            session.execute(
                select(UnitBlockRow)
                .where(UnitBlockRow.reserved_by == row.name)
                .order_by(UnitBlockRow.origin_region, UnitBlockRow.serial_start)
                .with_for_update()
            ).scalars()
        )

    # -- reading --------------------------------------------------------------------------------

    def get(self, name: str) -> TransferView:
        with self.db.transaction() as session:
            row = session.execute(
                select(TransferRow).where(TransferRow.name == name)
            ).scalar_one_or_none()
            if row is None:
                raise errors.TransferNotFound(f"no transfer {name}", metadata={"transfer": name})
            return self._view(session, row)

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
        stmt = (
            select(TransferRow)
            .where(TransferRow.id > after)
            .order_by(TransferRow.id)
            .limit(limit + 1)
        )
        if source:
            stmt = stmt.where(TransferRow.source_region == source)
        if destination:
            stmt = stmt.where(TransferRow.destination_region == destination)
        if state:
            stmt = stmt.where(TransferRow.state == state)
        with self.db.transaction() as session:
            rows = list(session.execute(stmt).scalars())
            more = len(rows) > limit
            rows = rows[:limit]
            return [self._view(session, r) for r in rows], (rows[-1].id if more else 0)

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
        stmt = (
            select(UnitBlockRow)
            .where(UnitBlockRow.id > after)
            .order_by(UnitBlockRow.id)
            .limit(limit + 1)
        )
        if holder:
            stmt = stmt.where(UnitBlockRow.holder_region == holder)
        if origin:
            stmt = stmt.where(UnitBlockRow.origin_region == origin)
        if state:
            stmt = stmt.where(UnitBlockRow.state == state)
        with self.db.transaction() as session:
            rows = list(session.execute(stmt).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        return [BlockView.of(b) for b in rows], (rows[-1].id if more else 0)

    def _view(
        self, session: Session, row: TransferRow, blocks: Iterable[UnitBlockRow] | None = None
    ) -> TransferView:
        if blocks is None:
            # A resolved transfer's blocks have moved on (split, moved again); the audit trail
            # keeps the ranges it moved. A pending one lists the blocks it reserves.
            blocks = self._reserved(session, row) if row.state == PROPOSED else []
        return TransferView(
            row.name,
            row.transfer_id,
            row.source_region,
            row.destination_region,
            row.purpose,
            row.state,
            row.quantity_grams,
            row.proposed_at,
            row.expires_at,
            row.resolved_at,
            row.reason,
            tuple(BlockView.of(b) for b in blocks),
        )

    @staticmethod
    def _audit(
        session: Session,
        actor: Identity,
        kind: str,
        row: TransferRow,
        now: dt.datetime,
        envelope: bytes,
        blocks: Sequence[UnitBlockRow],
    ) -> None:
        AuditLogRepository(session).append(
            kind=kind,
            subject=row.name,
            actor_region=actor.region or "",
            actor=actor.actor,
            detail={
                "envelope_hash": envelope.hex(),
                "source": row.source_region,
                "destination": row.destination_region,
                "quantity_grams": row.quantity_grams,
                "blocks": [[b.origin_region, b.serial_start, b.serial_end] for b in blocks],
                "reason": row.reason,
            },
            now=now,
        )


def _split(session: Session, block: UnitBlockRow, start: int, end: int) -> UnitBlockRow:
    """Carve [start, end] out of block: the block keeps that range; the rest become children."""
    assert block.serial_start <= start <= end <= block.serial_end
    for a, b in ((block.serial_start, start - 1), (end + 1, block.serial_end)):
        if a <= b:
            session.add(
                UnitBlockRow(
                    origin_region=block.origin_region,
                    issuance_name=block.issuance_name,
                    project_name=block.project_name,
                    vintage=block.vintage,
                    serial_start=a,
                    serial_end=b,
                    holder_region=block.holder_region,
                    state=block.state,
                    reserved_by=block.reserved_by,
                    parent_id=block.id,
                    created_at=block.created_at,
                )
            )
    block.serial_start, block.serial_end = start, end
    session.flush()
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
