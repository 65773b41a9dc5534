"""The unit ledger: what transfers (``gateway.services.transfers``) and retirements
(``gateway.services.retirements``) share — the wire constants, the views handed out, the
recognition policy, the numbered checks on the signer and the units, and the invariants.

A transfer is PROPOSED (its blocks reserved), then resolves exactly once: COMPLETED (blocks move to
the destination), REJECTED, CANCELLED or EXPIRED (blocks released). A retirement consumes units
for good. Every request is a signed envelope of the caller's registry key (``gateway.services.
intake``); every call is one transaction with row locks, so several gateway processes on one
PostgreSQL stay correct. The numbered checks (metadata["check"]) run on propose and again on
accept:

1. the caller is the source (propose, cancel) or the destination (accept, reject);
2. the signing key is the caller's registry key and the signature verifies;
3. the transfer id is new — or the same id with a byte-identical request, answered as the first;
4. every serial exists, is held by the source, and is active (not reserved, retired, cancelled,
   nor held by an open duplicate case — UNITS_HELD, which accept asks again of the reserved
   units);
5. the destination recognises the units (through the recognition policy);
6. source and destination differ;
7. (ETS offsets) the ETS region's offset policy.

Performance (each step measured with bench/transfers.py):

- the statements are the ledger store's (``gateway.storage.ledger_store``): Core, compiled once
  and run on the DBAPI cursor, no row read back after it was written; a request's final writes
  go out together (one statement on PostgreSQL);
- everything that needs no database — the envelope's shape, signing input and hash, the
  signature when the key is known, the payload's parsing and validation — is done before the
  transaction (``intake.receive``);
- proposals, answers and retirements that arrive together share one transaction (group commit),
  each in a savepoint of its own: one commit — on PostgreSQL one WAL flush — for the lot, and the
  same effects as one after another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol, TypeVar

import structlog
from google.protobuf.message import Message as ProtoMessage
from sqlalchemy.orm import Session
from yrd.interop.v1 import envelope_pb2, transfer_pb2

from gateway import errors
from gateway.contract import ACTIVE, HELD, duplicate_case_name
from gateway.security.identity import Identity, Role
from gateway.services import Clock, utc_now
from gateway.services.intake import (
    DEFAULT_SIGN_TIME_SKEW,
    Incoming,
    SignedRequest,
    open_incoming,
    receive,
)
from gateway.storage.db import Database, UnitOfWork
from gateway.storage.group_commit import GroupCommit
from gateway.storage.ledger_checks import invariant_problems
from gateway.storage.ledger_holds import HoldStore
from gateway.storage.ledger_store import Block, LedgerStore, Transfer, ledger_group_commit
from gateway.storage.ledger_store import in_order as in_order  # what the services share
from gateway.storage.models import UnitBlockRow

log = structlog.get_logger("yrdgw.ledger")

TONNE = 1_000_000
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
    declared_obligation_grams: int
    outside_grams: int


def block_view(b: Block) -> BlockView:
    """A block as handed out."""
    return BlockView(
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


def transfer_view(row: Transfer, blocks: Sequence[Block]) -> TransferView:
    """A transfer as handed out, with the blocks it lists."""
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
        tuple(block_view(b) for b in blocks),
    )


def moved(blocks: Sequence[Block]) -> list[list[object]]:
    """The ranges a transfer or retirement moved, as its audit entry names them."""
    return [[b.origin_region, b.serial_start, b.serial_end] for b in blocks]


def numbered(err: errors.DomainError, number: int) -> errors.DomainError:
    """``err`` as the refusal of the numbered check ``number``."""
    err.metadata.setdefault("check", str(number))
    return err


class LedgerParts:
    """What the ledger's services share: the database and its group commit, the clock, the
    recognition policy; the signed request's checks 1 and 2, the units' check 4 and the
    recognition's check 5. Every public method of a service is one transaction (which requests
    arriving together may share: see the module's docstring)."""

    def __init__(
        self,
        db: Database,
        clock: Clock = utc_now,
        recognition: RecognitionPolicy | None = None,
        writer: GroupCommit | None = None,
        sign_time_skew: dt.timedelta | None = DEFAULT_SIGN_TIME_SKEW,
    ) -> None:
        self.db = db
        self.clock = clock
        self.sign_time_skew = sign_time_skew
        """How far a request's ``sign_time`` may be from the clock (None: no window)."""
        self.recognition = recognition or AllowAllRecognition()
        self.writer = writer or ledger_group_commit(db)
        """Shared by the ledger's services: their requests arriving together commit together."""

    def _receive(
        self,
        caller: Identity,
        env: envelope_pb2.SignedEnvelope,
        content_type: str,
        kind: type[M],
        validate: Callable[[M], None] | None = None,
        *,
        now: dt.datetime,
    ) -> Incoming[M]:
        """Check 1, what check 2 can do before the transaction, and the payload parsed as
        ``kind`` (its refusal waits for the signature's check)."""
        if caller.role is not Role.REGISTRY or caller.region is None:
            raise numbered(errors.PermissionDenied("only registries sign transfer requests"), 1)
        return receive(
            caller, env, content_type, kind, validate, check="2", now=now, skew=self.sign_time_skew
        )

    @staticmethod
    def _open(unit: UnitOfWork, caller: Identity, incoming: Incoming[Any]) -> SignedRequest:
        """Check 2: the caller's registry key signed exactly these bytes; then the payload's own
        refusal, if any.

        Every ledger write takes its locks in one order — signing key, audit head, transfer,
        blocks — so concurrent proposals, answers and expiries across gateway processes queue
        instead of deadlocking, and a retried request always sees the first one's transfer.
        """
        return open_incoming(unit, caller, incoming)

    def _recognised(
        self, unit: UnitOfWork, region: str, blocks: Sequence[Block]
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
                raise numbered(
                    errors.NotRecognised(
                        f"{region} does not recognise {block.project_name} "
                        f"(vintage {block.vintage}): {reason}",
                        metadata={"project": block.project_name},
                    ),
                    5,
                )
        return ratios

    def _select(
        self, store: LedgerStore, source: str, units: transfer_pb2.UnitSelection
    ) -> list[Block]:
        """Check 4, and the blocks carved to exactly the units asked for (locked)."""
        if units.WhichOneof("selection") == "ranges":
            origin = units.ranges.origin_region
            chosen: list[Block] = []
            for r in sorted(units.ranges.ranges, key=lambda r: r.start):
                chosen.extend(self._carve_range(store, source, origin, r.start, r.end))
            return chosen
        q = units.quantity
        blocks = store.active_blocks(source, q.project, q.vintage)
        wanted, chosen = q.quantity_grams, []
        for block in blocks:
            if wanted == 0:
                break
            take = min(block.size, wanted)
            chosen.append(store.split(block, block.serial_start, block.serial_start + take - 1))
            wanted -= take
        if wanted:
            held = HoldStore(store.conn).held_blocks(source, q.project, q.vintage)
            if sum(b.size for b in held) >= wanted:
                # Enough units, but some are held: the refusal that says why and until when.
                raise units_held(
                    store,
                    held,
                    f"{source} holds {q.quantity_grams - wanted} active grams of {q.project} "
                    f"vintage {q.vintage}, {q.quantity_grams} asked; the rest is held by an "
                    "open duplicate case",
                )
            raise numbered(
                errors.InsufficientUnits(
                    f"{source} holds {q.quantity_grams - wanted} active grams of {q.project} "
                    f"vintage {q.vintage}, {q.quantity_grams} asked",
                ),
                4,
            )
        return chosen

    @staticmethod
    def _carve_range(
        store: LedgerStore, source: str, origin: str, start: int, end: int
    ) -> list[Block]:
        blocks = store.blocks_in_range(origin, start, end)
        meta = {"origin_region": origin, "range": f"{start}-{end}"}
        cursor = start
        for block in blocks:
            if block.serial_start > cursor:
                break
            cursor = block.serial_end + 1
        if not blocks or blocks[0].serial_start > start or cursor <= end:
            raise numbered(
                errors.SerialsUnknown(
                    f"serials {start}..{end} of {origin} are not all issued", metadata=meta
                ),
                4,
            )
        for block in blocks:
            if block.holder_region != source:
                raise numbered(
                    errors.SerialsNotHeld(
                        f"serials {max(start, block.serial_start)}..{min(end, block.serial_end)} "
                        f"are held by {block.holder_region}",
                        metadata=meta,
                    ),
                    4,
                )
            if block.state == HELD:
                first, last = max(start, block.serial_start), min(end, block.serial_end)
                raise units_held(
                    store,
                    [block],
                    f"serials {first}..{last} of {origin} are held by an open duplicate case",
                    serials=f"{first}-{last}",
                    origin_region=origin,
                )
            if block.state != ACTIVE:
                raise numbered(
                    errors.SerialsNotActive(
                        f"serials {max(start, block.serial_start)}..{min(end, block.serial_end)} "
                        f"are {block.state}"
                        + (f" by {block.reserved_by}" if block.reserved_by else ""),
                        metadata=meta,
                    ),
                    4,
                )
        return [store.split(b, max(start, b.serial_start), min(end, b.serial_end)) for b in blocks]


def units_held(
    store: LedgerStore, blocks: Sequence[Block], message: str, **metadata: str
) -> errors.DomainError:
    """Check 4's UNITS_HELD refusal for ``blocks`` (of held issuances): its metadata names the
    issuances and the open cases holding them (``cases``: case names, comma-separated)."""
    issuances = sorted({b.issuance_name for b in blocks})
    holds = HoldStore(store.conn).holds_on(issuances)
    return held_refusal(message, issuances, [case for case, _ in holds], **metadata)


def held_refusal(
    message: str, issuances: Sequence[str], case_ids: Sequence[str], **metadata: str
) -> errors.DomainError:
    """The UNITS_HELD refusal (check 4) of units of ``issuances``, held by cases ``case_ids``."""
    cases = ",".join(duplicate_case_name(c) for c in sorted(set(case_ids)))
    return numbered(
        errors.UnitsHeld(
            f"{message} ({cases})" if cases else message,
            metadata={**metadata, "issuance": ",".join(issuances), "cases": cases},
        ),
        4,
    )


@dataclass(frozen=True, slots=True)
class InvariantReport:
    """The ledger's invariants, checked with set-based SQL."""

    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_invariants(db: Database) -> InvariantReport:
    """Every serial of every issuance is in exactly one block; blocks never overlap; issued =
    active + held + reserved + retired + cancelled per origin; a reserved block belongs to exactly
    one pending transfer; a held block belongs to an issuance an open duplicate case holds, and
    such an issuance has no active block."""
    with db.transaction() as session:
        return InvariantReport(tuple(invariant_problems(session)))
