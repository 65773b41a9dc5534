"""Write (or check) the external-list templates ``docs/templates/external-list.{csv,xlsx}``.

``python -m gateway.tools.external_template docs/templates`` (``make templates``) writes both
from the columns of ``adapters.external_list``: a header row and one example row. The CSV has the
English headers (UTF-8 with a byte-order mark, so that Excel opens it as UTF-8); the workbook
the Chinese ones, its identifier columns formatted as Text (so that accounts typed there keep
their leading zeros) and its dates as real Excel dates. ``--check`` writes nothing and fails
(exit 1) when the committed CSV differs or the workbook does not read back to the same rows (a
workbook's bytes carry the time it was saved, so it is compared by content).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
from pathlib import Path

from adapters.external_list import COLUMNS, parse_external_list, template_rows

CSV_NAME = "external-list.csv"
XLSX_NAME = "external-list.xlsx"


def template_csv() -> bytes:
    """The CSV template: English header and the example row, UTF-8 with BOM, CRLF lines."""
    import csv

    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    header, example = template_rows()
    writer.writerow(header)
    writer.writerow(example)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def template_xlsx() -> bytes:
    """The workbook template: Chinese header, the example row with dates as Excel dates, the
    identifier columns (and the capacity, which carries its unit) formatted as Text."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "external-list"
    # A fixed creation time: regenerating the file changes nothing a reader sees.
    book.properties.created = dt.datetime(2025, 1, 1)
    book.properties.creator = "yrdgw"
    sheet.append([c.chinese for c in COLUMNS])
    values: list[object] = []
    for c in COLUMNS:
        values.append(dt.date.fromisoformat(c.example) if c.kind == "date" else c.example)
    sheet.append(values)
    for index, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = max(14, len(column.example) + 4)
        header = sheet.cell(row=1, column=index)
        header.font = Font(bold=True)
        cell = sheet.cell(row=2, column=index)
        if column.kind == "date":
            cell.number_format = "yyyy-mm-dd"
        else:
            cell.number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def check(directory: Path) -> list[str]:
    """What differs between the committed templates in DIRECTORY and the generated ones."""
    problems = []
    csv_path, xlsx_path = directory / CSV_NAME, directory / XLSX_NAME
    if not csv_path.is_file() or csv_path.read_bytes() != template_csv():
        problems.append(f"{csv_path} differs from the generated template")
    if not xlsx_path.is_file():
        problems.append(f"{xlsx_path} is missing")
    else:
        want = parse_external_list(template_csv(), "CCER").rows
        if parse_external_list(xlsx_path.read_bytes(), "CCER").rows != want:
            problems.append(f"{xlsx_path} does not read back to the CSV template's rows")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.directory)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    args.directory.mkdir(parents=True, exist_ok=True)
    (args.directory / CSV_NAME).write_bytes(template_csv())
    (args.directory / XLSX_NAME).write_bytes(template_xlsx())
    print(f"wrote {args.directory / CSV_NAME} and {args.directory / XLSX_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
