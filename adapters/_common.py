"""Helpers shared by the regional adapters: text, dates, versions, identifiers, field readers.

Rules common to every region (``docs/regions.md``):
- text is NFC-normalised and stripped of leading/trailing blanks; an empty string is "absent";
- text may not contain control characters other than tab, LF and CR, nor U+FFFE/U+FFFF (so every
  text field can travel in every format, XML included);
- quantities are exact (see ``adapters.quantities``), dates are real calendar dates.

Parsers raise ``ValueError`` whose message is the reason reported to the user; the field readers
(``JsonFields`` for JSON objects, ``TextFields`` for XML elements and CSV rows) attach the field
name (in the region's own terms, with row and column for CSV) and collect every issue of a
document before it is rejected.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

from yrd.interop.v1 import records_pb2

from adapters.errors import FieldIssue, NativeFormatError, NotExpressibleError
from adapters.quantities import check_decimal

T = TypeVar("T")

MIB = 1024 * 1024
#: Size limit of one JSON or XML document (one record).
MAX_DOCUMENT_BYTES = 1 * MIB
#: Longest identifier accepted (ids become part of resource names).
MAX_ID_LENGTH = 128
#: Longest free-text field accepted.
MAX_TEXT_LENGTH = 20_000

# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------

_FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def normalize_text(value: str) -> str:
    """NFC-normalise and strip leading/trailing blanks (Unicode whitespace, e.g. U+3000)."""
    if not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    return value.strip()


def clean_text(value: str) -> str | None:
    """Normalised text, None when empty; ``ValueError`` for characters no format can carry."""
    if value.isascii() and value.isprintable():
        # Most fields (ids, codes, numbers, dates): ASCII is NFC already, and printable ASCII
        # holds no forbidden character, so only the blanks need stripping.
        text = value.strip()
    else:
        text = normalize_text(value)
        bad = _FORBIDDEN_CHARS.search(text)
        if bad is not None:
            raise ValueError(f"contains the control or non-character U+{ord(bad.group()):04X}")
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueError(f"is {len(text)} characters long; the limit is {MAX_TEXT_LENGTH}")
    return text or None


def text_problem(value: str) -> str | None:
    """Why a common-schema text value is not canonical (None when it is)."""
    if _FORBIDDEN_CHARS.search(value):
        return "contains a control character or non-character that no native format carries"
    if value != normalize_text(value):
        return "is not normalised text (NFC, without leading or trailing blanks)"
    if len(value) > MAX_TEXT_LENGTH:
        return f"is longer than {MAX_TEXT_LENGTH} characters"
    return None


# --------------------------------------------------------------------------------------------
# Identifiers, county codes, versions
# --------------------------------------------------------------------------------------------

_ID_BAD = re.compile(r"[\s/?#%\\]")
ZJ_ID = re.compile(r"[0-9]{19}", re.ASCII)
_COUNTY = re.compile(r"[0-9]{6}", re.ASCII)
_DOTTED_VERSION = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9}){0,5}", re.ASCII)
_CANONICAL_VERSION = re.compile(
    r"(?:0|[1-9][0-9]{0,8})(?:\.(?:0|[1-9][0-9]{0,8})){0,5}(?<!\.0)", re.ASCII
)
_V_VERSION = re.compile(r"V([0-9]{1,9})", re.ASCII)
_INTEGER_VERSION = re.compile(r"0|[1-9][0-9]{0,8}", re.ASCII)


def check_identifier(text: str) -> str:
    """An identifier usable in a resource name: no blanks, '/', '?', '#', '%' or backslash."""
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"is longer than {MAX_ID_LENGTH} characters")
    bad = _ID_BAD.search(text)
    if bad is not None:
        raise ValueError(f"{text!r} contains {bad.group()!r}, which an identifier may not contain")
    return text


def check_zhejiang_id(text: str) -> str:
    """Zhejiang's 19-digit identifiers, kept as strings."""
    if not ZJ_ID.fullmatch(text):
        raise ValueError(f"{text!r} is not a 19-digit identifier")
    return text


def any_county(text: str) -> str:
    """A 6-digit county code of any province (foreign records)."""
    if not _COUNTY.fullmatch(text):
        raise ValueError(f"{text!r} is not a 6-digit county code")
    return text


