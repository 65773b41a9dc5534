"""External project lists (CCER, the national ETS, a local ETS) read from CSV or XLSX.

An operator imports such a list (``yrdgw duplicates import --scheme CCER FILE``) so that the
region projects registered a second time elsewhere are found (docs/operations.md, part C).
This module only reads and checks the file: it returns ``ExternalListRow`` values or raises
``ExternalListError`` listing the bad rows (row number and column each); nothing of a list
with a bad row is usable. It imports nothing of the gateway.

Files:

- XLSX (recognised by its content, a ZIP archive): the first worksheet, values only (a formula
  gives the value Excel saved with it). Row 1 is the header. Dates may be real Excel dates or
  text. Columns that are identifiers (scheme project id, owner credit code, grid account) must
  be text cells: Excel turns a typed ``0310012345`` into the number 310012345 and keeps only 15
  significant digits, so a number cell there is refused rather than guessed at.
- CSV: UTF-8 with or without a byte-order mark; when the bytes are not UTF-8 they are read as
  GB18030 (a superset of the GBK that Excel on Chinese Windows writes as "CSV"). A wrongly decoded
  file cannot pass: its header would not be recognised. Comma-separated, double-quoted as RFC 4180.

Row numbers are those a spreadsheet shows: the header is row 1.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from yrd.interop.v1 import records_pb2

from adapters.errors import AdapterError, FieldIssue
from adapters.quantities import CAPACITY_UNIT_WATTS
from mutual_recognition.duplicates import ExternalListRow
from mutual_recognition.identity import (
    IdentityKeyError,
    check_credit_code,
    check_grid_account,
    check_site,
)

__all__ = [
    "CATEGORY_NAMES",
    "COLUMNS",
    "MAX_LISTED",
    "Column",
    "ExternalList",
    "ExternalListError",
    "check_scheme",
    "parse_external_list",
    "template_rows",
]

#: How many bad rows an error lists (the count says how many there are in all).
MAX_LISTED = 20

_SC = records_pb2.ScenarioCategory
Kind = Literal["id", "text", "code", "coordinate", "datum", "category", "capacity", "date"]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an external list: its key, the headers accepted for it (English first,
    then Chinese), whether it must be present and filled, and what its cells hold."""

    key: str
    english: str
    chinese: str
    required: bool
    kind: Kind
    example: str
    meaning: str

    @property
    def headers(self) -> tuple[str, str]:
        return self.english, self.chinese


#: The columns, in the template's order. Headers match ignoring case, blanks, ``_`` and ``-``.
COLUMNS: tuple[Column, ...] = (
    Column("scheme_project_id", "scheme project id", "项目编号", True, "id", "CCER-14-2025-0001",
           "The scheme's own project identifier (no '/' or blanks, at most 80 characters)."),
    Column("title", "name", "项目名称", True, "text", "青浦区某工业园屋顶分布式光伏项目",
           "Project name as listed."),
    Column("owner_credit_code", "owner credit code", "业主统一社会信用代码", False, "code",
           "91310118MA1JL0XH49",
           "Owner's unified social credit code (18 characters, check character verified)."),
    Column("latitude", "latitude", "纬度", False, "coordinate", "31.149200",
           "Site latitude in decimal degrees, at most 6 decimals."),
    Column("longitude", "longitude", "经度", False, "coordinate", "121.124800",
           "Site longitude in decimal degrees, at most 6 decimals."),
    Column("datum", "datum", "坐标系", False, "datum", "WGS84",
           "WGS84 (the default when empty), GCJ02 or BD09."),
    Column("grid_account", "grid account", "电网户号", False, "code", "0310012345678",
           "Grid metering account: 10 to 20 digits, written as text (leading zeros count)."),
    Column("category", "scenario category", "场景类别", True, "category", "DISTRIBUTED_PV",
           "DISTRIBUTED_PV, EV_CHARGING, PUBLIC_TRANSIT, CYCLING_WALKING, WASTE_SORTING or OTHER "
           "(or the Chinese name: 分布式光伏, 充电桩, 公共交通, 绿色出行, 垃圾分类, 其他)."),
    Column("capacity", "capacity", "装机容量", False, "capacity", "850 kW",
           "Installed capacity with its unit: W, kW, MW, GW, 瓦, 千瓦 or 兆瓦 (e.g. '850 kW')."),
    Column("registration_date", "registration date", "登记日期", True, "date", "2025-03-18",
           "Date of registration in the scheme (YYYY-MM-DD, YYYY/M/D or an Excel date)."),
    Column("credit_start", "crediting start", "计入期开始", False, "date", "2025-01-01",
           "First day of the crediting period (empty: unknown, open towards the past)."),
    Column("credit_end", "crediting end", "计入期结束", False, "date", "2034-12-31",
           "Last day of the crediting period (empty: open-ended)."),
)  # fmt: skip

