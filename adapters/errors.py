"""Errors raised by the regional adapters.

Nothing here imports the gateway: the gateway maps these exceptions to gRPC statuses itself
(``NativeFormatError`` and ``NotExpressibleError`` are client errors; ``UnknownRegionError`` and
``UnknownContentTypeError`` mean the caller asked for an adapter that is not registered).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "AdapterError",
    "FieldIssue",
    "NativeFormatError",
    "NotExpressibleError",
    "UnknownContentTypeError",
    "UnknownRegionError",
]


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One problem with one field of a document.

    ``field`` names the field in the terms of the document it comes from: the region's own
    field name for native documents (``reduction_tco2e``, ``JPL``, ``dataInfo.certifiedKg``,
    ``减排量``), or the common-schema field path for records that cannot be rendered (``serials``,
    ``version``).
    ``row`` (1-based, the header is row 1) and ``column`` are set for CSV documents.
    """

    field: str
    reason: str
    row: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = self.field
        if self.row is not None:
            where = f"row {self.row}, {self.column or self.field}"
        return f"{where}: {self.reason}"


class AdapterError(Exception):
    """Base class of every error an adapter raises on purpose."""


def _summary(prefix: str, issues: tuple[FieldIssue, ...]) -> str:
    shown = "; ".join(str(issue) for issue in issues[:20])
    more = f"; … and {len(issues) - 20} more" if len(issues) > 20 else ""
    return f"{prefix}: {shown}{more}"


class NativeFormatError(AdapterError):
    """A native document failed to parse or validate.

    ``issues`` lists every problem found in the document (all of them, not just the first); the
    whole document is rejected.
    """

    def __init__(self, region: str, issues: Iterable[FieldIssue]) -> None:
        self.region = region
        self.issues: tuple[FieldIssue, ...] = tuple(issues)
        if not self.issues:
            raise ValueError("NativeFormatError needs at least one issue")
        super().__init__(
            _summary(f"invalid {region} document ({len(self.issues)} issue(s))", self.issues)
        )


class NotExpressibleError(AdapterError):
    """A common record cannot be rendered exactly in a region's native format.

    ``issues`` name the common-schema fields concerned and say why (e.g. a gram-granular serial
    range for a format that counts kilograms). Nothing is ever rounded to make a record fit.
    """

    def __init__(self, region: str, issues: Iterable[FieldIssue]) -> None:
        self.region = region
        self.issues: tuple[FieldIssue, ...] = tuple(issues)
        if not self.issues:
            raise ValueError("NotExpressibleError needs at least one issue")
        super().__init__(
            _summary(f"record cannot be expressed exactly in the {region} format", self.issues)
        )


class UnknownRegionError(AdapterError, LookupError):
    """No adapter is registered for the region code."""

    def __init__(self, region: str) -> None:
        self.region = region
        super().__init__(f"no adapter registered for region {region!r}")


class UnknownContentTypeError(AdapterError, LookupError):
    """No adapter (or not this adapter) reads the content type."""

    def __init__(self, content_type: str, region: str | None = None) -> None:
        self.content_type = content_type
        self.region = region
        where = f"the {region} adapter" if region else "any registered adapter"
        super().__init__(f"content type {content_type!r} is not read by {where}")