@functools.cache  # one parser per region, built once (adapters ask for it per record)
def county_checker(region: str, region_label: str) -> Callable[[str], str]:
    """Parser for a 6-digit county code of ``region`` (its first two digits)."""
    prefix = region[:2]

    def check(text: str) -> str:
        if not _COUNTY.fullmatch(text):
            raise ValueError(f"{text!r} is not a 6-digit county code")
        if not text.startswith(prefix):
            raise ValueError(
                f"county code {text} is not in {region_label} (must start with {prefix})"
            )
        return text

    return check


def is_canonical_version(version: str) -> bool:
    """Common versions are dotted integers without leading zeros or a trailing ``.0``."""
    return _CANONICAL_VERSION.fullmatch(version) is not None


def version_from_dotted(text: str) -> str:
    """``1.0`` → ``1``, ``1.2`` → ``1.2``, ``1.2.0`` → ``1.2``, ``01.10`` → ``1.10``."""
    if not _DOTTED_VERSION.fullmatch(text):
        raise ValueError(f"{text!r} is not a version number like 1.0 or 1.2")
    parts = [str(int(part)) for part in text.split(".")]
    while len(parts) > 1 and parts[-1] == "0":
        parts.pop()
    return ".".join(parts)


def version_to_dotted(version: str, *, min_parts: int) -> str:
    """Inverse of ``version_from_dotted``: pad with ``.0`` to ``min_parts`` components."""
    parts = version.split(".")
    parts.extend("0" * (min_parts - len(parts)))
    return ".".join(parts)


def version_from_v(text: str) -> str:
    """Jiangsu ``V01`` → ``1``, ``V12`` → ``12`` (an integer major version, never 1.2)."""
    match = _V_VERSION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a version like V01")
    return str(int(match.group(1)))


def integer_version(version: str) -> int | None:
    """The integer of a common version that is a single component (``"12"`` → 12), else None."""
    return int(version) if _INTEGER_VERSION.fullmatch(version) else None


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------

_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_COMPACT_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})", re.ASCII)
_SLASH_DATE = re.compile(r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})", re.ASCII)
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})", re.ASCII
)


def _real_date(text: str, year: str, month: str, day: str) -> date:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise ValueError(f"{text!r} is not a real calendar date") from None


def date_parser(pattern: re.Pattern[str], shape: str) -> Callable[[str], date]:
    # Cached: documents repeat the same few dates (period and year boundaries), a date is
    # immutable, and a rejected text raises again each time (exceptions are not cached).
    @functools.lru_cache(maxsize=4096)
    def parse(text: str) -> date:
        match = pattern.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not a date written {shape}")
        return _real_date(text, *match.groups())

    return parse


parse_iso_date = date_parser(_ISO_DATE, "YYYY-MM-DD")
parse_compact_date = date_parser(_COMPACT_DATE, "YYYYMMDD")
parse_slash_date = date_parser(_SLASH_DATE, "YYYY/M/D")


