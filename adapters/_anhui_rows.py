"""Anhui CSV rows of common records (common → native), checked as the format requires."""

from __future__ import annotations

from collections.abc import Sequence

from yrd.interop.v1 import records_pb2

from adapters._anhui_csv import CATEGORY_NAMES, METHODOLOGY_STATUS_NAMES, PROJECT_STATUS_NAMES
from adapters._common import CommonCheck, Issues, format_slash_date
from adapters._foreign import METHODOLOGY_EXTENSION, foreign_serial_unit
from adapters._identity import ANHUI as IDENTITY
from adapters._identity import identity_items
from adapters._views import (
    MethodologyView,
    ParamView,
    native_ids_supported,
    unsupported,
    view_issuance,
    view_methodology,
    view_project,
)
from adapters.quantities import (
    GRAMS_PER_KG,
    GRAMS_PER_TONNE,
    InexactQuantityError,
    capacity_in_unit,
    gram_serials_to_native,
    grams_to_decimal,
)

__all__ = ["issuance_row", "methodology_rows", "project_row"]

REGION = "340000"
LABEL = "Anhui"


def methodology_rows(record: records_pb2.Methodology, issues: Issues) -> list[list[str]] | None:
    check = CommonCheck(issues)
    own = record.region == REGION
    native_ids_supported(check, record, REGION, frozenset(), LABEL)
    if own:
        unsupported(check, "formula", bool(record.formula), LABEL)
        unsupported(check, "filing_document", bool(record.filing_document), LABEL)
        unsupported(
            check,
            "eligibility",
            record.HasField("eligibility") and bool(record.eligibility.ListFields()),
            LABEL,
        )
    view = view_methodology(
        record,
        check,
        region_label=LABEL,
        extended=frozenset() if own else METHODOLOGY_EXTENSION,
    )
    if view is None or issues:
        return None
    params: Sequence[ParamView | None] = view.parameters or [None]
    return [methodology_row_cells(view, param) for param in params]


def methodology_row_cells(view: MethodologyView, param: ParamView | None) -> list[str]:
    end = view.effective_end
    return [
        "方法学",
        view.methodology_id,
        view.version,
        view.title,
        CATEGORY_NAMES[view.category],
        param.code if param else "",
        (param.name or "") if param else "",
        param.value if param else "",
        (param.unit or "") if param else "",
        (param.source or "") if param else "",
        f"{param.year:04d}" if param and param.year is not None else "",
        format_slash_date(view.effective_start),
        format_slash_date(end) if end is not None else "",
        METHODOLOGY_STATUS_NAMES[view.status],
    ]


def project_row(
    record: records_pb2.Project, issues: Issues
) -> tuple[list[str], dict[str, str]] | None:
    """The standard cells of ``record``'s row and its identity cells (by column)."""
    check = CommonCheck(issues)
    own = record.region == REGION
    native_ids_supported(check, record, REGION, frozenset(), LABEL)
    view = view_project(record, check, region=REGION, region_label=LABEL, foreign=not own)
    version: str | None = ""
    if own or record.methodology.version:
        version = check.version("methodology.version", record.methodology.version)
    identity = identity_items(record, check, IDENTITY)
    if view is None or version is None or identity is None:
        return None
    return [
        "项目",
        view.project_id,
        view.methodology_id,
        version,
        view.title,
        view.owner,
        view.county_code,
        capacity_in_unit(view.capacity, "kW") if view.capacity is not None else "",
        format_slash_date(view.start_date) if view.start_date is not None else "",
        format_slash_date(view.crediting_start),
        format_slash_date(view.crediting_end),
        PROJECT_STATUS_NAMES[view.status],
    ], dict(identity)


def issuance_row(record: records_pb2.Issuance, issues: Issues) -> list[str] | None:
    check = CommonCheck(issues)
    native_ids_supported(check, record, REGION, frozenset(), LABEL)
    view = view_issuance(record, check)
    if view is None:
        return None
    unit = (
        GRAMS_PER_KG
        if record.region == REGION
        else foreign_serial_unit(record.region, view.serial_start, view.serial_end)
    )
    try:
        first, last = gram_serials_to_native(view.serial_start, view.serial_end, unit)
    except InexactQuantityError as exc:
        check.add("serials", f"{exc}; Anhui serial numbers count kilograms")
        return None
    return [
        "签发",
        view.issuance_id,
        view.project_id,
        f"{view.vintage:04d}",
        format_slash_date(view.monitoring_start),
        format_slash_date(view.monitoring_end),
        grams_to_decimal(view.quantity_grams, GRAMS_PER_TONNE),
        "吨",
        str(first),
        str(last),
    ]