#: Category names accepted (upper-cased English names, with or without the enum prefix, and the
#: Chinese names the region formats use).
CATEGORY_NAMES: dict[str, records_pb2.ScenarioCategory.ValueType] = {
    "DISTRIBUTED_PV": _SC.SCENARIO_CATEGORY_DISTRIBUTED_PV,
    "EV_CHARGING": _SC.SCENARIO_CATEGORY_EV_CHARGING,
    "PUBLIC_TRANSIT": _SC.SCENARIO_CATEGORY_PUBLIC_TRANSIT,
    "CYCLING_WALKING": _SC.SCENARIO_CATEGORY_CYCLING_WALKING,
    "WASTE_SORTING": _SC.SCENARIO_CATEGORY_WASTE_SORTING,
    "OTHER": _SC.SCENARIO_CATEGORY_OTHER,
    "分布式光伏": _SC.SCENARIO_CATEGORY_DISTRIBUTED_PV,
    "光伏": _SC.SCENARIO_CATEGORY_DISTRIBUTED_PV,
    "充电桩": _SC.SCENARIO_CATEGORY_EV_CHARGING,
    "充电设施": _SC.SCENARIO_CATEGORY_EV_CHARGING,
    "公共交通": _SC.SCENARIO_CATEGORY_PUBLIC_TRANSIT,
    "绿色出行": _SC.SCENARIO_CATEGORY_CYCLING_WALKING,
    "骑行步行": _SC.SCENARIO_CATEGORY_CYCLING_WALKING,
    "垃圾分类": _SC.SCENARIO_CATEGORY_WASTE_SORTING,
    "其他": _SC.SCENARIO_CATEGORY_OTHER,
}

_SCHEME = re.compile(r"[A-Z][A-Z0-9]{1,19}", re.ASCII)
_ID = re.compile(r"[^/\s]{1,80}")
MAX_TITLE = 300
_CAPACITY = re.compile(r"([0-9]+(?:\.[0-9]+)?) *([A-Za-z\u4e00-\u9fff]+)")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_SLASH_DATE = re.compile(r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})", re.ASCII)
# What Excel writes for a long digit string it took for a number: "3.10012E+12".
_SCIENTIFIC = re.compile(r"[0-9](?:\.[0-9]+)?E\+?[0-9]+", re.ASCII | re.IGNORECASE)
_XLSX_MAGIC = b"PK\x03\x04"


class ExternalListError(AdapterError):
    """An external list that cannot be imported: ``issues`` are the first ``MAX_LISTED`` problems
    (each with its row and column, or none for the file as a whole) and ``total`` their count."""

    def __init__(self, issues: Sequence[FieldIssue], total: int | None = None) -> None:
        if not issues:
            raise ValueError("ExternalListError needs at least one issue")
        self.issues: tuple[FieldIssue, ...] = tuple(issues)
        self.total = total if total is not None else len(self.issues)
        shown = "; ".join(str(i) for i in self.issues)
        more = f"; … and {self.total - len(self.issues)} more" if self.total > len(issues) else ""
        super().__init__(f"invalid external list ({self.total} issue(s)): {shown}{more}")


