"""Anhui (340000): CSV files in GB18030 with Chinese headers, many records of one kind per file.

Format: ``docs/regions.md`` (Anhui). Serial numbers count kilograms (k = 1,000 g).

Mapping choices:
- Encoding: GB18030 only. A file that starts with a UTF-8 byte order mark, or that is valid UTF-8
  with non-ASCII bytes and either is not valid GB18030 or does not show an Anhui header when read
  as GB18030, is rejected with an error saying it is UTF-8 and must be GB18030 (UTF-8 Chinese text
  often decodes as GB18030 mojibake without error, so the header is the decisive test).
- Rows are numbered as a spreadsheet shows them: the header is row 1, blank lines count.
- Limits: 10 MiB per file and 100,000 data rows.
- ``版本`` ``1`` → common ``"1"``, ``1.0`` → ``"1"``, ``1.2`` → ``"1.2"``; rendered as the common
  version (``1``). The header may spell ``装机容量(千瓦)`` with full-width parentheses.
- ``减排量`` × ``单位`` must be whole grams; rendered in 吨 with as few decimals as exact
  (12,345 kg → ``12.345``, 吨).
- A methodology with several parameters is several rows, so ``from_common`` of one methodology
  may produce several rows; ``from_common_many`` renders several records of one kind in one file.
- Records of other regions: the optional trailing columns ``来源地区`` (origin),
  ``序列号单位`` (签发 files) and ``扩展`` (the extension object as JSON text); ids verbatim, any
  county, the common version (a project's may be empty), ``减排量`` in 吨 with as few decimals
  as exact, serials in the origin's unit. A methodology's rows are grouped by origin, number
  and version. ``from_common`` of a foreign record is one document with the trailing columns.
- Identity keys: the optional trailing columns ``业主统一社会信用代码``, ``纬度``,
  ``经度``, ``坐标系``, ``电网户号`` of 项目 files (own and foreign records), read and
  written as ``adapters._identity`` says; written (all five, after the standard columns) only
  for projects that have identity keys.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

from yrd.interop.v1 import records_pb2

from adapters._anhui_csv import (
    CAPACITY_COLUMN,
    CATEGORIES,
    EXTENDED,
    EXTENSION_COLUMN,
    HEADER_ALIASES,
    HEADERS,
    IDENTITY_COLUMNS,
    KIND_COLUMN,
    METHODOLOGY_STATUSES,
    OPTIONAL_HEADERS,
    ORIGIN_COLUMN,
    PARAMETER_COLUMNS,
    PROJECT_STATUSES,
    SERIAL_UNIT_COLUMN,
    SHARED_COLUMNS,
    UNITS,
    bad_width,
    decode,
    four_digit_year,
    header_kind,
    serial,
    write_csv,
)
from adapters._anhui_rows import issuance_row, methodology_rows, project_row
from adapters._common import (
    MIB,
    Issues,
    ParameterValues,
    TextFields,
    any_county,
    build_issuance,
    build_methodology,
    build_project,
    check_identifier,
    choice,
    county_checker,
    fail,
    parse_slash_date,
    version_from_dotted,
)
from adapters._foreign import (
    SERIAL_UNITS_ZH,
    extension_of,
    extension_text,
    foreign_serial_unit,
    merge_extension,
    only_foreign,
    parse_extension_text,
    read_origin,
    read_serial_unit,
    serial_unit_name,
)
from adapters._identity import ANHUI as IDENTITY
from adapters._identity import read_identity
from adapters.base import AdapterBase, CommonRecord, comparable_record
from adapters.errors import FieldIssue, NativeFormatError, NotExpressibleError
from adapters.quantities import (
    GRAMS_PER_KG,
    grams_parser,
    native_serials_to_grams,
)

__all__ = ["AnhuiAdapter"]

MAX_FILE_BYTES = 10 * MIB
#: The parsers of the code columns (built once, not per row).
_CATEGORY = choice(CATEGORIES)
_METHODOLOGY_STATUS = choice(METHODOLOGY_STATUSES)
_PROJECT_STATUS = choice(PROJECT_STATUSES)
_UNIT = choice(UNITS)
MAX_ROWS = 100_000


@dataclass(slots=True)
class _MethodologyRow:
    row: int
    fields: TextFields
    origin: str
    key: tuple[str, str, str]
    shared: dict[str, object]
    parameter: ParameterValues | None
    methodology_id: str
    version: str
    title: str
    category: records_pb2.ScenarioCategory.ValueType
    status: records_pb2.MethodologyStatus.ValueType
    effective: date
    expiry: date | None


class AnhuiAdapter(AdapterBase):
    """Anhui's GB18030 CSV files ⇄ common schema."""

    region = "340000"
    region_label = "Anhui"
    content_types = ("text/vnd.yrd.340000+csv",)
    serial_unit_grams = GRAMS_PER_KG
    origin_field = ORIGIN_COLUMN
    max_document_bytes = MAX_FILE_BYTES
    max_rows = MAX_ROWS

    # -- native → common -----------------------------------------------------------------------
    def _parse(self, data: bytes) -> list[CommonRecord]:
        text = decode(data, self.region)
        issues = Issues()
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        rows: list[tuple[int, list[str]]] = []
        number = 0
        try:
            for number, cells in enumerate(reader, start=1):
                if number > self.max_rows + 1:
                    fail(self.region, "file", f"has more than {self.max_rows} data rows")
                # Blank rows are skipped: a row is blank when all its cells are (joined, too).
                joined = "".join(cells)
                if joined and not joined.isspace():
                    rows.append((number, cells))
        except csv.Error as exc:
            fail(self.region, "file", f"row {number + 1} is not valid CSV: {exc}")
        if not rows:
            fail(self.region, "file", "is empty")
        header_row, header_cells = rows[0]
        header = [HEADER_ALIASES.get(h, h) for h in (cell.strip() for cell in header_cells)]
        kind = header_kind(header, header_row, issues)
        if kind is None:
            issues.raise_native(self.region)
            raise AssertionError("unreachable")
        if len(rows) == 1:
            fail(self.region, "file", "has a header but no data rows")
        fields: list[TextFields] = []
        for number, cells in rows[1:]:
            if len(cells) != len(header):
                bad_width(issues, number, len(cells), header)
                continue
            values = dict(zip(header, cells, strict=True))
            f = TextFields(values, issues, row=number, csv=True)
            found = f.text(KIND_COLUMN, required=True)
            if found is not None and found != kind:
                f.report(KIND_COLUMN, f"{found!r} differs from the file's record kind {kind!r}")
            fields.append(f)
        if kind == "方法学":
            records: list[CommonRecord] = list(self._methodologies(fields, issues))
        elif kind == "项目":
            records = list(self._projects(fields, issues))
        else:
            records = list(self._issuances(fields, issues))
        issues.raise_native(self.region)
        return records

    def _methodologies(
        self, rows: list[TextFields], issues: Issues
    ) -> list[records_pb2.Methodology]:
        parsed: list[_MethodologyRow] = []
        for f in rows:
            item = self._methodology_row(f)
            if item is not None:
                parsed.append(item)
        groups: dict[tuple[str, str, str], list[_MethodologyRow]] = {}
        for item in parsed:
            groups.setdefault(item.key, []).append(item)
        records: list[records_pb2.Methodology] = []
        for (origin, methodology_id, version), items in groups.items():
            first = items[0]
            codes: dict[str, int] = {}
            for item in items:
                for column in SHARED_COLUMNS:
                    if item.shared[column] != first.shared[column]:
                        issues.add(
                            column,
                            f"disagrees with row {first.row} of methodology {methodology_id}"
                            f" version {version}",
                            row=item.row,
                            column=column,
                        )
                if item.parameter is None:
                    if len(items) > 1:
                        issues.add(
                            "参数代码",
                            "is required: each row of a methodology with several rows carries"
                            " one parameter",
                            row=item.row,
                            column="参数代码",
                        )
                    continue
                code = item.parameter.code
                if code in codes:
                    issues.add(
                        "参数代码",
                        f"{code!r} already appears in row {codes[code]} of this methodology",
                        row=item.row,
                        column="参数代码",
                    )
                codes.setdefault(code, item.row)
            methodology = build_methodology(
                origin,
                methodology_id,
                version=version,
                title=first.title,
                category=first.category,
                parameters=[i.parameter for i in items if i.parameter is not None],
                effective=(first.effective, first.expiry),
                status=first.status,
            )
            self._extension(first.fields, methodology)
            records.append(methodology)
        return records

    def _origin(self, f: TextFields) -> str:
        origin = read_origin(f, ORIGIN_COLUMN, self.region)
        if origin == self.region:
            only_foreign(
                f, {EXTENSION_COLUMN: f.text(EXTENSION_COLUMN) is not None}, self.region_label
            )
        return origin

    def _extension(self, f: TextFields, record: CommonRecord) -> None:
        if record.region == self.region:
            return
        ext = parse_extension_text(f, EXTENSION_COLUMN)
        if ext is not None:
            merge_extension(f, EXTENSION_COLUMN, ext, record, EXTENDED[type(record)])

    def _methodology_row(self, f: TextFields) -> _MethodologyRow | None:
        before = len(f.issues.items)
        origin = self._origin(f)
        methodology_id = f.parsed("方法学编号", check_identifier, required=True)
        version = f.parsed("版本", version_from_dotted, required=True)
        title = f.text("方法学名称", required=True)
        category = f.parsed("场景类别", _CATEGORY, required=True)
        effective = f.parsed("生效日期", parse_slash_date, required=True)
        expiry = f.parsed("失效日期", parse_slash_date)
        f.check_order("生效日期", effective, "失效日期", expiry, strict=True)
        status = f.parsed("状态", _METHODOLOGY_STATUS, required=True)
        parameter: ParameterValues | None = None
        if any(f.text(column) is not None for column in PARAMETER_COLUMNS):
            parameter = ParameterValues(
                code=f.text("参数代码", required=True) or "",
                name=f.text("参数名称") or "",
                value=f.decimal("参数值", required=True, allow_negative=True) or "",
                unit=f.text("参数单位") or "",
                source=f.text("参数来源") or "",
                year=f.parsed("参数年度", four_digit_year) or 0,
            )
        if len(f.issues.items) > before:
            return None
        assert methodology_id and version and title and effective
        assert category is not None and status is not None
        return _MethodologyRow(
            row=f.row or 0,
            fields=f,
            origin=origin,
            key=(origin, methodology_id, version),
            shared={
                "方法学名称": title,
                "场景类别": category,
                "生效日期": effective,
                "失效日期": expiry,
                "状态": status,
                EXTENSION_COLUMN: f.text(EXTENSION_COLUMN),
            },
            parameter=parameter,
            methodology_id=methodology_id,
            version=version,
            title=title,
            category=category,
            status=status,
            effective=effective,
            expiry=expiry,
        )

    def _projects(self, rows: list[TextFields], issues: Issues) -> list[records_pb2.Project]:
        records: list[records_pb2.Project] = []
        seen: dict[tuple[str, str], int] = {}
        county_of_anhui = county_checker(self.region, "Anhui")
        for f in rows:
            before = len(issues.items)
            origin = self._origin(f)
            own = origin == self.region
            project_id = f.parsed("项目编号", check_identifier, required=True)
            if project_id is not None:
                if (origin, project_id) in seen:
                    f.report(
                        "项目编号",
                        f"{project_id!r} already appears in row {seen[origin, project_id]}",
                    )
                seen.setdefault((origin, project_id), f.row or 0)
            methodology_id = f.parsed("方法学编号", check_identifier, required=True)
            # A foreign project may name its methodology without a version (Zhejiang's do).
            version = f.parsed("方法学版本", version_from_dotted, required=own)
            title = f.text("项目名称", required=True)
            owner = f.text("业主名称", required=True)
            county = f.parsed("行政区划代码", county_of_anhui if own else any_county, required=True)
            capacity = f.decimal(CAPACITY_COLUMN, positive=True)
            grid = f.parsed("并网日期", parse_slash_date)
            start = f.parsed("计入期开始", parse_slash_date, required=True)
            end = f.parsed("计入期结束", parse_slash_date, required=True)
            f.check_order("计入期开始", start, "计入期结束", end, strict=True)
            status = f.parsed("状态", _PROJECT_STATUS, required=True)
            identity = read_identity(f, IDENTITY)
            if len(issues.items) > before:
                continue
            assert project_id and methodology_id and title and owner and county
            assert start and end and status is not None and (version or not own)
            project = build_project(
                origin,
                project_id,
                (methodology_id, version or ""),
                title=title,
                owner=owner,
                county=county,
                crediting=(start, end),
                status=status,
                capacity=None if capacity is None else (capacity, "kW"),
                grid_date=grid,
                identity=identity,
            )
            self._extension(f, project)
            if len(issues.items) == before:
                records.append(project)
        return records

    def _issuances(self, rows: list[TextFields], issues: Issues) -> list[records_pb2.Issuance]:
        records: list[records_pb2.Issuance] = []
        seen: dict[tuple[str, str], int] = {}
        blocks: list[tuple[str, int, int, int]] = []
        for f in rows:
            before = len(issues.items)
            origin = self._origin(f)
            serial_unit = read_serial_unit(
                f,
                SERIAL_UNIT_COLUMN,
                SERIAL_UNITS_ZH,
                GRAMS_PER_KG,
                foreign=origin != self.region,
                own_label=self.region_label,
            )
            issuance_id = f.parsed("签发编号", check_identifier, required=True)
            if issuance_id is not None:
                if (origin, issuance_id) in seen:
                    f.report(
                        "签发编号",
                        f"{issuance_id!r} already appears in row {seen[origin, issuance_id]}",
                    )
                seen.setdefault((origin, issuance_id), f.row or 0)
            project_id = f.parsed("项目编号", check_identifier, required=True)
            vintage = f.parsed("年份", four_digit_year, required=True)
            start = f.parsed("监测期开始", parse_slash_date, required=True)
            end = f.parsed("监测期结束", parse_slash_date, required=True)
            f.check_order("监测期开始", start, "监测期结束", end, strict=False)
            unit = f.text("单位", required=True)
            unit_grams: int | None = None
            if unit is not None:
                unit_grams = f.parsed("单位", _UNIT)
            grams: int | None = None
            if unit is not None and unit_grams is not None:
                grams = f.parsed("减排量", grams_parser(unit_grams, unit), required=True)
            else:
                f.text("减排量", required=True)
            first = f.parsed("序列号起", serial, required=True)
            last = f.parsed("序列号止", serial, required=True)
            serials: tuple[int, int] | None = None
            if first is not None and last is not None and serial_unit is not None:
                try:
                    serials = native_serials_to_grams(first, last, serial_unit)
                except ValueError as exc:
                    f.report("序列号止", str(exc))
            if grams is not None and serials is not None:
                assert first is not None and last is not None and serial_unit is not None
                if grams != serials[1] - serials[0] + 1:
                    f.report(
                        "减排量",
                        f"{f.text('减排量')} {unit} ({grams} g) does not equal the serial range"
                        f" size {last - first + 1}"
                        f" {serial_unit_name(SERIAL_UNITS_ZH, serial_unit)}",
                    )
                blocks.append((origin, *serials, f.row or 0))
            if len(issues.items) > before:
                continue
            assert issuance_id and project_id and vintage and start and end and serials
            assert grams is not None
            issuance = build_issuance(
                origin,
                issuance_id,
                project_id=project_id,
                vintage=vintage,
                monitoring=(start, end),
                quantity_grams=grams,
                serials=serials,
            )
            self._extension(f, issuance)
            if len(issues.items) == before:
                records.append(issuance)
        blocks.sort()
        # Serials are numbered per origin region: only blocks of one origin can overlap.
        for (origin_a, _, previous_last, previous_row), (origin_b, first, _, row) in pairwise(
            blocks
        ):
            if origin_a == origin_b and first <= previous_last:
                issues.add(
                    "序列号起",
                    f"overlaps the serial range of row {previous_row}",
                    row=row,
                    column="序列号起",
                )
        return records

    # -- common → native -----------------------------------------------------------------------
    def from_common_many(self, records: Sequence[CommonRecord]) -> bytes:
        """Render several records of one kind as one file (one header, rows in order).

        Each record is checked as ``from_common`` checks it; the file is then verified by parsing
        it back (duplicate ids or overlapping serials across records make it inexpressible).
        """
        if not records:
            raise ValueError("no records to render")
        kinds = {type(record) for record in records}
        if len(kinds) != 1:
            raise NotExpressibleError(
                self.region,
                [FieldIssue("records", "an Anhui file carries records of one kind only")],
            )
        header: Sequence[str] = ()
        rows: list[list[str]] = []
        problems: list[FieldIssue] = []
        extended = any(record.region != self.region for record in records)
        with_identity = any(_has_identity(record) for record in records)
        for index, record in enumerate(records):
            issues = Issues()
            result = self._rows(record, issues, extended=extended, with_identity=with_identity)
            problems += [FieldIssue(f"records[{index}].{i.field}", i.reason) for i in issues.items]
            if result is not None:
                header, record_rows = result
                rows += record_rows
        if problems:
            raise NotExpressibleError(self.region, problems)
        output = write_csv(header, rows)
        try:
            parsed = self._parse(output)
        except NativeFormatError as exc:
            raise NotExpressibleError(
                self.region,
                [
                    FieldIssue(i.field, f"the file would be invalid: {i.reason}", i.row, i.column)
                    for i in exc.issues
                ],
            ) from exc
        expected = [comparable_record(r) for r in records]
        got = [comparable_record(r) for r in parsed]
        if got != expected:
            raise NotExpressibleError(
                self.region,
                [FieldIssue("records", "cannot be rendered exactly as one Anhui file")],
            )
        return output

    def _rows(
        self, record: CommonRecord, issues: Issues, *, extended: bool, with_identity: bool
    ) -> tuple[tuple[str, ...], list[list[str]]] | None:
        """The header and rows of ``record``; ``extended``: with the trailing columns of foreign
        records; ``with_identity``: with the identity columns (a project file)."""
        rows: list[list[str]] | None
        identity: dict[str, str] = {}
        if isinstance(record, records_pb2.Methodology):
            kind = "方法学"
            rows = methodology_rows(record, issues)
        elif isinstance(record, records_pb2.Project):
            kind = "项目"
            result = project_row(record, issues)
            rows = None if result is None else [result[0]]
            identity = {} if result is None else result[1]
        elif isinstance(record, records_pb2.Issuance):
            kind = "签发"
            row = issuance_row(record, issues)
            rows = None if row is None else [row]
        else:
            raise TypeError(f"not a common record: {type(record).__name__}")
        if rows is None:
            return None
        identity_columns = IDENTITY_COLUMNS if with_identity and kind == "项目" else ()
        if not extended and not identity_columns:
            return HEADERS[kind], rows
        trailing: dict[str, str] = {ORIGIN_COLUMN: "", SERIAL_UNIT_COLUMN: "", EXTENSION_COLUMN: ""}
        trailing |= {column: identity.get(column, "") for column in identity_columns}
        if record.region != self.region:
            trailing[ORIGIN_COLUMN] = record.region
            ext = extension_of(record, EXTENDED[type(record)])
            trailing[EXTENSION_COLUMN] = "" if ext is None else extension_text(ext)
            if isinstance(record, records_pb2.Issuance):
                unit = foreign_serial_unit(record.region, record.serials.start, record.serials.end)
                trailing[SERIAL_UNIT_COLUMN] = serial_unit_name(SERIAL_UNITS_ZH, unit)
        columns = identity_columns + (OPTIONAL_HEADERS[kind] if extended else ())
        return HEADERS[kind] + columns, [row + [trailing[c] for c in columns] for row in rows]

    def _render(self, record: CommonRecord, issues: Issues) -> bytes | None:
        result = self._rows(
            record, issues, extended=not self.own(record), with_identity=_has_identity(record)
        )
        return None if result is None else write_csv(*result)

    def _render_methodology(self, record: records_pb2.Methodology, issues: Issues) -> bytes | None:
        return self._render(record, issues)

    def _render_project(self, record: records_pb2.Project, issues: Issues) -> bytes | None:
        return self._render(record, issues)

    def _render_issuance(self, record: records_pb2.Issuance, issues: Issues) -> bytes | None:
        return self._render(record, issues)


def _has_identity(record: CommonRecord) -> bool:
    """Whether ``record`` is a project with identity keys (its file has the identity columns)."""
    return isinstance(record, records_pb2.Project) and record.HasField("identity")
