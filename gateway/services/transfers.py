"""Two-phase cross-region transfers: propose (the source's units reserved), then exactly one of
accept (they move), reject, cancel or expire (they are released: active again, or held while
a duplicate case holds their issuance); and the reads. The numbered
checks are listed in ``gateway.services.ledger``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import partial

from sqlalchemy.orm import Session
from yrd.interop.v1 import envelope_pb2, transfer_service_pb2

from gateway import errors
from gateway.contract import (
    ANSWER_TYPE,
    CANCELLED_T,
    COMPLETED,
    DECISION,
    EXPIRED,
    PROPOSAL_TYPE,
    PROPOSED,
    REJECTED,
    RESERVED,
    transfer_name,
)
from gateway.security.audit_chain import DETAIL_RULE
from gateway.security.identity import Identity, Role
from gateway.services import Clock, page_limit, page_of, utc_now
from gateway.services.intake import DEFAULT_SIGN_TIME_SKEW, advance, repeat, store_envelope
from gateway.services.ledger import (
    BlockView,
    LedgerParts,
    RecognitionPolicy,
    TransferView,
    block_view,
    held_refusal,
    in_order,
    moved,
    numbered,
    transfer_view,
)
from gateway.storage.audit_log import AuditLog, audit_log
from gateway.storage.db import Database, UnitOfWork
from gateway.storage.direct import Writes
from gateway.storage.group_commit import GroupCommit
from gateway.storage.ledger_holds import Finding, HoldStore, cancel_blocks, findings_of
from gateway.storage.ledger_store import Block, LedgerStore, Transfer

RECOGNITION_REVOKED = "RECOGNITION_REVOKED"
"""The code a transfer rejected by a revocation carries at the head of its reason."""
DUPLICATE_CANCELLED = "DUPLICATE_CANCELLED"
"""The code a transfer cancelled by a duplicate case's resolution carries at the head of its
reason."""


class TransferService(LedgerParts):
    """Transfers between regions' registries. Every public method's effects commit atomically,
    in one transaction (which requests arriving together may share)."""

    def __init__(
        self,
        db: Database,
        clock: Clock = utc_now,
        recognition: RecognitionPolicy | None = None,
        proposal_ttl: dt.timedelta = dt.timedelta(hours=24),
        writer: GroupCommit | None = None,
        sign_time_skew: dt.timedelta | None = DEFAULT_SIGN_TIME_SKEW,
    ) -> None:
        super().__init__(db, clock, recognition, writer, sign_time_skew)
        self.proposal_ttl = proposal_ttl

    # -- propose --------------------------------------------------------------------------------

    def propose(self, caller: Identity, env: envelope_pb2.SignedEnvelope) -> TransferView:
        """Reserve the source's units for the destination (checks 1–6)."""
        now = self.clock()
        incoming = self._receive(
            caller,
            env,
            PROPOSAL_TYPE,
            transfer_service_pb2.TransferProposal,
            now=now,
        )
        proposal = incoming.body
        source = caller.region
        assert source is not None
        name = transfer_name(source, proposal.transfer_id)
        request_sha = incoming.payload_sha256

        def work(unit: UnitOfWork) -> TransferView:
            signed = self._open(unit, caller, incoming)
            store = LedgerStore(unit.conn)
            existing = store.transfer(name)
            if existing is not None:
                if existing.request_sha256 == request_sha:
                    # The same request again: the first answer, and the chain moves on.
                    repeat(unit, caller, signed, existing.name, now)
                    return self._view(store, existing)
                raise numbered(
                    errors.TransferIdReused(
                        f"transfer id {proposal.transfer_id} was used for another request",
                        metadata={"transfer": name},
                    ),
                    3,
                )
            if proposal.destination_region == source:
                raise numbered(errors.SameRegion("source and destination are the same region"), 6)
            advance(unit, signed)
            blocks = self._select(store, source, proposal.units)
            self._recognised(unit, proposal.destination_region, blocks)
            quantity = sum(b.size for b in blocks)
            purpose = proposal.purpose  # TRANSFER or ETS_OFFSET (UNSPECIFIED is refused)
            expires = now + self.proposal_ttl
            for block in blocks:
                block.state, block.reserved_by = RESERVED, name
            in_order(blocks)
            # Every check passed: the writes go out together (on PostgreSQL as one statement).
            writes = Writes()
            store_envelope(unit.conn, signed, now, writes)
            store.insert_transfer(
                writes,
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
            )
            for block in blocks:
                store.reserve(writes, block.id, name)
            _audit(
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
                expires=expires,
                writes=writes,
            )
            writes.run(unit.conn)
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
                tuple(block_view(b) for b in blocks),
            )

        return self.writer.run(work, incoming.key_id)

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
            now=now,
        )
        answer = incoming.body
        why = answer.reason.strip() or None

        def work(unit: UnitOfWork) -> TransferView:
            signed = self._open(unit, caller, incoming)
            store = LedgerStore(unit.conn)
            assert caller.region is not None
            row = None
            if outcome == COMPLETED or why is not None:
                row = store.resolve_pending(
                    answer.transfer,
                    caller.region,
                    as_source=outcome == CANCELLED_T,
                    outcome=outcome,
                    now=now,
                    envelope=signed.digest,
                    why=why,
                )
            if row is None:
                # The answer is refused, or is the very same answer again: find out which, with
                # the checks in their order.
                found = store.transfer(answer.transfer, lock=True)
                if self._answered_before(
                    found, answer.transfer, caller, outcome, signed.digest, why, now
                ):
                    assert found is not None
                    return self._view(store, found)  # the same answer again: the first result
                assert found is not None
                row = store.resolve(
                    found.id, outcome=outcome, now=now, envelope=signed.digest, why=why
                )
            if outcome == COMPLETED:
                holds = store.holds_on_reserved(row.name)
                if holds:
                    # Refused like a failed check: the savepoint rolls the resolution back, so
                    # nothing changes and the transfer stays pending.
                    raise held_refusal(
                        f"{row.name} moves units of an issuance held by an open duplicate case",
                        sorted({issuance for _, issuance in holds}),
                        [case for case, _ in holds],
                        transfer=row.name,
                    )
                changed = store.move_reserved(row.name, row.destination_region)
            else:
                changed = store.release_reserved(row.name)
            blocks = in_order(changed)
            if outcome == COMPLETED:
                self._recognised(unit, row.destination_region, blocks)
            advance(unit, signed)
            writes = Writes()
            store_envelope(unit.conn, signed, now, writes)
            _audit(
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
            writes.run(unit.conn)
            # Answered as a repeat of it is (and as GetTransfer shows it): a resolved transfer
            # lists no blocks; the audit entry keeps the ranges it moved.
            return self._view(store, row)

        return self.writer.run(work, incoming.key_id)

    @staticmethod
    def _validate_answer(answer: transfer_service_pb2.TransferAnswer, outcome: str) -> None:
        """Check 2, the part the payload decides: the answer signed is the answer asked for."""
        if answer.decision == DECISION[outcome]:
            return
        try:
            signed = transfer_service_pb2.TransferDecision.Name(answer.decision)
        except ValueError:  # a value the enum does not declare: refused the same way
            signed = str(answer.decision)
        wanted = transfer_service_pb2.TransferDecision.Name(DECISION[outcome])
        raise numbered(
            errors.AnswerDecisionMismatch(
                f"the signed answer's decision is {signed}; this RPC takes {wanted}",
                field_errors={"decision": f"must be {wanted}"},
                metadata={"decision": signed},
            ),
            2,
        )

    @staticmethod
    def _answered_before(
        row: Transfer | None,
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
                raise numbered(
                    errors.CallerNotSource(f"only {row.source_region} cancels {row.name}"), 1
                )
        elif row.destination_region != caller.region:
            raise numbered(
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
            audit = audit_log(conn)
            store = LedgerStore(conn)
            for due in store.due(now):
                row = store.resolve(
                    due.id,
                    outcome=EXPIRED,
                    now=now,
                    envelope=None,
                    why="not answered before its deadline",
                )
                blocks = in_order(store.release_reserved(row.name))
                _audit(
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

    def release_unrecognised(
        self,
        session: Session,
        *,
        region: str,
        projects: Sequence[str],
        recognition: str,
        envelope: bytes,
        actor: Identity,
        now: dt.datetime,
    ) -> list[str]:
        """After ``recognition`` was revoked (in the caller's transaction): every pending
        transfer to ``region`` that reserves units of ``projects`` and that ``region`` no longer
        recognises (check 5, as acceptance would ask it) is rejected at once, its units released
        to the source, each audited ``transfer.rejected`` (actor: the revoking administrator;
        ``envelope_hash``: the revocation's). Returns their names."""
        conn = session.connection()
        unit = UnitOfWork.of(session)
        store = LedgerStore(conn)
        released: list[str] = []
        for pending in store.pending_to(region, projects):
            try:
                self._recognised(unit, region, store.reserved_by(pending.name))
            except errors.NotRecognised as exc:
                why = f"{RECOGNITION_REVOKED}: {recognition} was revoked; {exc.message}"
            else:
                continue  # still recognised (e.g. by a project-level recognition)
            row = store.resolve(pending.id, outcome=REJECTED, now=now, envelope=None, why=why)
            blocks = in_order(store.release_reserved(row.name))
            _audit(
                audit_log(conn),
                actor,
                "transfer.rejected",
                now,
                envelope,
                blocks,
                name=row.name,
                source=row.source_region,
                destination=row.destination_region,
                quantity=row.quantity_grams,
                reason=row.reason,
            )
            released.append(row.name)
        return released

    # -- reading --------------------------------------------------------------------------------

    def get(self, name: str) -> TransferView:
        with self.db.transaction() as session:
            store = LedgerStore(session.connection())
            row = store.transfer(name)
            if row is None:
                raise errors.TransferNotFound(f"no transfer {name}", metadata={"transfer": name})
            return self._view(store, row)

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
        with self.db.transaction() as session:
            store = LedgerStore(session.connection())
            found = store.transfers_page(
                after, limit + 1, source=source, destination=destination, state=state
            )
            rows, last = page_of(found, limit)
            return [self._view(store, r) for r in rows], (last.id if last is not None else 0)

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
        with self.db.transaction() as session:
            found = LedgerStore(session.connection()).blocks_page(
                after, limit + 1, holder=holder, origin=origin, state=state
            )
        rows, last = page_of(found, limit)
        return [block_view(b) for b in rows], (last.id if last is not None else 0)

    @staticmethod
    def _view(store: LedgerStore, row: Transfer) -> TransferView:
        # A resolved transfer's blocks have moved on (split, moved again); the audit trail keeps
        # the ranges it moved. A pending one lists the blocks it reserves.
        return transfer_view(row, store.reserved_by(row.name) if row.state == PROPOSED else [])


def cancel_issuances(
    session: Session,
    issuances: Sequence[str],
    cause: str,
    now: dt.datetime,
    actor: Identity,
    *,
    envelope: bytes = b"",
    audit: AuditLog | None = None,
) -> list[Finding]:
    """A DUPLICATE resolution's cancellation of ``issuances`` whole, in the caller's transaction
    (``cause``: the case's name). Every pending transfer reserving units of them is cancelled
    first — its units released where they were (held or active), audited
    ``transfer.cancelled`` with ``actor`` (the deciding administrator) and ``envelope`` (the
    decision's hash), its reason ``DUPLICATE_CANCELLED: {cause} ...``; then every held or active
    block of ``issuances`` becomes cancelled (any holder); retired blocks stay retired.

    Returns the findings: the retired blocks of ``issuances``, and those cancelled now that a
    region other than their origin held; in order. ``audit``: the transaction's audit log if
    the caller holds one (appending through two of one transaction would fork the chain);
    otherwise the head is locked here, before any transfer or block (the one lock order)."""
    conn = session.connection()
    log = audit if audit is not None else audit_log(conn)
    store, holds = LedgerStore(conn), HoldStore(conn)
    why = f"{DUPLICATE_CANCELLED}: {cause} cancelled the issuance of these units"
    for pending in holds.pending_reserving(issuances):
        row = store.resolve(pending.id, outcome=CANCELLED_T, now=now, envelope=None, why=why)
        blocks = in_order(store.release_reserved(row.name))
        _audit(
            log,
            actor,
            "transfer.cancelled",
            now,
            envelope,
            blocks,
            name=row.name,
            source=row.source_region,
            destination=row.destination_region,
            quantity=row.quantity_grams,
            reason=row.reason,
        )
    cancelled = cancel_blocks(session, issuances)
    return findings_of(holds.blocks_of(issuances), cancelled)


def _audit(
    audit: AuditLog,
    actor: Identity,
    kind: str,
    now: dt.datetime,
    envelope: bytes,
    blocks: list[Block],
    *,
    name: str,
    source: str,
    destination: str,
    quantity: int,
    reason: str | None,
    expires: dt.datetime | None = None,
    writes: Writes | None = None,
) -> None:
    detail: dict[str, object] = {
        "envelope_hash": envelope.hex(),
        "source": source,
        "destination": destination,
        "quantity_grams": quantity,
        "blocks": moved(blocks),
        "reason": reason,
    }
    if expires is not None:
        # Detail rule 2 (docs/protocol.md §8.3): a proposal commits to its deadline too.
        detail.update(v=DETAIL_RULE, expires_at=expires.isoformat())
    audit.append(
        kind=kind,
        subject=name,
        actor_region=actor.region or "",
        actor=actor.actor,
        detail=detail,
        now=now,
        writes=writes,
    )
