"""The per-message rules, declared once: a table keyed by message full name (docs/protocol.md
§7.3). What the descriptors already say needs no entry: every enum field takes only its declared
values and never its zero (``UNSPECIFIED``) unless its rule allows it, every string field is free
of control characters and at most :data:`MAX_STRING_CHARS` long. An entry adds what the
descriptors cannot say: region codes, id alphabets, bounds, required fields and cross-field rules.

Rules a request can only be judged by with the database or with the RPC it came on (a transfer
answer's decision, a verdict, a recognition's subject) stay with the service that owns them.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from google.protobuf.message import Message
from yrd.interop.v1 import records_pb2, transfer_pb2

from gateway import errors
from gateway.contract import (
    DUPLICATE_CASE_NAME,
    EXTERNAL_PROJECT_NAME,
    MAX_REQUEST_ID_CHARS,
    PROJECT_NAME,
)

MAX_STRING_CHARS = 1000
"""Longest string field (code points) without a rule of its own (names, keys, owners, tokens)."""
MAX_TEXT_CHARS = 20_000
"""Longest free-text field (a reason, comment or beneficiary), as native free text."""
MAX_INT64 = 2**63 - 1
_REGION = re.compile(r"[0-9]{6}", re.ASCII)
_PROJECT_NAME = re.compile(r"regions/[0-9]{6}/projects/[^/\s]{1,128}", re.ASCII)
_CURSOR = re.compile(r"[0-9]{1,19}", re.ASCII)
_TEXT_CONTROLS = frozenset("\t\n\r")
CASE_PAGE_TOKEN = re.compile(r"([0-9]{1,19})\.([A-Za-z0-9][A-Za-z0-9_-]{0,39})", re.ASCII)
"""A ListDuplicateCases page token: the last case's open time (µs since the epoch) and id."""
_CASE_SUBJECT = re.compile(f"(?:{PROJECT_NAME.pattern}|{EXTERNAL_PROJECT_NAME.pattern})?", re.ASCII)
"""Empty, or a duplicate case's subject: a region's project or an external project."""

ErrorClass = type[errors.DomainError]


