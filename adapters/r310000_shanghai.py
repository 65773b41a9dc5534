"""Shanghai (310000): one JSON object per record, snake_case English, tonnes as decimal strings.

Format: ``docs/regions.md`` (Shanghai). Serial numbers count kilograms (k = 1,000 g).

Mapping choices:
- ``version`` ``"1.0"`` → common ``"1"``, ``"1.2"`` → ``"1.2"`` (trailing ``.0`` components dropped,
  leading zeros removed); rendered back with at least two components (``"1"`` → ``"1.0"``).
- ``reduction_tco2e`` is rendered with exactly three decimals (serials are kilograms, so the
  quantity is always whole kilograms): 392,700,000 g → ``"392.700"``.
- capacities and ``max_capacity_mw`` are kept as filed with unit ``MW``; a capacity of another
  region is converted exactly to MW when rendered.
"""

from __future__ import annotations

import re
from typing import Any

from yrd.interop.v1 import records_pb2

from adapters._common import (
    CommonCheck,
    Issues,
    JsonFields,
    build_project,
    check_identifier,
    choice,
    county_checker,
    date_range,
    dump_json,
    fail,
    format_iso_date,
    inverse,
    issuance_name,
    load_json_object,
    methodology_name,
    parse_iso_date,
    project_name,
    version_from_dotted,
    version_to_dotted,
)
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
    decimal_to_grams,
    gram_serials_to_native,
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
    }
)


def check_methodology_no(text: str) -> str:
    if not _METHODOLOGY_NO.fullmatch(text):
        raise ValueError(f"{text!r} does not match SHCI-M-<LETTERS>-<YYYY>-<NN>")
    return text


def _tonnes_to_grams(text: str) -> int:
    return decimal_to_grams(text, GRAMS_PER_TONNE, "t")


