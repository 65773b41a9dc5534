"""Helpers for the checks the gateway makes across records at publish time.

The adapters validate what a document shows by itself. These checks need other stored records and
belong to the gateway's publish step; the helpers give exact answers on common records:

- a project names a known methodology of its own region:
  ``refers_to(adapter, project.methodology, methodology)`` (Zhejiang projects name a methodology by
  its 19-digit id without a version, see ``RegionAdapter.methodology_ref``);
- a PV project states its capacity (``capacity_required``) and stays within the methodology's
  maximum: ``adapters.quantities.capacity_within`` (exact, across W/kW/MW);
- the crediting period ends within the methodology's maximum lifetime from grid connection:
  ``lifetime_within``;
- an issuance's monitoring period lies inside the project's crediting period: ``period_within``;
- serial blocks never overlap: ``serials_overlap``.
"""

from __future__ import annotations

from datetime import date

from yrd.interop.v1 import records_pb2

from adapters._common import from_calendar
from adapters.base import RegionAdapter
from adapters.quantities import capacity_watts, capacity_within

__all__ = [
    "as_date",
    "capacity_required",
    "capacity_watts",
    "capacity_within",
    "lifetime_within",
    "period_within",
    "refers_to",
    "serial_size",
    "serials_overlap",
]


def as_date(value: records_pb2.CalendarDate) -> date:
    """The civil date; ``ValueError`` if it is not a real date."""
    return from_calendar(value)


def period_within(inner: records_pb2.DateRange, outer: records_pb2.DateRange) -> bool:
    """True when ``inner`` lies inside ``outer`` (both inclusive; an absent end is open-ended)."""
    if as_date(inner.start) < as_date(outer.start):
        return False
    if not outer.HasField("end"):
        return True
    if not inner.HasField("end"):
        return False
    return as_date(inner.end) <= as_date(outer.end)


def serial_size(serials: records_pb2.SerialRange) -> int:
    """Number of grams (serials) in an inclusive range."""
    return serials.end - serials.start + 1


def serials_overlap(a: records_pb2.SerialRange, b: records_pb2.SerialRange) -> bool:
    """True when two inclusive serial ranges share at least one serial."""
    return a.start <= b.end and b.start <= a.end


def refers_to(
    adapter: RegionAdapter,
    ref: records_pb2.MethodologyRef,
    methodology: records_pb2.Methodology,
) -> bool:
    """True when a project's methodology reference names ``methodology`` (same region)."""
    return adapter.methodology_ref(methodology) == ref


def capacity_required(methodology: records_pb2.Methodology) -> bool:
    """Projects under a distributed-PV methodology must state their capacity."""
    return methodology.category == records_pb2.SCENARIO_CATEGORY_DISTRIBUTED_PV


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a non-leap target year
        return day.replace(year=day.year + years, day=28)


def lifetime_within(project: records_pb2.Project, rules: records_pb2.EligibilityRules) -> bool:
    """True when the crediting period ends at most ``max_lifetime_years`` after grid connection.

    Vacuously true when the methodology sets no lifetime or the project has no start date.
    """
    if rules.max_lifetime_years <= 0 or not project.HasField("start_date"):
        return True
    limit = _add_years(as_date(project.start_date), rules.max_lifetime_years)
    return as_date(project.crediting_period.end) <= limit
