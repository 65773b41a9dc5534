"""Rows in PostgreSQL's binary COPY format (``COPY ... FROM STDIN (FORMAT BINARY)``; PostgreSQL's
documentation, "COPY", "Binary Format"), for tables whose columns are text or 64-bit integers.

A batch given as columns (a value shared by every row, or an ``array('q')`` of the rows' values)
is laid out a column at a time: one row's bytes are repeated for every row, then each integer
column's big-endian bytes are written into place with strided slices, so no Python object is made
per row. That is what lets a snapshot's blocks reach the server at the speed the server takes
them (``gateway.storage.bulk``).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from itertools import compress
from operator import eq
from typing import Any, TypeAlias, cast

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
"""The file header: the signature, no flags (no OIDs), no header extension."""
TRAILER = struct.pack(">h", -1)
"""The file trailer: a field count of -1."""

_COUNT = struct.Struct(">h")
_LENGTH = struct.Struct(">i")
_INT8 = struct.Struct(">iq")  # a field's length (8), then the value
_SWAP = sys.byteorder == "little"
_MAX_SPLIT = 16
"""A column of text values given per row is split by value when it has at most this many
distinct values (a block's state); beyond that its rows are encoded one at a time."""

Column: TypeAlias = "str | int | array[int] | list[Any]"
"""A column of a batch: one value for every row, an array of 64-bit integers, or a list."""


def encode_rows(int8: Sequence[bool], rows: Iterable[Sequence[Any]]) -> bytearray:
    """``rows`` (tuples, one value per column; ``int8[i]``: column ``i`` is a 64-bit integer,
    else text) encoded a row at a time. A value that is not of its column's kind raises
    ``TypeError`` or ``struct.error`` (an integer out of range)."""
    out = bytearray()
    count = _COUNT.pack(len(int8))
    for row in rows:
        out += count
        for is_int, value in zip(int8, row, strict=True):
            if is_int:
                out += _INT8.pack(8, value)
            else:
                data = str.encode(value)  # a TypeError for a value that is not text
                out += _LENGTH.pack(len(data))
                out += data
    return out


def encode_tuples(int8: Sequence[bool], rows: Sequence[Sequence[Any]]) -> bytearray:
    """``rows`` encoded as :func:`encode_columns` encodes them once turned into columns (a pass
    per column in C, not a Python loop per row); the rows may come out in another order."""
    if not rows:
        return bytearray()
    return encode_columns(int8, len(rows), [list(c) for c in zip(*rows, strict=True)])


def encode_columns(int8: Sequence[bool], count: int, columns: Sequence[Column]) -> bytearray:
    """``count`` rows given as ``columns`` (each one value shared by every row, an
    ``array('q')``, or a list of the rows' values), encoded a column at a time; the rows may
    come out in another order (a text column given per row is split by its values)."""
    for column in columns:
        if isinstance(column, array | list) and len(column) != count:
            raise ValueError(f"a column of {len(column)} values in a batch of {count} rows")
    listed = next((i for i, c in enumerate(columns) if isinstance(c, list) and not int8[i]), None)
    if listed is not None:
        given = columns[listed]
        assert isinstance(given, list)
        values = set(given)
        if len(values) > _MAX_SPLIT:
            rows = zip(*(_per_row(c, count) for c in columns), strict=True)
            return encode_rows(int8, rows)
        out = bytearray()
        for value in sorted(values):
            chosen = list(map(eq, given, [value] * count))
            part = [_chosen(c, chosen) for c in columns]
            part[listed] = value
            out += encode_columns(int8, sum(chosen), part)
        return out
    return _interleave(int8, count, columns)


def _interleave(int8: Sequence[bool], count: int, columns: Sequence[Column]) -> bytearray:
    """Rows whose columns are each a shared value or, for an integer column, an array or a list,
    laid out without a Python object per row: one row repeated, then each integer column's bytes
    put in place, a byte position at a time."""
    row = bytearray(_COUNT.pack(len(columns)))
    slots: list[tuple[int, array[int] | list[int]]] = []
    for is_int, column in zip(int8, columns, strict=True):
        if not isinstance(column, (array, list, int) if is_int else str):
            raise TypeError(
                f"{type(column).__name__} given for a column of {'int8' if is_int else 'text'}"
            )
        if isinstance(column, array | list):
            row += _LENGTH.pack(8)
            slots.append((len(row), column))
            row += bytes(8)
        elif is_int:
            row += _INT8.pack(8, column)
        else:
            data = cast(str, column).encode()
            row += _LENGTH.pack(len(data))
            row += data
    size = len(row)
    out = row * count
    for at, values in slots:
        big = array("q", values)
        if _SWAP:
            big.byteswap()
        data = big.tobytes()
        for byte in range(8):
            out[at + byte :: size] = data[byte::8]
    return out


def _chosen(column: Column, chosen: list[bool]) -> Column:
    # A list, even from an array: array() from an iterator grows item by item, from a list at once.
    if isinstance(column, array | list):
        return list(compress(column, chosen))
    return column


def _per_row(column: Column, count: int) -> Sequence[Any]:
    if isinstance(column, array | list):
        return column
    return [column] * count
