"""Bulk inserts of many rows given as tuples, on the driver: a COPY on PostgreSQL with psycopg,
else the DBAPI's executemany. The write engine of the records store (``gateway.storage.records``)
and of snapshot staging (``gateway.storage.reconciliation_store``), with :class:`RowSpool`, which
holds a stream of rows in bounded memory until its transaction writes them.

Core's executemany builds a parameter dict and runs the type processors for every row; a publish
batch's rows need neither (their one timestamp is converted once, by ``stored``), and on the hot
path that per-row work costs more than the database's own. A table of text and 64-bit integer
columns can be written with a binary COPY instead (``binary``): then a batch spooled as columns
(:class:`Columns`) reaches the server without a Python object per row
(``gateway.storage.binary_copy``).
"""

from __future__ import annotations

import marshal
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import IO, Any

from sqlalchemy import BigInteger, Column, Connection, Dialect, String, Table, insert

from gateway.storage import binary_copy


class BulkInsert:
    """An INSERT of many rows into ``columns`` of a model's table, each row a tuple in that order.
    Columns without a value here are left to their defaults (none of the tables it writes has a
    Python-side default)."""

    def __init__(
        self, model: type[Any] | Table, columns: tuple[str, ...], *, binary: bool = False
    ) -> None:
        table = model if isinstance(model, Table) else model.__table__
        assert isinstance(table, Table)
        self.table = table
        self.columns = columns
        self._sql: dict[str, str] = {}
        self.int8: tuple[bool, ...] | None = None
        """With ``binary``: per column, whether it is a 64-bit integer (else text)."""
        if binary:
            kinds = [table.c[c].type for c in columns]
            if not all(isinstance(k, BigInteger | String) for k in kinds):
                raise TypeError("a binary COPY writes only text and 64-bit integer columns")
            self.int8 = tuple(isinstance(k, BigInteger) for k in kinds)

    def run(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows`` inside the connection's transaction."""
        if not rows:
            return
        dialect = conn.dialect
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            # COPY: a third of executemany's time on PostgreSQL, in the same transaction.
            self.run_pieces(conn, (rows,))
            return
        marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        if marker is None:  # a driver this module has not been written for: Core does it all
            conn.execute(
                insert(self.table), [dict(zip(self.columns, r, strict=True)) for r in rows]
            )
            return
        sql = self._insert_sql(dialect, marker)
        conn.exec_driver_sql(sql, rows if isinstance(rows, list) else list(rows))

    def run_pieces(self, conn: Connection, pieces: Iterable[Iterable[tuple[Any, ...]]]) -> None:
        """Insert every row of ``pieces`` (lists or iterators, each read once) inside the
        connection's transaction: one COPY on PostgreSQL, and on SQLite the driver's executemany
        straight over each piece, so that rows made on the fly are never gathered in a list."""
        dialect = conn.dialect
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            if self.int8 is not None:
                self.copy_encoded(conn, self._encoded(self.int8, pieces))
                return
            driver = conn.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cursor, cursor.copy(self._copy_sql(dialect)) as copy:
                for piece in pieces:
                    for row in piece:
                        copy.write_row(row)
            return
        if dialect.name == "sqlite" and dialect.driver == "pysqlite":
            sql = self._insert_sql(dialect, "?")
            driver = conn.connection.driver_connection
            assert driver is not None
            cursor = driver.cursor()
            try:
                for piece in pieces:
                    cursor.executemany(sql, piece)
            finally:
                cursor.close()
            return
        for piece in pieces:
            self.run(conn, piece if isinstance(piece, list) else list(piece))

    def copy_encoded(self, conn: Connection, chunks: Iterable[bytes | bytearray]) -> None:
        """One binary COPY (PostgreSQL with psycopg) of rows already encoded in its format
        (``binary_copy``), inside the connection's transaction: each chunk is sent as it comes,
        so the server parses one while the next is made."""
        driver = conn.connection.driver_connection
        assert driver is not None
        sql = self._copy_sql(conn.dialect, " (FORMAT BINARY)")
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            # The whole format is written here (signature, rows, trailer): psycopg's block mode.
            copy.write(binary_copy.SIGNATURE)
            for chunk in chunks:
                if chunk:
                    copy.write(chunk)
            copy.write(binary_copy.TRAILER)

    def _encoded(
        self, int8: tuple[bool, ...], pieces: Iterable[Iterable[tuple[Any, ...]]]
    ) -> Iterator[bytearray]:
        for piece in pieces:
            if isinstance(piece, Columns):
                yield binary_copy.encode_columns(int8, piece.count, piece.columns)
            else:
                yield binary_copy.encode_tuples(
                    int8, piece if isinstance(piece, list) else list(piece)
                )

    def _copy_sql(self, dialect: Dialect, options: str = "") -> str:
        sql = self._sql.get("copy" + options)
        if sql is None:
            quote = dialect.identifier_preparer
            sql = self._sql["copy" + options] = (
                f"COPY {quote.format_table(self.table)} "
                f"({', '.join(quote.quote(c) for c in self.columns)}) FROM STDIN{options}"
            )
        return sql

    def _insert_sql(self, dialect: Dialect, marker: str) -> str:
        sql = self._sql.get(dialect.name)
        if sql is None:
            # Only the model's own table and column names, quoted by the dialect: no outside text.
            quote = dialect.identifier_preparer
            sql = self._sql[dialect.name] = (
                f"INSERT INTO {quote.format_table(self.table)} "  # noqa: S608
                f"({', '.join(quote.quote(c) for c in self.columns)}) "
                f"VALUES ({', '.join([marker] * len(self.columns))})"
            )
        return sql

    def stored(self, dialect: Dialect, column: str, value: Any) -> Any:
        """``value`` as Core would bind it to ``column`` on this dialect."""
        col: Column[Any] = self.table.c[column]
        process = col.type.dialect_impl(dialect).bind_processor(dialect)
        return process(value) if process is not None else value


class RowSpool:
    """Rows appended as they stream in and read back in chunks, in bounded memory. Rows come as
    tuples (``extend``) or as columns (``extend_columns``), kept as given, so a batch of columns
    costs no tuple until its transaction writes it. Up to ``chunk`` rows are held as given, each
    full chunk is kept marshalled, in memory up to ``in_memory`` bytes and in a temporary file
    beyond."""

    def __init__(self, chunk: int = 20_000, in_memory: int = 4 << 20) -> None:
        self.chunk = chunk
        self.count = 0
        self.in_memory = in_memory
        self._pending: list[list[tuple[Any, ...]] | tuple[Any, ...]] = []
        self._pending_count = 0
        self._file: IO[bytes] | None = None
        self._sizes: list[int] = []

    def __enter__(self) -> RowSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def extend(self, rows: list[tuple[Any, ...]]) -> None:
        self._add(rows, len(rows))

    def extend_columns(self, count: int, *columns: list[Any] | array[int] | str | int) -> None:
        """Append ``count`` rows given as columns: per column one value shared by every row, a
        list of the rows' values, or an ``array`` of them (kept as its bytes: a fraction of a
        list's cost to marshal and to read back)."""
        assert all(len(c) == count for c in columns if isinstance(c, list | array))
        part = tuple((c.typecode, c.tobytes()) if isinstance(c, array) else c for c in columns)
        self._add((count, *part), count)

    def _add(self, part: list[tuple[Any, ...]] | tuple[Any, ...], count: int) -> None:
        if not count:
            return
        self._pending.append(part)
        self._pending_count += count
        self.count += count
        if self._pending_count >= self.chunk:
            self._spill()

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.SpooledTemporaryFile(max_size=self.in_memory)  # noqa: SIM115
        data = marshal.dumps(self._pending)
        self._file.write(data)
        self._sizes.append(len(data))
        self._pending, self._pending_count = [], 0

    def chunks(self) -> Iterator[list[tuple[Any, ...]] | Columns]:
        """The rows in the order appended, in pieces (read once): a list of the rows appended
        as tuples, or a batch appended as columns (:class:`Columns`: its tuples made only if
        it is iterated)."""
        for parts in self._parts():
            for part in parts:
                if isinstance(part, list):
                    yield part
                else:
                    n, *columns = part
                    yield Columns(n, tuple(map(_column, columns)))

    def _parts(self) -> Iterator[list[list[tuple[Any, ...]] | tuple[Any, ...]]]:
        if self._file is not None:
            self._file.seek(0)
            for size in self._sizes:
                parts = marshal.loads(self._file.read(size))  # noqa: S302 - written by this object
                assert isinstance(parts, list)
                yield parts
        if self._pending:
            yield self._pending

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._pending, self._pending_count, self._sizes = [], 0, []


@dataclass(frozen=True, slots=True)
class Columns:
    """``count`` rows given as columns: per column one value shared by every row, a list of the
    rows' values, or an ``array`` of them. Iterating it gives the rows as tuples."""

    count: int
    columns: tuple[Any, ...]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return zip(
            *(c if isinstance(c, list | array) else repeat(c, self.count) for c in self.columns),
            strict=True,
        )


def _column(stored: Any) -> Any:
    """A column as ``RowSpool.extend_columns`` stored it: an array from its bytes, else as
    given."""
    if isinstance(stored, tuple):
        typecode, data = stored
        values = array(typecode)
        values.frombytes(data)
        return values
    return stored
