"""The interface every regional adapter implements, and a base class with the shared mechanics.

An adapter turns the bytes of its region's native format into records of the common schema
(``yrd.interop.v1``) and back:

- ``to_common(content_type, data)`` parses one native document (one record, or many for Anhui
  CSV) and validates everything the document shows by itself; it raises
  ``NativeFormatError`` listing every issue, and stores nothing of a rejected document.
- ``from_common(record)`` renders one common record in the native format, or raises
  ``NotExpressibleError`` saying why it cannot be rendered exactly (nothing is ever rounded).
  The rendering is verified by parsing it back: the result is always a valid native document
  that parses to the same record.

Records of other regions ("foreign records") travel in every format with their origin region, the
origin's ids verbatim, the serials in the origin's unit and an extension object for what the format
has no place for (``adapters._foreign``); a document naming this adapter's region (or none) holds
its own records, which keep the format's strict rules. ``to_common`` refuses foreign records unless
``accept_foreign`` (a registry publishes its own records; the gateway delivers the others).

Checks that need other records (the methodology a project names exists, capacity within the
methodology's maximum, monitoring period inside the crediting period, serials not overlapping) are
made by the gateway; ``methodology_ref`` and ``adapters.quantities``/``adapters.crosscheck`` give
it what it needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NoReturn, Protocol, TypeAlias, runtime_checkable

from yrd.interop.v1 import records_pb2

from adapters._common import (
    MAX_DOCUMENT_BYTES,
    Issues,
    fail,
)
from adapters.errors import (
    FieldIssue,
    NativeFormatError,
    NotExpressibleError,
    UnknownContentTypeError,
)
from adapters.quantities import CAPACITY_UNIT_WATTS, capacity_watts, fraction_to_decimal

__all__ = [
    "AdapterBase",
    "CommonRecord",
    "RegionAdapter",
    "comparable_record",
    "media_type",
    "render_checked",
    "same_record",
]

CommonRecord: TypeAlias = records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance


def media_type(content_type: str) -> str:
    """The media type of a content type, lower-cased, without parameters (``; charset=…``)."""
    return content_type.split(";", 1)[0].strip().lower()


@runtime_checkable
class RegionAdapter(Protocol):
    """What the gateway needs from a regional adapter."""

    @property
    def region(self) -> str:
        """GB/T 2260 code of the region, e.g. ``"310000"``."""
        ...

    @property
    def content_types(self) -> tuple[str, ...]:
        """Content types of the native documents this adapter reads and writes (first = written)."""
        ...

    @property
    def serial_unit_grams(self) -> int:
        """Size in grams of one native serial number (Shanghai kg → 1000, Zhejiang g → 1)."""
        ...

    @property
    def max_document_bytes(self) -> int:
        """Largest native document accepted by ``to_common``."""
        ...

    def to_common(
        self, content_type: str, data: bytes, *, accept_foreign: bool = False
    ) -> list[CommonRecord]:
        """Parse and validate one native document; raise ``NativeFormatError`` with all issues.

        Records of another region are refused unless ``accept_foreign``.
        """
        ...

    def from_common(self, record: CommonRecord) -> bytes:
        """Render a record natively; raise ``NotExpressibleError`` when not exactly possible."""
        ...

    def methodology_ref(self, methodology: records_pb2.Methodology) -> records_pb2.MethodologyRef:
        """The ``MethodologyRef`` by which this region's projects name ``methodology``.

        A project refers to a known methodology when ``project.methodology ==
        adapter.methodology_ref(methodology)`` for one stored methodology of the project's region.
        """
        ...


class AdapterBase(ABC):
    """Shared mechanics: content-type and size checks, dispatch, verification of renderings."""

    region: str
    region_label: str
    content_types: tuple[str, ...]
    serial_unit_grams: int
    max_document_bytes: int = MAX_DOCUMENT_BYTES
    origin_field: str = "region"
    """The native field naming a foreign record's origin region."""

    # -- interface -----------------------------------------------------------------------------
    def to_common(
        self, content_type: str, data: bytes, *, accept_foreign: bool = False
    ) -> list[CommonRecord]:
        if content_type not in self.content_types and (
            media_type(content_type) not in self.content_types
        ):
            raise UnknownContentTypeError(content_type, self.region)
        if data.__class__ is not bytes:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"data must be bytes, not {type(data).__name__}")
            self._check_size(data.nbytes if isinstance(data, memoryview) else len(data))
            data = bytes(data)
        elif len(data) > self.max_document_bytes:
            self._check_size(len(data))
        # ``isspace`` is the test ``not data.strip()`` makes (ASCII blanks), without the copy.
        if not data or data.isspace():
            fail(self.region, "document", "is empty")
        records = self._parse(data)
        if not accept_foreign:
            region = self.region
            for record in records:  # a plain loop: usually one record, of this region
                if record.region != region:
                    self._refuse_foreign(records)
        return records

    def _refuse_foreign(self, records: list[CommonRecord]) -> NoReturn:
        foreign = sorted({r.region for r in records if r.region != self.region})
        fail(
            self.region,
            self.origin_field,
            f"names region {', '.join(foreign)}: a {self.region_label} document published"
            f" to the gateway holds {self.region_label}'s own records only",
        )

    def _check_size(self, size: int) -> None:
        if size > self.max_document_bytes:
            fail(
                self.region,
                "document",
                f"is {size} bytes; the limit is {self.max_document_bytes} bytes",
            )

    def from_common(self, record: CommonRecord) -> bytes:
        issues = Issues()
        if isinstance(record, records_pb2.Methodology):
            output = self._render_methodology(record, issues)
        elif isinstance(record, records_pb2.Project):
            output = self._render_project(record, issues)
        elif isinstance(record, records_pb2.Issuance):
            output = self._render_issuance(record, issues)
        else:
            raise TypeError(f"not a common record: {type(record).__name__}")
        issues.raise_not_expressible(self.region)
        assert output is not None
        self._verify(record, output)
        return output

    def methodology_ref(self, methodology: records_pb2.Methodology) -> records_pb2.MethodologyRef:
        return records_pb2.MethodologyRef(
            region=methodology.region,
            methodology_id=methodology.methodology_id,
            version=methodology.version,
        )

    # -- to implement --------------------------------------------------------------------------
    @abstractmethod
    def _parse(self, data: bytes) -> list[CommonRecord]:
        """Parse a document within the size limit; raise ``NativeFormatError`` with all issues."""

    @abstractmethod
    def _render_methodology(self, record: records_pb2.Methodology, issues: Issues) -> bytes | None:
        """Render, or record in ``issues`` why not (then return None)."""

    @abstractmethod
    def _render_project(self, record: records_pb2.Project, issues: Issues) -> bytes | None:
        """Render, or record in ``issues`` why not (then return None)."""

    @abstractmethod
    def _render_issuance(self, record: records_pb2.Issuance, issues: Issues) -> bytes | None:
        """Render, or record in ``issues`` why not (then return None)."""

    # -- shared helpers ------------------------------------------------------------------------
    def own(self, record: CommonRecord) -> bool:
        return record.region == self.region

    def _verify(self, record: CommonRecord, output: bytes) -> None:
        """Parse the rendering back: it must be valid and denote exactly ``record``."""
        try:
            parsed = self._parse(output)
        except NativeFormatError as exc:
            raise NotExpressibleError(
                self.region,
                [
                    FieldIssue(
                        i.field, f"the rendering would be invalid: {i.reason}", i.row, i.column
                    )
                    for i in exc.issues
                ],
            ) from exc
        expected = comparable_record(record)
        got = comparable_record(parsed[0]) if len(parsed) == 1 else None
        if got != expected:
            fields = _differing_fields(expected, got)
            raise NotExpressibleError(
                self.region,
                [
                    FieldIssue(
                        field,
                        f"cannot be rendered exactly in the {self.region_label} format",
                    )
                    for field in fields or ["record"]
                ],
            )