@dataclass(frozen=True, slots=True)
class ExternalList:
    """A checked list: its rows, the file's format, its text encoding (CSV) and its SHA-256."""

    rows: tuple[ExternalListRow, ...]
    format: Literal["csv", "xlsx"]
    encoding: str | None
    digest: str


def check_scheme(scheme: str) -> str:
    """``scheme`` if it is a scheme code (upper case letters and digits, 2 to 20, a letter
    first: ``CCER``, ``CEA``, ``SHEA``), else ``ValueError`` saying so."""
    if not _SCHEME.fullmatch(scheme):
        raise ValueError(
            f"scheme {scheme!r} is not a scheme code: 2 to 20 upper-case letters and digits, "
            "a letter first (e.g. CCER, CEA, SHEA)"
        )
    return scheme


def parse_external_list(data: bytes, scheme: str, *, max_listed: int = MAX_LISTED) -> ExternalList:
    """Read and check a whole list of SCHEME's projects (XLSX when DATA is a ZIP archive, else
    CSV): every row is checked and every bad one reported (the first MAX_LISTED of them
    listed); all or nothing. A bad SCHEME is a ``ValueError``."""
    check_scheme(scheme)
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(_XLSX_MAGIC):
        table: Iterable[tuple[int, Sequence[object]]] = _xlsx_rows(data)
        fmt: Literal["csv", "xlsx"] = "xlsx"
        encoding = None
    else:
        text, encoding = _decode(data)
        table = _csv_rows(text)
        fmt = "csv"
    issues = _Issues(max_listed)
    rows = _read(scheme, table, issues)
    if issues.total:
        raise ExternalListError(issues.listed, issues.total)
    return ExternalList(tuple(rows), fmt, encoding, digest)


def template_rows() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The template's header (English names) and its example row."""
    return tuple(c.english for c in COLUMNS), tuple(c.example for c in COLUMNS)


