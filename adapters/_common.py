"""Helpers shared by the regional adapters: text, dates, versions, identifiers, field readers.

Rules common to every region (``docs/regions.md``):
- text is NFC-normalised and stripped of leading/trailing blanks; an empty string is "absent";
- text may not contain control characters other than tab, LF and CR, nor U+FFFE/U+FFFF (so every
  text field can travel in every format, XML included);
- quantities are exact (see ``adapters.quantities``), dates are real calendar dates.

The helpers live by concern in ``adapters._text`` (text, ids, versions, dates, names),
``adapters._fields`` (issue collection and the field readers), ``adapters._build`` (common records
from validated values) and here (checks of common records before rendering, code tables); this
module re-exports them all for the adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from yrd.interop.v1 import records_pb2

from adapters._build import (
    EligibilityValues,
    ParameterValues,
    build_issuance,
    build_methodology,
    build_project,
    set_date,
    set_date_range,
)
from adapters._fields import (
    JSON_DECODER,
    DuplicateKeyError,
    Fields,
    Issues,
    JsonFields,
    TextFields,
    dump_json,
    fail,
    load_json_object,
)
from adapters._text import (
    MAX_DOCUMENT_BYTES,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    MIB,
    ZJ_ID,
    any_county,
    check_identifier,
    check_zhejiang_id,
    clean_text,
    county_checker,
    date_parser,
    date_range,
    format_compact_date,
    format_datetime,
    format_iso_date,
    format_slash_date,
    from_calendar,
    integer_version,
    is_canonical_version,
    issuance_name,
    methodology_name,
    normalize_text,
    order_problem,
    parse_compact_date,
    parse_datetime,
    parse_iso_date,
    parse_slash_date,
    project_name,
    split_project_name,
    text_problem,
    to_calendar,
    version_from_dotted,
    version_from_v,
    version_to_dotted,
)
from adapters.quantities import check_decimal

__all__ = [
    "JSON_DECODER",
    "MAX_DOCUMENT_BYTES",
    "MAX_ID_LENGTH",
    "MAX_TEXT_LENGTH",
    "MIB",
    "ZJ_ID",
    "CommonCheck",
    "DuplicateKeyError",
    "EligibilityValues",
    "Fields",
    "Issues",
    "JsonFields",
    "ParameterValues",
    "TextFields",
    "any_county",
    "build_issuance",
    "build_methodology",
    "build_project",
    "check_identifier",
    "check_zhejiang_id",
    "choice",
    "clean_text",
    "county_checker",
    "date_parser",
    "date_range",
    "dump_json",
    "fail",
    "format_compact_date",
    "format_datetime",
    "format_iso_date",
    "format_slash_date",
    "from_calendar",
    "integer_version",
    "inverse",
    "is_canonical_version",
    "issuance_name",
    "load_json_object",
    "methodology_name",
    "normalize_text",
    "order_problem",
    "parse_compact_date",
    "parse_datetime",
    "parse_iso_date",
    "parse_slash_date",
    "project_name",
    "set_date",
    "set_date_range",
    "split_project_name",
    "text_problem",
    "to_calendar",
    "version_from_dotted",
    "version_from_v",
    "version_to_dotted",
]

T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# Checks on common records before rendering them (NotExpressibleError)
# --------------------------------------------------------------------------------------------


@dataclass
class CommonCheck:
    """Validates the parts of a common record a native rendering needs; collects issues."""

    issues: Issues

    def add(self, field: str, reason: str) -> None:
        self.issues.add(field, reason)

    def text(self, field: str, value: str, *, required: bool) -> str | None:
        if not value:
            if required:
                self.add(field, "is required by the native format but empty")
            return None
        problem = text_problem(value)
        if problem is not None:
            self.add(field, problem)
            return None
        return value

    def identifier(
        self, field: str, value: str, parse: Callable[[str], str] = check_identifier
    ) -> str | None:
        if self.text(field, value, required=True) is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            self.add(field, str(exc))
            return None

    def day(
        self, field: str, value: records_pb2.CalendarDate, *, present: bool, required: bool
    ) -> date | None:
        if not present:
            if required:
                self.add(field, "is required by the native format but not set")
            return None
        try:
            return from_calendar(value)
        except ValueError as exc:
            self.add(field, str(exc))
            return None

    def date_range(
        self,
        field: str,
        owner: records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance,
        *,
        end_required: bool,
        strict: bool,
    ) -> tuple[date | None, date | None]:
        value: records_pb2.DateRange = getattr(owner, field)
        present = bool(value.ListFields())
        start = self.day(
            f"{field}.start",
            value.start,
            present=present and value.HasField("start"),
            required=True,
        )
        end = self.day(
            f"{field}.end",
            value.end,
            present=present and value.HasField("end"),
            required=end_required,
        )
        if start is not None and end is not None:
            problem = order_problem(start, end, strict=strict)
            if problem is not None:
                self.add(f"{field}.end", problem)
        return start, end

    def version(self, field: str, value: str) -> str | None:
        if not value:
            self.add(field, "is required by the native format but empty")
            return None
        if not is_canonical_version(value):
            self.add(field, f"{value!r} is not a normalised common version (e.g. 1, 1.2, 12)")
            return None
        return value

    def name(self, field: str, actual: str, expected: str) -> None:
        if actual != expected:
            self.add(field, f"{actual!r} does not match the record's identity {expected!r}")

    def decimal(
        self, field: str, value: str, *, positive: bool, allow_negative: bool = False
    ) -> str | None:
        try:
            return check_decimal(value, positive=positive, allow_negative=allow_negative)
        except ValueError as exc:
            self.add(field, str(exc))
            return None

    def year(self, field: str, value: int, *, required: bool) -> int | None:
        if value == 0 and not required:
            return None
        if not 1 <= value <= 9999:
            self.add(field, f"{value} is not a year between 1 and 9999")
            return None
        return value


_CHOICES: dict[int, tuple[dict[str, Any], Callable[[str], Any]]] = {}


def choice(mapping: dict[str, T]) -> Callable[[str], T]:
    """Parser accepting exactly the keys of ``mapping`` (codes, category names, statuses).

    Built once per mapping (the adapters' mappings are module constants, asked for per record).
    """
    cached = _CHOICES.get(id(mapping))
    if cached is not None and cached[0] is mapping:
        parser: Callable[[str], T] = cached[1]
        return parser
    allowed = ", ".join(mapping)

    def parse(text: str) -> T:
        try:
            return mapping[text]
        except KeyError:
            raise ValueError(f"{text!r} is not one of: {allowed}") from None

    _CHOICES[id(mapping)] = (mapping, parse)
    return parse


def inverse(mapping: dict[str, T]) -> dict[T, str]:
    return {value: key for key, value in mapping.items()}