class ShanghaiAdapter(AdapterBase):
    """Shanghai's JSON records ⇄ common schema."""

    region = "310000"
    region_label = "Shanghai"
    content_types = ("application/vnd.yrd.310000+json",)
    serial_unit_grams = GRAMS_PER_KG

    # -- native → common -----------------------------------------------------------------------
    def _parse(self, data: bytes) -> list[CommonRecord]:
        obj = load_json_object(data, self.region, allow_bom=False)
        issues = Issues()
        kind = obj.get("record_type")
        record: CommonRecord | None
        if kind == "methodology":
            record = self._methodology(JsonFields(obj, issues, allowed=_METHODOLOGY_KEYS))
        elif kind == "project":
            record = self._project(JsonFields(obj, issues, allowed=_PROJECT_KEYS))
        elif kind == "issuance":
            record = self._issuance(JsonFields(obj, issues, allowed=_ISSUANCE_KEYS))
        elif kind is None:
            fail(self.region, "record_type", "is required but missing")
        else:
            fail(
                self.region,
                "record_type",
                f"{kind!r} is not one of: methodology, project, issuance",
            )
        issues.raise_native(self.region)
        assert record is not None
        return [record]

    def _methodology(self, f: JsonFields) -> records_pb2.Methodology | None:
        methodology_no = f.parsed("methodology_no", check_methodology_no, required=True)
        version = f.parsed("version", version_from_dotted, required=True)
        title = f.text("name_zh", required=True)
        category = f.parsed("category", choice(CATEGORIES), required=True)
        filing = f.text("filing_doc_no")
        effective = f.parsed("effective_date", parse_iso_date, required=True)
        expiry = f.parsed("expiry_date", parse_iso_date)
        f.check_order("effective_date", effective, "expiry_date", expiry, strict=True)
        parameters: list[records_pb2.Parameter] = []
        codes: set[str] = set()
        for _, p in f.children("parameters", _PARAMETER_KEYS):
            code = p.text("code", required=True)
            if code is not None and code in codes:
                p.report("code", f"{code!r} appears more than once")
            codes.add(code or "")
            value = p.decimal("value", required=True, allow_negative=True)
            parameters.append(
                records_pb2.Parameter(
                    code=code or "",
                    name=p.text("name_zh") or "",
                    quantity=records_pb2.ExactQuantity(
                        value=value or "", unit=p.text("unit") or ""
                    ),
                    source=p.text("source") or "",
                    year=p.year("year") or 0,
                )
            )
        eligibility: records_pb2.EligibilityRules | None = None
        e = f.child("eligibility", _ELIGIBILITY_KEYS)
        if e is not None:
            max_capacity = e.decimal("max_capacity_mw", positive=True)
            lifetime = e.integer("max_lifetime_years", low=1, high=1000)
            if max_capacity is not None or lifetime is not None:
                eligibility = records_pb2.EligibilityRules(max_lifetime_years=lifetime or 0)
                if max_capacity is not None:
                    eligibility.max_capacity.CopyFrom(
                        records_pb2.ExactQuantity(value=max_capacity, unit="MW")
                    )
        formula = f.text("formula")
        status = f.parsed("status", choice(METHODOLOGY_STATUSES), required=True)
        if f.issues:
            return None
        assert methodology_no and version and title and effective
        assert category is not None and status is not None
        return records_pb2.Methodology(
            name=methodology_name(self.region, methodology_no),
            region=self.region,
            methodology_id=methodology_no,
            version=version,
            title=title,
            category=category,
            formula=formula or "",
            parameters=parameters,
            eligibility=eligibility,
            effective=date_range(effective, expiry),
            status=status,
            filing_document=filing or "",
        )

    def _project(self, f: JsonFields) -> records_pb2.Project | None:
        project_no = f.parsed("project_no", check_identifier, required=True)
        methodology_no = f.parsed("methodology_no", check_methodology_no, required=True)
        version = f.parsed("methodology_version", version_from_dotted, required=True)
        title = f.text("project_name", required=True)
        owner = f.text("owner_name", required=True)
        county = f.parsed("district_code", county_checker(self.region, "Shanghai"), required=True)
        capacity = f.decimal("capacity_mw", positive=True)
        grid = f.parsed("grid_connection_date", parse_iso_date)
        start = f.parsed("crediting_start", parse_iso_date, required=True)
        end = f.parsed("crediting_end", parse_iso_date, required=True)
        f.check_order("crediting_start", start, "crediting_end", end, strict=True)
        status = f.parsed("status", choice(PROJECT_STATUSES), required=True)
        if f.issues:
            return None
        assert project_no and methodology_no and version and title and owner and county
        assert start and end and status is not None
        return build_project(
            self.region,
            project_no,
            (methodology_no, version),
            title=title,
            owner=owner,
            county=county,
            crediting=(start, end),
            status=status,
            capacity=None if capacity is None else (capacity, "MW"),
            grid_date=grid,
        )

    def _issuance(self, f: JsonFields) -> records_pb2.Issuance | None:
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
        if serial_start is not None and serial_end is not None:
            try:
                serials = native_serials_to_grams(serial_start, serial_end, GRAMS_PER_KG)
            except ValueError as exc:
                f.report("serial_end", str(exc))
        if grams is not None and serials is not None and grams != serials[1] - serials[0] + 1:
            assert serial_start is not None and serial_end is not None
            f.report(
                "reduction_tco2e",
                f"{f.text('reduction_tco2e')} t ({grams} g) does not equal the serial range size"
                f" {serial_end - serial_start + 1} kg",
            )
        if f.issues:
            return None
        assert issuance_no and project_no and vintage and start and end and serials
        assert grams is not None
        return records_pb2.Issuance(
            name=issuance_name(self.region, issuance_no),
            region=self.region,
            issuance_id=issuance_no,
            project=project_name(self.region, project_no),
            vintage=vintage,
            monitoring_period=date_range(start, end),
            quantity_grams=grams,
            serials=records_pb2.SerialRange(start=serials[0], end=serials[1]),
        )

    # -- common → native -----------------------------------------------------------------------
    def _render_methodology(self, record: records_pb2.Methodology, issues: Issues) -> bytes | None:
        check = CommonCheck(issues)
        native_ids_supported(check, record, self.region, frozenset(), self.region_label)
        view = view_methodology(
            record, check, region_label=self.region_label, id_parser=check_methodology_no
        )
        if view is None:
            return None
        out: dict[str, Any] = {
            "record_type": "methodology",
            "methodology_no": view.methodology_id,
            "version": version_to_dotted(view.version, min_parts=2),
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
        return dump_json(out)

    def _render_project(self, record: records_pb2.Project, issues: Issues) -> bytes | None:
        check = CommonCheck(issues)
        native_ids_supported(check, record, self.region, frozenset(), self.region_label)
        view = view_project(
            record,
            check,
            region=self.region,
            region_label=self.region_label,
            methodology_id_parser=check_methodology_no,
        )
        version = check.version("methodology.version", record.methodology.version)
        if view is None or version is None:
            return None
        out: dict[str, Any] = {
            "record_type": "project",
            "project_no": view.project_id,
            "methodology_no": view.methodology_id,
            "methodology_version": version_to_dotted(version, min_parts=2),
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
        return dump_json(out)

    def _render_issuance(self, record: records_pb2.Issuance, issues: Issues) -> bytes | None:
        check = CommonCheck(issues)
        native_ids_supported(check, record, self.region, frozenset(), self.region_label)
        view = view_issuance(record, check)
        if view is None:
            return None
        try:
            start, end = gram_serials_to_native(view.serial_start, view.serial_end, GRAMS_PER_KG)
        except InexactQuantityError as exc:
            check.add("serials", f"{exc}; Shanghai serial numbers count kilograms")
            return None
        return dump_json(
            {
                "record_type": "issuance",
                "issuance_no": view.issuance_id,
                "project_no": view.project_id,
                "vintage": view.vintage,
                "monitoring_start": format_iso_date(view.monitoring_start),
                "monitoring_end": format_iso_date(view.monitoring_end),
                "reduction_tco2e": grams_to_decimal(
                    view.quantity_grams, GRAMS_PER_TONNE, min_decimals=3
                ),
                "serial_start": start,
                "serial_end": end,
            }
        )


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
