"""Records of other regions in a region's own format ("foreign records", ``docs/regions.md``).

Every format carries a foreign record with:
- an origin field (the origin registry's 6-digit code; absent or the format's own code means one of
  its own records, which keep the format's strict rules);
- the origin's ids verbatim, any province's county code, the common version;
- a serial-unit field: serials stay in the origin's counting unit;
- an extension object (protobuf JSON names) holding the fields the format has no place for and the
  record's ``native_ids``.

This module holds what the four adapters share: the origin and serial-unit readers, the choice of
serial unit, and the extension object (built from, and merged into, a partial common record).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from google.protobuf import json_format
from yrd.interop.v1 import records_pb2

from adapters._common import JSON_DECODER, DuplicateKeyError, Fields, text_problem
from adapters.quantities import CAPACITY_UNIT_WATTS, GRAMS_PER_KG, GRAMS_PER_TONNE, check_decimal

__all__ = [
    "ISSUANCE_EXTENSION",
    "METHODOLOGY_EXTENSION",
    "PROJECT_EXTENSION",
    "SERIAL_UNITS_EN",
    "SERIAL_UNITS_ZH",
    "SHANGHAI_METHODOLOGY_EXTENSION",
    "check_origin",
    "extension_of",
    "extension_text",
    "foreign_serial_unit",
    "merge_extension",
    "only_foreign",
    "parse_extension_text",
    "read_origin",
    "read_serial_unit",
    "serial_unit_name",
]

_REGION = re.compile(r"[0-9]{6}", re.ASCII)

SERIAL_UNITS_EN: dict[str, int] = {"g": 1, "kg": GRAMS_PER_KG, "t": GRAMS_PER_TONNE}
SERIAL_UNITS_ZH: dict[str, int] = {"克": 1, "千克": GRAMS_PER_KG, "吨": GRAMS_PER_TONNE}

#: The unit in which each known registry counts its serials (grams per serial).
ORIGIN_SERIAL_UNIT_GRAMS: dict[str, int] = {
    "310000": GRAMS_PER_KG,
    "320000": GRAMS_PER_TONNE,
    "330000": 1,
    "340000": GRAMS_PER_KG,
}

#: Common fields that no format carries in a field of its own (they travel in the extension).
_ALWAYS_EXTENDED = {
    records_pb2.Methodology: frozenset({"crediting_period_rule", "document_sha256", "native_ids"}),
    records_pb2.Project: frozenset({"native_ids"}),
    records_pb2.Issuance: frozenset({"native_ids"}),
}
#: Methodology fields only Shanghai's format has a place for.
METHODOLOGY_EXTENSION = _ALWAYS_EXTENDED[records_pb2.Methodology] | {
    "formula",
    "eligibility",
    "filing_document",
}
SHANGHAI_METHODOLOGY_EXTENSION = _ALWAYS_EXTENDED[records_pb2.Methodology]
PROJECT_EXTENSION = _ALWAYS_EXTENDED[records_pb2.Project]
ISSUANCE_EXTENSION = _ALWAYS_EXTENDED[records_pb2.Issuance]


def check_origin(text: str) -> str:
    """The origin field: a 6-digit region code."""
    if not _REGION.fullmatch(text):
        raise ValueError(f"{text!r} is not a 6-digit region code")
    return text


def foreign_serial_unit(origin: str, start: int, end: int) -> int:
    """Grams per serial in which a foreign issuance's gram serials [start, end] are written.

    The origin's own unit (serials stay in the origin's counting), or, for a range that unit
    cannot express or an origin this module does not know, the largest of t, kg, g that can.
    """
    unit = ORIGIN_SERIAL_UNIT_GRAMS.get(origin)
    candidates = ([unit] if unit else []) + [GRAMS_PER_TONNE, GRAMS_PER_KG, 1]
    for size in candidates:
        if start % size == 0 and (end + 1) % size == 0:
            return size
    raise AssertionError("one gram always divides")


# --------------------------------------------------------------------------------------------
# The extension object
# --------------------------------------------------------------------------------------------


def _json_names(
    message: type[records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance],
    fields: frozenset[str],
) -> dict[str, str]:
    """JSON name (and proto name) → proto field name, for the extension's allowed keys."""
    names: dict[str, str] = {}
    for field in message.DESCRIPTOR.fields:
        if field.name in fields:
            names[field.json_name] = field.name
            names[field.name] = field.name
    return names


def extension_of(
    record: records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance,
    fields: frozenset[str],
) -> dict[str, Any] | None:
    """The extension object of ``record``: its set ``fields``, as protobuf JSON; None if none."""
    partial = type(record)()
    present = False
    for field, _ in record.ListFields():
        if field.name in fields:
            if (
                isinstance(record, records_pb2.Methodology)
                and field.name == "eligibility"
                and not record.eligibility.ListFields()
            ):
                continue  # an empty message is no value (records compare without it)
            present = True
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                getattr(partial, field.name).update(getattr(record, field.name))
            elif field.message_type is not None:
                getattr(partial, field.name).CopyFrom(getattr(record, field.name))
            else:
                setattr(partial, field.name, getattr(record, field.name))
    if not present:
        return None
    result: dict[str, Any] = json_format.MessageToDict(partial)
    if "nativeIds" in result:  # a map has no order of its own: sorted, the bytes are stable
        result["nativeIds"] = dict(sorted(result["nativeIds"].items()))
    return result


