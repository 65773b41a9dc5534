"""Statements of duplicate detection: identity subjects and their candidates, imported external
projects, opening cases and their holds. Inside a caller's transaction; never commits.

Detection runs on the publish path, so its reads are two indexed look-ups per accepted project
(``grid_account = ?`` and ``cell IN (...)``), compiled once (the cell list is an expanding
parameter), run on the transaction's connection; the rest runs only when something matched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Table, and_, bindparam, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.contract import CASE_OPEN, HOLD_HELD
from gateway.storage.direct import Statement
from gateway.storage.models import (
    CaseHoldRow,
    DuplicateCaseRow,
    ExternalProjectRow,
    IdentitySubjectRow,
    IssuanceRow,
    RecordRow,
)

_CHUNK = 500
"""Most names one statement asks for."""


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_S, _C, _H, _X = (
    _table(IdentitySubjectRow),
    _table(DuplicateCaseRow),
    _table(CaseHoldRow),
    _table(ExternalProjectRow),
)


class SubjectColumns(NamedTuple):
    """What matching and holds read of an identity subject (its columns, in this order)."""

    subject: str
    kind: str
    region: str | None
    credit_code: str | None
    grid_account: str | None
    lat_e7: int | None
    lon_e7: int | None
    category: str
    capacity_w: str | None
    registered_time: dt.datetime
    credit_start: dt.date | None
    credit_end: dt.date | None


def _upsert(insert: Any, table: Table, keep: frozenset[str]) -> Any:
    """INSERT of every column (bound by its name), or UPDATE of every column but ``keep`` when
    the primary key exists (``insert``: the dialect's, which knows ON CONFLICT)."""
    ins = insert(table).values({c.name: bindparam(c.name, type_=c.type) for c in table.columns})
    return ins.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={c.name: ins.excluded[c.name] for c in table.columns if c.name not in keep},
    )


_DIALECT_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_KEPT_ON_UPDATE = frozenset({"subject", "registered_time"})
"""A subject updated by a new revision keeps its name and when it was first registered."""
# The statements of every accepted project, compiled once and run on the DBAPI cursor
# (gateway.storage.direct): building and compiling them costs more than the database's work.
_SAVE_SUBJECT = {
    name: Statement(_upsert(ins, _S, _KEPT_ON_UPDATE).returning(_S.c.registered_time))
    for name, ins in _DIALECT_INSERTS.items()
}
_SAVE_EXTERNAL = {
    name: Statement(_upsert(ins, _X, frozenset({"subject"})))
    for name, ins in _DIALECT_INSERTS.items()
}
_SUBJECT_COLUMNS = tuple(_S.c[f] for f in SubjectColumns._fields)
_BY_ACCOUNT = Statement(select(*_SUBJECT_COLUMNS).where(_S.c.grid_account == bindparam("account")))
_CELL_SLOTS = 4
"""Cells the fixed cell statement asks for: every 100 m search below ~80° latitude needs at most
two rows by two columns of 0.01° cells (shorter lists repeat their last cell)."""
_IN_CELLS = Statement(
    select(*_SUBJECT_COLUMNS).where(
        _S.c.cell.in_([bindparam(f"cell{i}") for i in range(_CELL_SLOTS)])
    )
)
_IN_MANY_CELLS = select(*_SUBJECT_COLUMNS).where(_S.c.cell.in_(bindparam("cells", expanding=True)))


