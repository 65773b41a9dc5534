"""Retirements: units a region holds consumed for good — for voluntary neutrality, charity, or as
an offset in an emissions trading scheme (ETS), where the region's offset policy applies (check 7)
and each unit counts at its recognition's adjustment ratio, rounded down by the one credit rule
(``mutual_recognition.credit``). The numbered checks are listed in ``gateway.services.ledger``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Protocol

from yrd.interop.v1 import envelope_pb2, transfer_pb2, transfer_service_pb2

from gateway import errors
from gateway.contract import RETIRED, RETIREMENT_TYPE, retirement_name
from gateway.security.audit_chain import DETAIL_RULE
from gateway.security.identity import Identity
from gateway.services import Clock, page_limit, page_of, utc_now
from gateway.services.intake import DEFAULT_SIGN_TIME_SKEW, advance, repeat, store_envelope
from gateway.services.ledger import (
    TONNE,
    LedgerParts,
    RecognitionPolicy,
    RetirementView,
    block_view,
    in_order,
    moved,
    numbered,
)
from gateway.storage.db import Database, UnitOfWork
from gateway.storage.direct import Writes
from gateway.storage.group_commit import GroupCommit
from gateway.storage.ledger_store import Block, LedgerStore, Retirement
from mutual_recognition.credit import ets_offset_credit


class EtsPolicy(Protocol):
    """An ETS region's offset policy (the configuration's ``ets_offset_policies``)."""

    @property
    def max_share(self) -> Decimal: ...
    @property
    def vintage_window_years(self) -> int | None: ...
    @property
    def max_outside_share(self) -> Decimal | None: ...


def credit_of(
    blocks: Sequence[Block], holder: str, ratios: Mapping[tuple[str, int], Fraction | None]
) -> tuple[int, int, int, Fraction, Fraction]:
    """What retiring ``blocks`` credits, each at its project and vintage's ratio (None: 1):
    (quantity, credited, credited from outside ``holder``, the effective ratio, the fraction of
    a gram rounding dropped)."""
    quantity = sum(b.size for b in blocks)
    exact, outside, outside_grams = Fraction(0), Fraction(0), 0
    for block in blocks:
        ratio = ratios.get((block.project_name, block.vintage)) or Fraction(1)
        exact += block.size * ratio
        if block.origin_region != holder:
            outside += block.size * ratio
            outside_grams += block.size
    effective = exact / quantity
    credit = ets_offset_credit(quantity, effective)
    outside_credit = (
        ets_offset_credit(outside_grams, outside / outside_grams).credited_grams
        if outside_grams
        else 0
    )
    return quantity, credit.credited_grams, outside_credit, effective, credit.dropped


class RetirementService(LedgerParts):
    """Retirements of the caller's units. Every public method's effects commit atomically, in
    one transaction (shared with transfers arriving together when they share the writer)."""

    def __init__(
        self,
        db: Database,
        clock: Clock = utc_now,
        recognition: RecognitionPolicy | None = None,
        ets_policies: Mapping[str, EtsPolicy] | None = None,
        writer: GroupCommit | None = None,
        sign_time_skew: dt.timedelta | None = DEFAULT_SIGN_TIME_SKEW,
    ) -> None:
        super().__init__(db, clock, recognition, writer, sign_time_skew)
        self.ets_policies = dict(ets_policies or {})

    def retire(self, caller: Identity, env: envelope_pb2.SignedEnvelope) -> RetirementView:
        """Retire units the caller holds, for good (checks 1–5, and 7 for ETS offsets)."""
        now = self.clock()
        incoming = self._receive(
            caller,
            env,
            RETIREMENT_TYPE,
            transfer_service_pb2.RetirementOrder,
            self._validate_order,
            now=now,
        )
        order = incoming.body
        holder = caller.region
        assert holder is not None
        name = retirement_name(holder, order.retirement_id)
        request_sha = incoming.payload_sha256

        def work(unit: UnitOfWork) -> RetirementView:
            signed = self._open(unit, caller, incoming)
            store = LedgerStore(unit.conn)
            existing = store.retirement(name)
            if existing is not None:
                if existing.request_sha256 == request_sha:
                    repeat(unit, caller, signed, existing.name, now)
                    return self._view(store, existing)
                raise numbered(
                    errors.RetirementIdReused(
                        f"retirement id {order.retirement_id} was used for another request",
                        metadata={"retirement": name},
                    ),
                    3,
                )
            advance(unit, signed)
            blocks = self._select(store, holder, order.units)
            ets = order.purpose == transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET
            ratios = self._recognised(unit, holder, blocks) if ets else {}
            quantity, credit, outside, effective, dropped = credit_of(blocks, holder, ratios)
            if ets:
                self._check_ets(store, holder, order, quantity, credit, outside, blocks)
            beneficiary = order.beneficiary.strip()
            writes = Writes()
            store_envelope(unit.conn, signed, now, writes)
            store.insert_retirement(
                writes,
                name=name,
                retirement_id=order.retirement_id,
                holder_region=holder,
                purpose=order.purpose,
                beneficiary=beneficiary,
                compliance_year=order.compliance_year,
                declared_obligation_grams=order.declared_obligation_grams,
                quantity_grams=quantity,
                outside_grams=outside,
                credited_grams=credit,
                ratio_numerator=effective.numerator,
                ratio_denominator=effective.denominator,
                request_sha256=request_sha,
                envelope_hash=signed.digest,
                retired_at=now,
            )
            for block in blocks:
                store.retire(writes, block.id, name)
                block.state, block.retired_by = RETIRED, name
            in_order(blocks)
            signed.audit.append(
                kind="units.retired",
                subject=name,
                actor_region=holder,
                actor=caller.actor,
                detail={
                    "v": DETAIL_RULE,  # rule 2: outside_grams too (docs/protocol.md §8.3)
                    "envelope_hash": signed.digest.hex(),
                    "purpose": transfer_pb2.TransferPurpose.Name(order.purpose),
                    "beneficiary": beneficiary,
                    "compliance_year": order.compliance_year,
                    "quantity_grams": quantity,
                    "credited_grams": credit,
                    "outside_grams": outside,
                    "ratio": f"{effective.numerator}/{effective.denominator}",
                    "rounding": str(dropped),
                    "blocks": moved(blocks),
                },
                now=now,
                writes=writes,
            )
            writes.run(unit.conn)
            return RetirementView(
                name,
                order.retirement_id,
                holder,
                order.purpose,
                beneficiary,
                order.compliance_year,
                quantity,
                credit,
                effective,
                now,
                tuple(block_view(b) for b in blocks),
                order.declared_obligation_grams,
                outside,
            )

        return self.writer.run(work, incoming.key_id)

    @staticmethod
    def _validate_order(order: transfer_service_pb2.RetirementOrder) -> None:
        """What the validation layer's rules (gateway/validation/rules.py) cannot say: an ETS
        offset names its compliance year and declared obligation."""
        problems: dict[str, str] = {}
        if order.purpose == transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET:
            if order.compliance_year < 2000:
                problems["compliance_year"] = "required for an ETS offset"
            if order.declared_obligation_grams <= 0:
                problems["declared_obligation_grams"] = "required for an ETS offset"
        if problems:
            raise errors.InvalidArgument("invalid retirement order", field_errors=problems)

    def _check_ets(
        self,
        store: LedgerStore,
        region: str,
        order: transfer_service_pb2.RetirementOrder,
        quantity: int,
        credited: int,
        credited_outside: int,
        blocks: Sequence[Block],
    ) -> None:
        """Check 7: the ETS region's offset policy."""
        policy = self.ets_policies.get(region)
        if policy is None:
            raise numbered(errors.EtsRegionWithoutPolicy(f"{region} runs no ETS offset policy"), 7)
        if quantity % TONNE:
            raise numbered(
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
                    raise numbered(
                        errors.EtsVintageOutsideWindow(
                            f"vintage {block.vintage} is outside {lowest}..{order.compliance_year}"
                        ),
                        7,
                    )
        earlier, earlier_outside = store.earlier_offsets(
            region, order.beneficiary.strip(), order.compliance_year
        )
        obligation = order.declared_obligation_grams
        cap = Fraction(policy.max_share) * obligation
        meta = {"earlier_grams": str(earlier), "cap_grams": str(math.floor(cap))}
        if earlier + credited > cap:
            raise numbered(
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
                raise numbered(
                    errors.EtsOutsideCapExceeded(
                        f"{earlier_outside + credited_outside} g from outside {region} > "
                        f"{math.floor(outside_cap)} g",
                    ),
                    7,
                )

    # -- reading --------------------------------------------------------------------------------

    def get(self, name: str) -> RetirementView:
        """One retirement, with the blocks it consumed."""
        with self.db.transaction() as session:
            store = LedgerStore(session.connection())
            row = store.retirement(name)
            if row is None:
                raise errors.RetirementNotFound(
                    f"no retirement {name}", metadata={"retirement": name}
                )
            return self._view(store, row)

    def list_retirements(
        self,
        *,
        holder: str = "",
        purpose: int = 0,
        compliance_year: int = 0,
        page_size: int = 0,
        after: int = 0,
    ) -> tuple[list[RetirementView], int]:
        """Retirements in the order they took effect, page by page (filters: "" or 0 for any);
        returns the page and the id to resume after."""
        limit = page_limit(page_size)
        with self.db.transaction() as session:
            store = LedgerStore(session.connection())
            found = store.retirements_page(
                after, limit + 1, holder=holder, purpose=purpose, year=compliance_year
            )
            rows, last = page_of(found, limit)
            return [self._view(store, r) for r in rows], (last.id if last is not None else 0)

    @staticmethod
    def _view(store: LedgerStore, row: Retirement) -> RetirementView:
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
            tuple(block_view(b) for b in store.retired_by(row.name)),
            row.declared_obligation_grams,
            row.outside_grams,
        )
