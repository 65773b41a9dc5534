"""Duplicate detection across registries: coordinates, grid cells and the three matching rules.

Pure: no database, no I/O. The gateway keeps one ``Subject`` per registration (a region's project
or an external list's project) and asks ``classify`` about each candidate the index finds.

Coordinates are compared in WGS-84. GCJ-02 (most Chinese map services) and BD-09 (Baidu) are
converted here for matching only: the record keeps what was filed. GCJ-02 has no closed-form
inverse, so ``to_wgs84`` iterates the published forward transform until it reproduces the filed
point to < 1e-7°. Like that transform, it treats points outside China as already WGS-84.

Rules (the strongest that holds wins):

- certain (``SAME_GRID_ACCOUNT``): the same grid account and (the same owner credit code, or
  sites within 1000 m) — an account number is unique only within one grid company;
- probable (``SAME_OWNER_NEARBY``): the same owner credit code, sites within 100 m and the same
  scenario category;
- possible (``NEARBY_SIMILAR``): sites within 50 m, the same category, and capacities within 5 %
  (smaller / larger ≥ 0.95, exact, both capacities given).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from adapters.quantities import CAPACITY_UNIT_WATTS, check_decimal, fraction_to_decimal
from mutual_recognition.identity import Datum

__all__ = [
    "CAPACITY_MIN_RATIO",
    "CELL_DEGREES",
    "CERTAIN_RADIUS_M",
    "EARTH_RADIUS_M",
    "POSSIBLE_RADIUS_M",
    "PROBABLE_RADIUS_M",
    "Datum",
    "Evidence",
    "ExternalListRow",
    "Match",
    "Period",
    "Rule",
    "Strength",
    "Subject",
    "capacity_in_watts",
    "case_id_of",
    "cell_of",
    "cell_of_e7",
    "cells_within",
    "classify",
    "distance_m",
    "from_wgs84_to_gcj02",
    "gcj02_to_bd09",
    "ordered",
    "overlapping",
    "overlaps",
    "render_watts",
    "to_e7",
    "to_wgs84",
]

EARTH_RADIUS_M = 6371008.8
"""Mean Earth radius (IUGG) used by the haversine distance."""
CELL_DEGREES = 0.01
"""Size of a grid cell in degrees of latitude and of longitude (about 1.1 km by 0.95 km here)."""
CERTAIN_RADIUS_M = 1000.0
PROBABLE_RADIUS_M = 100.0
POSSIBLE_RADIUS_M = 50.0
CAPACITY_MIN_RATIO = Fraction(95, 100)
"""Capacities are "within 5 %" when the smaller over the larger is at least this."""

_CELLS_PER_DEGREE = 100
_LON_CELLS = 360 * _CELLS_PER_DEGREE
_LAT_CELLS = 180 * _CELLS_PER_DEGREE
_CELL_ROW = 100_000
"""cell = lat index × _CELL_ROW + lon index (lon index < 36,000)."""
_E7 = 10_000_000
_E7_PER_CELL = _E7 // _CELLS_PER_DEGREE
_MARGIN_DEG = 1e-6
"""Widening of a search box so float rounding never drops a cell on its edge (≈ 0.1 m)."""


class Rule(enum.StrEnum):
    """The rule that matched (stored by its DuplicateRule name)."""

    SAME_GRID_ACCOUNT = "DUPLICATE_RULE_SAME_GRID_ACCOUNT"
    SAME_OWNER_NEARBY = "DUPLICATE_RULE_SAME_OWNER_NEARBY"
    NEARBY_SIMILAR = "DUPLICATE_RULE_NEARBY_SIMILAR"

    @property
    def strength(self) -> Strength:
        """How strongly this rule suggests one physical project."""
        return _STRENGTH[self]


class Strength(enum.StrEnum):
    """How strong a match is (stored by its MatchStrength name)."""

    CERTAIN = "MATCH_STRENGTH_CERTAIN"
    PROBABLE = "MATCH_STRENGTH_PROBABLE"
    POSSIBLE = "MATCH_STRENGTH_POSSIBLE"


_STRENGTH = {
    Rule.SAME_GRID_ACCOUNT: Strength.CERTAIN,
    Rule.SAME_OWNER_NEARBY: Strength.PROBABLE,
    Rule.NEARBY_SIMILAR: Strength.POSSIBLE,
}


# -- coordinates ---------------------------------------------------------------------------------

# The GCJ-02 forward transform as published (Krasovsky 1940 ellipsoid).
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
_BD_X_PI = math.pi * 3000.0 / 180.0
_INVERSE_TOLERANCE_DEG = 1e-7
_INVERSE_MAX_ROUNDS = 50


def _outside_china(lat: float, lon: float) -> bool:
    """The published transform's rough rectangle: outside it, GCJ-02 is WGS-84."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _gcj_dlat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _gcj_dlon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def from_wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """The published WGS-84 → GCJ-02 transform (identity outside China)."""
    if _outside_china(lat, lon):
        return lat, lon
    dlat = _gcj_dlat(lon - 105.0, lat - 35.0)
    dlon = _gcj_dlon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _GCJ_EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_GCJ_A * (1 - _GCJ_EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_GCJ_A / sqrt_magic * math.cos(rad) * math.pi)
    return lat + dlat, lon + dlon