def format_iso_date(value: date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def format_compact_date(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def format_slash_date(value: date) -> str:
    return f"{value.year:04d}/{value.month}/{value.day}"


@functools.lru_cache(maxsize=4096)  # as date_parser's: repeated values, immutable results
def parse_datetime(text: str) -> datetime:
    """``YYYY-MM-DD HH:mm:ss`` (a naive local time; Zhejiang's is Beijing time)."""
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a date-time written YYYY-MM-DD HH:mm:ss")
    day = _real_date(text, *match.groups()[:3])
    hour, minute, second = (int(part) for part in match.groups()[3:])
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{text!r} is not a real time of day")
    return datetime.combine(day, time(hour, minute, second))


def format_datetime(value: datetime) -> str:
    return f"{format_iso_date(value.date())} {value.strftime('%H:%M:%S')}"


def to_calendar(value: date) -> records_pb2.CalendarDate:
    return records_pb2.CalendarDate(year=value.year, month=value.month, day=value.day)


def from_calendar(value: records_pb2.CalendarDate) -> date:
    """The civil date of a ``CalendarDate``; ``ValueError`` when it is not a real date."""
    try:
        return date(value.year, value.month, value.day)
    except ValueError:
        raise ValueError(
            f"{value.year:04d}-{value.month:02d}-{value.day:02d} is not a real calendar date"
        ) from None


def date_range(start: date, end: date | None) -> records_pb2.DateRange:
    if end is None:
        return records_pb2.DateRange(start=to_calendar(start))
    return records_pb2.DateRange(start=to_calendar(start), end=to_calendar(end))


def order_problem(start: date, end: date, *, strict: bool) -> str | None:
    """Why ``end`` is out of order with ``start`` (None when fine)."""
    if strict and end <= start:
        return f"must be after {start.isoformat()}"
    if end < start:
        return f"must not be before {start.isoformat()}"
    return None


# --------------------------------------------------------------------------------------------
# Resource names
# --------------------------------------------------------------------------------------------


def methodology_name(region: str, methodology_id: str) -> str:
    return f"regions/{region}/methodologies/{methodology_id}"


def project_name(region: str, project_id: str) -> str:
    return f"regions/{region}/projects/{project_id}"


def issuance_name(region: str, issuance_id: str) -> str:
    return f"regions/{region}/issuances/{issuance_id}"


_PROJECT_NAME = re.compile(r"regions/([^/]+)/projects/([^/]+)")


def split_project_name(name: str) -> tuple[str, str] | None:
    """``regions/{r}/projects/{id}`` → (r, id), or None when the name has another shape."""
    match = _PROJECT_NAME.fullmatch(name)
    return (match.group(1), match.group(2)) if match else None


# --------------------------------------------------------------------------------------------
# Issue collection
# --------------------------------------------------------------------------------------------


class Issues:
    """Collects every issue of one document (or one record being rendered)."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[FieldIssue] = []

    def add(
        self, field: str, reason: str, *, row: int | None = None, column: str | None = None
    ) -> None:
        self.items.append(FieldIssue(field, reason, row, column))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_native(self, region: str) -> None:
        if self.items:
            raise NativeFormatError(region, self.items)

    def raise_not_expressible(self, region: str) -> None:
        if self.items:
            raise NotExpressibleError(region, self.items)


def fail(region: str, field: str, reason: str) -> NoReturn:
    """Reject a whole document for one fatal reason (bad encoding, not JSON, …)."""
    raise NativeFormatError(region, [FieldIssue(field, reason)])


_INTEGER_TEXT = re.compile(r"-?[0-9]{1,18}", re.ASCII)


class _Reported(Exception):
    """Internal: the value was invalid and the issue has already been recorded."""


class Fields:
    """Reads the fields of one record and records issues under the record's own field names."""

    def __init__(self, issues: Issues, *, prefix: str = "", row: int | None = None) -> None:
        self.issues = issues
        self.prefix = prefix
        self.row = row

    # -- to be refined by each container kind --------------------------------------------------
    def _raw(self, key: str) -> object:
        raise NotImplementedError

    def _raw_text(self, key: str) -> str | None:
        value = self._raw(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise AssertionError("text containers only hold strings")
        return value

    def _raw_integer(self, key: str) -> int | None:
        text = self.text(key)
        if text is None:
            return None
        if not _INTEGER_TEXT.fullmatch(text):
            self.report(key, f"{text!r} is not an integer")
            raise _Reported
        return int(text)

    # -- shared --------------------------------------------------------------------------------
    def label(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def report(self, key: str, reason: str) -> None:
        self.issues.add(self.label(key), reason, row=self.row)

    def text(self, key: str, *, required: bool = False) -> str | None:
        """Normalised text of the field; None when absent, empty, or invalid (reported)."""
        try:
            raw = self._raw_text(key)
        except _Reported:
            return None
        value = None
        if raw is not None:
            try:
                value = clean_text(raw)
            except ValueError as exc:
                self.report(key, str(exc))
                return None
        if value is None and required:
            self.report(key, "is required but missing or empty")
        return value

    def parsed(self, key: str, parse: Callable[[str], T], *, required: bool = False) -> T | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            self.report(key, str(exc))
            return None

    def decimal(
        self,
        key: str,
        *,
        required: bool = False,
        positive: bool = False,
        allow_negative: bool = False,
    ) -> str | None:
        """A decimal kept exactly as written (a JSON string where the format is JSON)."""
        return self.parsed(
            key,
            lambda text: check_decimal(text, allow_negative=allow_negative, positive=positive),
            required=required,
        )

    def integer(
        self, key: str, *, required: bool = False, low: int = 0, high: int = 2**63 - 1
    ) -> int | None:
        try:
            value = self._raw_integer(key)
        except _Reported:
            return None
        if value is None:
            if required:
                self.report(key, "is required but missing or empty")
            return None
        if not low <= value <= high:
            self.report(key, f"{value} is out of range [{low}, {high}]")
            return None
        return value

    def year(self, key: str, *, required: bool = False) -> int | None:
        return self.integer(key, required=required, low=1, high=9999)

    def check_order(
        self, start_key: str, start: date | None, end_key: str, end: date | None, *, strict: bool
    ) -> None:
        if start is None or end is None:
            return
        problem = order_problem(start, end, strict=strict)
        if problem is not None:
            self.report(end_key, f"{problem} ({self.label(start_key)})")


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


class _DuplicateKeyError(ValueError):
    pass


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # in C; a key seen twice leaves the dict shorter than the pairs
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return result


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not allowed")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs_hook, parse_float=Decimal, parse_constant=_reject_constant
)
#: Strict JSON: duplicate keys, NaN and Infinity refused; fractions become ``Decimal``.
JSON_DECODER = _DECODER
DuplicateKeyError = _DuplicateKeyError


def load_json_object(data: bytes, region: str, *, allow_bom: bool) -> dict[str, Any]:
    """Decode strict UTF-8 JSON whose top level is an object; floats become ``Decimal``.

    Duplicate keys, NaN/Infinity and invalid UTF-8 reject the document. Numbers with a fraction
    are parsed as ``Decimal`` only so that the field readers can say "must be a string": no
    float is ever created.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        if not allow_bom:
            fail(region, "document", "starts with a UTF-8 byte order mark; the format forbids it")
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(region, "document", f"is not valid UTF-8 (byte offset {exc.start})")
    try:
        value = _DECODER.decode(text)
    except _DuplicateKeyError as exc:
        fail(region, str(exc), "appears more than once in the same object")
    except json.JSONDecodeError as exc:
        fail(
            region,
            "document",
            f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        )
    except (ValueError, RecursionError) as exc:
        fail(region, "document", f"is not acceptable JSON: {exc}")
    if not isinstance(value, dict):
        fail(region, "document", "must be a JSON object")
    return value


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer number"
    if isinstance(value, Decimal):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


class JsonFields(Fields):
    """Fields of one JSON object; JSON ``null`` counts as absent."""

    def __init__(
        self,
        obj: dict[str, Any],
        issues: Issues,
        *,
        prefix: str = "",
        allowed: frozenset[str] | None = None,
    ) -> None:
        super().__init__(issues, prefix=prefix)
        self.obj = obj
        if allowed is not None and not obj.keys() <= allowed:
            for key in obj:
                if key not in allowed:
                    self.report(key, "is not a field of this record")

    def _raw(self, key: str) -> object:
        return self.obj.get(key)

    def _raw_text(self, key: str) -> str | None:
        value = self.obj.get(key)
        if value is None or isinstance(value, str):
            return value
        self.report(key, f"must be a JSON string, not {_json_kind(value)}")
        raise _Reported

    def text(self, key: str, *, required: bool = False) -> str | None:
        # ``Fields.text`` with its steps inlined (the per-field hot path): printable ASCII, the
        # common case, needs only stripping; anything else goes through ``clean_text``.
        raw = self.obj.get(key)
        if raw is not None:
            if raw.__class__ is not str and not isinstance(raw, str):
                self.report(key, f"must be a JSON string, not {_json_kind(raw)}")
                return None
            if raw.isascii() and raw.isprintable() and len(raw) <= MAX_TEXT_LENGTH:
                value: str | None = raw.strip() or None
            else:
                try:
                    value = clean_text(raw)
                except ValueError as exc:
                    self.report(key, str(exc))
                    return None
            if value is not None:
                return value
        if required:
            self.report(key, "is required but missing or empty")
        return None

    def _raw_integer(self, key: str) -> int | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if value.__class__ is int or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        self.report(key, f"must be a JSON integer, not {_json_kind(value)}")
        raise _Reported

    def string_code(self, key: str, *, required: bool = False) -> str | None:
        """A code that must be a JSON string (e.g. ``"02"``), reported as such when it is not."""
        value = self.obj.get(key)
        if value is not None and not isinstance(value, str):
            self.report(key, f"must be a JSON string code, not {_json_kind(value)}")
            return None
        return self.text(key, required=required)

    def boolean(self, key: str) -> bool | None:
        value = self.obj.get(key)
        if isinstance(value, bool):
            return value
        self.report(key, f"must be a JSON boolean, not {_json_kind(value)}")
        return None

    def child(
        self, key: str, allowed: frozenset[str], *, required: bool = False
    ) -> JsonFields | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                self.report(key, "is required but missing")
            return None
        if not isinstance(value, dict):
            self.report(key, f"must be a JSON object, not {_json_kind(value)}")
            return None
        return JsonFields(value, self.issues, prefix=f"{self.label(key)}.", allowed=allowed)

    def children(self, key: str, allowed: frozenset[str]) -> Iterator[tuple[int, JsonFields]]:
        value = self.obj.get(key)
        if value is None:
            return
        if not isinstance(value, list):
            self.report(key, f"must be a JSON array, not {_json_kind(value)}")
            return
        for index, item in enumerate(value):
            label = f"{self.label(key)}[{index}]"
            if not isinstance(item, dict):
                self.issues.add(label, f"must be a JSON object, not {_json_kind(item)}")
                continue
            yield index, JsonFields(item, self.issues, prefix=f"{label}.", allowed=allowed)


def dump_json(obj: dict[str, Any]) -> bytes:
    """The rendering every JSON region uses: UTF-8, 2-space indent, trailing newline."""
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# --------------------------------------------------------------------------------------------
# Text containers (XML elements, CSV rows)
# --------------------------------------------------------------------------------------------


class TextFields(Fields):
    """Fields given as strings (XML element texts, CSV cells); absent keys are None."""

    def __init__(
        self,
        values: dict[str, str],
        issues: Issues,
        *,
        prefix: str = "",
        row: int | None = None,
        csv: bool = False,
    ) -> None:
        super().__init__(issues, prefix=prefix, row=row)
        self.values = values
        self.csv = csv

    def _raw(self, key: str) -> object:
        return self.values.get(key)

    def text(self, key: str, *, required: bool = False) -> str | None:
        # As ``JsonFields.text``: ``Fields.text`` inlined for the per-field hot path.
        raw = self.values.get(key)
        if raw is not None:
            if raw.isascii() and raw.isprintable() and len(raw) <= MAX_TEXT_LENGTH:
                value: str | None = raw.strip() or None
            else:
                try:
                    value = clean_text(raw)
                except ValueError as exc:
                    self.report(key, str(exc))
                    return None
            if value is not None:
                return value
        if required:
            self.report(key, "is required but missing or empty")
        return None

    def report(self, key: str, reason: str) -> None:
        if self.csv:
            self.issues.add(key, reason, row=self.row, column=key)
        else:
            super().report(key, reason)


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


def build_project(
    region: str,
    project_id: str,
    methodology: tuple[str, str],
    *,
    title: str,
    owner: str,
    county: str,
    crediting: tuple[date, date],
    status: records_pb2.ProjectStatus.ValueType,
    capacity: tuple[str, str] | None = None,
    grid_date: date | None = None,
    native_ids: dict[str, str] | None = None,
) -> records_pb2.Project:
    """A common Project from validated native values; ``methodology`` is (id, version) as the
    region's projects name it, ``capacity`` an exact (value, unit) when given."""
    project = records_pb2.Project(
        name=project_name(region, project_id),
        region=region,
        project_id=project_id,
        methodology=records_pb2.MethodologyRef(
            region=region, methodology_id=methodology[0], version=methodology[1]
        ),
        title=title,
        owner=owner,
        county_code=county,
        crediting_period=date_range(*crediting),
        status=status,
        native_ids=native_ids or {},
    )
    if capacity is not None:
        project.capacity.CopyFrom(records_pb2.ExactQuantity(value=capacity[0], unit=capacity[1]))
    if grid_date is not None:
        project.start_date.CopyFrom(to_calendar(grid_date))
    return project
