"""Text, identifiers, county codes, versions, dates and resource names shared by the adapters.

Rules common to every region (``docs/regions.md``):
- text is NFC-normalised and stripped of leading/trailing blanks; an empty string is "absent";
- text may not contain control characters other than tab, LF and CR, nor U+FFFE/U+FFFF (so every
  text field can travel in every format, XML included);
- dates are real calendar dates.

Parsers raise ``ValueError`` whose message is the reason reported to the user.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, time

from yrd.interop.v1 import records_pb2

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


@functools.lru_cache(maxsize=1024)  # a handful of versions recur in every document
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


@functools.lru_cache(maxsize=1024)  # as ``version_from_dotted``: a few versions recur
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