def merge_extension(
    f: Fields,
    key: str,
    value: object,
    record: records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance,
    fields: frozenset[str],
) -> None:
    """Merge the extension object ``value`` (read from field ``key``) into ``record``.

    Its keys must name fields the format has no place for; values are protobuf JSON, checked as
    the format's own fields are (canonical text, decimals, capacity units). Issues go to ``f``.
    """
    if not isinstance(value, Mapping):
        f.report(key, "must be a JSON object")
        return
    names = _json_names(type(record), fields)
    bad = [name for name in value if name not in names]
    for name in bad:
        f.report(key, f"{name!r} is not a field the extension carries in this format")
    if bad:
        return
    odd = _odd_value(value)
    if odd is not None:
        # ParseDict would truncate 1.5 to 1 for an integer field: nothing is ever rounded.
        f.report(key, f"holds {odd}; numbers are JSON integers, decimals JSON strings")
        return
    partial = type(record)()
    try:
        json_format.ParseDict(dict(value), partial)
    except json_format.ParseError as exc:
        f.report(key, f"is not a valid extension: {exc}")
        return
    problems = _partial_problems(partial)
    for problem in problems:
        f.report(key, problem)
    if not problems:
        record.MergeFromString(partial.SerializeToString())


def _odd_value(value: object) -> str | None:
    """A JSON value no extension field takes (a fraction or a boolean), or None."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Decimal):
        return f"the number {value}"
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            odd = _odd_value(item)
            if odd is not None:
                return odd
    return None


def _partial_problems(
    partial: records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance,
) -> list[str]:
    problems: list[str] = []
    for name, value in sorted(partial.native_ids.items()):
        for text in (name, value):
            problem = text_problem(text) if text else "is empty"
            if problem is not None:
                problems.append(f"nativeIds[{name!r}] {problem}")
    if isinstance(partial, records_pb2.Methodology):
        for name in ("crediting_period_rule", "document_sha256", "formula", "filing_document"):
            text = getattr(partial, name)
            problem = text_problem(text) if text else None
            if problem is not None:
                problems.append(f"{name} {problem}")
        if partial.HasField("eligibility"):
            rules = partial.eligibility
            if rules.max_lifetime_years < 0:
                problems.append("eligibility.maxLifetimeYears cannot be negative")
            if rules.HasField("max_capacity"):
                if rules.max_capacity.unit not in CAPACITY_UNIT_WATTS:
                    problems.append(
                        f"eligibility.maxCapacity.unit {rules.max_capacity.unit!r} is not a"
                        " capacity unit (W, kW, MW)"
                    )
                try:
                    check_decimal(rules.max_capacity.value, positive=True)
                except ValueError as exc:
                    problems.append(f"eligibility.maxCapacity.value {exc}")
    return problems


# --------------------------------------------------------------------------------------------
# Reading the foreign-record fields
# --------------------------------------------------------------------------------------------


def read_origin(f: Fields, key: str, own: str) -> str:
    """The record's origin region: the field's code, or ``own`` when absent (or invalid)."""
    return f.parsed(key, check_origin) or own


def only_foreign(f: Fields, keys: Mapping[str, bool], own_label: str) -> None:
    """Report the foreign-record fields present (``keys``: field → present) in an own record."""
    for key, present in keys.items():
        if present:
            f.report(key, f"is only for records of other regions, not {own_label}'s own")


def read_serial_unit(
    f: Fields, key: str, units: Mapping[str, int], default: int, *, foreign: bool, own_label: str
) -> int | None:
    """Grams per serial named by the serial-unit field (``default`` when absent).

    An own record may only name the format's own unit.
    """
    text = f.text(key)
    if text is None:
        return default
    size = units.get(text)
    if size is None:
        f.report(key, f"{text!r} is not one of: {', '.join(units)}")
        return None
    if not foreign and size != default:
        f.report(key, f"{own_label}'s own serial numbers count {_unit_name(units, default)}")
        return None
    return size


def serial_unit_name(units: Mapping[str, int], size: int) -> str:
    return _unit_name(units, size)


def _unit_name(units: Mapping[str, int], size: int) -> str:
    return next(name for name, grams in units.items() if grams == size)


def parse_extension_text(f: Fields, key: str) -> object | None:
    """The extension object written as JSON text (Jiangsu ``KZ``, Anhui ``扩展``), or None."""
    text = f.text(key)
    if text is None:
        return None
    try:
        value: object = JSON_DECODER.decode(text)
    except DuplicateKeyError as exc:
        f.report(key, f"is not a valid JSON object: {exc} appears more than once")
        return None
    except (ValueError, RecursionError) as exc:
        f.report(key, f"is not a JSON object: {exc}")
        return None
    return value


def extension_text(ext: dict[str, Any]) -> str:
    """The extension object as compact JSON text (for formats that carry it as text)."""
    return json.dumps(ext, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