class DuplicateStore:
    """The statements of detection, on one transaction's connection."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- subjects -------------------------------------------------------------------------------

    def save_subject(self, values: Mapping[str, Any]) -> dt.datetime:
        """Insert an identity subject (every ``identity_subjects`` column), or update it keeping
        its first ``registered_time`` (a re-publication is the same registration); returns that
        time (one statement: RETURNING)."""
        row = _SAVE_SUBJECT[self.conn.dialect.name].first(self.conn, values)
        assert row is not None  # RETURNING of an upsert always has its row
        registered: dt.datetime = row[0]
        return registered

    def subjects(self, names: Sequence[str]) -> dict[str, SubjectColumns]:
        """The subjects with those names, by name."""
        found: dict[str, SubjectColumns] = {}
        for i in range(0, len(names), _CHUNK):
            stmt = select(*_SUBJECT_COLUMNS).where(_S.c.subject.in_(names[i : i + _CHUNK]))
            found.update((r[0], SubjectColumns._make(r)) for r in self.conn.execute(stmt))
        return found

    def with_grid_account(self, account: str) -> list[SubjectColumns]:
        """Every subject giving this grid account (index ``ix_identity_subjects_grid_account``)."""
        return [SubjectColumns._make(r) for r in _BY_ACCOUNT.rows(self.conn, {"account": account})]

    def in_cells(self, cells: Sequence[int]) -> list[SubjectColumns]:
        """Every subject whose site lies in one of ``cells`` (index on ``cell``)."""
        if not cells:
            return []
        if len(cells) > _CELL_SLOTS:
            rows: Any = self.conn.execute(_IN_MANY_CELLS, {"cells": list(cells)})
        else:
            slots = [*cells, *(cells[-1] for _ in range(_CELL_SLOTS - len(cells)))]
            rows = _IN_CELLS.rows(self.conn, {f"cell{i}": c for i, c in enumerate(slots)})
        return [SubjectColumns._make(r) for r in rows]

    # -- external projects ----------------------------------------------------------------------

    def save_external(self, values: Mapping[str, Any]) -> None:
        """Insert an external project (every ``external_projects`` column), or replace it as the
        latest list gives it."""
        _SAVE_EXTERNAL[self.conn.dialect.name].execute(self.conn, values)

    # -- cases ----------------------------------------------------------------------------------

    def paired_with(self, subject: str, others: Sequence[str]) -> set[str]:
        """Those of ``others`` that already share a case with ``subject`` (in either order, in
        any state: a pair is never opened twice)."""
        found: set[str] = set()
        for i in range(0, len(others), _CHUNK):
            part = others[i : i + _CHUNK]
            stmt = select(_C.c.first_subject, _C.c.second_subject).where(
                or_(
                    and_(_C.c.first_subject == subject, _C.c.second_subject.in_(part)),
                    and_(_C.c.second_subject == subject, _C.c.first_subject.in_(part)),
                )
            )
            found.update(b if a == subject else a for a, b in self.conn.execute(stmt))
        return found

    def add_case(
        self,
        *,
        case_id: str,
        rule: str,
        strength: str,
        first_subject: str,
        second_subject: str,
        evidence: str,
        deciding_regions: Sequence[str],
        required_approvals: int,
        open_time: dt.datetime,
    ) -> None:
        """A new OPEN case."""
        self.conn.execute(
            _C.insert().values(
                case_id=case_id,
                state=CASE_OPEN,
                rule=rule,
                strength=strength,
                first_subject=first_subject,
                second_subject=second_subject,
                evidence=evidence,
                deciding_regions=",".join(deciding_regions),
                required_approvals=required_approvals,
                resolution=None,
                standing=None,
                open_time=open_time,
                resolve_time=None,
            )
        )

    def open_cases_of(self, subjects: Sequence[str]) -> list[tuple[str, str, str]]:
        """(case id, first subject, second subject) of the OPEN cases with one of ``subjects`` on
        either side, by case id (indexes on both subject columns)."""
        found: dict[str, tuple[str, str, str]] = {}
        for i in range(0, len(subjects), _CHUNK):
            part = subjects[i : i + _CHUNK]
            stmt = select(_C.c.case_id, _C.c.first_subject, _C.c.second_subject).where(
                _C.c.state == CASE_OPEN,
                or_(_C.c.first_subject.in_(part), _C.c.second_subject.in_(part)),
            )
            found.update((r[0], (r[0], r[1], r[2])) for r in self.conn.execute(stmt))
        return [found[k] for k in sorted(found)]

    # -- holds ----------------------------------------------------------------------------------

    def holds_of(self, case_id: str) -> set[str]:
        """The issuances a case holds or held (any outcome)."""
        return set(
            self.conn.execute(select(_H.c.issuance).where(_H.c.case_id == case_id)).scalars()
        )

    def add_holds(self, case_id: str, issuances: Sequence[str]) -> None:
        """The case holds these issuances (outcome ``held``)."""
        if issuances:
            self.conn.execute(
                _H.insert(),
                [{"case_id": case_id, "issuance": i, "outcome": HOLD_HELD} for i in issuances],
            )

    def issuances_of(self, projects: Sequence[str]) -> list[tuple[str, str, int, bytes]]:
        """(name, project, grams, record body) of every issuance of those projects, by name."""
        found: list[tuple[str, str, int, bytes]] = []
        for i in range(0, len(projects), _CHUNK):
            stmt = (
                select(
                    IssuanceRow.name,
                    IssuanceRow.project_name,
                    IssuanceRow.quantity_grams,
                    RecordRow.body,
                )
                .join(RecordRow, RecordRow.id == IssuanceRow.record_id)
                .where(IssuanceRow.project_name.in_(projects[i : i + _CHUNK]))
            )
            found.extend((n, p, g, b) for n, p, g, b in self.conn.execute(stmt))
        return sorted(found)
