"""What the console shows of a duplicate case: both registrations side by side (identity keys as
filed, the sites in WGS-84 as matched), the evidence, a small map, the issuances held, the
decisions with their signatures checked, and the findings.

The map is drawn by the page itself (inline SVG, no tiles, no script): both sites plotted on a
local plane around their midpoint — east–west metres are longitude differences scaled by the
cosine of the latitude, north–south metres latitude differences, which over a few kilometres
errs by far less than a pixel — with a scale bar of the rule thresholds, 50, 100 or 1000 m.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from google.protobuf import timestamp_pb2
from google.protobuf.message import DecodeError
from yrd.interop.v1 import (
    duplicate_service_pb2,
    duplicates_pb2,
    key_service_pb2,
    records_pb2,
)

from gateway.client import admin_signed_payload

EARTH_RADIUS_M = 6371008.8
"""The mean Earth radius the gateway's distances use (mutual_recognition.duplicates)."""
SCALES_M = (50, 100, 1000)
"""The scale bars: the three rules' distance thresholds."""
MAP_WIDTH, MAP_HEIGHT = 480, 300
"""The map's size in SVG user units (it scales with the page)."""
_MARGIN = 40
"""Room kept free around the plotted points and under the scale bar."""


def _time(ts: timestamp_pb2.Timestamp) -> dt.datetime | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=dt.UTC)


def _key(enum: object, value: int, prefix: str) -> str:
    """An enum value as the i18n key suffix: ``MATCH_STRENGTH_CERTAIN`` → ``certain``."""
    return str(enum.Name(value)).removeprefix(prefix).lower()  # type: ignore[attr-defined]


def _date(d: records_pb2.CalendarDate) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}" if d.year else ""


def _period(p: records_pb2.DateRange) -> tuple[str, str]:
    return (_date(p.start), _date(p.end))


@dataclass(frozen=True)
class Site:
    """A site as filed (its datum named) or in WGS-84."""

    latitude: str
    longitude: str
    datum: str
    """``wgs84``, ``gcj02`` or ``bd09``."""


@dataclass(frozen=True)
class SideView:
    """One registration of the case."""

    subject: str
    region: str
    """Empty for a project of an external list."""
    title: str
    owner: str
    credit_code: str
    grid_account: str
    site_filed: Site | None
    site_wgs84: Site | None
    category: str
    """The i18n key suffix of its scenario category."""
    capacity: str
    registered: dt.datetime | None
    crediting: tuple[str, str]


@dataclass(frozen=True)
class HeldView:
    """An issuance the case holds or held."""

    issuance: str
    period: tuple[str, str]
    grams: int
    outcome: str
    """held, released or cancelled."""


@dataclass(frozen=True)
class CaseDecisionView:
    """One administrator's decision and whether its signed envelope checks out."""

    region: str
    admin: str
    resolution: str
    """distinct or duplicate."""
    standing: str
    comment: str
    when: dt.datetime | None
    key_id: str
    signature_ok: bool


@dataclass(frozen=True)
class FindingView:
    """Units of a cancelled issuance that had moved or been retired."""

    issuance: str
    serials: tuple[int, int]
    holder_region: str
    state: str
    grams: int


@dataclass(frozen=True)
class MapPoint:
    x: float
    y: float


@dataclass(frozen=True)
class MapView:
    """The inline map: both sites in a local frame (SVG user units, y down) and a scale bar."""

    width: int
    height: int
    first: MapPoint
    second: MapPoint
    scale_m: int
    scale_px: float
    rings: tuple[tuple[int, float], ...]
    """(threshold in metres, its radius in SVG units) around the first site, those that fit."""


@dataclass(frozen=True)
class QuorumView:
    """A deciding region's decisions so far and the quorum it needs."""

    region: str
    decided: int
    required: int