def _gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """Invert the forward transform by fixed-point iteration (it is a small smooth shift)."""
    w_lat, w_lon = lat, lon
    for _ in range(_INVERSE_MAX_ROUNDS):
        g_lat, g_lon = from_wgs84_to_gcj02(w_lat, w_lon)
        e_lat, e_lon = lat - g_lat, lon - g_lon
        if abs(e_lat) < _INVERSE_TOLERANCE_DEG and abs(e_lon) < _INVERSE_TOLERANCE_DEG:
            break
        w_lat, w_lon = w_lat + e_lat, w_lon + e_lon
    return w_lat, w_lon


def _bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """The published BD-09 → GCJ-02 formula is only approximately the inverse of the forward one
    (≈ 10 cm off); a few rounds of the forward transform make it exact to < 1e-7°."""
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _BD_X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _BD_X_PI)
    g_lat, g_lon = z * math.sin(theta), z * math.cos(theta)
    for _ in range(_INVERSE_MAX_ROUNDS):
        b_lat, b_lon = gcj02_to_bd09(g_lat, g_lon)
        e_lat, e_lon = lat - b_lat, lon - b_lon
        if abs(e_lat) < _INVERSE_TOLERANCE_DEG and abs(e_lon) < _INVERSE_TOLERANCE_DEG:
            break
        g_lat, g_lon = g_lat + e_lat, g_lon + e_lon
    return g_lat, g_lon


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """The published GCJ-02 → BD-09 transform (for tests and tools)."""
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _BD_X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _BD_X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def to_wgs84(lat: float, lon: float, datum: str) -> tuple[float, float]:
    """(latitude, longitude) in WGS-84 of a point given in ``datum`` (``WGS84``, ``GCJ02``,
    ``BD09``; empty reads WGS-84). Raises ValueError for another datum."""
    match Datum(datum or Datum.WGS84):
        case Datum.WGS84:
            return lat, lon
        case Datum.GCJ02:
            return _gcj02_to_wgs84(lat, lon)
        case Datum.BD09:
            return _gcj02_to_wgs84(*_bd09_to_gcj02(lat, lon))


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres between two WGS-84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def to_e7(degrees: float) -> int:
    """Degrees × 10⁷, rounded: how a WGS-84 coordinate is stored (≈ 1 cm)."""
    return round(degrees * _E7)


