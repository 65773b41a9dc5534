"""Zhejiang's JSON envelope (``docs/regions.md``): code tables, field sets, ids and date-times.

``adapters.r330000_zhejiang`` maps the records to the common schema and back with these.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime, time

from yrd.interop.v1 import records_pb2

from adapters._common import (
    JsonFields,
    check_identifier,
    check_zhejiang_id,
    format_datetime,
    inverse,
    parse_datetime,
)
from adapters._foreign import ISSUANCE_EXTENSION, METHODOLOGY_EXTENSION, PROJECT_EXTENSION
from adapters._identity import ZHEJIANG as IDENTITY
from adapters.quantities import GRAMS_PER_KG, grams_parser

_SC = records_pb2.ScenarioCategory
_MS = records_pb2.MethodologyStatus
_PS = records_pb2.ProjectStatus

SCENES = {
    "PV": _SC.SCENARIO_CATEGORY_DISTRIBUTED_PV,
    "EV_CHARGING": _SC.SCENARIO_CATEGORY_EV_CHARGING,
    "TRANSIT": _SC.SCENARIO_CATEGORY_PUBLIC_TRANSIT,
    "CYCLING": _SC.SCENARIO_CATEGORY_CYCLING_WALKING,
    "WASTE": _SC.SCENARIO_CATEGORY_WASTE_SORTING,
    "OTHER": _SC.SCENARIO_CATEGORY_OTHER,
}
METHODOLOGY_STATUSES = {
    "01": _MS.METHODOLOGY_STATUS_FILED,
    "02": _MS.METHODOLOGY_STATUS_EFFECTIVE,
    "09": _MS.METHODOLOGY_STATUS_WITHDRAWN,
}
PROJECT_STATUSES = {
    "02": _PS.PROJECT_STATUS_REGISTERED,
    "05": _PS.PROJECT_STATUS_SUSPENDED,
    "09": _PS.PROJECT_STATUS_CLOSED,
}
SCENE_CODES = inverse(SCENES)
METHODOLOGY_STATUS_CODES = inverse(METHODOLOGY_STATUSES)
PROJECT_STATUS_CODES = inverse(PROJECT_STATUSES)

START_OF_DAY = time(0, 0, 0)
END_OF_DAY = time(23, 59, 59)

ENVELOPE_KEYS = frozenset({"successful", "msg", "dataType", "dataInfo"})
METHODOLOGY_KEYS = frozenset(
    {
        "methodologyId",
        "methodologyNum",
        "methodologyVersion",
        "methodologyName",
        "sceneType",
        "params",
        "validFrom",
        "validTo",
        "statusCode",
        "originRegion",
        "extInfo",
    }
)
PARAM_KEYS = frozenset(
    {"paramCode", "paramName", "paramValue", "paramUnit", "dataSource", "dataYear"}
)
PROJECT_KEYS = frozenset(
    {
        "projectInfoId",
        "projectNum",
        "methodologyId",
        "projectName",
        "orgCustomerName",
        "areaCode",
        "installedCapacityKw",
        "gridDate",
        "creditStart",
        "creditEnd",
        "statusCode",
        "originRegion",
        "methodologyVersion",
        "extInfo",
        *IDENTITY.names,
    }
)
ISSUANCE_KEYS = frozenset(
    {
        "certificationId",
        "projectInfoId",
        "vintageYear",
        "periodStart",
        "periodEnd",
        "certifiedKg",
        "serialFrom",
        "serialTo",
        "originRegion",
        "serialUnit",
        "extInfo",
    }
)
EXTENDED = {
    records_pb2.Methodology: METHODOLOGY_EXTENSION,
    records_pb2.Project: PROJECT_EXTENSION,
    records_pb2.Issuance: ISSUANCE_EXTENSION,
}
NATIVE_IDS = {
    "methodology": frozenset({"methodologyNum", "validFrom", "validTo"}),
    "project": frozenset({"projectNum", "gridDate", "creditStart", "creditEnd"}),
    "issuance": frozenset({"periodStart", "periodEnd"}),
}


def id_parser(own: bool) -> Callable[[str], str]:
    """Zhejiang's own ids are 19 digits; a foreign record keeps its origin's ids verbatim."""
    return check_zhejiang_id if own else check_identifier


#: ``certifiedKg`` in whole grams (``adapters.quantities.decimal_to_grams`` in kg).
kg_to_grams = grams_parser(GRAMS_PER_KG, "kg")


@functools.lru_cache(maxsize=4096)  # as ``parse_datetime``: the same instants recur
def _instant(text: str) -> tuple[datetime, date, time]:
    instant = parse_datetime(text)
    return instant, instant.date(), instant.time()


class DateTimes:
    """Reads Beijing date-times as civil dates, keeping unusual times for ``native_ids``."""

    def __init__(self, f: JsonFields, *, keep: bool = True) -> None:
        self.f = f
        self.keep = keep
        """Whether unusual times are kept (own records; a foreign record's are its days)."""
        self.native: dict[str, str] = {}
        self.instants: dict[str, datetime] = {}

    def read(self, key: str, usual: time, *, required: bool) -> date | None:
        parts = self.f.parsed(key, _instant, required=required)
        if parts is None:
            return None
        instant, day, at = parts
        self.instants[key] = instant
        if self.keep and at != usual:
            self.native[key] = format_datetime(instant)
        return day

    def order(self, start_key: str, end_key: str, *, strict: bool) -> None:
        start, end = self.instants.get(start_key), self.instants.get(end_key)
        if start is None or end is None:
            return
        if strict:
            self.f.check_order(start_key, start.date(), end_key, end.date(), strict=True)
        elif end < start:
            self.f.report(end_key, f"must not be before {format_datetime(start)} ({start_key})")