@dataclass(frozen=True)
class CaseView:
    """What the pages show of one duplicate case."""

    name: str
    id: str
    state: str
    """open, distinct or duplicate."""
    strength: str
    rule: str
    first: SideView
    second: SideView
    same_grid_account: bool
    same_owner_credit_code: bool
    same_category: bool
    distance_m: str
    capacity_ratio: str
    map: MapView | None
    issuances: tuple[HeldView, ...]
    decisions: tuple[CaseDecisionView, ...]
    findings: tuple[FindingView, ...]
    deciding_regions: tuple[str, ...]
    quorums: tuple[QuorumView, ...]
    resolution: str
    standing: str
    open_time: dt.datetime | None
    resolve_time: dt.datetime | None
    decided_by_me: str
    """The resolution this console's administrator gave, "" when none."""

    @property
    def held_grams(self) -> int:
        return sum(i.grams for i in self.issuances if i.outcome == "held")


def _site(site: records_pb2.SiteLocation) -> Site | None:
    if not (site.latitude and site.longitude):
        return None
    datum = _key(records_pb2.CoordinateDatum, site.datum, "COORDINATE_DATUM_")
    return Site(site.latitude, site.longitude, "wgs84" if datum == "unspecified" else datum)


def _side(side: duplicates_pb2.CaseSide) -> SideView:
    capacity = f"{side.capacity.value} {side.capacity.unit}" if side.capacity.value else ""
    return SideView(
        subject=side.subject,
        region=side.region,
        title=side.title,
        owner=side.owner,
        credit_code=side.identity.owner_credit_code,
        grid_account=side.identity.grid_account,
        site_filed=_site(side.identity.site) if side.identity.HasField("site") else None,
        site_wgs84=_site(side.site_wgs84) if side.HasField("site_wgs84") else None,
        category=_key(records_pb2.ScenarioCategory, side.category, "SCENARIO_CATEGORY_"),
        capacity=capacity,
        registered=_time(side.registered_time),
        crediting=_period(side.crediting_period),
    )


def _degrees(text: str) -> float | None:
    try:
        return float(Decimal(text))
    except (InvalidOperation, ValueError):
        return None


def site_map(a: Site | None, b: Site | None) -> MapView | None:
    """Both WGS-84 sites on a local plane around their midpoint, north up, with the smallest
    threshold scale bar at least as long as their distance (1000 m beyond that); None without
    both sites."""
    if a is None or b is None:
        return None
    coords = [_degrees(v) for v in (a.latitude, a.longitude, b.latitude, b.longitude)]
    if any(c is None for c in coords):
        return None
    lat1, lon1, lat2, lon2 = (float(c) for c in coords if c is not None)
    metres_per_degree = EARTH_RADIUS_M * math.pi / 180
    mid_lat = (lat1 + lat2) / 2
    east = (lon2 - lon1) * metres_per_degree * math.cos(math.radians(mid_lat))
    north = (lat2 - lat1) * metres_per_degree
    apart = math.hypot(east, north)
    scale = next((s for s in SCALES_M if apart <= s), SCALES_M[-1])
    # The frame spans the larger of twice the scale and the points' extent with room around.
    usable_w, usable_h = MAP_WIDTH - 2 * _MARGIN, MAP_HEIGHT - 3 * _MARGIN
    span_m = max(2.0 * scale, abs(east) * 1.2, abs(north) * 1.2 * usable_w / usable_h)
    per_m = usable_w / span_m  # SVG units per metre, the same on both axes
    cx, cy = MAP_WIDTH / 2, (MAP_HEIGHT - _MARGIN) / 2
    first = MapPoint(round(cx - east / 2 * per_m, 1), round(cy + north / 2 * per_m, 1))
    second = MapPoint(round(cx + east / 2 * per_m, 1), round(cy - north / 2 * per_m, 1))
    rings = tuple((s, round(s * per_m, 1)) for s in SCALES_M if s * per_m <= MAP_WIDTH)
    return MapView(MAP_WIDTH, MAP_HEIGHT, first, second, scale, round(scale * per_m, 1), rings)


