"""PostgreSQL's binary COPY format as ``gateway.storage.binary_copy`` writes it: rows encoded a
column at a time are the rows encoded one by one (as a multiset: a batch split by a text column
comes out grouped), checked by a decoder written here from PostgreSQL's documentation."""

from __future__ import annotations

import struct
from array import array
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.storage.binary_copy import (
    SIGNATURE,
    TRAILER,
    encode_columns,
    encode_rows,
    encode_tuples,
)

INT8 = (False, True, True, False)
"""The staging table's columns: origin (text), start, end (int8), state (text)."""


def decode(data: bytes, int8: tuple[bool, ...]) -> list[tuple[Any, ...]]:
    """Rows of a binary COPY body (no header, no trailer): per row a 16-bit field count, then
    per field a 32-bit length and that many bytes (big-endian throughout)."""
    rows, at = [], 0
    while at < len(data):
        (fields,) = struct.unpack_from(">h", data, at)
        assert fields == len(int8)
        at += 2
        row: list[Any] = []
        for is_int in int8:
            (length,) = struct.unpack_from(">i", data, at)
            at += 4
            value = data[at : at + length]
            at += length
            if is_int:
                assert length == 8
                row.append(int.from_bytes(value, "big", signed=True))
            else:
                row.append(value.decode())
        rows.append(tuple(row))
    return rows


def test_the_file_header_and_trailer_are_postgresql_s() -> None:
    assert SIGNATURE == b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
    assert TRAILER == b"\xff\xff"


def test_one_row_byte_for_byte() -> None:
    expected = (
        b"\x00\x04"
        + b"\x00\x00\x00\x06310000"
        + b"\x00\x00\x00\x08"
        + (2**63 - 1).to_bytes(8, "big")
        + b"\x00\x00\x00\x08"
        + (1).to_bytes(8, "big")
        + b"\x00\x00\x00\x04held"
    )
    row = ("310000", 2**63 - 1, 1, "held")
    assert bytes(encode_rows(INT8, [row])) == expected
    columns = ("310000", array("q", [2**63 - 1]), array("q", [1]), "held")
    assert bytes(encode_columns(INT8, 1, columns)) == expected


serials = st.integers(min_value=-(2**63), max_value=2**63 - 1)
texts = st.sampled_from(["active", "retired", "held", "", "区块"])


@st.composite
def batches(draw: st.DrawFn) -> tuple[int, list[Any], list[tuple[Any, ...]]]:
    """A batch as columns (each column a shared value, an array, or a list) and its rows."""
    count = draw(st.integers(min_value=0, max_value=40))
    columns: list[Any] = []
    for is_int in INT8:
        values = draw(st.lists(serials if is_int else texts, min_size=count, max_size=count))
        shape = draw(st.sampled_from(["shared", "array", "list"] if is_int else ["shared", "list"]))
        if shape == "shared" and count:
            values = [values[0]] * count
            columns.append(values[0])
        elif shape == "array":
            columns.append(array("q", values))
        else:
            columns.append(values)
    rows = list(
        zip(*(c if isinstance(c, list | array) else [c] * count for c in columns), strict=True)
    )
    return count, columns, rows


@given(batches())
def test_columns_encode_the_rows_they_mean(batch: tuple[int, list[Any], list[Any]]) -> None:
    count, columns, rows = batch
    by_columns = decode(bytes(encode_columns(INT8, count, columns)), INT8)
    assert Counter(by_columns) == Counter(rows)
    assert decode(bytes(encode_rows(INT8, rows)), INT8) == rows
    assert Counter(decode(bytes(encode_tuples(INT8, rows)), INT8)) == Counter(rows)


def test_a_text_column_of_many_values_is_encoded_row_by_row() -> None:
    names = [f"s{i}" for i in range(50)]
    columns = ("310000", array("q", range(50)), list(range(50, 100)), names)
    rows = decode(bytes(encode_columns(INT8, 50, columns)), INT8)
    assert rows == [("310000", i, 50 + i, f"s{i}") for i in range(50)]


@pytest.mark.parametrize(
    ("columns", "error"),
    [
        (("310000", array("q", [1, 2]), array("q", [3]), "active"), ValueError),
        (("310000", array("q", [1, 2]), array("q", [3, 4]), ["active"]), ValueError),
        (("310000", [1], array("q", [3, 4]), ["active", "held"]), ValueError),
        (("310000", [1, "2"], array("q", [3, 4]), ["active", "held"]), TypeError),
        (("310000", [1, 2**63], array("q", [3, 4]), "active"), OverflowError),
        ((array("q", [1, 2]), array("q", [1, 2]), array("q", [3, 4]), "active"), TypeError),
        (("310000", "1", array("q", [3, 4]), "active"), TypeError),
        (("310000", 2**63, array("q", [3, 4]), "active"), struct.error),
    ],
)
def test_a_batch_that_does_not_fit_its_columns_is_refused(
    columns: tuple[Any, ...], error: type[Exception]
) -> None:
    with pytest.raises(error):
        encode_columns(INT8, 2, columns)


def test_a_row_that_does_not_fit_its_columns_is_refused() -> None:
    with pytest.raises(struct.error):
        encode_rows(INT8, [("310000", 2**63, 1, "active")])
    with pytest.raises(TypeError):
        encode_rows(INT8, [(310000, 1, 1, "active")])
