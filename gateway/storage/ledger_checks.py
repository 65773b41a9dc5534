"""The ledger's invariants, checked with set-based SQL (the scheduled ``verify-ledger`` job,
``yrdgw ledger check``)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.contract import ACTIVE, CANCELLED, HELD, HOLD_HELD, PROPOSED, RESERVED, RETIRED
from gateway.storage.models import CaseHoldRow, IssuanceRow, TransferRow, UnitBlockRow


def invariant_problems(session: Session) -> list[str]:
    """Every serial of every issuance is in exactly one block; blocks never overlap; issued =
    active + held + reserved + retired + cancelled per origin; a reserved block belongs to
    exactly one pending transfer; a held block belongs to an issuance an open duplicate case
    holds, and such an issuance has no active block. Returns what is wrong (nothing: the ledger
    holds)."""
    problems: list[str] = []
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
    problems += _hold_problems(session)
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
            .where(UnitBlockRow.state.in_((ACTIVE, HELD, RESERVED, RETIRED, CANCELLED)))
            .group_by(UnitBlockRow.origin_region)
        ).all()
    )
    for origin in sorted(issued.keys() | held.keys()):
        if issued.get(origin, 0) != held.get(origin, 0):
            problems.append(
                f"{origin}: issued {issued.get(origin, 0)} g, blocks hold {held.get(origin, 0)} g"
            )
    return problems


def _hold_problems(session: Session) -> list[str]:
    """A held block belongs to an issuance an open duplicate case holds (a ``case_holds`` row
    with outcome ``held``); an issuance so held has no active block (its active units were held
    when the hold began, and units released meanwhile went back to held)."""
    open_hold = (
        select(CaseHoldRow.issuance)
        .where(CaseHoldRow.issuance == UnitBlockRow.issuance_name, CaseHoldRow.outcome == HOLD_HELD)
        .exists()
    )
    unheld = session.execute(
        select(UnitBlockRow.id, UnitBlockRow.issuance_name)
        .where(UnitBlockRow.state == HELD, ~open_hold)
        .order_by(UnitBlockRow.id)
    ).all()
    problems = [f"block {i} is held but no open case holds issuance {n}" for i, n in unheld]
    loose = session.execute(
        select(UnitBlockRow.issuance_name, func.count())
        .where(UnitBlockRow.state == ACTIVE, open_hold)
        .group_by(UnitBlockRow.issuance_name)
        .order_by(UnitBlockRow.issuance_name)
    ).all()
    problems += [
        f"issuance {n} is held by an open case but {c} of its blocks are active" for n, c in loose
    ]
    return problems