def _decision_ok(
    case: duplicates_pb2.DuplicateCase,
    d: duplicates_pb2.CaseDecision,
    keys: dict[str, key_service_pb2.SigningKey],
) -> bool:
    """Whether the decision's envelope is signed by this administrator's registered key over a
    verdict that says exactly what the decision says (an empty standing on DUPLICATE is the
    earlier registration, as the gateway stores it)."""
    payload = admin_signed_payload(d.envelope, keys, d.region, d.admin)
    if payload is None:
        return False
    try:
        body = duplicate_service_pb2.CaseVerdict.FromString(payload)
    except DecodeError:
        return False
    standing = body.standing
    if not standing and body.resolution == duplicates_pb2.CASE_RESOLUTION_DUPLICATE:
        standing = case.first.subject
    return (
        body.duplicate_case == case.name
        and body.resolution == d.resolution
        and standing == d.standing
        and body.comment == d.comment
    )


def case_view(
    case: duplicates_pb2.DuplicateCase,
    me: tuple[str, str],
    quorums: dict[str, int],
    keys: dict[str, key_service_pb2.SigningKey] | None = None,
) -> CaseView:
    """The view of a case for administrator ``me`` = (region, name); ``quorums``: the approvals
    each region's policy needs; decisions' signatures are checked against ``keys`` (key id →
    key) when given."""
    first, second = _side(case.first), _side(case.second)
    decisions = tuple(
        CaseDecisionView(
            region=d.region,
            admin=d.admin,
            resolution=_key(duplicates_pb2.CaseResolution, d.resolution, "CASE_RESOLUTION_"),
            standing=d.standing,
            comment=d.comment,
            when=_time(d.decide_time),
            key_id=d.envelope.key_id,
            signature_ok=keys is not None and _decision_ok(case, d, keys),
        )
        for d in case.decisions
    )
    resolution = ""
    if case.resolution:
        resolution = _key(duplicates_pb2.CaseResolution, case.resolution, "CASE_RESOLUTION_")
    return CaseView(
        name=case.name,
        id=case.name.removeprefix("duplicateCases/"),
        state=_key(duplicates_pb2.DuplicateCaseState, case.state, "DUPLICATE_CASE_STATE_"),
        strength=_key(duplicates_pb2.MatchStrength, case.strength, "MATCH_STRENGTH_"),
        rule=_key(duplicates_pb2.DuplicateRule, case.rule, "DUPLICATE_RULE_"),
        first=first,
        second=second,
        same_grid_account=case.evidence.same_grid_account,
        same_owner_credit_code=case.evidence.same_owner_credit_code,
        same_category=case.evidence.same_category,
        distance_m=case.evidence.distance_metres,
        capacity_ratio=case.evidence.capacity_ratio,
        map=site_map(first.site_wgs84, second.site_wgs84),
        issuances=tuple(
            HeldView(
                issuance=i.issuance,
                period=_period(i.monitoring_period),
                grams=i.quantity_grams,
                outcome=_key(duplicates_pb2.HoldOutcome, i.outcome, "HOLD_OUTCOME_"),
            )
            for i in case.issuances
        ),
        decisions=decisions,
        findings=tuple(
            FindingView(
                issuance=f.issuance,
                serials=(f.serials.start, f.serials.end),
                holder_region=f.holder_region,
                state=_key(records_pb2.UnitBlockState, f.state, "UNIT_BLOCK_STATE_"),
                grams=f.quantity_grams,
            )
            for f in case.findings
        ),
        deciding_regions=tuple(case.deciding_regions),
        quorums=tuple(
            QuorumView(
                region,
                sum(d.region == region for d in decisions),
                quorums.get(region, case.required_approvals),
            )
            for region in case.deciding_regions
        ),
        resolution=resolution,
        standing=case.standing,
        open_time=_time(case.open_time),
        resolve_time=_time(case.resolve_time),
        decided_by_me=next((d.resolution for d in decisions if (d.region, d.admin) == me), ""),
    )
