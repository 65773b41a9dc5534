"""Field readers: the fields of one JSON object, XML element or CSV row, with every issue collected.

``JsonFields`` (JSON objects) and ``TextFields`` (XML element texts, CSV cells) read a record's
fields under the region's own names (with row and column for CSV), parse them with the
``adapters._text`` parsers and collect every issue of a document before it is rejected.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

from adapters._text import MAX_TEXT_LENGTH, clean_text, order_problem
from adapters.errors import FieldIssue, NativeFormatError, NotExpressibleError
from adapters.quantities import decimal_checker

T = TypeVar("T")

# Short text other than printable ASCII is mostly names, units, category and status words that
# repeat from record to record: their normalisation and checks are kept (a rejected text raises
# again). Only short texts, so that the cache stays small (8192 × 64 characters at most).
_CACHED_TEXT_LENGTH = 64
_clean_short_text = functools.lru_cache(maxsize=8192)(clean_text)


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


#: ``check_decimal`` for each (allow_negative, positive), built once.
_DECIMAL_CHECKS: dict[tuple[bool, bool], Callable[[str], str]] = {
    (negative, positive): decimal_checker(allow_negative=negative, positive=positive)
    for negative in (False, True)
    for positive in (False, True)
}


class _Reported(Exception):
    """Internal: the value was invalid and the issue has already been recorded."""


class Fields:
    """Reads the fields of one record and records issues under the record's own field names.

    ``values`` maps the record's field names to what the container holds (strings for XML and
    CSV, any JSON value for JSON); ``text`` and ``parsed`` are the per-field hot path, so their
    steps are written out rather than delegated.
    """

    values: Mapping[str, object]

    def __init__(self, issues: Issues, *, prefix: str = "", row: int | None = None) -> None:
        self.issues = issues
        self.prefix = prefix
        self.row = row

    # -- to be refined by each container kind --------------------------------------------------
    def _not_text(self, key: str, value: object) -> None:
        """Report a present value that is not a string (only JSON containers hold any)."""
        raise AssertionError("text containers only hold strings")

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
        raw = self.values.get(key)
        if raw is not None:
            if not isinstance(raw, str):
                self._not_text(key, raw)
                return None
            # Printable ASCII (most fields) is NFC already and holds no forbidden character:
            # only the blanks need stripping. Anything else goes through ``clean_text``.
            if raw.isascii() and raw.isprintable() and len(raw) <= MAX_TEXT_LENGTH:
                value = raw.strip()
            else:
                try:
                    value = (
                        _clean_short_text(raw)
                        if len(raw) <= _CACHED_TEXT_LENGTH
                        else clean_text(raw)
                    ) or ""
                except ValueError as exc:
                    self.report(key, str(exc))
                    return None
            if value:
                return value
        if required:
            self.report(key, "is required but missing or empty")
        return None

    def parsed(self, key: str, parse: Callable[[str], T], *, required: bool = False) -> T | None:
        """The field's text parsed by ``parse``; None when absent or invalid (reported)."""
        raw = self.values.get(key)
        if raw is not None:
            if not isinstance(raw, str):
                self._not_text(key, raw)
                return None
            # As in ``text`` (written out again: this is the per-field hot path).
            if raw.isascii() and raw.isprintable() and len(raw) <= MAX_TEXT_LENGTH:
                value = raw.strip()
            else:
                try:
                    value = (
                        _clean_short_text(raw)
                        if len(raw) <= _CACHED_TEXT_LENGTH
                        else clean_text(raw)
                    ) or ""
                except ValueError as exc:
                    self.report(key, str(exc))
                    return None
            if value:
                try:
                    return parse(value)
                except ValueError as exc:
                    self.report(key, str(exc))
                    return None
        if required:
            self.report(key, "is required but missing or empty")
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
        return self.parsed(key, _DECIMAL_CHECKS[allow_negative, positive], required=required)

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
# The same decoder without the duplicate check: objects are built in C, no Python call each.
_PLAIN_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)
# (It always matches, possibly the empty string.)
_BLANKS: Callable[[str, int], re.Match[str]] = re.compile(r"[ \t\n\r]*").match  # type: ignore[assignment]


def _decode(text: str) -> Any:
    """``JSON_DECODER.decode(text)``: the same value and the same errors.

    A document with a single ``{`` holds at most one object; when it is the top level and the
    document has no more ``:`` than that object has keys, no key can appear twice (each key is
    followed by a ``:`` of its own), so it is decoded without the per-object duplicate check.
    Anything else, errors included, is decoded with the check.
    """
    if text.count("{") == 1:
        try:
            value = _decode_with(_PLAIN_DECODER, text)
        except (ValueError, RecursionError):
            pass  # the error reported is the strict decoder's
        else:
            if value.__class__ is dict and text.count(":") == len(value):
                return value
    return _decode_with(_DECODER, text)


def _decode_with(decoder: json.JSONDecoder, text: str) -> Any:
    """``decoder.decode(text)``: through the documented ``raw_decode`` when the document starts
    with its value (``decode`` adds two Python-level blank matches around it)."""
    if text[:1] in " \t\n\r":  # (also the empty document)
        return decoder.decode(text)
    value, end = decoder.raw_decode(text)
    if end != len(text):
        end = _BLANKS(text, end).end()
        if end != len(text):
            raise json.JSONDecodeError("Extra data", text, end)
    return value


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
        value = _decode(text)
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
        # ``Fields.__init__`` written out (several objects per record).
        self.issues = issues
        self.prefix = prefix
        self.row = None
        self.obj = obj
        self.values = obj
        if allowed is not None and not allowed.issuperset(obj):
            for key in obj:
                if key not in allowed:
                    self.report(key, "is not a field of this record")

    def _not_text(self, key: str, value: object) -> None:
        self.report(key, f"must be a JSON string, not {_json_kind(value)}")

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

    def report(self, key: str, reason: str) -> None:
        if self.csv:
            self.issues.add(key, reason, row=self.row, column=key)
        else:
            super().report(key, reason)
