"""Bulk inserts of many rows given as tuples, on the driver: a COPY on PostgreSQL with psycopg,
else the DBAPI's executemany. The write engine of the records store (``gateway.storage.records``).

Core's executemany builds a parameter dict and runs the type processors for every row; a publish
batch's rows need neither (their one timestamp is converted once, by ``stored``), and on the hot
path that per-row work costs more than the database's own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, Dialect, Table, insert


class BulkInsert:
    """An INSERT of many rows into ``columns`` of a model's table, each row a tuple in that order.
    Columns without a value here are left to their defaults (none of the tables it writes has a
    Python-side default)."""

    def __init__(self, model: type[Any], columns: tuple[str, ...]) -> None:
        table = model.__table__
        assert isinstance(table, Table)
        self.table = table
        self.columns = columns
        self._sql: dict[str, str] = {}

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` inside the connection's transaction."""
        if not rows:
            return
        dialect = conn.dialect
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            # COPY: a third of executemany's time on PostgreSQL, in the same transaction.
            copy_sql = self._sql.get("copy")
            if copy_sql is None:
                quote = dialect.identifier_preparer
                copy_sql = self._sql["copy"] = (
                    f"COPY {quote.format_table(self.table)} "
                    f"({', '.join(quote.quote(c) for c in self.columns)}) FROM STDIN"
                )
            driver = conn.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        if marker is None:  # a driver this module has not been written for: Core does it all
            conn.execute(
                insert(self.table), [dict(zip(self.columns, r, strict=True)) for r in rows]
            )
            return
        sql = self._sql.get(dialect.name)
        if sql is None:
            # Only the model's own table and column names, quoted by the dialect: no outside text.
            quote = dialect.identifier_preparer
            sql = (
                f"INSERT INTO {quote.format_table(self.table)} "  # noqa: S608
                f"({', '.join(quote.quote(c) for c in self.columns)}) "
                f"VALUES ({', '.join([marker] * len(self.columns))})"
            )
            self._sql[dialect.name] = sql
        conn.exec_driver_sql(sql, rows)

    def stored(self, dialect: Dialect, column: str, value: Any) -> Any:
        """``value`` as Core would bind it to ``column`` on this dialect."""
        col: Column[Any] = self.table.c[column]
        process = col.type.dialect_impl(dialect).bind_processor(dialect)
        return process(value) if process is not None else value
