"""Anhui's CSV format (``docs/regions.md``): code tables, headers, decoding, header checks, writing.

``adapters.r340000_anhui`` reads rows into common records; ``adapters._anhui_rows`` renders them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from yrd.interop.v1 import records_pb2

from adapters._common import Issues, fail, inverse
from adapters._foreign import ISSUANCE_EXTENSION, METHODOLOGY_EXTENSION, PROJECT_EXTENSION
from adapters._identity import ANHUI as IDENTITY
from adapters.quantities import GRAMS_PER_KG, GRAMS_PER_TONNE

_SC = records_pb2.ScenarioCategory
_MS = records_pb2.MethodologyStatus
_PS = records_pb2.ProjectStatus

CATEGORIES = {
    "分布式光伏": _SC.SCENARIO_CATEGORY_DISTRIBUTED_PV,
    "充电桩": _SC.SCENARIO_CATEGORY_EV_CHARGING,
    "公共交通": _SC.SCENARIO_CATEGORY_PUBLIC_TRANSIT,
    "绿色出行": _SC.SCENARIO_CATEGORY_CYCLING_WALKING,
    "垃圾分类": _SC.SCENARIO_CATEGORY_WASTE_SORTING,
    "其他": _SC.SCENARIO_CATEGORY_OTHER,
}
METHODOLOGY_STATUSES = {
    "备案": _MS.METHODOLOGY_STATUS_FILED,
    "生效": _MS.METHODOLOGY_STATUS_EFFECTIVE,
    "废止": _MS.METHODOLOGY_STATUS_WITHDRAWN,
}
PROJECT_STATUSES = {
    "已登记": _PS.PROJECT_STATUS_REGISTERED,
    "暂停": _PS.PROJECT_STATUS_SUSPENDED,
    "关闭": _PS.PROJECT_STATUS_CLOSED,
}
UNITS = {"吨": GRAMS_PER_TONNE, "千克": GRAMS_PER_KG, "克": 1}
CATEGORY_NAMES = inverse(CATEGORIES)
METHODOLOGY_STATUS_NAMES = inverse(METHODOLOGY_STATUSES)
PROJECT_STATUS_NAMES = inverse(PROJECT_STATUSES)

KIND_COLUMN = "记录类型"
CAPACITY_COLUMN = "装机容量(千瓦)"
HEADERS: dict[str, tuple[str, ...]] = {
    "方法学": (
        "记录类型", "方法学编号", "版本", "方法学名称", "场景类别", "参数代码", "参数名称",
        "参数值", "参数单位", "参数来源", "参数年度", "生效日期", "失效日期", "状态",
    ),
    "项目": (
        "记录类型", "项目编号", "方法学编号", "方法学版本", "项目名称", "业主名称",
        "行政区划代码", CAPACITY_COLUMN, "并网日期", "计入期开始", "计入期结束", "状态",
    ),
    "签发": (
        "记录类型", "签发编号", "项目编号", "年份", "监测期开始", "监测期结束", "减排量",
        "单位", "序列号起", "序列号止",
    ),
}  # fmt: skip
HEADER_ALIASES = {"装机容量（千瓦）": CAPACITY_COLUMN}
ORIGIN_COLUMN = "来源地区"
SERIAL_UNIT_COLUMN = "序列号单位"
EXTENSION_COLUMN = "扩展"
#: The optional trailing columns of each kind (foreign records), in the order they are written.
OPTIONAL_HEADERS: dict[str, tuple[str, ...]] = {
    "方法学": (ORIGIN_COLUMN, EXTENSION_COLUMN),
    "项目": (ORIGIN_COLUMN, EXTENSION_COLUMN),
    "签发": (ORIGIN_COLUMN, SERIAL_UNIT_COLUMN, EXTENSION_COLUMN),
}
#: The identity keys of 项目 files: optional trailing columns, own and foreign records alike.
IDENTITY_COLUMNS: tuple[str, ...] = IDENTITY.names
_ALLOWED_OPTIONAL: dict[str, frozenset[str]] = {
    kind: frozenset(columns) | (frozenset(IDENTITY_COLUMNS) if kind == "项目" else frozenset())
    for kind, columns in OPTIONAL_HEADERS.items()
}
_ALL_OPTIONAL = frozenset({ORIGIN_COLUMN, SERIAL_UNIT_COLUMN, EXTENSION_COLUMN, *IDENTITY_COLUMNS})
EXTENDED = {
    records_pb2.Methodology: METHODOLOGY_EXTENSION,
    records_pb2.Project: PROJECT_EXTENSION,
    records_pb2.Issuance: ISSUANCE_EXTENSION,
}
PARAMETER_COLUMNS = ("参数代码", "参数名称", "参数值", "参数单位", "参数来源", "参数年度")
SHARED_COLUMNS = ("方法学名称", "场景类别", "生效日期", "失效日期", "状态", EXTENSION_COLUMN)


def four_digit_year(text: str) -> int:
    if len(text) != 4 or not text.isascii() or not text.isdigit() or text == "0000":
        raise ValueError(f"{text!r} is not a year written YYYY")
    return int(text)


def serial(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise ValueError(f"{text!r} is not a serial number (digits only)")
    return int(text)


def _looks_anhui(text: str) -> bool:
    return KIND_COLUMN in text[:4096].split("\n", 1)[0]


def decode(data: bytes, region: str) -> str:
    must = "Anhui files must be GB18030"
    if data.startswith(b"\xef\xbb\xbf"):
        fail(
            region,
            "encoding",
            f"the file is UTF-8 (it starts with a UTF-8 byte order mark); {must}",
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        fail(region, "encoding", f"the file is UTF-16; {must}")
    utf8: str | None = None
    if not data.isascii():
        try:
            utf8 = data.decode("utf-8")
        except UnicodeDecodeError:
            utf8 = None
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        if utf8 is not None:
            fail(region, "encoding", f"the file is UTF-8; {must}")
        fail(region, "encoding", f"the file is not valid GB18030 (byte offset {exc.start})")
    if utf8 is not None and (_looks_anhui(utf8) or not _looks_anhui(text)):
        fail(region, "encoding", f"the file is UTF-8 (read as GB18030 it is garbled); {must}")
    return text


def header_kind(full_header: list[str], row: int, issues: Issues) -> str | None:
    """The record kind of a header row (with optional trailing columns); issues when none."""
    header = [h for h in full_header if h not in _ALL_OPTIONAL]
    kind = _standard_kind(header, row, issues)
    if kind is None:
        return None
    for index, column in enumerate(full_header):
        if column not in _ALL_OPTIONAL:
            continue
        if column not in _ALLOWED_OPTIONAL[kind]:
            issues.add(column, f"is not a column of the {kind} header", row=row, column=column)
        elif full_header.count(column) > 1:
            issues.add(column, "appears more than once in the header", row=row, column=column)
        elif index < len(header):
            issues.add(column, "must come after the standard columns", row=row, column=column)
    return None if issues else kind


def _standard_kind(header: list[str], row: int, issues: Issues) -> str | None:
    for kind, columns in HEADERS.items():
        if header == list(columns):
            return kind
    duplicates = sorted({h for h in header if header.count(h) > 1})
    for column in duplicates:
        issues.add(column, "appears more than once in the header", row=row, column=column)
    best = max(HEADERS, key=lambda k: len(set(HEADERS[k]) & set(header)))
    expected = HEADERS[best]
    missing = [c for c in expected if c not in header]
    unknown = [c for c in header if c not in expected]
    for column in missing:
        issues.add(column, f"is missing from the {best} header", row=row, column=column)
    for column in unknown:
        issues.add(
            column or "header",
            f"is not a column of the {best} header",
            row=row,
            column=column or None,
        )
    if not (missing or unknown or duplicates) and set(header) == set(expected):
        return best  # same columns in another order
    if not issues:
        issues.add("header", f"is not an Anhui header (expected {','.join(expected)})", row=row)
    return None


def bad_width(issues: Issues, row: int, width: int, header: list[str]) -> None:
    if width < len(header):
        column = header[width]
        issues.add(
            column,
            f"is missing: the row has {width} fields, the header has {len(header)}",
            row=row,
            column=column,
        )
    else:
        issues.add(
            "row",
            f"has {width} fields, the header has {len(header)}",
            row=row,
        )


def write_csv(header: Sequence[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("gb18030")