def _canonical_capacity(quantity: records_pb2.ExactQuantity) -> None:
    if quantity.unit in CAPACITY_UNIT_WATTS:
        try:
            watts = fraction_to_decimal(capacity_watts(quantity))
        except ValueError:
            return
        if watts is not None:
            quantity.value, quantity.unit = watts, "W"


def comparable_record(record: CommonRecord) -> CommonRecord:
    """The record in the form its renderings are compared in.

    A rendering must parse back to the same record, except that empty optional sub-messages are
    dropped, capacities are compared by exact value in watts (0.85 MW is 850 kW) and a site's
    unspecified datum is WGS-84 (as the contract reads it).
    """
    copy = type(record)()
    copy.MergeFromString(record.SerializeToString())
    if isinstance(copy, records_pb2.Methodology) and copy.HasField("eligibility"):
        if copy.eligibility.HasField("max_capacity"):
            _canonical_capacity(copy.eligibility.max_capacity)
        if not copy.eligibility.ListFields():
            copy.ClearField("eligibility")
    if isinstance(copy, records_pb2.Project):
        if copy.HasField("capacity"):
            _canonical_capacity(copy.capacity)
        if copy.HasField("identity"):
            _canonical_identity(copy)
    return copy


def _canonical_identity(project: records_pb2.Project) -> None:
    identity = project.identity
    if identity.HasField("site"):
        site = identity.site
        if not site.ListFields():
            identity.ClearField("site")
        elif site.datum == records_pb2.COORDINATE_DATUM_UNSPECIFIED and (
            site.latitude or site.longitude
        ):
            # The contract reads an unspecified datum of a site as WGS-84.
            site.datum = records_pb2.COORDINATE_DATUM_WGS84
    if not identity.ListFields():
        project.ClearField("identity")


def same_record(a: CommonRecord, b: CommonRecord) -> bool:
    """True when ``a`` and ``b`` are the same common record (see ``comparable_record``)."""
    return comparable_record(a) == comparable_record(b)


def _differing_fields(expected: CommonRecord, got: CommonRecord | None) -> list[str]:
    if got is None:
        return ["record"]
    names = {field.name for field, _ in expected.ListFields()} | {
        field.name for field, _ in got.ListFields()
    }
    return sorted(name for name in names if getattr(expected, name) != getattr(got, name))


def render_checked(adapter: RegionAdapter, record: CommonRecord) -> bytes:
    """``record`` rendered by ``adapter``, only if the bytes read back are exactly ``record``.

    Raises ``NotExpressibleError`` (with the reason) otherwise. ``AdapterBase`` renderers make this
    check themselves (``from_common`` parses its rendering back); any other adapter is checked here.
    """
    data = adapter.from_common(record)
    if isinstance(adapter, AdapterBase):
        return data
    try:
        back = adapter.to_common(adapter.content_types[0], data, accept_foreign=True)
    except NativeFormatError as exc:
        raise NotExpressibleError(
            adapter.region, [FieldIssue("record", f"the rendering does not read back: {exc}")]
        ) from exc
    if len(back) != 1 or not same_record(back[0], record):
        raise NotExpressibleError(
            adapter.region,
            [FieldIssue("record", "the rendering does not read back as the same record")],
        )
    return data
