"""The report pack rendered: XLSX (a Chinese sheet and an English one, numbers as numbers), CSV
and JSON. Grams stay integers everywhere; tonnes are exact decimals (six places) beside them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from fractions import Fraction
from typing import Any

from gateway.services.reports import CHINA, Cell, Column, Report

GRAMS_PER_TONNE = 1_000_000
TONNES_FORMAT = "#,##0.000000"
GRAMS_FORMAT = "#,##0"
RATIO_FORMAT = "0.00%"
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
FORMATS = ("xlsx", "csv", "json")
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


def tonnes(grams: int) -> Decimal:
    """Grams as tonnes, exactly (six decimal places)."""
    return (Decimal(grams) / GRAMS_PER_TONNE).quantize(Decimal("0.000001"))


def _headers(columns: tuple[Column, ...], lang: str) -> list[str]:
    out = []
    for c in columns:
        out.append(c.zh if lang == "zh" else c.en)
        if c.kind == "grams":
            out.append(
                c.zh.replace("（克）", "（吨）") if lang == "zh" else c.en.replace("(g)", "(t)")
            )
    return out


def _ratio(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.000001"))


def _plain(column: Column, value: Cell) -> list[Any]:
    """A cell as plain data (JSON, CSV): grams and tonnes, ratios as decimal strings, times as
    RFC 3339 in China time."""
    if column.kind == "grams":
        grams = int(value or 0)  # type: ignore[arg-type]
        return [grams, str(tonnes(grams))]
    if isinstance(value, Fraction):
        return [str(_ratio(value))]
    if isinstance(value, dt.datetime):
        return [value.astimezone(CHINA).isoformat()]
    return [value if value is not None else ""]


def _tonnes_key(grams_key: str) -> str:
    """``grams`` → ``tonnes``; ``credited_grams`` → ``credited_tonnes``."""
    return "tonnes" if grams_key == "grams" else grams_key.removesuffix("_grams") + "_tonnes"


def report_json(report: Report) -> bytes:
    """The report as JSON: rows keyed by column (grams columns with their ``_tonnes``)."""
    rows = []
    for row in report.rows:
        item: dict[str, Any] = {}
        for column, value in zip(report.columns, row, strict=True):
            cells = _plain(column, value)
            if column.kind == "grams":
                item[column.key] = cells[0]
                item[_tonnes_key(column.key)] = cells[1]
            else:
                item[column.key] = cells[0] if cells[0] != "" else None
        rows.append(item)
    totals = report.totals()
    doc = {
        "report": report.name,
        "title_zh": report.title_zh,
        "title_en": report.title_en,
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "columns": [{"key": c.key, "zh": c.zh, "en": c.en, "kind": c.kind} for c in report.columns],
        "rows": rows,
        "totals": totals,
    }
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()


def report_csv(report: Report) -> bytes:
    """The report as CSV (UTF-8 with a byte order mark, which spreadsheet programs need to read
    Chinese): a header row in Chinese, then the rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_headers(report.columns, "zh"))
    for row in report.rows:
        writer.writerow(
            [c for col, v in zip(report.columns, row, strict=True) for c in _plain(col, v)]
        )
    return ("\ufeff" + out.getvalue()).encode()


def report_xlsx(report: Report) -> bytes:
    """The report as a workbook: sheet 报表 with Chinese headers, sheet Report with English ones,
    the same numbers in both; row 1 the title, row 2 the period, row 4 the headers, then the rows
    and a totals row."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    first = book.active
    assert first is not None
    for sheet, lang in ((first, "zh"), (book.create_sheet(), "en")):
        sheet.title = "报表" if lang == "zh" else "Report"
        sheet.append([report.title_zh if lang == "zh" else report.title_en])
        sheet["A1"].font = Font(bold=True)
        label = "统计期间" if lang == "zh" else "Period"
        sheet.append([label, report.since.isoformat(), report.until.isoformat()])
        sheet.append([])
        sheet.append(_headers(report.columns, lang))
        for cell in sheet[4]:
            cell.font = Font(bold=True)
        for row in report.rows:
            sheet.append(_xlsx_cells(report.columns, row))
            _format_row(sheet, report.columns, sheet.max_row)
        totals = report.totals()
        if report.rows and totals:
            line: list[Any] = []
            for c in report.columns:
                if c.kind == "grams":
                    line += [totals[c.key], tonnes(totals[c.key])]
                elif c.kind == "int" and c.key not in ("compliance_year",):
                    line.append(totals[c.key])
                else:
                    line.append(None)
            line[0] = "合计" if lang == "zh" else "Total"
            sheet.append(line)
            _format_row(sheet, report.columns, sheet.max_row)
            for cell in sheet[sheet.max_row]:
                cell.font = Font(bold=True)
        for i, header in enumerate(_headers(report.columns, lang), start=1):
            sheet.column_dimensions[_letter(i)].width = max(12, min(48, len(header) * 2))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(index))


def _xlsx_cells(columns: tuple[Column, ...], row: tuple[Cell, ...]) -> list[Any]:
    cells: list[Any] = []
    for column, value in zip(columns, row, strict=True):
        if column.kind == "grams":
            grams = int(value or 0)  # type: ignore[arg-type]
            cells += [grams, tonnes(grams)]
        elif isinstance(value, Fraction):
            cells.append(_ratio(value))
        elif isinstance(value, dt.datetime):
            # Spreadsheets have no time zones: China time, as the regulators read it.
            cells.append(value.astimezone(CHINA).replace(tzinfo=None))
        else:
            cells.append(value)
    return cells


def _format_row(sheet: Any, columns: tuple[Column, ...], row: int) -> None:
    index = 1
    for column in columns:
        if column.kind == "grams":
            sheet.cell(row=row, column=index).number_format = GRAMS_FORMAT
            sheet.cell(row=row, column=index + 1).number_format = TONNES_FORMAT
            index += 2
            continue
        fmt = {"ratio": RATIO_FORMAT, "time": TIME_FORMAT, "int": "0"}.get(column.kind)
        if fmt:
            sheet.cell(row=row, column=index).number_format = fmt
        index += 1


def render(report: Report, fmt: str) -> bytes:
    """The report in FORMAT (xlsx, csv or json)."""
    return {"xlsx": report_xlsx, "csv": report_csv, "json": report_json}[fmt](report)


def file_name(report: Report, fmt: str) -> str:
    return f"{report.name}_{report.since.isoformat()}_{report.until.isoformat()}.{fmt}"
