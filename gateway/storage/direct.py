"""Core statements run straight on the DBAPI cursor, for the hot write paths (transfers).

SQLAlchemy compiles each statement once per dialect — its SQL, the order of its parameters, and
the bind and result processors of its columns' types. Running it then skips what
``Connection.execute`` does on every call (cache-key lookup, execution context, parameter and
result wrapping), which costs several times the database's own work for the small indexed
statements of a transfer: measured on SQLite, ~80 µs of CPU a statement against ~7 µs. Values
still pass through the types' own processors, so what is stored and read back is exactly what
``Connection.execute`` would store and read. The statements run inside the caller's transaction
(on its connection); DBAPI errors propagate unwrapped and roll that transaction back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement compiled for one dialect."""

    sql: str
    pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None
    """The parameters in order from a mapping, for a positional paramstyle (None: named)."""
    binds: Mapping[str, Processor]
    """Bind processors by parameter name (only the parameters that have one)."""
    fixed: Mapping[str, Any]
    """Values the statement carries itself (literals compiled as parameters), processed."""
    results: tuple[tuple[int, Processor], ...]
    """Result processors by column position (only the columns that have one)."""


def _picker(order: Sequence[str] | None) -> Callable[[Mapping[str, Any]], tuple[Any, ...]] | None:
    """The positional parameters from a mapping, in ``order`` (None: the paramstyle is named)."""
    if order is None:
        return None
    if len(order) == 1:
        only = order[0]
        return lambda values: (values[only],)
    if not order:
        return lambda values: ()
    pick = itemgetter(*order)
    return lambda values: tuple(pick(values))


class Statement:
    """A Core SELECT, INSERT, UPDATE or DELETE (with RETURNING or not), compiled once per
    dialect and run on the DBAPI cursor of a connection in a transaction."""

    def __init__(self, statement: Select[Any] | UpdateBase) -> None:
        self.statement = statement
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = self._compile(dialect)
        return plan

    def _compile(self, dialect: Dialect) -> _Plan:
        compiled = self.statement.compile(dialect=dialect)
        binds: dict[str, Processor] = {}  # a name used twice has one value, processed once
        fixed: dict[str, Any] = {}
        for param, name in compiled.bind_names.items():
            process = param.type.dialect_impl(dialect).bind_processor(dialect)
            if not param.required:
                value = param.effective_value
                fixed[name] = value if process is None else process(value)
            elif process is not None:
                binds[name] = process
        results: list[tuple[int, Processor]] = []
        for i, column in enumerate(self.statement.exported_columns):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                results.append((i, process))
        return _Plan(compiled.string, _picker(compiled.positiontup), binds, fixed, tuple(results))

    @staticmethod
    def _parameters(plan: _Plan, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        merged = dict(plan.fixed)
        binds = plan.binds
        for name, value in values.items():
            process = binds.get(name)
            merged[name] = value if process is None else process(value)
        return merged if plan.pick is None else plan.pick(merged)

    def _rows(self, plan: _Plan, rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
        if not plan.results:
            return [tuple(r) for r in rows]
        out = []
        for r in rows:
            row = list(r)
            for i, process in plan.results:
                row[i] = process(row[i])
            out.append(tuple(row))
        return out

    def execute(self, conn: Connection, values: Mapping[str, Any] | None = None) -> int:
        """Run it once; the number of rows it changed (for INSERT, UPDATE, DELETE)."""
        plan = self._plan(conn.dialect)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(plan.sql, self._parameters(plan, values or {}))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def executemany(self, conn: Connection, values: Sequence[Mapping[str, Any]]) -> None:
        """Run it once per parameter set, in one DBAPI call."""
        if not values:
            return
        plan = self._plan(conn.dialect)
        cursor = conn.connection.cursor()
        try:
            batch: Any = [self._parameters(plan, v) for v in values]
            cursor.executemany(plan.sql, batch)
        finally:
            cursor.close()

    def rows(
        self, conn: Connection, values: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run it and fetch every row it returns (a SELECT, or RETURNING), processed."""
        plan = self._plan(conn.dialect)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(plan.sql, self._parameters(plan, values or {}))
            return self._rows(plan, cursor.fetchall())
        finally:
            cursor.close()

    def first(
        self, conn: Connection, values: Mapping[str, Any] | None = None
    ) -> tuple[Any, ...] | None:
        """The first row it returns, or None."""
        found = self.rows(conn, values)
        return found[0] if found else None


_PARAMETER = re.compile(r"%\((\w+)\)s")
_MOST_COMBINED = 12
"""More writes than this run one by one (each shape of combined statement is kept compiled)."""


class Writes:
    """Writes whose results are not read, collected and then run together: on PostgreSQL as one
    statement (each but the last in a data-modifying WITH clause, which PostgreSQL runs to
    completion whether or not anything reads it), elsewhere one after another. One statement
    instead of several saves their round trips and per-statement work, which on PostgreSQL is
    most of a small transaction's cost. The writes must not depend on each other's effects (the
    statements of one WITH share a snapshot) nor change the same row twice; ``replace`` keeps
    only the last write under a name (a row moved on several times, such as the audit head)."""

    def __init__(self) -> None:
        self._items: list[tuple[Statement, Mapping[str, Any]]] = []
        self._named: dict[str, int] = {}

    def add(self, statement: Statement, values: Mapping[str, Any]) -> None:
        self._items.append((statement, values))

    def replace(self, name: str, statement: Statement, values: Mapping[str, Any]) -> None:
        """Add a write, in place of the one added earlier under ``name`` if any."""
        index = self._named.get(name)
        if index is None:
            self._named[name] = len(self._items)
            self._items.append((statement, values))
        else:
            self._items[index] = (statement, values)

    def run(self, conn: Connection) -> None:
        """Run every write added (in order), and forget them."""
        items, self._items, self._named = self._items, [], {}
        if not items:
            return
        if not 1 < len(items) <= _MOST_COMBINED or conn.dialect.name != "postgresql":
            for statement, values in items:
                statement.execute(conn, values)
            return
        sql = _combined(conn.dialect, tuple(statement for statement, _ in items))
        params: dict[str, Any] = {}
        for i, (statement, values) in enumerate(items):
            named = statement._parameters(statement._plan(conn.dialect), values)
            assert isinstance(named, Mapping)
            params.update((f"w{i}_{name}", value) for name, value in named.items())
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, params)
        finally:
            cursor.close()


_COMBINED: dict[tuple[str, tuple[Statement, ...]], str] = {}


def _combined(dialect: Dialect, statements: tuple[Statement, ...]) -> str:
    """One statement running ``statements`` in order (named parameters ``w<i>_<name>``)."""
    key = (dialect.name, statements)
    sql = _COMBINED.get(key)
    if sql is None:
        parts = [_renamed(i, s._plan(dialect).sql) for i, s in enumerate(statements)]
        clauses = ", ".join(f"w{i} AS ({part})" for i, part in enumerate(parts[:-1]))
        sql = _COMBINED[key] = f"WITH {clauses} {parts[-1]}"
    return sql


def _renamed(index: int, sql: str) -> str:
    """``sql`` with its named parameters prefixed ``w<index>_``."""
    prefix = f"w{index}_"
    return _PARAMETER.sub(lambda m: f"%({prefix}{m.group(1)})s", sql)
