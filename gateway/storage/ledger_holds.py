"""The ledger's statements for duplicate cases' holds, in the caller's transaction: the open
holds on issuances, the blocks and pending transfers of held issuances, and what a case's
resolution does to them — release (``held`` → ``active``) or cancel (``held``/``active`` →
``cancelled``, with the findings). The hot paths' part of holds (released reserved blocks go back
to ``held``; accept refuses held units) is in ``gateway.storage.ledger_store``.

An open hold is a ``case_holds`` row with outcome ``held``: an issuance may be held by several
open cases, and is released only when none holds it any more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.orm import Session

from gateway.contract import ACTIVE, CANCELLED, HELD, HOLD_HELD, PROPOSED, RESERVED, RETIRED
from gateway.storage.audit_log import audit_log
from gateway.storage.ledger_store import Block, Transfer, in_order
from gateway.storage.models import CaseHoldRow, TransferRow, UnitBlockRow


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_B, _T, _H = _table(UnitBlockRow), _table(TransferRow), _table(CaseHoldRow)
_BLOCK_COLUMNS = tuple(_B.c[f.name] for f in fields(Block))
_TRANSFER_COLUMNS = tuple(_T.c[f.name] for f in fields(Transfer))
_IN_ORDER = (_B.c.origin_region, _B.c.serial_start)


@dataclass(frozen=True, slots=True)
class Finding:
    """Units of a cancelled issuance that had moved to another holder region or been retired
    (the columns of a ``case_findings`` row but its case)."""

    issuance: str
    serial_start: int
    serial_end: int
    holder_region: str
    state: str
    """``retired`` or ``cancelled``."""
    grams: int


class HoldStore:
    """Holds' statements on one transaction's connection (not the hot paths: these take lists
    of issuances, compiled per call)."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def holds_on(self, issuances: Iterable[str]) -> list[tuple[str, str]]:
        """(case id, issuance) of every open hold on any of ``issuances``, by issuance."""
        wanted = sorted(set(issuances))
        if not wanted:
            return []
        rows = self.conn.execute(
            select(_H.c.case_id, _H.c.issuance)
            .where(_H.c.outcome == HOLD_HELD, _H.c.issuance.in_(wanted))
            .order_by(_H.c.issuance, _H.c.case_id)
        )
        return [(c, i) for c, i in rows]

    def held_blocks(self, holder: str, project: str, vintage: int) -> list[Block]:
        """The held blocks ``holder`` has of a project's vintage, in order (not locked: read
        to explain a refusal)."""
        rows = self.conn.execute(
            select(*_BLOCK_COLUMNS)
            .where(
                _B.c.holder_region == holder,
                _B.c.state == HELD,
                _B.c.project_name == project,
                _B.c.vintage == vintage,
            )
            .order_by(*_IN_ORDER)
        )
        return [Block(*r) for r in rows]

    def blocks_of(self, issuances: Iterable[str]) -> list[Block]:
        """Every block of ``issuances``, in order, locked."""
        wanted = sorted(set(issuances))
        if not wanted:
            return []
        rows = self.conn.execute(
            select(*_BLOCK_COLUMNS)
            .where(_B.c.issuance_name.in_(wanted))
            .order_by(*_IN_ORDER)
            .with_for_update()
        )
        return [Block(*r) for r in rows]

    def pending_reserving(self, issuances: Iterable[str]) -> list[Transfer]:
        """Pending transfers that reserve units of any of ``issuances``, in id order, locked."""
        wanted = sorted(set(issuances))
        if not wanted:
            return []
        reserving = select(_B.c.reserved_by).where(
            _B.c.state == RESERVED, _B.c.issuance_name.in_(wanted)
        )
        rows = self.conn.execute(
            select(*_TRANSFER_COLUMNS)
            .where(_T.c.state == PROPOSED, _T.c.name.in_(reserving))
            .order_by(_T.c.id)
            .with_for_update()
        )
        return [Transfer(*r) for r in rows]

    def set_state(self, issuances: Iterable[str], before: Sequence[str], after: str) -> list[Block]:
        """The blocks of ``issuances`` in a state of ``before`` put in state ``after`` (as
        changed, in order)."""
        wanted = sorted(set(issuances))
        if not wanted:
            return []
        rows = self.conn.execute(
            update(_B)
            .where(_B.c.issuance_name.in_(wanted), _B.c.state.in_(tuple(before)))
            .values(state=after)
            .returning(*_BLOCK_COLUMNS)
        )
        return in_order([Block(*r) for r in rows])


def issuances_still_held(session: Session, issuances: Iterable[str]) -> set[str]:
    """Those of ``issuances`` some open duplicate case still holds (a ``case_holds`` row with
    outcome ``held``)."""
    return {issuance for _, issuance in HoldStore(session.connection()).holds_on(issuances)}


def release_issuances(session: Session, issuances: Iterable[str]) -> list[str]:
    """In the caller's transaction: every ``held`` block of those of ``issuances`` that no open
    case still holds becomes ``active`` (reserved, retired and cancelled blocks are untouched).
    The caller marks its own ``case_holds`` rows ``released`` first: an issuance another open
    case holds stays held. Returns the issuances released (no open hold left), sorted.

    Takes the audit head's lock first, as every writer of blocks does (one lock order)."""
    conn = session.connection()
    audit_log(conn)
    store = HoldStore(conn)
    wanted = set(issuances)
    free = sorted(wanted - {issuance for _, issuance in store.holds_on(wanted)})
    store.set_state(free, (HELD,), ACTIVE)
    return free


def cancel_blocks(session: Session, issuances: Iterable[str]) -> list[Block]:
    """In the caller's transaction: every ``held`` or ``active`` block of ``issuances`` becomes
    ``cancelled`` (as changed, in order). Reserved blocks are left alone — their transfers are
    ended first (``gateway.services.transfers.cancel_issuances`` does both) — and retired and
    cancelled ones stay as they are."""
    return HoldStore(session.connection()).set_state(issuances, (HELD, ACTIVE), CANCELLED)


def findings_of(blocks: Iterable[Block], cancelled: Iterable[Block]) -> list[Finding]:
    """The findings of a cancellation: of ``blocks`` (every block of the cancelled issuances as
    they are now), the retired ones, and those ``cancelled`` just now whose holder region is not
    their origin region; in order."""
    just_now = {b.id for b in cancelled}
    return [
        Finding(b.issuance_name, b.serial_start, b.serial_end, b.holder_region, b.state, b.size)
        for b in in_order(list(blocks))
        if b.state == RETIRED or (b.id in just_now and b.holder_region != b.origin_region)
    ]
