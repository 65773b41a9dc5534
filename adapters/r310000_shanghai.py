"""Shanghai (310000): one JSON object per record, snake_case English, tonnes as decimal strings.

Format: ``docs/regions.md`` (Shanghai). Serial numbers count kilograms (k = 1,000 g).

Mapping choices:
- ``version`` ``"1.0"`` → common ``"1"``, ``"1.2"`` → ``"1.2"`` (trailing ``.0`` components dropped,
  leading zeros removed); rendered back with at least two components (``"1"`` → ``"1.0"``).
- ``reduction_tco2e`` is rendered with exactly three decimals (serials are kilograms, so the
  quantity is always whole kilograms): 392,700,000 g → ``"392.700"``.
- capacities and ``max_capacity_mw`` are kept as filed with unit ``MW``; a capacity of another
  region is converted exactly to MW when rendered.
- Records of other regions (``origin_region`` set): ids verbatim, any county, the common version
  (``"1"``), ``methodology_version`` absent when the origin names none, ``serial_unit`` the
  origin's, ``reduction_tco2e`` with as few decimals as exact, and ``ext`` for the rest
  (``adapters._foreign``).
- Identity keys (``owner_credit_code``, ``site_lat``, ``site_lon``, ``site_datum``,
  ``grid_account_no``) are read and written as ``adapters._identity`` says, for own and foreign
  projects alike.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from yrd.interop.v1 import records_pb2

from adapters._common import (
    CommonCheck,
    EligibilityValues,
    Issues,
    JsonFields,
    ParameterValues,
    any_county,
    build_issuance,
    build_methodology,
    build_project,
    check_identifier,
    choice,
    county_checker,
    dump_json,
    fail,
    format_iso_date,
    inverse,
    load_json_object,
    parse_iso_date,
    version_from_dotted,
    version_to_dotted,
)
from adapters._foreign import (
    ISSUANCE_EXTENSION,
    PROJECT_EXTENSION,
    SERIAL_UNITS_EN,
    SHANGHAI_METHODOLOGY_EXTENSION,
    extension_of,
    foreign_serial_unit,
    merge_extension,
    only_foreign,
    read_origin,
    read_serial_unit,
    serial_unit_name,
)
from adapters._identity import SHANGHAI as IDENTITY
from adapters._identity import identity_items, read_identity
from adapters._views import (
    native_ids_supported,
    view_issuance,
    view_methodology,
    view_project,
)
from adapters.base import AdapterBase, CommonRecord
from adapters.quantities import (
    GRAMS_PER_KG,
    GRAMS_PER_TONNE,
    InexactQuantityError,
    capacity_in_unit,
    gram_serials_to_native,
    grams_parser,
    grams_to_decimal,
    native_serials_to_grams,
)

__all__ = ["ShanghaiAdapter"]

_SC = records_pb2.ScenarioCategory
_MS = records_pb2.MethodologyStatus
_PS = records_pb2.ProjectStatus

CATEGORIES = {
    "分布式光伏": _SC.SCENARIO_CATEGORY_DISTRIBUTED_PV,
    "充电桩": _SC.SCENARIO_CATEGORY_EV_CHARGING,
    "公共交通": _SC.SCENARIO_CATEGORY_PUBLIC_TRANSIT,
    "骑行步行": _SC.SCENARIO_CATEGORY_CYCLING_WALKING,
    "垃圾分类": _SC.SCENARIO_CATEGORY_WASTE_SORTING,
    "其他": _SC.SCENARIO_CATEGORY_OTHER,
}
METHODOLOGY_STATUSES = {
    "filed": _MS.METHODOLOGY_STATUS_FILED,
    "effective": _MS.METHODOLOGY_STATUS_EFFECTIVE,
    "withdrawn": _MS.METHODOLOGY_STATUS_WITHDRAWN,
}
PROJECT_STATUSES = {
    "registered": _PS.PROJECT_STATUS_REGISTERED,
    "suspended": _PS.PROJECT_STATUS_SUSPENDED,
    "closed": _PS.PROJECT_STATUS_CLOSED,
}
#: The parsers of the code fields (built once, not per record).
_CATEGORY = choice(CATEGORIES)
_METHODOLOGY_STATUS = choice(METHODOLOGY_STATUSES)
_PROJECT_STATUS = choice(PROJECT_STATUSES)
_CATEGORY_NAMES = inverse(CATEGORIES)
_METHODOLOGY_STATUS_NAMES = inverse(METHODOLOGY_STATUSES)
_PROJECT_STATUS_NAMES = inverse(PROJECT_STATUSES)

_METHODOLOGY_NO = re.compile(r"SHCI-M-[A-Z]+-[0-9]{4}-[0-9]{2}", re.ASCII)

_METHODOLOGY_KEYS = frozenset(
    {
        "record_type",
        "methodology_no",
        "version",
        "name_zh",
        "category",
        "filing_doc_no",
        "effective_date",
        "expiry_date",
        "parameters",
        "eligibility",
        "formula",
        "status",
        "origin_region",
        "ext",
    }
)
_PARAMETER_KEYS = frozenset({"code", "name_zh", "value", "unit", "source", "year"})
_ELIGIBILITY_KEYS = frozenset({"max_capacity_mw", "max_lifetime_years"})
_PROJECT_KEYS = frozenset(
    {
        "record_type",
        "project_no",
        "methodology_no",
        "methodology_version",
        "project_name",
        "owner_name",
        "district_code",
        "capacity_mw",
        "grid_connection_date",
        "crediting_start",
        "crediting_end",
        "status",
        "origin_region",
        "ext",
        *IDENTITY.names,
    }
)
_ISSUANCE_KEYS = frozenset(
    {
        "record_type",
        "issuance_no",
        "project_no",
        "vintage",
        "monitoring_start",
        "monitoring_end",
        "reduction_tco2e",
        "serial_start",
        "serial_end",
        "origin_region",
        "serial_unit",
        "ext",
    }
)


def check_methodology_no(text: str) -> str:
    if not _METHODOLOGY_NO.fullmatch(text):
        raise ValueError(f"{text!r} does not match SHCI-M-<LETTERS>-<YYYY>-<NN>")
    return text


_tonnes_to_grams = grams_parser(GRAMS_PER_TONNE, "t")


class ShanghaiAdapter(AdapterBase):
    """Shanghai's JSON records ⇄ common schema."""

    region = "310000"
    region_label = "Shanghai"
    content_types = ("application/vnd.yrd.310000+json",)
    serial_unit_grams = GRAMS_PER_KG
    origin_field = "origin_region"

    # -- native → common -----------------------------------------------------------------------
    def _parse(self, data: bytes) -> list[CommonRecord]:
        obj = load_json_object(data, self.region, allow_bom=False)
        issues = Issues()
        kind = obj.get("record_type")
        record: CommonRecord | None
        if kind == "methodology":
            f = JsonFields(obj, issues, allowed=_METHODOLOGY_KEYS)
            record = self._methodology(f, read_origin(f, "origin_region", self.region))
        elif kind == "project":
            f = JsonFields(obj, issues, allowed=_PROJECT_KEYS)
            record = self._project(f, read_origin(f, "origin_region", self.region))
        elif kind == "issuance":
            f = JsonFields(obj, issues, allowed=_ISSUANCE_KEYS)
            record = self._issuance(f, read_origin(f, "origin_region", self.region))
        elif kind is None:
            fail(self.region, "record_type", "is required but missing")
        else:
            fail(
                self.region,
                "record_type",
                f"{kind!r} is not one of: methodology, project, issuance",
            )
        if record is not None:
            self._extension(f, record)
        issues.raise_native(self.region)
        assert record is not None
        return [record]

    _EXTENDED: ClassVar[dict[type, frozenset[str]]] = {
        records_pb2.Methodology: SHANGHAI_METHODOLOGY_EXTENSION,
        records_pb2.Project: PROJECT_EXTENSION,
        records_pb2.Issuance: ISSUANCE_EXTENSION,
    }

    def _extension(self, f: JsonFields, record: CommonRecord) -> None:
        ext = f.obj.get("ext")
        if ext is None:
            return
        if record.region == self.region:
            only_foreign(f, {"ext": True}, self.region_label)
        else:
            merge_extension(f, "ext", ext, record, self._EXTENDED[type(record)])

    def _methodology(self, f: JsonFields, origin: str) -> records_pb2.Methodology | None:
        own = origin == self.region
        methodology_no = f.parsed(
            "methodology_no", check_methodology_no if own else check_identifier, required=True
        )
        version = f.parsed("version", version_from_dotted, required=True)
        title = f.text("name_zh", required=True)
        category = f.parsed("category", _CATEGORY, required=True)
        filing = f.text("filing_doc_no")
        effective = f.parsed("effective_date", parse_iso_date, required=True)
        expiry = f.parsed("expiry_date", parse_iso_date)
        f.check_order("effective_date", effective, "expiry_date", expiry, strict=True)
        parameters: list[ParameterValues] = []
        codes: set[str] = set()
        for _, p in f.children("parameters", _PARAMETER_KEYS):
            code = p.text("code", required=True)
            if code is not None and code in codes:
                p.report("code", f"{code!r} appears more than once")
            codes.add(code or "")
            value = p.decimal("value", required=True, allow_negative=True)
            parameters.append(
                ParameterValues(
                    code=code or "",
                    name=p.text("name_zh") or "",
                    value=value or "",
                    unit=p.text("unit") or "",
                    source=p.text("source") or "",
                    year=p.year("year") or 0,
                )
            )
        eligibility: EligibilityValues | None = None
        e = f.child("eligibility", _ELIGIBILITY_KEYS)
        if e is not None:
            max_capacity = e.decimal("max_capacity_mw", positive=True)
            lifetime = e.integer("max_lifetime_years", low=1, high=1000)
            if max_capacity is not None or lifetime is not None:
                eligibility = EligibilityValues(
                    None if max_capacity is None else (max_capacity, "MW"), lifetime or 0
                )
        formula = f.text("formula")
        status = f.parsed("status", _METHODOLOGY_STATUS, required=True)
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
            formula=formula or "",
            parameters=parameters,
            eligibility=eligibility,
            effective=(effective, expiry),
            status=status,
            filing_document=filing or "",
        )

    def _project(self, f: JsonFields, origin: str) -> records_pb2.Project | None:
        own = origin == self.region
        project_no = f.parsed("project_no", check_identifier, required=True)
        methodology_no = f.parsed(
            "methodology_no", check_methodology_no if own else check_identifier, required=True
        )
        # A foreign project may name its methodology without a version (Zhejiang's do).
        version = f.parsed("methodology_version", version_from_dotted, required=own)
        title = f.text("project_name", required=True)
        owner = f.text("owner_name", required=True)
        county = f.parsed(
            "district_code",
            county_checker(self.region, "Shanghai") if own else any_county,
            required=True,
        )
        capacity = f.decimal("capacity_mw", positive=True)
        grid = f.parsed("grid_connection_date", parse_iso_date)
        start = f.parsed("crediting_start", parse_iso_date, required=True)
        end = f.parsed("crediting_end", parse_iso_date, required=True)
        f.check_order("crediting_start", start, "crediting_end", end, strict=True)
        status = f.parsed("status", _PROJECT_STATUS, required=True)
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
            capacity=None if capacity is None else (capacity, "MW"),
            grid_date=grid,
            identity=identity,
        )

    def _issuance(self, f: JsonFields, origin: str) -> records_pb2.Issuance | None:
        unit = read_serial_unit(
            f,
            "serial_unit",
            SERIAL_UNITS_EN,
            GRAMS_PER_KG,
            foreign=origin != self.region,
            own_label=self.region_label,
        )
        issuance_no = f.parsed("issuance_no", check_identifier, required=True)
        project_no = f.parsed("project_no", check_identifier, required=True)
        vintage = f.year("vintage", required=True)
        start = f.parsed("monitoring_start", parse_iso_date, required=True)
        end = f.parsed("monitoring_end", parse_iso_date, required=True)
        f.check_order("monitoring_start", start, "monitoring_end", end, strict=False)
        grams = f.parsed("reduction_tco2e", _tonnes_to_grams, required=True)
        serial_start = f.integer("serial_start", required=True)
        serial_end = f.integer("serial_end", required=True)
        serials: tuple[int, int] | None = None
        if serial_start is not None and serial_end is not None and unit is not None:
            try:
                serials = native_serials_to_grams(serial_start, serial_end, unit)
            except ValueError as exc:
                f.report("serial_end", str(exc))
        if grams is not None and serials is not None and grams != serials[1] - serials[0] + 1:
            assert serial_start is not None and serial_end is not None and unit is not None
            f.report(
                "reduction_tco2e",
                f"{f.text('reduction_tco2e')} t ({grams} g) does not equal the serial range size"
                f" {serial_end - serial_start + 1} {serial_unit_name(SERIAL_UNITS_EN, unit)}",
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
    def _render_methodology(self, record: records_pb2.Methodology, issues: Issues) -> bytes | None:
        check = CommonCheck(issues)
        own = self.own(record)
        native_ids_supported(check, record, self.region, frozenset(), self.region_label)
        view = view_methodology(
            record,
            check,
            region_label=self.region_label,
            id_parser=check_methodology_no if own else check_identifier,
            extended=frozenset() if own else SHANGHAI_METHODOLOGY_EXTENSION,
        )
        if view is None:
            return None
        out: dict[str, Any] = {"record_type": "methodology", **self._origin(record)}
        out |= {
            "methodology_no": view.methodology_id,
            "version": version_to_dotted(view.version, min_parts=2) if own else view.version,
            "name_zh": view.title,
            "category": _CATEGORY_NAMES[view.category],
        }
        if view.filing_document:
            out["filing_doc_no"] = view.filing_document
        out["effective_date"] = format_iso_date(view.effective_start)
        if view.effective_end:
            out["expiry_date"] = format_iso_date(view.effective_end)
        if view.parameters:
            out["parameters"] = [
                _drop_none(
                    {
                        "code": p.code,
                        "name_zh": p.name,
                        "value": p.value,
                        "unit": p.unit,
                        "source": p.source,
                        "year": p.year,
                    }
                )
                for p in view.parameters
            ]
        eligibility: dict[str, Any] = {}
        if view.max_capacity is not None:
            eligibility["max_capacity_mw"] = capacity_in_unit(view.max_capacity, "MW")
        if view.max_lifetime_years is not None:
            eligibility["max_lifetime_years"] = view.max_lifetime_years
        if eligibility:
            out["eligibility"] = eligibility
        if view.formula:
            out["formula"] = view.formula
        out["status"] = _METHODOLOGY_STATUS_NAMES[view.status]
        return dump_json(self._with_extension(out, record))

    def _origin(self, record: CommonRecord) -> dict[str, Any]:
        return {} if self.own(record) else {"origin_region": record.region}

    def _with_extension(self, out: dict[str, Any], record: CommonRecord) -> dict[str, Any]:
        if not self.own(record):
            ext = extension_of(record, self._EXTENDED[type(record)])
            if ext is not None:
                out["ext"] = ext
        return out

    def _render_project(self, record: records_pb2.Project, issues: Issues) -> bytes | None:
        check = CommonCheck(issues)
        own = self.own(record)
        native_ids_supported(check, record, self.region, frozenset(), self.region_label)
        view = view_project(
            record,
            check,
            region=self.region,
            region_label=self.region_label,
            methodology_id_parser=check_methodology_no if own else check_identifier,
            foreign=not own,
        )
        version: str | None = ""
        if own or record.methodology.version:
            version = check.version("methodology.version", record.methodology.version)
        identity = identity_items(record, check, IDENTITY)
        if view is None or version is None or identity is None:
            return None
        out: dict[str, Any] = {"record_type": "project", **self._origin(record)}
        out |= {"project_no": view.project_id, "methodology_no": view.methodology_id}
        if version:
            out["methodology_version"] = version_to_dotted(version, min_parts=2) if own else version
        out |= {
            "project_name": view.title,
            "owner_name": view.owner,
            "district_code": view.county_code,
        }
        if view.capacity is not None:
            out["capacity_mw"] = capacity_in_unit(view.capacity, "MW")
        if view.start_date is not None:
            out["grid_connection_date"] = format_iso_date(view.start_date)
        out["crediting_start"] = format_iso_date(view.crediting_start)
        out["crediting_end"] = format_iso_date(view.crediting_end)
        out["status"] = _PROJECT_STATUS_NAMES[view.status]
        out.update(identity)
        return dump_json(self._with_extension(out, record))

    def _render_issuance(self, record: records_pb2.Issuance, issues: Issues) -> bytes | None:
        check = CommonCheck(issues)
        native_ids_supported(check, record, self.region, frozenset(), self.region_label)
        view = view_issuance(record, check)
        if view is None:
            return None
        own = self.own(record)
        unit = (
            GRAMS_PER_KG
            if own
            else foreign_serial_unit(record.region, view.serial_start, view.serial_end)
        )
        try:
            start, end = gram_serials_to_native(view.serial_start, view.serial_end, unit)
        except InexactQuantityError as exc:
            check.add("serials", f"{exc}; Shanghai serial numbers count kilograms")
            return None
        out: dict[str, Any] = {"record_type": "issuance", **self._origin(record)}
        out |= {
            "issuance_no": view.issuance_id,
            "project_no": view.project_id,
            "vintage": view.vintage,
            "monitoring_start": format_iso_date(view.monitoring_start),
            "monitoring_end": format_iso_date(view.monitoring_end),
            "reduction_tco2e": grams_to_decimal(
                view.quantity_grams, GRAMS_PER_TONNE, min_decimals=3 if own else 0
            ),
        }
        if not own:
            out["serial_unit"] = serial_unit_name(SERIAL_UNITS_EN, unit)
        out |= {"serial_start": start, "serial_end": end}
        return dump_json(self._with_extension(out, record))


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
