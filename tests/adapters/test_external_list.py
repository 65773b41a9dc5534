"""External lists (adapters.external_list): CSV and XLSX read into checked rows, every bad row
reported with its row and column, the templates in docs/templates."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from openpyxl import Workbook

from adapters.errors import FieldIssue
from adapters.external_list import (
    COLUMNS,
    ExternalListError,
    check_scheme,
    parse_external_list,
    template_rows,
)
from gateway.tools.external_template import check, template_csv, template_xlsx
from mutual_recognition.duplicates import ExternalListRow

ROOT = Path(__file__).resolve().parents[2]
HEADER = ",".join(c.english for c in COLUMNS)
GOOD = (
    "CCER-1,屋顶光伏,91310118MA1JL0XH49,31.149200,121.124800,,0310012345678,"
    "DISTRIBUTED_PV,850 kW,2025-03-18,2025-01-01,2034-12-31"
)


def csv_bytes(*rows: str, header: str = HEADER, bom: bool = False) -> bytes:
    text = "\r\n".join((header, *rows)) + "\r\n"
    return ("\ufeff" if bom else "").encode() + text.encode("utf-8")


def issues_of(data: bytes, **kw: int) -> ExternalListError:
    with pytest.raises(ExternalListError) as caught:
        parse_external_list(data, "CCER", **kw)
    return caught.value


def xlsx_bytes(rows: list[list[object]], *, formats: dict[int, str] | None = None) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    for column, fmt in (formats or {}).items():
        for r in range(2, len(rows) + 1):
            sheet.cell(row=r, column=column).number_format = fmt
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_good_row_reads_as_listed() -> None:
    parsed = parse_external_list(csv_bytes(GOOD), "CCER")
    assert parsed.format == "csv" and parsed.encoding == "utf-8"
    assert len(parsed.digest) == 64
    assert parsed.rows == (
        ExternalListRow(
            scheme="CCER",
            scheme_project_id="CCER-1",
            title="屋顶光伏",
            owner_credit_code="91310118MA1JL0XH49",
            latitude="31.149200",
            longitude="121.124800",
            datum="WGS84",  # empty datum with a site: WGS-84
            grid_account="0310012345678",
            category="SCENARIO_CATEGORY_DISTRIBUTED_PV",
            capacity_value="850",
            capacity_unit="kW",
            registration_date=dt.date(2025, 3, 18),
            credit_start=dt.date(2025, 1, 1),
            credit_end=dt.date(2034, 12, 31),
        ),
    )
    assert parsed.rows[0].subject == "schemes/CCER/projects/CCER-1"


def test_bom_chinese_headers_gb18030_and_header_spelling() -> None:
    chinese = ",".join(c.chinese for c in COLUMNS)
    with_bom = parse_external_list(csv_bytes(GOOD, header=chinese, bom=True), "CCER")
    gbk = parse_external_list(("\r\n".join((chinese, GOOD)) + "\r\n").encode("gb18030"), "CCER")
    assert gbk.encoding == "gb18030"
    assert with_bom.rows == gbk.rows == parse_external_list(csv_bytes(GOOD), "CCER").rows
    spelled = HEADER.replace("scheme project id", " Scheme_Project-ID ").replace(
        "grid account", "GRID ACCOUNT"
    )
    assert parse_external_list(csv_bytes(GOOD, header=spelled), "CCER").rows == with_bom.rows


def test_optional_columns_may_be_left_out_and_cells_empty() -> None:
    header = "scheme project id,name,scenario category,registration date,grid account"
    parsed = parse_external_list(
        csv_bytes(
            "X-1,站,充电桩,2024/3/1,12345678901", "", "X-2,站二,other,2024-03-02,", header=header
        ),
        "CEA",
    )
    first, second = parsed.rows
    assert (first.category, first.registration_date) == (
        "SCENARIO_CATEGORY_EV_CHARGING",
        dt.date(2024, 3, 1),
    )
    assert (first.latitude, first.datum, first.capacity_value, first.credit_start) == (
        "",
        "",
        "",
        None,
    )
    assert first.grid_account == "12345678901" and second.grid_account == ""
    assert second.category == "SCENARIO_CATEGORY_OTHER"


def test_datum_spellings_and_converted_datums() -> None:
    row = GOOD.replace("121.124800,,", "121.124800,gcj-02,")
    assert parse_external_list(csv_bytes(row), "CCER").rows[0].datum == "GCJ02"
    row = GOOD.replace("121.124800,,", "121.124800,BD09,")
    assert parse_external_list(csv_bytes(row), "CCER").rows[0].datum == "BD09"


BAD_ROWS = [
    ("91310118MA1JL0XH4B", "owner credit code", "check character"),
    ("31.149200,121.124800", "latitude", "outside"),
    ("31.1492001,121.124800", "latitude", "7 decimals"),
    ("31.149200,", "longitude", "missing"),
    ("0310012345678", "grid account", "10 to 20 digits"),
    ("310012345", "grid account", "leading zeros"),
    ("3.10012E+11", "grid account", "scientific notation"),
    ("2025-02-30", "registration date", "not a date of the calendar"),
    ("2025-01-01,2034-12-31", "crediting end", "before the crediting start"),
    ("850 kW,", "capacity", "not a capacity with a unit"),
    ("DISTRIBUTED_PV", "scenario category", "not a scenario category"),
    (",,,", "datum", "not one of"),
]
REPLACEMENTS = {
    0: ("91310118MA1JL0XH49", "91310118MA1JL0XH4B"),
    1: ("31.149200,121.124800", "91.149200,121.124800"),
    2: ("31.149200,121.124800", "31.1492001,121.124800"),
    3: ("31.149200,121.124800", "31.149200,"),
    4: ("0310012345678", "03100123456A8"),
    5: ("0310012345678", "310012345"),
    6: ("0310012345678", "3.10012E+11"),
    7: ("2025-03-18", "2025-02-30"),
    8: ("2025-01-01,2034-12-31", "2025-01-01,2024-12-31"),
    9: ("850 kW,", "850,"),
    10: ("DISTRIBUTED_PV", "光伏发电"),
    11: ("121.124800,,", "121.124800,UTM,"),
}


def test_every_bad_row_is_reported_with_its_row_and_column() -> None:
    rows = [GOOD]
    for i, (old, new) in REPLACEMENTS.items():
        row = GOOD.replace("CCER-1", f"CCER-{i + 10}")
        assert old in row
        rows.append(row.replace(old, new, 1))
    error = issues_of(csv_bytes(*rows))
    assert error.total == len(REPLACEMENTS)
    got = {(i.row, i.column): i.reason for i in error.issues}
    for i, (_, column, words) in enumerate(BAD_ROWS):
        reason = got.get((i + 3, column))  # header row 1, the good row 2
        assert reason is not None and words in reason, (i, column, got)
    assert f"invalid external list ({len(REPLACEMENTS)} issue(s))" in str(error)


def test_at_most_max_listed_are_listed_and_all_are_counted() -> None:
    bad = [GOOD.replace("CCER-1", f"CCER-{i}").replace("2025-03-18", "soon") for i in range(30)]
    error = issues_of(csv_bytes(*bad), max_listed=5)
    assert error.total == 30 and len(error.issues) == 5
    assert [i.row for i in error.issues] == [2, 3, 4, 5, 6]
    assert str(error).endswith("… and 25 more")


def test_repeated_ids_extra_cells_and_missing_values() -> None:
    error = issues_of(csv_bytes(GOOD, GOOD, GOOD + ",extra", "CCER-9,,,,,,,DISTRIBUTED_PV,,,,"))
    assert [(i.row, i.column) for i in error.issues] == [
        (3, "scheme project id"),
        (4, "cells"),
        (5, "name"),
        (5, "registration date"),
    ]
    assert "listed already in row 2" in error.issues[0].reason
    assert "13 cells, the header has 12" in str(error.issues[1])
    error = issues_of(csv_bytes(GOOD.replace("CCER-1", "C" * 81).replace("屋顶光伏", "光" * 301)))
    assert [(i.column, i.reason) for i in error.issues] == [
        ("scheme project id", f"{'C' * 40!r} is not a project id: at most 80 characters, no "
         "'/', blanks or control characters"),
        ("name", "has 301 characters; at most 300"),
    ]  # fmt: skip


def test_header_problems() -> None:
    error = issues_of(csv_bytes(GOOD, header=HEADER.replace("latitude", "lattitude")))
    assert error.issues[0] == FieldIssue(
        "header", "column 4: unknown header 'lattitude'", 1, "header"
    )
    assert str(error.issues[0]) == "row 1, header: column 4: unknown header 'lattitude'"
    missing = HEADER.replace("registration date,", "").replace(",2025-03-18", "")
    error = issues_of(csv_bytes(GOOD.replace(",2025-03-18", ""), header=missing))
    assert "no column 'registration date' (or '登记日期')" in str(error)
    error = issues_of(csv_bytes(GOOD, header=HEADER + ",name"))
    assert "repeats column 'name'" in str(error)
    error = issues_of(b"")
    assert "the file is empty" in str(error)
    error = issues_of("项目,名字\n1,2\n".encode())
    assert "the first row is not a header" in str(error)


def test_xlsx_cells_of_every_kind() -> None:
    header = [c.english for c in COLUMNS]
    good: list[object] = [
        "CCER-1", "屋顶光伏", "91310118MA1JL0XH49", 31.1492, 121.1248, None, "0310012345678",
        "分布式光伏", "0.85 MW", dt.datetime(2025, 3, 18), "2025-01-01", dt.date(2034, 12, 31),
    ]  # fmt: skip
    parsed = parse_external_list(xlsx_bytes([header, good]), "SHEA")
    assert parsed.format == "xlsx"
    (row,) = parsed.rows
    assert (row.latitude, row.longitude, row.capacity_value, row.capacity_unit) == (
        "31.1492", "121.1248", "0.85", "MW",
    )  # fmt: skip
    assert (row.registration_date, row.credit_end) == (dt.date(2025, 3, 18), dt.date(2034, 12, 31))
    bad = [
        ["CCER-2", *good[1:6], 310012345678, *good[7:]],  # account as a number
        ["CCER-3", good[1], 91310118, *good[3:]],  # credit code as a number
        [4, *good[1:]],  # id as a number
        ["CCER-5", *good[1:8], 850, *good[9:]],  # capacity without unit
        ["CCER-6", *good[1:9], dt.datetime(2025, 3, 18, 9, 30), *good[10:]],
        ["CCER-7", *good[1:9], 45734, *good[10:]],  # a date left as a serial number
    ]
    error = issues_of(xlsx_bytes([header, good, *bad]))
    got = {(i.row, i.column): i.reason for i in error.issues}
    assert (
        "is a number cell (310012345678), not text: Excel drops leading zeros"
        in got[(3, "grid account")]
    )
    assert "is a number cell (91310118)" in got[(4, "owner credit code")]
    assert "is a number cell (4)" in got[(5, "scheme project id")]
    assert "write the capacity with its unit" in got[(6, "capacity")]
    assert "give the date alone" in got[(7, "registration date")]
    assert "format the cell as a date" in got[(8, "registration date")]
    assert error.total == 6


def test_xlsx_blank_rows_keep_the_sheet_row_numbers() -> None:
    header = [c.english for c in COLUMNS]
    row: list[object] = list(template_rows()[1])
    later = [*row]
    later[0], later[9] = "CCER-2", "2025-13-01"
    error = issues_of(xlsx_bytes([header, row, [], [], later]))
    assert [(i.row, i.column) for i in error.issues] == [(5, "registration date")]


def test_a_broken_workbook_is_one_issue() -> None:
    error = issues_of(b"PK\x03\x04 not really a zip")
    assert "not a readable XLSX workbook" in str(error)


def test_scheme_codes() -> None:
    assert check_scheme("CCER") == "CCER" and check_scheme("SHEA") == "SHEA"
    for bad in ("ccer", "C", "1CER", "CCER/1", "C" * 21):
        with pytest.raises(ValueError, match="not a scheme code"):
            check_scheme(bad)


def test_the_templates_parse_and_match_their_generator() -> None:
    directory = ROOT / "docs" / "templates"
    assert check(directory) == []
    csv_rows = parse_external_list((directory / "external-list.csv").read_bytes(), "CCER").rows
    xlsx_rows = parse_external_list((directory / "external-list.xlsx").read_bytes(), "CCER").rows
    assert len(csv_rows) == 1 and csv_rows == xlsx_rows
    assert parse_external_list(template_xlsx(), "CCER").rows == csv_rows
    assert template_csv().startswith("\ufeffscheme project id,".encode())


def test_the_operations_guide_names_every_column() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    part = guide.split("## C. External project lists", 1)[1]
    for column in COLUMNS:
        required = "yes" if column.required else "no"
        assert f"| `{column.english}` | `{column.chinese}` | {required} |" in part, column.key
        assert f"`{column.example}` |" in part, column.key
