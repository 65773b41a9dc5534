"""Common records built from validated native values (the last step of every ``to_common``).

The records are filled directly: scalars through the constructor, the region and the dates merged
from their encoding (cached: documents repeat the same few periods), no sub-message built only to
be copied.
"""

from __future__ import annotations

import functools
from collections.abc import MutableMapping
from datetime import date
from typing import NamedTuple

from yrd.interop.v1 import records_pb2

from adapters._text import issuance_name, methodology_name, project_name

__all__ = [
    "EligibilityValues",
    "IdentityValues",
    "ParameterValues",
    "build_issuance",
    "build_methodology",
    "build_project",
    "set_date",
    "set_date_range",
]


class ParameterValues(NamedTuple):
    """A methodology parameter's validated values (its quantity exact as written)."""

    code: str
    name: str
    value: str
    unit: str
    source: str
    year: int


class EligibilityValues(NamedTuple):
    """A methodology's validated eligibility rules: the maximum capacity as an exact (value, unit),
    if any, and the maximum lifetime in years (0: none)."""

    max_capacity: tuple[str, str] | None
    max_lifetime_years: int


class IdentityValues(NamedTuple):
    """A project's validated identity keys ("" where not given; a site has both coordinates)."""

    owner_credit_code: str
    latitude: str
    longitude: str
    datum: records_pb2.CoordinateDatum.ValueType
    grid_account: str


@functools.lru_cache(maxsize=4096)
def _date_bytes(value: date) -> bytes:
    return records_pb2.CalendarDate(
        year=value.year, month=value.month, day=value.day
    ).SerializeToString()


@functools.lru_cache(maxsize=4096)
def _date_range_bytes(start: date, end: date | None) -> bytes:
    message = records_pb2.DateRange()
    message.start.MergeFromString(_date_bytes(start))
    if end is not None:
        message.end.MergeFromString(_date_bytes(end))
    return message.SerializeToString()


# The region and the dates of a record, encoded once for each combination (documents repeat the
# same few periods) and merged into the record being built in one step.
@functools.lru_cache(maxsize=4096)
def _methodology_part(region: str, start: date, end: date | None) -> bytes:
    part = records_pb2.Methodology(region=region)
    part.effective.MergeFromString(_date_range_bytes(start, end))
    return part.SerializeToString()


@functools.lru_cache(maxsize=4096)
def _project_part(region: str, start: date, end: date, grid: date | None) -> bytes:
    part = records_pb2.Project(region=region)
    part.methodology.region = region
    part.crediting_period.MergeFromString(_date_range_bytes(start, end))
    if grid is not None:
        part.start_date.MergeFromString(_date_bytes(grid))
    return part.SerializeToString()


@functools.lru_cache(maxsize=4096)
def _issuance_part(region: str, start: date, end: date) -> bytes:
    part = records_pb2.Issuance(region=region)
    part.monitoring_period.MergeFromString(_date_range_bytes(start, end))
    return part.SerializeToString()


def _set_native_ids(target: MutableMapping[str, str], values: dict[str, str]) -> None:
    # Item by item: the map's ``update`` is the generic Python one (several times slower).
    for key, value in values.items():
        target[key] = value


def set_date(target: records_pb2.CalendarDate, value: date) -> None:
    """Fill the unset date field ``target`` of a record being built with ``value``."""
    target.MergeFromString(_date_bytes(value))


def set_date_range(target: records_pb2.DateRange, start: date, end: date | None) -> None:
    """Fill the unset range field ``target`` of a record being built with [start, end]."""
    target.MergeFromString(_date_range_bytes(start, end))


def build_methodology(
    region: str,
    methodology_id: str,
    *,
    version: str,
    title: str,
    category: records_pb2.ScenarioCategory.ValueType,
    status: records_pb2.MethodologyStatus.ValueType,
    effective: tuple[date, date | None],
    parameters: list[ParameterValues],
    formula: str = "",
    filing_document: str = "",
    eligibility: records_pb2.EligibilityRules | EligibilityValues | None = None,
    native_ids: dict[str, str] | None = None,
) -> records_pb2.Methodology:
    """A common Methodology from validated native values (``eligibility`` given as values is
    filled in place; at least one of its rules must be set)."""
    methodology = records_pb2.Methodology(
        name=methodology_name(region, methodology_id),
        methodology_id=methodology_id,
        version=version,
        title=title,
        category=category,
        formula=formula,
        status=status,
        filing_document=filing_document,
    )
    add = methodology.parameters.add
    for parameter in parameters:
        item = add(
            code=parameter.code, name=parameter.name, source=parameter.source, year=parameter.year
        )
        quantity = item.quantity
        quantity.value, quantity.unit = parameter.value, parameter.unit
    if isinstance(eligibility, EligibilityValues):
        rules = methodology.eligibility
        capacity, rules.max_lifetime_years = eligibility
        if capacity is not None:
            quantity = rules.max_capacity
            quantity.value, quantity.unit = capacity
    elif eligibility is not None:
        methodology.eligibility.CopyFrom(eligibility)
    if native_ids:
        _set_native_ids(methodology.native_ids, native_ids)
    methodology.MergeFromString(_methodology_part(region, *effective))
    return methodology


def build_project(
    region: str,
    project_id: str,
    methodology: tuple[str, str],
    *,
    title: str,
    owner: str,
    county: str,
    crediting: tuple[date, date],
    status: records_pb2.ProjectStatus.ValueType,
    capacity: tuple[str, str] | None = None,
    grid_date: date | None = None,
    native_ids: dict[str, str] | None = None,
    identity: IdentityValues | None = None,
) -> records_pb2.Project:
    """A common Project from validated native values; ``methodology`` is (id, version) as the
    region's projects name it, ``capacity`` an exact (value, unit) when given, ``identity`` the
    identity keys when the record has any."""
    project = records_pb2.Project(
        name=project_name(region, project_id),
        project_id=project_id,
        title=title,
        owner=owner,
        county_code=county,
        status=status,
    )
    project.MergeFromString(_project_part(region, *crediting, grid_date))
    ref = project.methodology
    ref.methodology_id, ref.version = methodology
    if native_ids:  # an empty map passed to the constructor costs as much as the record
        _set_native_ids(project.native_ids, native_ids)
    if capacity is not None:
        quantity = project.capacity
        quantity.value, quantity.unit = capacity
    if identity is not None:
        keys = project.identity
        keys.owner_credit_code, keys.grid_account = (
            identity.owner_credit_code,
            identity.grid_account,
        )
        if identity.latitude:
            site = keys.site
            site.latitude, site.longitude, site.datum = identity[1:4]
    return project


def build_issuance(
    region: str,
    issuance_id: str,
    *,
    project_id: str,
    vintage: int,
    monitoring: tuple[date, date],
    quantity_grams: int,
    serials: tuple[int, int],
    native_ids: dict[str, str] | None = None,
) -> records_pb2.Issuance:
    """A common Issuance from validated native values; ``serials`` in grams."""
    issuance = records_pb2.Issuance(
        name=issuance_name(region, issuance_id),
        issuance_id=issuance_id,
        project=project_name(region, project_id),
        vintage=vintage,
        quantity_grams=quantity_grams,
    )
    issuance.MergeFromString(_issuance_part(region, *monitoring))
    span = issuance.serials
    span.start, span.end = serials
    if native_ids:
        _set_native_ids(issuance.native_ids, native_ids)
    return issuance