class _Issues:
    """Collects problems: keeps the first LIMIT, counts them all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.listed: list[FieldIssue] = []
        self.total = 0

    def add(
        self, reason: str, row: int | None = None, column: Column | None = None, what: str = ""
    ) -> None:
        """One problem: in ROW (None: the file), COLUMN (None: WHAT, e.g. the header)."""
        self.total += 1
        if len(self.listed) < self.limit:
            if column is not None:
                self.listed.append(FieldIssue(column.english, reason, row, column.english))
            else:
                self.listed.append(FieldIssue(what or "file", reason, row, what or None))


def _decode(data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        # Excel on Chinese Windows saves "CSV" in GBK; GB18030 reads every GBK file.
        return data.decode("gb18030", errors="replace"), "gb18030"


def _csv_rows(text: str) -> Iterator[tuple[int, Sequence[object]]]:
    yield from enumerate(csv.reader(io.StringIO(text, newline="")), start=1)


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, Sequence[object]]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ExternalListError(
            [FieldIssue("file", f"not a readable XLSX workbook ({exc})")]
        ) from None
    try:
        sheet = book.worksheets[0]
        yield from enumerate(sheet.iter_rows(values_only=True), start=1)
    finally:
        book.close()


def _normal(header: str) -> str:
    text = unicodedata.normalize("NFKC", header).strip().lower()
    return re.sub(r"[\s_\-]+", "", text)


_BY_HEADER = {_normal(h): c for c in COLUMNS for h in c.headers}


def _header(cells: Sequence[object], issues: _Issues) -> list[Column | None] | None:
    found: list[Column | None] = []
    seen: set[str] = set()
    for position, cell in enumerate(cells, start=1):
        text = "" if cell is None else str(cell)
        if not text.strip():
            found.append(None)
            continue
        column = _BY_HEADER.get(_normal(text))
        if column is None:
            issues.add(f"column {position}: unknown header {text.strip()!r}", 1, what="header")
        elif column.key in seen:
            issues.add(
                f"column {position}: {text.strip()!r} repeats column {column.english!r}",
                1,
                what="header",
            )
        else:
            seen.add(column.key)
        found.append(column)
    missing = [c for c in COLUMNS if c.required and c.key not in seen]
    for column in missing:
        issues.add(
            f"no column {column.english!r} (or {column.chinese!r}) in the header", 1, what="header"
        )
    if issues.total:
        if not seen:
            issues.add(
                "the first row is not a header of an external list; the columns are: "
                + ", ".join(c.english for c in COLUMNS)
            )
        return None
    return found


def _read(
    scheme: str, table: Iterable[tuple[int, Sequence[object]]], issues: _Issues
) -> list[ExternalListRow]:
    rows: list[ExternalListRow] = []
    header: list[Column | None] | None = None
    ids: dict[str, int] = {}
    for number, cells in table:
        if header is None:
            header = _header(cells, issues)
            if header is None:
                return []
            continue
        if all(cell is None or str(cell).strip() == "" for cell in cells):
            continue  # blank lines between or after rows
        if len(cells) > len(header) and any(
            c is not None and str(c).strip() for c in cells[len(header) :]
        ):
            issues.add(f"{len(cells)} cells, the header has {len(header)}", number, what="cells")
            continue
        values = {c.key: cell for c, cell in zip(header, cells, strict=False) if c is not None}
        row = _row(scheme, number, values, issues)
        if row is None:
            continue
        first = ids.setdefault(row.scheme_project_id, number)
        if first != number:
            column = COLUMNS[0]
            issues.add(
                f"{row.scheme_project_id!r} is listed already in row {first}", number, column
            )
            continue
        rows.append(row)
    if header is None:
        issues.add("the file is empty (no header row)")
    return rows


def _row(
    scheme: str, number: int, values: dict[str, object], issues: _Issues
) -> ExternalListRow | None:
    before = issues.total
    got: dict[str, object] = {}
    failed: set[str] = set()
    for column in COLUMNS:
        raw = values.get(column.key)
        try:
            got[column.key] = _cell(column, raw)
        except ValueError as exc:
            issues.add(str(exc), number, column)
            got[column.key] = None
            failed.add(column.key)
            continue
        if got[column.key] is None and column.required:
            issues.add("is empty; it is required", number, column)
    site = None if failed & {"latitude", "longitude", "datum"} else _site(got, number, issues)
    start, end = got["credit_start"], got["credit_end"]
    if isinstance(start, dt.date) and isinstance(end, dt.date) and end < start:
        issues.add(f"{end} is before the crediting start {start}", number, COLUMNS[-1])
    if issues.total != before:
        return None
    capacity = got["capacity"]
    value, unit = capacity if isinstance(capacity, tuple) else ("", "")
    return ExternalListRow(
        scheme=scheme,
        scheme_project_id=str(got["scheme_project_id"]),
        title=str(got["title"]),
        owner_credit_code=_text(got["owner_credit_code"]),
        latitude=_text(got["latitude"]),
        longitude=_text(got["longitude"]),
        datum=site or "",
        grid_account=_text(got["grid_account"]),
        category=_category_name(got["category"]),
        capacity_value=str(value),
        capacity_unit=str(unit),
        registration_date=_date(got["registration_date"]),
        credit_start=_opt_date(got["credit_start"]),
        credit_end=_opt_date(got["credit_end"]),
    )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _date(value: object) -> dt.date:
    assert isinstance(value, dt.date)
    return value


def _opt_date(value: object) -> dt.date | None:
    return None if value is None else _date(value)


def _category_name(value: object) -> str:
    assert isinstance(value, str)
    return value


_BY_KEY = {c.key: c for c in COLUMNS}


def _site(got: dict[str, object], number: int, issues: _Issues) -> str | None:
    """The datum of the row's site (None: no site), after checking the three parts together."""
    datum = _opt(got["datum"])
    if datum is not None:
        # Lists write "WGS-84", "gcj02": the three datums have one spelling each once normalised.
        datum = datum.upper().replace("-", "").replace(" ", "")
    try:
        checked = check_site(_opt(got["latitude"]), _opt(got["longitude"]), datum)
    except IdentityKeyError as exc:
        issues.add(str(exc), number, _BY_KEY[exc.key])
        return None
    return None if checked is None else checked.value