def control_character(text: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """The first control character (Unicode category Cc: C0, DEL, C1) of ``text`` not in
    ``allowed``, or None."""
    for ch in text:
        if ch not in allowed and unicodedata.category(ch) == "Cc":
            return ch
    return None


def _controls(text: str, allowed: frozenset[str] = frozenset()) -> str | None:
    found = control_character(text, allowed)
    return None if found is None else f"control character U+{ord(found):04X} not allowed"


# -- field rules ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """A field's rule; ``error`` overrides the error class of the message's rules."""

    error: ErrorClass | None = field(default=None, kw_only=True)

    def problem(self, value: object) -> str | None:  # pragma: no cover - overridden
        return None


@dataclass(frozen=True, slots=True)
class Str(Rule):
    """A string (the default rule of every string field): no control characters, at most
    ``max_chars``; ``required``: not empty (``blank_is_empty``: not blank either)."""

    required: bool = False
    max_chars: int = MAX_STRING_CHARS
    text: bool = False
    """Free text: TAB, LF and CR are allowed."""
    blank_is_empty: bool = False

    def problem(self, value: object) -> str | None:
        assert isinstance(value, str)
        empty = not (value.strip() if self.blank_is_empty else value)
        if empty:
            return "required" if self.required else None
        if len(value) > self.max_chars:
            return f"at most {self.max_chars} characters"
        return _controls(value, _TEXT_CONTROLS if self.text else frozenset())


TEXT = Str(max_chars=MAX_TEXT_CHARS, text=True)


@dataclass(frozen=True, slots=True)
class Region(Rule):
    """A region code: six ASCII digits (``optional``: or empty, meaning any)."""

    optional: bool = False

    def problem(self, value: object) -> str | None:
        assert isinstance(value, str)
        if not value:
            return None if self.optional else "required: a six-digit region code"
        return None if _REGION.fullmatch(value) else "a six-digit region code (ASCII digits)"


@dataclass(frozen=True, slots=True)
class RequestId(Rule):
    """A client-chosen id: 1–120 code points, no ``/``, no whitespace, no control characters."""

    def problem(self, value: object) -> str | None:
        assert isinstance(value, str)
        if not value or len(value) > MAX_REQUEST_ID_CHARS or "/" in value:
            return f"required, at most {MAX_REQUEST_ID_CHARS} characters, no '/'"
        if any(ch.isspace() for ch in value):
            return "no whitespace"
        return _controls(value)


@dataclass(frozen=True, slots=True)
class Pattern(Rule):
    """A string matching ``pattern`` whole."""

    pattern: re.Pattern[str] = _PROJECT_NAME
    description: str = ""

    def problem(self, value: object) -> str | None:
        assert isinstance(value, str)
        return None if self.pattern.fullmatch(value) else self.description


@dataclass(frozen=True, slots=True)
class Cursor(Rule):
    """A cursor or page token the gateway issued: empty, or at most 19 ASCII digits ≤ 2^63−1."""

    error: ErrorClass | None = field(default=errors.CursorInvalid, kw_only=True)

    def problem(self, value: object) -> str | None:
        assert isinstance(value, str)
        if not value or (_CURSOR.fullmatch(value) and int(value) <= MAX_INT64):
            return None
        return "invalid"


@dataclass(frozen=True, slots=True)
class Range(Rule):
    """An integer within ``[low, high]`` (``zero_ok``: or 0, meaning unset)."""

    low: int = 0
    high: int = MAX_INT64
    zero_ok: bool = False

    def problem(self, value: object) -> str | None:
        assert isinstance(value, int)
        if (value == 0 and self.zero_ok) or self.low <= value <= self.high:
            return None
        unset = " (or 0)" if self.zero_ok else ""
        return f"must be {self.low} to {self.high}{unset}"


@dataclass(frozen=True, slots=True)
class Enum(Rule):
    """An enum field (the default rule of every enum field: a declared value, not 0).
    ``zero_ok``: 0 means "any" or "unset"; ``allowed``: only these values; ``by_rpc``: the RPC
    the message came on decides (checked by its service, with its own reason)."""

    zero_ok: bool = False
    allowed: tuple[int, ...] = ()
    by_rpc: bool = False


@dataclass(frozen=True, slots=True)
class Required(Rule):
    """A message field that must be set."""


# -- message rules --------------------------------------------------------------------------------

Check = Callable[[Message], Mapping[str, str]]
"""A cross-field rule: the violations of a message, by field path relative to it."""


@dataclass(frozen=True, slots=True)
class Rules:
    """A message's rules: ``error`` is the error class of its violations (and of the messages
    under it, unless they name their own); ``oneofs``: oneofs one member of which must be set;
    ``skip``: the message has checks of its own (the signed envelope, §6.6; a batch of held-block
    columns, checked a column at a time where the snapshot is built, §11.4)."""

    fields: Mapping[str, Rule] = field(default_factory=dict)
    error: ErrorClass | None = None
    oneofs: tuple[str, ...] = ()
    check: Check | None = None
    skip: bool = False


def _serial_range(message: Message) -> dict[str, str]:
    assert isinstance(message, records_pb2.SerialRange)
    if message.start < 0:
        return {"start": "must be 0 or more"}
    if message.end < message.start:
        return {"end": "must be at least start (the range is inclusive)"}
    return {}


def _serial_ranges(message: Message) -> dict[str, str]:
    assert isinstance(message, transfer_pb2.SerialRanges)
    ranges = sorted((r.start, r.end) for r in message.ranges)
    if not ranges:
        return {"ranges": "at least one range"}
    if any(b[0] <= a[1] for a, b in itertools.pairwise(ranges)):
        return {"ranges": "ranges overlap each other"}
    return {}


_P = "yrd.interop.v1."
ANY_REGION = Region(optional=True)
_UNKNOWN_REGION = errors.RECOGNITION_ERRORS["UNKNOWN_REGION"]
_TRANSFER_PURPOSES = (
    transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
    transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
)
_CASE_NAME = "a duplicate case name duplicateCases/{id}"
_SUBJECT = "a project regions/{region}/projects/{id} or schemes/{scheme}/projects/{id}"
_RETIREMENT_PURPOSES = (
    transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
    transfer_pb2.TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY,
    transfer_pb2.TRANSFER_PURPOSE_CHARITABLE,
)

RULES: dict[str, Rules] = {
    # -- envelopes: their own checks, in their own order (§6.6) --
    f"{_P}SignedEnvelope": Rules(skip=True),
    # -- signed bodies (§7.2) --
    f"{_P}TransferProposal": Rules(
        {
            "transfer_id": RequestId(),
            "destination_region": Region(),
            "units": Required(),
            "purpose": Enum(allowed=_TRANSFER_PURPOSES),
        }
    ),
    f"{_P}TransferAnswer": Rules({"reason": TEXT, "decision": Enum(by_rpc=True)}),
    f"{_P}RetirementOrder": Rules(
        {
            "retirement_id": RequestId(),
            "units": Required(),
            "purpose": Enum(allowed=_RETIREMENT_PURPOSES),
            "beneficiary": Str(required=True, max_chars=MAX_TEXT_CHARS, blank_is_empty=True),
            "compliance_year": Range(2000, 9999, zero_ok=True),
            "declared_obligation_grams": Range(0),
        }
    ),
    f"{_P}UnitSelection": Rules(oneofs=("selection",)),
    f"{_P}SerialRanges": Rules({"origin_region": Region()}, check=_serial_ranges),
    f"{_P}SerialRange": Rules(check=_serial_range),
    f"{_P}QuantityFromProject": Rules(
        {
            "project": Pattern(_PROJECT_NAME, "a project name regions/{region}/projects/{id}"),
            "vintage": Range(1, 9999),
            "quantity_grams": Range(1),
        }
    ),
    f"{_P}RecognitionApplication": Rules({"recognising_regions": Region(error=_UNKNOWN_REGION)}),
    f"{_P}RecognitionVerdict": Rules({"verdict": Enum(by_rpc=True), "comment": TEXT}),
    f"{_P}RecognitionRevocation": Rules({"reason": TEXT}),
    f"{_P}CaseVerdict": Rules(
        {
            "duplicate_case": Pattern(DUPLICATE_CASE_NAME, _CASE_NAME),
            "resolution": Enum(),
            "standing": Pattern(_CASE_SUBJECT, _SUBJECT, error=errors.StandingInvalid),
            "comment": Str(required=True, max_chars=MAX_TEXT_CHARS, text=True, blank_is_empty=True),
        }
    ),
    # -- requests (§11) --
    f"{_P}SubscribeRequest": Rules(
        {"cursor": Cursor(), "format": Enum(zero_ok=True), "regions": Region()}
    ),
    f"{_P}ListRecordsRequest": Rules(
        {"region": ANY_REGION, "kind": Enum(zero_ok=True), "page_token": Cursor()}
    ),
    f"{_P}ListTransfersRequest": Rules(
        {
            "source_region": ANY_REGION,
            "destination_region": ANY_REGION,
            "state": Enum(zero_ok=True),
            "page_token": Cursor(),
        }
    ),
    f"{_P}ListRetirementsRequest": Rules(
        {
            "holder_region": ANY_REGION,
            "purpose": Enum(zero_ok=True, allowed=_RETIREMENT_PURPOSES),
            "compliance_year": Range(2000, 9999, zero_ok=True),
            "page_token": Cursor(),
        }
    ),
    f"{_P}ListUnitBlocksRequest": Rules(
        {
            "holder_region": ANY_REGION,
            "origin_region": ANY_REGION,
            "state": Enum(zero_ok=True),
            "page_token": Cursor(),
        }
    ),
    f"{_P}ListRecognitionsRequest": Rules(
        {
            "recognising_region": ANY_REGION,
            "requesting_region": ANY_REGION,
            "state": Enum(zero_ok=True),
        }
    ),
    f"{_P}GetDuplicateCaseRequest": Rules({"name": Pattern(DUPLICATE_CASE_NAME, _CASE_NAME)}),
    f"{_P}ListDuplicateCasesRequest": Rules(
        {
            "region": ANY_REGION,
            "state": Enum(zero_ok=True),
            "strength": Enum(zero_ok=True),
            "subject": Pattern(_CASE_SUBJECT, _SUBJECT),
            "page_token": Pattern(
                re.compile(f"(?:{CASE_PAGE_TOKEN.pattern})?", re.ASCII),
                "invalid",
                error=errors.CursorInvalid,
            ),
        }
    ),
    f"{_P}CheckRecognizedRequest": Rules({"region": Region(error=_UNKNOWN_REGION)}),
    f"{_P}ListSigningKeysRequest": Rules({"region": ANY_REGION}),
    f"{_P}RevokeSigningKeyRequest": Rules({"reason": TEXT}),
    f"{_P}ListAuditEntriesRequest": Rules({"start_sequence": Range(0, MAX_INT64)}),
    f"{_P}SubmitHoldingsRequest": Rules(error=errors.SnapshotInvalid, oneofs=("part",)),
    f"{_P}HeldBlock": Rules({"origin_region": Region(), "serials": Required()}),
    # Element by element, the walk would cost more than storing the blocks: the snapshot's
    # builder checks the columns whole (SnapshotBuilder.add_columns), before any storage.
    f"{_P}HeldBlockColumns": Rules(skip=True),
    f"{_P}RunReconciliationRequest": Rules({"region": ANY_REGION}),
    f"{_P}ListReconciliationReportsRequest": Rules({"region": ANY_REGION, "page_token": Cursor()}),
}
"""The rules by message full name (a message without an entry has the descriptors' rules only)."""