def cell_of_e7(lat_e7: int, lon_e7: int) -> int:
    """Grid cell of a stored point, in exact integer arithmetic (see ``cell_of``)."""
    lat_i = min((lat_e7 + 90 * _E7) // _E7_PER_CELL, _LAT_CELLS - 1)
    lon_i = ((lon_e7 + 180 * _E7) // _E7_PER_CELL) % _LON_CELLS
    return lat_i * _CELL_ROW + lon_i


def cell_of(lat: float, lon: float) -> int:
    """Grid cell of a WGS-84 point: 0.01° cells, lat index ⌊(lat+90)·100⌋, lon index
    ⌊(lon+180)·100⌋ (mod 36,000, so ±180° share a column), cell = lat index · 100,000 + lon
    index. Computed on the point rounded to 10⁻⁷° as it is stored."""
    return cell_of_e7(to_e7(lat), to_e7(lon))


def _lat_index(lat: float) -> int:
    return min(max(math.floor((lat + 90.0) * _CELLS_PER_DEGREE), 0), _LAT_CELLS - 1)


def cells_within(lat: float, lon: float, radius_m: float) -> list[int]:
    """Every cell that a point within ``radius_m`` of (lat, lon) can lie in: the cells of the
    circle's bounding box (its longitude half-width from the latitude, exact on the sphere),
    widened by ≈ 0.1 m against rounding. Sorted; 4 to 12 cells for 1 km in the delta."""
    delta = radius_m / EARTH_RADIUS_M
    dlat = math.degrees(delta) + _MARGIN_DEG
    lat_lo, lat_hi = _lat_index(lat - dlat), _lat_index(lat + dlat)
    cos_lat = math.cos(math.radians(lat))
    if math.sin(delta) >= cos_lat or lat + dlat >= 90.0 or lat - dlat <= -90.0:
        lon_columns: Iterable[int] = range(_LON_CELLS)  # a pole is within reach: every column
    else:
        dlon = math.degrees(math.asin(math.sin(delta) / cos_lat)) + _MARGIN_DEG
        lo = math.floor((lon - dlon + 180.0) * _CELLS_PER_DEGREE)
        hi = math.floor((lon + dlon + 180.0) * _CELLS_PER_DEGREE)
        lon_columns = {i % _LON_CELLS for i in range(lo, hi + 1)}
    columns = sorted(lon_columns)
    return [r * _CELL_ROW + c for r in range(lat_lo, lat_hi + 1) for c in columns]


# -- capacities ----------------------------------------------------------------------------------


def capacity_in_watts(value: str, unit: str) -> Fraction:
    """The exact capacity in watts of ``value`` (a plain decimal string) in W, kW or MW (or
    瓦/千瓦/兆瓦/GW). Raises ValueError for a malformed value or an unknown unit."""
    factor = CAPACITY_UNIT_WATTS.get(unit)
    if factor is None:
        raise ValueError(f"unknown capacity unit {unit!r} (known: W, kW, MW)")
    return Fraction(check_decimal(value)) * factor


# -- subjects and matching ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subject:
    """A registration as matching sees it: identity keys normalised (WGS-84 × 10⁷, watts)."""

    subject: str
    """``regions/{region}/projects/{id}`` or ``schemes/{scheme}/projects/{id}``."""
    region: str | None
    """The registering region; None for an external project."""
    credit_code: str | None
    grid_account: str | None
    lat_e7: int | None
    lon_e7: int | None
    category: str
    """ScenarioCategory name."""
    capacity_w: Fraction | None
    registered_time: dt.datetime

    @property
    def external(self) -> bool:
        """Whether the subject comes from an external list (not a region's registry)."""
        return self.region is None


@dataclass(frozen=True, slots=True)
class Evidence:
    """What two subjects have in common (MatchEvidence)."""

    same_grid_account: bool
    same_owner_credit_code: bool
    distance_metres: str
    """One decimal, e.g. ``"37.4"``; empty when a side has no site."""
    same_category: bool
    capacity_ratio: str
    """Smaller over larger, four decimals truncated (so ``"0.9500"`` means ≥ 0.95); empty when a
    side has no capacity."""

    def to_json(self) -> str:
        """The stored form (duplicate_cases.evidence)."""
        return json.dumps(
            {
                "same_grid_account": self.same_grid_account,
                "same_owner_credit_code": self.same_owner_credit_code,
                "distance_metres": self.distance_metres,
                "same_category": self.same_category,
                "capacity_ratio": self.capacity_ratio,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Evidence:
        """Read the stored form back."""
        d = json.loads(text)
        return cls(
            same_grid_account=bool(d["same_grid_account"]),
            same_owner_credit_code=bool(d["same_owner_credit_code"]),
            distance_metres=str(d["distance_metres"]),
            same_category=bool(d["same_category"]),
            capacity_ratio=str(d["capacity_ratio"]),
        )


@dataclass(frozen=True, slots=True)
class Match:
    """The strongest rule two subjects meet, with the evidence."""

    rule: Rule
    evidence: Evidence

    @property
    def strength(self) -> Strength:
        """The rule's strength."""
        return self.rule.strength


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and a == b


def _ratio(a: Fraction | None, b: Fraction | None) -> Fraction | None:
    if a is None or b is None:
        return None
    small, large = sorted((a, b))
    return Fraction(1) if large == 0 else small / large


def _four_decimals(ratio: Fraction) -> str:
    """Truncated, never rounded up: the text is ≥ 0.9500 exactly when the ratio is ≥ 0.95."""
    scaled = math.floor(ratio * 10_000)
    return f"{scaled // 10_000}.{scaled % 10_000:04d}"


def classify(a: Subject, b: Subject) -> Match | None:
    """The strongest rule ``a`` and ``b`` meet, or None. Never matches a subject with itself (a
    re-publication is the same subject), nor two external subjects."""
    if a.subject == b.subject or (a.external and b.external):
        return None
    same_account = _same(a.grid_account, b.grid_account)
    same_owner = _same(a.credit_code, b.credit_code)
    same_category = bool(a.category) and a.category == b.category
    distance: float | None = None
    if None not in (a.lat_e7, a.lon_e7, b.lat_e7, b.lon_e7):
        assert a.lat_e7 is not None and a.lon_e7 is not None  # for mypy: checked just above
        assert b.lat_e7 is not None and b.lon_e7 is not None
        distance = distance_m(a.lat_e7 / _E7, a.lon_e7 / _E7, b.lat_e7 / _E7, b.lon_e7 / _E7)
    ratio = _ratio(a.capacity_w, b.capacity_w)

    def within(radius: float) -> bool:
        return distance is not None and distance <= radius

    rule: Rule | None = None
    if same_account and (same_owner or within(CERTAIN_RADIUS_M)):
        rule = Rule.SAME_GRID_ACCOUNT
    elif same_owner and within(PROBABLE_RADIUS_M) and same_category:
        rule = Rule.SAME_OWNER_NEARBY
    elif (
        within(POSSIBLE_RADIUS_M)
        and same_category
        and ratio is not None
        and ratio >= CAPACITY_MIN_RATIO
    ):
        rule = Rule.NEARBY_SIMILAR
    if rule is None:
        return None
    return Match(
        rule,
        Evidence(
            same_grid_account=same_account,
            same_owner_credit_code=same_owner,
            distance_metres="" if distance is None else f"{distance:.1f}",
            same_category=same_category,
            capacity_ratio="" if ratio is None else _four_decimals(ratio),
        ),
    )


def ordered(a: Subject, b: Subject) -> tuple[Subject, Subject]:
    """(first, second): the earlier registration first (by subject name on a tie)."""
    return (a, b) if (a.registered_time, a.subject) <= (b.registered_time, b.subject) else (b, a)


def case_id_of(first: str, second: str) -> str:
    """``dc-`` + 12 hex of sha256(``first|second``): one case per ordered pair of subjects."""
    return "dc-" + hashlib.sha256(f"{first}|{second}".encode()).hexdigest()[:12]


# -- periods -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """An inclusive date range; ``start``/``end`` None is unbounded on that side."""

    start: dt.date | None
    end: dt.date | None


def overlaps(p: Period, q: Period) -> bool:
    """Whether two inclusive periods share at least one day."""
    return (p.end is None or q.start is None or q.start <= p.end) and (
        q.end is None or p.start is None or p.start <= q.end
    )


def overlapping(own: Sequence[tuple[str, Period]], other: Sequence[Period]) -> list[str]:
    """Names of the ``own`` issuances (name, monitoring period) whose period overlaps any of the
    ``other`` side's issued periods (for an external side: its crediting period)."""
    return [name for name, period in own if any(overlaps(period, q) for q in other)]


# -- external lists -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExternalListRow:
    """One row of an external list (CCER, an ETS) as parsed from CSV or XLSX.

    Strings are as listed, stripped; an empty string means not given (as in ProjectIdentity).
    """

    scheme: str
    """Scheme code, upper case: ``CCER``, ``CEA``, ``SHEA``..."""
    scheme_project_id: str
    title: str
    owner_credit_code: str
    latitude: str
    """Decimal degrees as listed (≤ 6 decimals); empty without a site."""
    longitude: str
    datum: str
    """``WGS84``, ``GCJ02`` or ``BD09``; empty reads WGS-84."""
    grid_account: str
    category: str
    """ScenarioCategory name, e.g. ``SCENARIO_CATEGORY_DISTRIBUTED_PV``."""
    capacity_value: str
    """Plain decimal string; empty when not listed."""
    capacity_unit: str
    """``W``, ``kW`` or ``MW``; empty when no capacity is listed."""
    registration_date: dt.date
    credit_start: dt.date | None
    credit_end: dt.date | None

    @property
    def subject(self) -> str:
        """``schemes/{scheme}/projects/{scheme_project_id}``."""
        return f"schemes/{self.scheme}/projects/{self.scheme_project_id}"

    def capacity_w(self) -> Fraction | None:
        """The listed capacity in watts, exact; None when not listed."""
        if not self.capacity_value:
            return None
        return capacity_in_watts(self.capacity_value, self.capacity_unit)


def render_watts(watts: Fraction) -> str:
    """Watts as an exact decimal string (how identity_subjects.capacity_w stores them). Watts
    made from a decimal string always terminate; anything else raises ValueError."""
    text = fraction_to_decimal(watts)
    if text is None:
        raise ValueError(f"{watts} W has no exact decimal form")
    return text