def _cell(column: Column, raw: object) -> object:
    """The checked value of one cell (None when empty), or ValueError with the reason."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise ValueError(f"is a TRUE/FALSE cell ({raw}), not a value of this column")
    kind = column.kind
    if kind == "date":
        return _date_cell(raw)
    if isinstance(raw, dt.datetime | dt.date | dt.time):
        raise ValueError(f"is a date cell ({raw}); write it as text")
    if isinstance(raw, int | float):
        shown = _shown_number(raw)
        if kind in ("id", "code"):
            raise ValueError(
                f"is a number cell ({shown}), not text: Excel drops leading zeros and keeps only "
                "15 significant digits of a number, so it cannot be trusted; format the column as "
                "Text and enter the value again"
            )
        if kind == "capacity":
            raise ValueError(
                f"is a bare number ({shown}); write the capacity with its unit as text, "
                "e.g. '850 kW'"
            )
        text = shown
    else:
        text = str(raw).strip()
    if kind == "id":
        if not _ID.fullmatch(text) or any(unicodedata.category(ch)[0] == "C" for ch in text):
            raise ValueError(
                f"{text[:40]!r} is not a project id: at most 80 characters, no '/', blanks or "
                "control characters"
            )
        return text
    if kind == "code":
        return _code(column, text)
    if kind == "text" and len(text) > MAX_TITLE:
        raise ValueError(f"has {len(text)} characters; at most {MAX_TITLE}")
    if kind == "text" and any(unicodedata.category(ch) == "Cc" for ch in text):
        raise ValueError("contains a control character")
    if kind == "category":
        key = text.upper().replace(" ", "_").replace("-", "_").removeprefix("SCENARIO_CATEGORY_")
        if key not in CATEGORY_NAMES:
            raise ValueError(f"{text!r} is not a scenario category ({column.meaning})")
        return _SC.Name(CATEGORY_NAMES[key])
    if kind == "capacity":
        return _capacity(text)
    return text


def _shown_number(raw: int | float) -> str:
    if isinstance(raw, float) and raw.is_integer() and abs(raw) < 1e16:
        return str(int(raw))
    return repr(raw)


def _code(column: Column, text: str) -> str:
    if _SCIENTIFIC.fullmatch(text):
        raise ValueError(
            f"{text!r} is a number in scientific notation: Excel converted the value and its "
            "digits are lost; format the column as Text in the workbook, enter the values again "
            "and save the CSV anew"
        )
    try:
        if column.key == "grid_account":
            return check_grid_account(text)
        return check_credit_code(text)
    except IdentityKeyError as exc:
        reason = str(exc)
        if column.key == "grid_account" and text.isascii() and text.isdigit() and len(text) < 10:
            reason += " (leading zeros dropped by a spreadsheet?)"
        raise ValueError(reason) from None


def _capacity(text: str) -> tuple[str, str]:
    match = _CAPACITY.fullmatch(text)
    if match is None or match.group(2) not in CAPACITY_UNIT_WATTS:
        units = ", ".join(CAPACITY_UNIT_WATTS)
        raise ValueError(f"{text!r} is not a capacity with a unit ({units}), e.g. '850 kW'")
    value, unit = match.group(1), match.group(2)
    if not value.strip("0."):
        raise ValueError(f"{text!r} must be greater than zero")
    return value, unit


def _date_cell(raw: object) -> dt.date:
    if isinstance(raw, dt.datetime):
        if raw.time() != dt.time(0, 0):
            raise ValueError(f"is a date and time ({raw}); give the date alone")
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, int | float):
        raise ValueError(
            f"is a number ({_shown_number(raw)}), not a date: format the cell as a date or write "
            "YYYY-MM-DD as text"
        )
    text = str(raw).strip()
    match = _ISO_DATE.fullmatch(text) or _SLASH_DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text[:40]!r} is not a date (YYYY-MM-DD, or YYYY/M/D)")
    try:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise ValueError(f"{text!r} is not a date of the calendar") from None
