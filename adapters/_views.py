"""Validated views of common records, shared by the adapters' ``from_common`` renderers.

A view holds the checked values of a record that any native format needs (identifiers, canonical
text, real dates in order, quantity = serial size, …). Checks a format adds itself (identifier
shapes, units, serial granularity, fields it has no place for) are made by the region module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from yrd.interop.v1 import records_pb2

from adapters._common import (
    CommonCheck,
    any_county,
    check_identifier,
    county_checker,
    issuance_name,
    methodology_name,
    project_name,
    split_project_name,
)
from adapters.quantities import CAPACITY_UNIT_WATTS, INT64_MAX

IdParser = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class ParamView:
    code: str
    name: str | None
    value: str
    unit: str | None
    source: str | None
    year: int | None


@dataclass(frozen=True, slots=True)
class MethodologyView:
    methodology_id: str
    version: str
    title: str
    category: records_pb2.ScenarioCategory.ValueType
    status: records_pb2.MethodologyStatus.ValueType
    formula: str | None
    filing_document: str | None
    effective_start: date
    effective_end: date | None
    parameters: tuple[ParamView, ...]
    max_capacity: records_pb2.ExactQuantity | None
    max_lifetime_years: int | None


@dataclass(frozen=True, slots=True)
class ProjectView:
    project_id: str
    methodology_id: str
    methodology_version: str
    title: str
    owner: str
    county_code: str
    capacity: records_pb2.ExactQuantity | None
    start_date: date | None
    crediting_start: date
    crediting_end: date
    status: records_pb2.ProjectStatus.ValueType


@dataclass(frozen=True, slots=True)
class IssuanceView:
    issuance_id: str
    project_id: str
    vintage: int
    monitoring_start: date
    monitoring_end: date
    quantity_grams: int
    serial_start: int
    serial_end: int


def unsupported(check: CommonCheck, field: str, present: bool, region_label: str) -> None:
    """Record that ``field`` is set but the native format has no place for it."""
    if present:
        check.add(field, f"is set but the {region_label} format has no field for it")


def native_ids_supported(
    check: CommonCheck,
    record: records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance,
    own_region: str,
    supported: frozenset[str],
    region_label: str,
) -> None:
    """Own-region records may only carry the ``native_ids`` the format has fields for."""
    if record.region != own_region:
        return
    for key in sorted(record.native_ids):
        if key not in supported:
            check.add(f"native_ids[{key!r}]", f"has no field in the {region_label} format")


def _capacity(
    check: CommonCheck, field: str, present: bool, quantity: records_pb2.ExactQuantity
) -> records_pb2.ExactQuantity | None:
    if not present:
        return None
    if quantity.unit not in CAPACITY_UNIT_WATTS:
        check.add(f"{field}.unit", f"{quantity.unit!r} is not a capacity unit (W, kW, MW)")
        return None
    if check.decimal(f"{field}.value", quantity.value, positive=True) is None:
        return None
    return quantity


def _enum_set(check: CommonCheck, field: str, value: int, names: Mapping[int, object]) -> bool:
    if value not in names or value == 0:
        check.add(field, "is not set to a known value")
        return False
    return True


def view_methodology(
    record: records_pb2.Methodology,
    check: CommonCheck,
    *,
    region_label: str,
    id_parser: IdParser = check_identifier,
    extended: frozenset[str] = frozenset(),
) -> MethodologyView | None:
    """Checks a methodology; fields in ``extended`` travel in the extension (foreign records)."""
    before = len(check.issues.items)
    methodology_id = check.identifier("methodology_id", record.methodology_id, id_parser)
    check.name("name", record.name, methodology_name(record.region, record.methodology_id))
    version = check.version("version", record.version)
    title = check.text("title", record.title, required=True)
    _enum_set(
        check, "category", record.category, records_pb2.ScenarioCategory.DESCRIPTOR.values_by_number
    )
    _enum_set(
        check, "status", record.status, records_pb2.MethodologyStatus.DESCRIPTOR.values_by_number
    )
    formula = check.text("formula", record.formula, required=False)
    filing = check.text("filing_document", record.filing_document, required=False)
    start, end = check.date_range("effective", record, end_required=False, strict=True)
    params: list[ParamView] = []
    seen: set[str] = set()
    for index, param in enumerate(record.parameters):
        field = f"parameters[{index}]"
        code = check.text(f"{field}.code", param.code, required=True)
        if code is not None:
            if code in seen:
                check.add(f"{field}.code", f"{code!r} appears more than once")
            seen.add(code)
        value = check.decimal(
            f"{field}.quantity.value", param.quantity.value, positive=False, allow_negative=True
        )
        params.append(
            ParamView(
                code=code or "",
                name=check.text(f"{field}.name", param.name, required=False),
                value=value or "",
                unit=check.text(f"{field}.quantity.unit", param.quantity.unit, required=False),
                source=check.text(f"{field}.source", param.source, required=False),
                year=check.year(f"{field}.year", param.year, required=False),
            )
        )
    max_capacity: records_pb2.ExactQuantity | None = None
    max_lifetime: int | None = None
    if record.HasField("eligibility"):
        max_capacity = _capacity(
            check,
            "eligibility.max_capacity",
            record.eligibility.HasField("max_capacity"),
            record.eligibility.max_capacity,
        )
        if record.eligibility.max_lifetime_years < 0:
            check.add("eligibility.max_lifetime_years", "cannot be negative")
        max_lifetime = record.eligibility.max_lifetime_years or None
    for name in ("crediting_period_rule", "document_sha256"):
        if name not in extended:
            unsupported(check, name, bool(getattr(record, name)), region_label)
    if len(check.issues.items) > before:
        return None
    assert methodology_id and version and title and start
    return MethodologyView(
        methodology_id=methodology_id,
        version=version,
        title=title,
        category=record.category,
        status=record.status,
        formula=formula,
        filing_document=filing,
        effective_start=start,
        effective_end=end,
        parameters=tuple(params),
        max_capacity=max_capacity,
        max_lifetime_years=max_lifetime,
    )


def view_project(
    record: records_pb2.Project,
    check: CommonCheck,
    *,
    region: str,
    region_label: str,
    id_parser: IdParser = check_identifier,
    methodology_id_parser: IdParser = check_identifier,
    foreign: bool = False,
) -> ProjectView | None:
    """Checks a project for rendering in ``region``'s format (the county must be in ``region``,
    unless the project is ``foreign``: then any county code).

    The methodology version is returned unchecked: formats differ on what they can name.
    """
    before = len(check.issues.items)
    project_id = check.identifier("project_id", record.project_id, id_parser)
    check.name("name", record.name, project_name(record.region, record.project_id))
    if record.methodology.region != record.region:
        check.add(
            "methodology.region",
            f"is {record.methodology.region!r}; a native project can only name a methodology of"
            f" its own region {record.region}",
        )
    methodology_id = check.identifier(
        "methodology.methodology_id", record.methodology.methodology_id, methodology_id_parser
    )
    title = check.text("title", record.title, required=True)
    owner = check.text("owner", record.owner, required=True)
    county: str | None = None
    if check.text("county_code", record.county_code, required=True) is not None:
        try:
            county = (any_county if foreign else county_checker(region, region_label))(
                record.county_code
            )
        except ValueError as exc:
            check.add("county_code", str(exc))
    capacity = _capacity(check, "capacity", record.HasField("capacity"), record.capacity)
    start_date = check.day(
        "start_date", record.start_date, present=record.HasField("start_date"), required=False
    )
    credit_start, credit_end = check.date_range(
        "crediting_period", record, end_required=True, strict=True
    )
    _enum_set(check, "status", record.status, records_pb2.ProjectStatus.DESCRIPTOR.values_by_number)
    if len(check.issues.items) > before:
        return None
    assert project_id and methodology_id and title and owner and county
    assert credit_start and credit_end
    return ProjectView(
        project_id=project_id,
        methodology_id=methodology_id,
        methodology_version=record.methodology.version,
        title=title,
        owner=owner,
        county_code=county,
        capacity=capacity,
        start_date=start_date,
        crediting_start=credit_start,
        crediting_end=credit_end,
        status=record.status,
    )


def view_issuance(
    record: records_pb2.Issuance,
    check: CommonCheck,
    *,
    id_parser: IdParser = check_identifier,
    project_id_parser: IdParser = check_identifier,
) -> IssuanceView | None:
    before = len(check.issues.items)
    issuance_id = check.identifier("issuance_id", record.issuance_id, id_parser)
    check.name("name", record.name, issuance_name(record.region, record.issuance_id))
    project_id: str | None = None
    parts = split_project_name(record.project)
    if parts is None:
        check.add("project", f"{record.project!r} is not a project resource name")
    elif parts[0] != record.region:
        check.add(
            "project",
            f"names a project of region {parts[0]}; a native issuance can only name a project of"
            f" the issuing region {record.region}",
        )
    else:
        project_id = check.identifier("project", parts[1], project_id_parser)
    vintage = check.year("vintage", record.vintage, required=True)
    start, end = check.date_range("monitoring_period", record, end_required=True, strict=False)
    serials = record.serials
    if not record.HasField("serials"):
        check.add("serials", "is required by the native format but not set")
    elif serials.start < 0 or serials.end < serials.start or serials.end > INT64_MAX:
        check.add("serials", f"[{serials.start}, {serials.end}] is not a valid serial range")
    elif record.quantity_grams != serials.end - serials.start + 1:
        check.add(
            "quantity_grams",
            f"{record.quantity_grams} g does not equal the size of the serial range"
            f" [{serials.start}, {serials.end}] ({serials.end - serials.start + 1} g)",
        )
    if len(check.issues.items) > before:
        return None
    assert issuance_id and project_id and vintage and start and end
    return IssuanceView(
        issuance_id=issuance_id,
        project_id=project_id,
        vintage=vintage,
        monitoring_start=start,
        monitoring_end=end,
        quantity_grams=record.quantity_grams,
        serial_start=serials.start,
        serial_end=serials.end,
    )
