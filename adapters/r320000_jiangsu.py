"""Jiangsu (320000): one XML document per record, pinyin-initial tags, tonnes.

Format: ``docs/regions.md`` (Jiangsu). Root ``<JSTPH LX="FFX|XM|QF">``. Serial numbers count
tonnes (k = 1,000,000 g).

Mapping choices:
- ``BBH`` ``V01`` → common version ``"1"``, ``V12`` → ``"12"`` (an integer major version); rendered
  back zero-padded to two digits (``"1"`` → ``V01``). A dotted common version such as ``"1.2"``
  cannot be expressed.
- ``JPL`` may carry thousands separators (``1,234``; a separator in the wrong place is an error) and
  the suffix ``tCO2e``; it must be a whole number of tonnes. Rendered as ``1234 tCO2e``.
- Encoding: UTF-8 unless the XML declaration names ``GB2312``, ``GBK`` or ``GB18030``. The document
  is decoded with Python's codec and re-encoded as UTF-8 before parsing (expat itself cannot read
  multi-byte Chinese encodings). ``GB2312`` and ``GBK`` are decoded as GB18030, their superset (as
  the WHATWG Encoding Standard does), so GBK characters in a file labelled GB2312 are read
  correctly. Any other declared encoding is rejected. Output is always UTF-8.
- XML is parsed with ``defusedxml``: a DOCTYPE (hence any entity declaration) is rejected.
- Records of other regions (``<LYSF>`` set): ids verbatim, any county, ``BBH`` the common version
  (absent when a project's origin names none), ``<XLHDW>`` the origin's serial unit, ``JPL`` exact
  tonnes with up to 6 decimals, ``<KZ>`` the extension object as JSON text (``adapters._foreign``).
- Identity keys of XM (``YZXYDM``, ``WD``, ``JD``, ``ZBX``, ``DWHH``) follow ``ZT``, read and
  written as ``adapters._identity`` says, for own and foreign projects alike.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from yrd.interop.v1 import records_pb2

from adapters._common import (
    CommonCheck,
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
    format_compact_date,
    inverse,
    parse_compact_date,
    version_from_dotted,
    version_from_v,
)
from adapters._foreign import (
    ISSUANCE_EXTENSION,
    METHODOLOGY_EXTENSION,
    PROJECT_EXTENSION,
    SERIAL_UNITS_EN,
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
from adapters._identity import JIANGSU as IDENTITY
from adapters._identity import identity_items, read_identity
from adapters._jiangsu_clean import (
    CATEGORIES,
    METHODOLOGY_STATUSES,
    PROJECT_STATUSES,
    four_digit_year,
    parse_tonnes,
    read_clean,
    serial,
)
from adapters._jiangsu_xml import NO_TAGS, decode, leaves, parse_xml, render_document
from adapters._views import (
    native_ids_supported,
    unsupported,
    view_issuance,
    view_methodology,
    view_project,
)
from adapters.base import AdapterBase, CommonRecord
from adapters.quantities import (
    GRAMS_PER_TONNE,
    InexactQuantityError,
    capacity_in_unit,
    gram_serials_to_native,
    grams_to_decimal,
    native_serials_to_grams,
)

__all__ = ["JiangsuAdapter"]

_CATEGORY_CODES = inverse(CATEGORIES)
_METHODOLOGY_STATUS_CODES = inverse(METHODOLOGY_STATUSES)
_PROJECT_STATUS_CODES = inverse(PROJECT_STATUSES)

_KINDS = {
    "FFX": ("FFXBH", "BBH", "FFXMC", "CJLB", "SXRQ", "SXJZRQ", "CS", "ZT", "LYSF", "KZ"),
    "XM": (
        "XMBH", "FFXBH", "BBH", "XMMC", "YZMC", "XZQH", "ZJRL", "BWRQ", "JRQKS", "JRQJS", "ZT",
        "LYSF", "KZ", *IDENTITY.names,
    ),
    "QF": ("QFBH", "XMBH", "ND", "JCKS", "JCJS", "JPL", "XLHQS", "XLHZZ", "LYSF", "XLHDW", "KZ"),
}  # fmt: skip
_EXTENDED = {
    records_pb2.Methodology: METHODOLOGY_EXTENSION,
    records_pb2.Project: PROJECT_EXTENSION,
    records_pb2.Issuance: ISSUANCE_EXTENSION,
}
_PARAMETER_TAGS = ("DM", "MC", "Z", "DW", "LY", "ND")
_KIND_TAGS = {kind: frozenset(tags) for kind, tags in _KINDS.items()}
_PARAMETER_TAG_SET = frozenset(_PARAMETER_TAGS)
_REPEATABLE = frozenset({"CS"})


def _exact_tonnes(text: str) -> int:
    return parse_tonnes(text, exact_decimals=True)


def check_version(text: str) -> str:
    return version_from_v(text)


class JiangsuAdapter(AdapterBase):
    """Jiangsu's XML records ⇄ common schema."""

    region = "320000"
    region_label = "Jiangsu"
    content_types = ("application/vnd.yrd.320000+xml",)
    serial_unit_grams = GRAMS_PER_TONNE
    origin_field = "LYSF"
    _county = staticmethod(county_checker(region, region_label))  # built once, not per record

    # -- native → common -----------------------------------------------------------------------
    def _parse(self, data: bytes) -> list[CommonRecord]:
        text = decode(data, self.region)
        root = parse_xml(text, self.region)
        clean = read_clean(root, text, self.region, self._county)
        if clean is not None:
            return [clean]
        # Anything else (foreign records, a field to report, an unusual shape) is read in full.
        if root.tag != "JSTPH":
            fail(self.region, "JSTPH", f"the root element is <{root.tag}>, not <JSTPH>")
        kind = root.get("LX")
        issues = Issues()
        for attribute in root.attrib:
            if attribute != "LX":
                issues.add(f"JSTPH/@{attribute}", "is not an attribute of JSTPH")
        if kind is None:
            fail(self.region, "LX", "the JSTPH attribute LX (FFX, XM or QF) is required")
        if kind not in _KINDS:
            fail(self.region, "LX", f"{kind!r} is not one of: FFX, XM, QF")
        repeatable = _REPEATABLE if kind == "FFX" else NO_TAGS
        values, params = leaves(root, _KIND_TAGS[kind], issues, "", repeatable)
        f = TextFields(values, issues)
        origin = read_origin(f, "LYSF", self.region)
        record: CommonRecord | None
        if kind == "FFX":
            record = self._methodology(f, params, origin)
        elif kind == "XM":
            record = self._project(f, origin)
        else:
            record = self._issuance(f, origin)
        if origin == self.region:
            only_foreign(f, {"KZ": "KZ" in values}, self.region_label)
        else:
            ext = parse_extension_text(f, "KZ")
            if ext is not None and record is not None:
                merge_extension(f, "KZ", ext, record, _EXTENDED[type(record)])
        issues.raise_native(self.region)
        assert record is not None
        return [record]

    def _methodology(
        self, f: TextFields, param_elements: list[ET.Element], origin: str
    ) -> records_pb2.Methodology | None:
        own = origin == self.region
        methodology_no = f.parsed("FFXBH", check_identifier, required=True)
        version = f.parsed("BBH", check_version if own else version_from_dotted, required=True)
        title = f.text("FFXMC", required=True)
        category = f.parsed("CJLB", choice(CATEGORIES), required=True)
        effective = f.parsed("SXRQ", parse_compact_date, required=True)
        expiry = f.parsed("SXJZRQ", parse_compact_date)
        f.check_order("SXRQ", effective, "SXJZRQ", expiry, strict=True)
        parameters: list[ParameterValues] = []
        codes: set[str] = set()
        for index, element in enumerate(param_elements, start=1):
            prefix = f"CS[{index}]/"
            if element.attrib:
                f.issues.add(f"CS[{index}]", "has attributes; none are allowed")
            values, _ = leaves(element, _PARAMETER_TAG_SET, f.issues, prefix)
            p = TextFields(values, f.issues, prefix=prefix)
            code = p.text("DM", required=True)
            if code is not None and code in codes:
                p.report("DM", f"{code!r} appears more than once")
            codes.add(code or "")
            parameters.append(
                ParameterValues(
                    code=code or "",
                    name=p.text("MC") or "",
                    value=p.decimal("Z", required=True, allow_negative=True) or "",
                    unit=p.text("DW") or "",
                    source=p.text("LY") or "",
                    year=p.parsed("ND", four_digit_year) or 0,
                )
            )
        status = f.parsed("ZT", choice(METHODOLOGY_STATUSES), required=True)
        if f.issues:
            return None
        assert methodology_no and version and title and effective
        assert category is not None and status is not None
        return build_methodology(
            origin,
            methodology_no,
            version=version,
            title=title,
            category=category,
            parameters=parameters,
            effective=(effective, expiry),
            status=status,
        )

    def _project(self, f: TextFields, origin: str) -> records_pb2.Project | None:
        own = origin == self.region
        project_no = f.parsed("XMBH", check_identifier, required=True)
        methodology_no = f.parsed("FFXBH", check_identifier, required=True)
        # A foreign project may name its methodology without a version (Zhejiang's do).
        version = f.parsed("BBH", check_version if own else version_from_dotted, required=own)
        title = f.text("XMMC", required=True)
        owner = f.text("YZMC", required=True)
        county = f.parsed("XZQH", self._county if own else any_county, required=True)
        capacity = f.decimal("ZJRL", positive=True)
        grid = f.parsed("BWRQ", parse_compact_date)
        start = f.parsed("JRQKS", parse_compact_date, required=True)
        end = f.parsed("JRQJS", parse_compact_date, required=True)
        f.check_order("JRQKS", start, "JRQJS", end, strict=True)
        status = f.parsed("ZT", choice(PROJECT_STATUSES), required=True)
        identity = read_identity(f, IDENTITY)
        if f.issues:
            return None
        assert project_no and methodology_no and title and owner and county
        assert start and end and status is not None and (version or not own)
        return build_project(
            origin,
            project_no,
            (methodology_no, version or ""),
            title=title,
            owner=owner,
            county=county,
            crediting=(start, end),
            status=status,
            capacity=None if capacity is None else (capacity, "kW"),
            grid_date=grid,
            identity=identity,
        )

    def _issuance(self, f: TextFields, origin: str) -> records_pb2.Issuance | None:
        own = origin == self.region
        unit = read_serial_unit(
            f, "XLHDW", SERIAL_UNITS_ZH, GRAMS_PER_TONNE, foreign=not own, own_label="Jiangsu"
        )
        issuance_no = f.parsed("QFBH", check_identifier, required=True)
        project_no = f.parsed("XMBH", check_identifier, required=True)
        vintage = f.parsed("ND", four_digit_year, required=True)
        start = f.parsed("JCKS", parse_compact_date, required=True)
        end = f.parsed("JCJS", parse_compact_date, required=True)
        f.check_order("JCKS", start, "JCJS", end, strict=False)
        grams = f.parsed("JPL", parse_tonnes if own else _exact_tonnes, required=True)
        serial_start = f.parsed("XLHQS", serial, required=True)
        serial_end = f.parsed("XLHZZ", serial, required=True)
        serials: tuple[int, int] | None = None
        if serial_start is not None and serial_end is not None and unit is not None:
            try:
                serials = native_serials_to_grams(serial_start, serial_end, unit)
            except ValueError as exc:
                f.report("XLHZZ", str(exc))
        if grams is not None and serials is not None and grams != serials[1] - serials[0] + 1:
            assert serial_start is not None and serial_end is not None and unit is not None
            f.report(
                "JPL",
                f"{grams_to_decimal(grams, GRAMS_PER_TONNE)} t does not equal the serial range"
                f" size {serial_end - serial_start + 1} {serial_unit_name(SERIAL_UNITS_EN, unit)}",
            )
        if f.issues:
            return None
        assert issuance_no and project_no and vintage and start and end and serials
        assert grams is not None
        return build_issuance(
            origin,
            issuance_no,
            project_id=project_no,
            vintage=vintage,
            monitoring=(start, end),
            quantity_grams=grams,
            serials=serials,
        )

    # -- common → native -----------------------------------------------------------------------
    def _version(self, check: CommonCheck, field: str, version: str, *, own: bool) -> str | None:
        if check.version(field, version) is None:
            return None
        if not own:
            return version  # foreign records: the common version
        if not version.isdigit():
            check.add(field, f"{version!r} has no Jiangsu form: BBH is V<integer>, e.g. V01")
            return None
        return f"V{int(version):02d}"

    def _render_methodology(self, record: records_pb2.Methodology, issues: Issues) -> bytes | None:
        check = CommonCheck(issues)
        own = self.own(record)
        native_ids_supported(check, record, self.region, frozenset(), self.region_label)
        if own:
            unsupported(check, "formula", bool(record.formula), self.region_label)
            unsupported(check, "filing_document", bool(record.filing_document), self.region_label)
            unsupported(
                check,
                "eligibility",
                record.HasField("eligibility") and bool(record.eligibility.ListFields()),
                self.region_label,
            )
        view = view_methodology(
            record,
            check,
            region_label=self.region_label,
            extended=frozenset() if own else METHODOLOGY_EXTENSION,
        )
        version = self._version(check, "version", record.version, own=own)
        if view is None or version is None or issues:
            return None
        elements = self._origin(record)
        elements += [
            ("FFXBH", view.methodology_id),
            ("BBH", version),
            ("FFXMC", view.title),
            ("CJLB", _CATEGORY_CODES[view.category]),
            ("SXRQ", format_compact_date(view.effective_start)),
        ]
        if view.effective_end is not None:
            elements.append(("SXJZRQ", format_compact_date(view.effective_end)))
        for p in view.parameters:
            children = [("DM", p.code)]
            children += [] if p.name is None else [("MC", p.name)]
            children.append(("Z", p.value))
            children += [] if p.unit is None else [("DW", p.unit)]
            children += [] if p.source is None else [("LY", p.source)]
            children += [] if p.year is None else [("ND", f"{p.year:04d}")]
            elements.append(("CS", children))
        elements.append(("ZT", _METHODOLOGY_STATUS_CODES[view.status]))
        return render_document("FFX", self._with_extension(elements, record))

    def _origin(self, record: CommonRecord) -> list[tuple[str, str | list[tuple[str, str]]]]:
        return [] if self.own(record) else [("LYSF", record.region)]

    def _with_extension(
        self, elements: list[tuple[str, str | list[tuple[str, str]]]], record: CommonRecord
    ) -> list[tuple[str, str | list[tuple[str, str]]]]:
        if not self.own(record):
            ext = extension_of(record, _EXTENDED[type(record)])
            if ext is not None:
                elements.append(("KZ", extension_text(ext)))
        return elements

    def _render_project(self, record: records_pb2.Project, issues: Issues) -> bytes | None:
        check = CommonCheck(issues)
        own = self.own(record)
        native_ids_supported(check, record, self.region, frozenset(), self.region_label)
        view = view_project(
            record, check, region=self.region, region_label=self.region_label, foreign=not own
        )
        version: str | None = ""
        if own or record.methodology.version:
            version = self._version(
                check, "methodology.version", record.methodology.version, own=own
            )
        identity = identity_items(record, check, IDENTITY)
        if view is None or version is None or identity is None:
            return None
        elements = self._origin(record)
        elements += [("XMBH", view.project_id), ("FFXBH", view.methodology_id)]
        if version:
            elements.append(("BBH", version))
        elements += [
            ("XMMC", view.title),
            ("YZMC", view.owner),
            ("XZQH", view.county_code),
        ]
        if view.capacity is not None:
            elements.append(("ZJRL", capacity_in_unit(view.capacity, "kW")))
        if view.start_date is not None:
            elements.append(("BWRQ", format_compact_date(view.start_date)))
        elements += [
            ("JRQKS", format_compact_date(view.crediting_start)),
            ("JRQJS", format_compact_date(view.crediting_end)),
            ("ZT", _PROJECT_STATUS_CODES[view.status]),
        ]
        elements += identity
        return render_document("XM", self._with_extension(elements, record))

    def _render_issuance(self, record: records_pb2.Issuance, issues: Issues) -> bytes | None:
        check = CommonCheck(issues)
        native_ids_supported(check, record, self.region, frozenset(), self.region_label)
        view = view_issuance(record, check)
        if view is None:
            return None
        own = self.own(record)
        unit = (
            GRAMS_PER_TONNE
            if own
            else foreign_serial_unit(record.region, view.serial_start, view.serial_end)
        )
        try:
            start, end = gram_serials_to_native(view.serial_start, view.serial_end, unit)
        except InexactQuantityError as exc:
            check.add("serials", f"{exc}; Jiangsu serial numbers count tonnes")
            return None
        elements = self._origin(record)
        elements += [
            ("QFBH", view.issuance_id),
            ("XMBH", view.project_id),
            ("ND", f"{view.vintage:04d}"),
            ("JCKS", format_compact_date(view.monitoring_start)),
            ("JCJS", format_compact_date(view.monitoring_end)),
            ("JPL", f"{grams_to_decimal(view.quantity_grams, GRAMS_PER_TONNE)} tCO2e"),
        ]
        if not own:
            elements.append(("XLHDW", serial_unit_name(SERIAL_UNITS_ZH, unit)))
        elements += [("XLHQS", str(start)), ("XLHZZ", str(end))]
        return render_document("QF", self._with_extension(elements, record))
