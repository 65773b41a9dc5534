"""The ledger's statements: unit blocks, transfers, retirements, in the caller's transaction.

The hot paths (propose, answer, retire, expire) use SQLAlchemy Core statements compiled once and
run on the DBAPI cursor (``gateway.storage.direct``): no ORM unit of work, no per-call
compilation, no row read back after it was written; writes whose results are not read can be
collected in a ``Writes`` and sent together (one statement on PostgreSQL). Rows come back as the
plain dataclasses below.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, select, update
from yrd.interop.v1 import transfer_pb2

from gateway.contract import (
    ACTIVE,
    HELD,
    PROPOSED,
    RESERVED,
    RETIRED,
)
from gateway.storage.db import Database
from gateway.storage.direct import Statement, Writes
from gateway.storage.group_commit import GroupCommit
from gateway.storage.models import RetirementRow, TransferRow, UnitBlockRow
from gateway.storage.signers import lock_keys


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_B, _T, _R = _table(UnitBlockRow), _table(TransferRow), _table(RetirementRow)


@dataclass(slots=True)
class Block:
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

    def as_row(self) -> UnitBlockRow:
        """A detached model instance, for a recognition policy (which reads it, never writes)."""
        return UnitBlockRow(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True, slots=True)
class Transfer:
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


@dataclass(frozen=True, slots=True)
class Retirement:
    """The columns of ``retirements`` a retirement is answered with."""

    id: int
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
    declared_obligation_grams: int
    outside_grams: int


def _columns(table: Table, shape: type[Any]) -> tuple[Any, ...]:
    """The columns of ``table`` in the order of the fields of ``shape``."""
    return tuple(table.c[f.name] for f in fields(shape))


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


def _values(values: dict[str, Any]) -> dict[str, Any]:
    """Parameters of an ``_inserter`` statement."""
    return {f"v_{k}": v for k, v in values.items()}


_BLOCK_COLUMNS = _columns(_B, Block)
_TRANSFER_COLUMNS = _columns(_T, Transfer)
_IN_ORDER = (_B.c.origin_region, _B.c.serial_start)

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

# A duplicate case holds issuances whole: their active blocks (any holder) become held; reserved,
# retired and cancelled blocks keep their state (index on issuance_name).
_HOLD_ISSUANCES = (
    update(_B)
    .where(_B.c.issuance_name.in_(bindparam("names", expanding=True)), _B.c.state == ACTIVE)
    .values(state=HELD)
    .returning(_B.c.origin_region, _B.c.serial_start, _B.c.serial_end)
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
# deadline). No row: the caller makes the checks one by one, and the first to fail answers.
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

_RETIREMENT_COLUMNS = _columns(_R, Retirement)
_RETIREMENT = Statement(select(*_RETIREMENT_COLUMNS).where(_R.c.name == bindparam("r_name")))
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


def _blocks(rows: Iterable[Sequence[Any]]) -> list[Block]:
    return [Block(*r) for r in rows]


def _transfer(row: Sequence[Any] | None) -> Transfer | None:
    return None if row is None else Transfer(*row)


class LedgerStore:
    """The ledger's statements on one transaction's connection."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- blocks ---------------------------------------------------------------------------------

    def blocks_in_range(self, origin: str, first: int, last: int) -> list[Block]:
        """The blocks of ``origin`` overlapping serials [first, last], in order, locked."""
        return _blocks(
            _BLOCKS_IN_RANGE.rows(self.conn, {"origin": origin, "first": first, "last": last})
        )

    def active_blocks(self, holder: str, project: str, vintage: int) -> list[Block]:
        """The active blocks ``holder`` has of a project's vintage, in order, locked."""
        return _blocks(
            _BLOCKS_OF_VINTAGE.rows(
                self.conn, {"holder": holder, "project": project, "vintage": vintage}
            )
        )

    def reserved_by(self, transfer: str) -> list[Block]:
        return _blocks(_RESERVED_BY.rows(self.conn, {"t_name": transfer}))

    def retired_by(self, retirement: str) -> list[Block]:
        return _blocks(_RETIRED_BY.rows(self.conn, {"r_name": retirement}))

    def split(self, block: Block, start: int, end: int) -> Block:
        """Carve [start, end] out of block: the block keeps that range; the rest become children."""
        assert block.serial_start <= start <= end <= block.serial_end
        children = [
            _values(
                {
                    "origin_region": block.origin_region,
                    "issuance_name": block.issuance_name,
                    "project_name": block.project_name,
                    "vintage": block.vintage,
                    "serial_start": a,
                    "serial_end": b,
                    "holder_region": block.holder_region,
                    "state": block.state,
                    "reserved_by": block.reserved_by,
                    "retired_by": None,
                    "parent_id": block.id,
                    "created_at": block.created_at,
                }
            )
            for a, b in ((block.serial_start, start - 1), (end + 1, block.serial_end))
            if a <= b
        ]
        if children:
            _INSERT_BLOCK.executemany(self.conn, children)
            _NARROW_BLOCK.execute(self.conn, {"b_id": block.id, "b_start": start, "b_end": end})
            block.serial_start, block.serial_end = start, end
        return block

    @staticmethod
    def reserve(writes: Writes, block_id: int, transfer: str) -> None:
        writes.add(_RESERVE, {"b_id": block_id, "t_name": transfer})

    @staticmethod
    def retire(writes: Writes, block_id: int, retirement: str) -> None:
        writes.add(_RETIRE, {"b_id": block_id, "r_name": retirement})

    def move_reserved(self, transfer: str, to: str) -> list[Block]:
        """A completed transfer's blocks, active at ``to`` now (as changed)."""
        return _blocks(_MOVE_RESERVED.rows(self.conn, {"t_name": transfer, "to": to}))

    def release_reserved(self, transfer: str) -> list[Block]:
        """A released transfer's blocks, active where they were (as changed)."""
        return _blocks(_RELEASE_RESERVED.rows(self.conn, {"t_name": transfer}))

    def hold_issuances(self, issuances: Sequence[str]) -> list[tuple[str, int, int]]:
        """Every active block of those issuances becomes ``held`` (reserved, retired and
        cancelled blocks keep their state); returns (origin, first serial, last serial) of the
        blocks held, in serial order."""
        held: list[tuple[str, int, int]] = []
        for i in range(0, len(issuances), 500):
            part = list(issuances[i : i + 500])
            held.extend(
                (o, a, b) for o, a, b in self.conn.execute(_HOLD_ISSUANCES, {"names": part})
            )
        return sorted(held)

    # -- transfers ------------------------------------------------------------------------------

    def transfer(self, name: str, *, lock: bool = False) -> Transfer | None:
        statement = _TRANSFER_LOCKED if lock else _TRANSFER
        return _transfer(statement.first(self.conn, {"t_name": name}))

    @staticmethod
    def insert_transfer(writes: Writes, **values: Any) -> None:
        """A new transfer (every column but its id)."""
        writes.add(_INSERT_TRANSFER, _values(values))

    def resolve_pending(
        self,
        name: str,
        caller: str,
        *,
        as_source: bool,
        outcome: str,
        now: dt.datetime,
        envelope: bytes | None,
        why: str | None,
    ) -> Transfer | None:
        """Resolve a pending transfer ``caller`` is the destination (or, ``as_source``, the
        source) of — unless past its deadline, as destination; None when it is not so."""
        resolve = _RESOLVE_AS_SOURCE if as_source else _RESOLVE_AS_DESTINATION
        values = {
            "t_name": name,
            "caller": caller,
            "now": now,
            "outcome": outcome,
            "envelope": envelope,
            "why": why,
        }
        return _transfer(resolve.first(self.conn, values))

    def resolve(
        self,
        transfer_id: int,
        *,
        outcome: str,
        now: dt.datetime,
        envelope: bytes | None,
        why: str | None,
    ) -> Transfer:
        """Resolve the transfer to ``outcome`` (its checks made); the transfer as changed."""
        values = {
            "t_id": transfer_id,
            "outcome": outcome,
            "now": now,
            "envelope": envelope,
            "why": why,
        }
        row = _transfer(_RESOLVE.first(self.conn, values))
        assert row is not None
        return row

    def pending_to(self, destination: str, projects: Sequence[str]) -> list[Transfer]:
        """Pending transfers to ``destination`` that reserve units of any of ``projects``, in id
        order, locked."""
        if not projects:
            return []
        reserving = select(_B.c.reserved_by).where(
            _B.c.state == RESERVED, _B.c.project_name.in_(sorted(set(projects)))
        )
        rows = self.conn.execute(
            select(*_TRANSFER_COLUMNS)
            .where(
                _T.c.state == PROPOSED,
                _T.c.destination_region == destination,
                _T.c.name.in_(reserving),
            )
            .order_by(_T.c.id)
            .with_for_update()
        )
        return [Transfer(*r) for r in rows]

    def due(self, now: dt.datetime) -> list[Transfer]:
        """Pending transfers past their deadline, in id order, locked."""
        return [Transfer(*r) for r in _DUE.rows(self.conn, {"now": now})]

    # -- retirements ----------------------------------------------------------------------------

    def retirement(self, name: str) -> Retirement | None:
        found = _RETIREMENT.first(self.conn, {"r_name": name})
        return None if found is None else Retirement(*found)

    @staticmethod
    def insert_retirement(writes: Writes, **values: Any) -> None:
        """A new retirement (every column but its id)."""
        writes.add(_INSERT_RETIREMENT, _values(values))

    def earlier_offsets(self, holder: str, beneficiary: str, year: int) -> tuple[int, int]:
        """Grams credited to ``beneficiary`` as ETS offsets of ``year`` by ``holder`` so far:
        (all, from outside ``holder``)."""
        sums = _EARLIER_OFFSETS.first(
            self.conn, {"holder": holder, "beneficiary": beneficiary, "year": year}
        )
        assert sums is not None
        return int(sums[0]), int(sums[1])

    # -- pages ----------------------------------------------------------------------------------

    def transfers_page(
        self, after: int, limit: int, *, source: str, destination: str, state: str
    ) -> list[Transfer]:
        """Up to ``limit`` transfers after id ``after``, in id order (filters: "" for any)."""
        stmt = select(*_TRANSFER_COLUMNS).where(_T.c.id > after).order_by(_T.c.id).limit(limit)
        if source:
            stmt = stmt.where(_T.c.source_region == source)
        if destination:
            stmt = stmt.where(_T.c.destination_region == destination)
        if state:
            stmt = stmt.where(_T.c.state == state)
        return [Transfer(*r) for r in self.conn.execute(stmt)]

    def retirements_page(
        self, after: int, limit: int, *, holder: str, purpose: int, year: int
    ) -> list[Retirement]:
        """Up to ``limit`` retirements after id ``after``, in id order (filters: "" or 0 for
        any)."""
        stmt = select(*_RETIREMENT_COLUMNS).where(_R.c.id > after).order_by(_R.c.id).limit(limit)
        if holder:
            stmt = stmt.where(_R.c.holder_region == holder)
        if purpose:
            stmt = stmt.where(_R.c.purpose == purpose)
        if year:
            stmt = stmt.where(_R.c.compliance_year == year)
        return [Retirement(*r) for r in self.conn.execute(stmt)]

    def blocks_page(
        self, after: int, limit: int, *, holder: str, origin: str, state: str
    ) -> list[Block]:
        """Up to ``limit`` blocks after id ``after``, in id order (filters: "" for any)."""
        stmt = select(*_BLOCK_COLUMNS).where(_B.c.id > after).order_by(_B.c.id).limit(limit)
        if holder:
            stmt = stmt.where(_B.c.holder_region == holder)
        if origin:
            stmt = stmt.where(_B.c.origin_region == origin)
        if state:
            stmt = stmt.where(_B.c.state == state)
        return _blocks(self.conn.execute(stmt))


def ledger_group_commit(db: Database) -> GroupCommit:
    """The ledger's writer: proposals, answers and retirements arriving together share one
    transaction, each in a savepoint (``gateway.storage.group_commit``), their signing keys
    locked first, in one order."""
    return GroupCommit(db, prelude=lock_keys)
