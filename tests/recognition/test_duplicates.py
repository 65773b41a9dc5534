"""The pure duplicate-detection domain: datums, distances, grid cells and the three rules."""

from __future__ import annotations

import datetime as dt
import math
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutual_recognition.duplicates import (
    EARTH_RADIUS_M,
    Evidence,
    ExternalListRow,
    Period,
    Rule,
    Strength,
    Subject,
    capacity_in_watts,
    case_id_of,
    cell_of,
    cell_of_e7,
    cells_within,
    classify,
    distance_m,
    from_wgs84_to_gcj02,
    gcj02_to_bd09,
    ordered,
    overlapping,
    overlaps,
    render_watts,
    to_e7,
    to_wgs84,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LAT, LON = 31.0, 121.0
PV = "SCENARIO_CATEGORY_DISTRIBUTED_PV"
EV = "SCENARIO_CATEGORY_EV_CHARGING"
CODE_A, CODE_B = "91310000MA1FL0000A", "91320000MA1FL0000B"


def subject(
    name: str = "regions/310000/projects/A",
    *,
    region: str | None = "310000",
    code: str | None = None,
    account: str | None = None,
    lat_e7: int | None = to_e7(LAT),
    lon_e7: int | None = to_e7(LON),
    category: str = PV,
    watts: Fraction | None = None,
    registered: dt.datetime = T0,
) -> Subject:
    return Subject(name, region, code, account, lat_e7, lon_e7, category, watts, registered)


def north_of(offset_e7: int, name: str = "regions/320000/projects/B", **kw: object) -> Subject:
    """A second subject ``offset_e7`` × 10⁻⁷° north of the first (on its meridian)."""
    return subject(name, region="320000", lat_e7=to_e7(LAT) + offset_e7, **kw)  # type: ignore[arg-type]


def last_offset_within(radius: float) -> int:
    """The largest whole 10⁻⁷° offset north whose distance is still ≤ ``radius``."""
    k = math.floor(radius / (EARTH_RADIUS_M * math.pi / 180) * 1e7) + 2
    while distance_m(LAT, LON, (to_e7(LAT) + k) / 1e7, LON) > radius:
        k -= 1
    return k


# -- thresholds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [50.0, 100.0, 1000.0])
def test_offset_helper_brackets_the_radius(radius: float) -> None:
    k = last_offset_within(radius)
    assert distance_m(LAT, LON, (to_e7(LAT) + k) / 1e7, LON) <= radius
    assert distance_m(LAT, LON, (to_e7(LAT) + k + 1) / 1e7, LON) > radius
    # One step is about a centimetre: "at" the threshold is within 1.2 cm of it.
    assert radius - distance_m(LAT, LON, (to_e7(LAT) + k) / 1e7, LON) < 0.012


def test_certain_at_1000_m_and_not_just_beyond() -> None:
    a = subject(code=CODE_A, account="3100012345")
    k = last_offset_within(1000.0)
    at = classify(a, north_of(k, code=CODE_B, account="3100012345"))
    assert at is not None and at.rule is Rule.SAME_GRID_ACCOUNT
    assert at.strength is Strength.CERTAIN
    assert at.evidence.distance_metres == "1000.0"
    assert at.evidence.same_grid_account and not at.evidence.same_owner_credit_code
    assert classify(a, north_of(k + 1, code=CODE_B, account="3100012345")) is None


def test_probable_at_100_m_and_not_just_beyond() -> None:
    a = subject(code=CODE_A)
    k = last_offset_within(100.0)
    at = classify(a, north_of(k, code=CODE_A))
    assert at is not None and at.rule is Rule.SAME_OWNER_NEARBY
    assert at.strength is Strength.PROBABLE
    assert at.evidence.distance_metres == "100.0" and at.evidence.same_category
    assert classify(a, north_of(k + 1, code=CODE_A)) is None
    # Same owner within 100 m but another category: no rule.
    assert classify(a, north_of(k, code=CODE_A, category=EV)) is None


def test_possible_at_50_m_and_not_just_beyond() -> None:
    a = subject(watts=Fraction(100_000))
    k = last_offset_within(50.0)
    at = classify(a, north_of(k, watts=Fraction(100_000)))
    assert at is not None and at.rule is Rule.NEARBY_SIMILAR
    assert at.strength is Strength.POSSIBLE
    assert at.evidence.distance_metres == "50.0" and at.evidence.capacity_ratio == "1.0000"
    assert classify(a, north_of(k + 1, watts=Fraction(100_000))) is None


def test_capacity_boundary_is_exact() -> None:
    a = subject(watts=capacity_in_watts("1", "MW"))
    exactly = classify(a, north_of(10, watts=capacity_in_watts("950", "kW")))
    assert exactly is not None and exactly.rule is Rule.NEARBY_SIMILAR
    assert exactly.evidence.capacity_ratio == "0.9500"
    # One watt less than 95 %: truncated to 0.9499, and no match.
    assert classify(a, north_of(10, watts=capacity_in_watts("949999", "W"))) is None
    # Larger on the other side works the same (smaller / larger).
    assert classify(subject(watts=Fraction(950)), north_of(10, watts=Fraction(1000))) is not None
    assert classify(subject(watts=Fraction(949)), north_of(10, watts=Fraction(1000))) is None


def test_possible_needs_both_capacities_and_the_same_category() -> None:
    a = subject(watts=Fraction(1000))
    assert classify(a, north_of(10)) is None
    assert classify(a, north_of(10, watts=Fraction(1000), category=EV)) is None


def test_same_account_far_apart_with_different_owners_is_no_match() -> None:
    a = subject(code=CODE_A, account="3100012345")
    far = north_of(last_offset_within(5000.0), code=CODE_B, account="3100012345")
    assert classify(a, far) is None
    # Without sites the account alone proves nothing either (an account is unique per company).
    nowhere = subject("regions/320000/projects/B", region="320000", lat_e7=None, lon_e7=None)
    assert classify(subject(account="3100012345", lat_e7=None, lon_e7=None), nowhere) is None


def test_same_account_and_owner_far_apart_is_certain() -> None:
    a = subject(code=CODE_A, account="3100012345")
    match = classify(a, north_of(last_offset_within(50_000.0), code=CODE_A, account="3100012345"))
    assert match is not None and match.rule is Rule.SAME_GRID_ACCOUNT
    assert match.evidence.same_owner_credit_code and match.evidence.distance_metres == "50000.0"


def test_strongest_rule_wins_and_evidence_lists_everything() -> None:
    a = subject(code=CODE_A, account="3100012345", watts=Fraction(1000))
    b = north_of(100, code=CODE_A, account="3100012345", watts=Fraction(990))
    match = classify(a, b)
    assert match is not None and match.rule is Rule.SAME_GRID_ACCOUNT
    assert match.evidence == Evidence(True, True, "1.1", True, "0.9900")
    # Without the account the owner rule is the strongest left.
    match = classify(subject(code=CODE_A, watts=Fraction(1000)), north_of(100, code=CODE_A))
    assert match is not None and match.rule is Rule.SAME_OWNER_NEARBY
    assert match.evidence.capacity_ratio == ""


def test_never_the_same_subject_nor_two_external_subjects() -> None:
    a = subject(code=CODE_A, account="3100012345")
    assert classify(a, a) is None
    ext1 = subject("schemes/CCER/projects/1", region=None, code=CODE_A, account="3100012345")
    ext2 = subject("schemes/CEA/projects/2", region=None, code=CODE_A, account="3100012345")
    assert classify(ext1, ext2) is None
    assert classify(a, ext1) is not None


def test_empty_keys_never_count_as_equal() -> None:
    a = subject(code="", account="", watts=None)
    assert classify(a, north_of(last_offset_within(200.0), code="", account="")) is None


def test_evidence_round_trips_through_json() -> None:
    evidence = Evidence(True, False, "37.4", True, "")
    assert Evidence.from_json(evidence.to_json()) == evidence


# -- datums -------------------------------------------------------------------------------------


def _delta_points(n: int) -> list[tuple[float, float]]:
    rng = random.Random(20)
    return [(rng.uniform(29.0, 33.0), rng.uniform(115.5, 122.5)) for _ in range(n)]


def test_gcj02_round_trip_within_half_a_metre_across_the_delta() -> None:
    worst = 0.0
    for lat, lon in _delta_points(2000):
        g_lat, g_lon = from_wgs84_to_gcj02(lat, lon)
        assert distance_m(lat, lon, g_lat, g_lon) > 100  # the shift is real (hundreds of metres)
        back = to_wgs84(g_lat, g_lon, "GCJ02")
        worst = max(worst, distance_m(lat, lon, *back))
    assert worst < 0.5
    # The iteration's tolerance (1e-7° ≈ 1 cm) is what is actually reached.
    assert worst < 0.02


def test_bd09_round_trip_within_half_a_metre_across_the_delta() -> None:
    for lat, lon in _delta_points(500):
        bd = gcj02_to_bd09(*from_wgs84_to_gcj02(lat, lon))
        assert distance_m(lat, lon, *to_wgs84(*bd, "BD09")) < 0.5


def test_wgs84_and_points_outside_china_are_unchanged() -> None:
    assert to_wgs84(31.1492, 121.1248, "WGS84") == (31.1492, 121.1248)
    assert to_wgs84(31.1492, 121.1248, "") == (31.1492, 121.1248)
    assert to_wgs84(48.8566, 2.3522, "GCJ02") == (48.8566, 2.3522)
    with pytest.raises(ValueError):
        to_wgs84(31.0, 121.0, "ITRF2014")


# -- distances and cells ------------------------------------------------------------------------


def test_haversine_matches_known_values() -> None:
    assert distance_m(0, 0, 0, 1) == pytest.approx(EARTH_RADIUS_M * math.pi / 180)
    assert distance_m(31.0, 121.0, 31.0, 121.0) == 0.0
    # Across the antimeridian is short, not half the world.
    assert distance_m(10.0, 179.9999, 10.0, -179.9999) < 30


def test_cell_layout() -> None:
    assert cell_of(31.1492, 121.1248) == 12114 * 100_000 + 30112
    assert cell_of_e7(to_e7(31.1492), to_e7(121.1248)) == cell_of(31.1492, 121.1248)
    # Exact on the cell edges (integer arithmetic on stored values, no float floor surprise).
    assert cell_of(31.15, 121.13) == 12115 * 100_000 + 30113
    assert cell_of(-90.0, -180.0) == 0
    assert cell_of(90.0, 180.0) == cell_of(90.0, -180.0) == 17999 * 100_000


def test_a_kilometre_needs_few_cells_in_the_delta() -> None:
    for lat, lon in _delta_points(200):
        cells = cells_within(lat, lon, 1000.0)
        assert 4 <= len(cells) <= 12 and cells == sorted(cells)
        assert cell_of(lat, lon) in cells


def _destination(lat: float, lon: float, bearing: float, metres: float) -> tuple[float, float]:
    d, b = metres / EARTH_RADIUS_M, math.radians(bearing)
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


@settings(max_examples=400, deadline=None)
@given(
    lat=st.floats(-89.0, 89.0),
    lon=st.floats(-180.0, 180.0),
    bearing=st.floats(0.0, 360.0),
    fraction=st.floats(0.0, 1.0),
)
def test_every_point_within_the_radius_is_in_one_of_its_cells(
    lat: float, lon: float, bearing: float, fraction: float
) -> None:
    centre = (to_e7(lat) / 1e7, to_e7(lon) / 1e7)
    p_lat, p_lon = _destination(*centre, bearing, 1000.0 * fraction)
    stored = (to_e7(p_lat) / 1e7, to_e7(p_lon) / 1e7)
    if distance_m(*centre, *stored) <= 1000.0:
        assert cell_of(*stored) in cells_within(*centre, 1000.0)


def test_cells_at_the_box_corners_and_across_the_antimeridian() -> None:
    # The exact bounding point north of a centre is inside.
    k = last_offset_within(1000.0)
    assert cell_of((to_e7(LAT) + k) / 1e7, LON) in cells_within(LAT, LON, 1000.0)
    near = cells_within(10.0, 179.999, 1000.0)
    assert cell_of(10.0, -179.999) in near and cell_of(10.0, 179.999) in near


# -- capacities, ordering, periods, external rows ----------------------------------------------


def test_capacity_in_watts_is_exact_across_units() -> None:
    assert capacity_in_watts("0.85", "MW") == capacity_in_watts("850", "kW") == 850_000
    assert capacity_in_watts("0.0005", "kW") == Fraction(1, 2)
    assert render_watts(capacity_in_watts("1.2345", "kW")) == "1234.5"
    with pytest.raises(ValueError):
        capacity_in_watts("1", "hp")
    with pytest.raises(ValueError):
        capacity_in_watts("1e3", "W")


def test_ordered_puts_the_earlier_registration_first_and_ids_are_stable() -> None:
    early = subject("regions/320000/projects/Z", registered=T0)
    late = subject("regions/310000/projects/A", registered=T0 + dt.timedelta(seconds=1))
    assert ordered(late, early) == (early, late) == ordered(early, late)
    tie = subject("regions/310000/projects/A", registered=T0)
    assert ordered(early, tie) == (tie, early)
    cid = case_id_of(early.subject, late.subject)
    assert cid.startswith("dc-") and len(cid) == 15
    assert cid == case_id_of(early.subject, late.subject) != case_id_of(late.subject, early.subject)


def test_periods_overlap_inclusively() -> None:
    d = dt.date
    jan, feb = Period(d(2025, 1, 1), d(2025, 1, 31)), Period(d(2025, 2, 1), d(2025, 2, 28))
    assert not overlaps(jan, feb) and not overlaps(feb, jan)
    assert overlaps(jan, Period(d(2025, 1, 31), d(2025, 3, 1)))
    assert overlaps(jan, Period(None, None)) and overlaps(Period(d(2025, 1, 15), None), jan)
    assert not overlaps(Period(d(2025, 2, 1), None), jan)
    own = [("i1", jan), ("i2", feb)]
    assert overlapping(own, [Period(d(2025, 2, 10), d(2025, 2, 11))]) == ["i2"]
    assert overlapping(own, []) == []


def test_external_row_subject_and_capacity() -> None:
    row = ExternalListRow(
        scheme="CCER",
        scheme_project_id="001",
        title="屋顶光伏",
        owner_credit_code=CODE_A,
        latitude="31.1492",
        longitude="121.1248",
        datum="GCJ02",
        grid_account="3100012345",
        category=PV,
        capacity_value="1.5",
        capacity_unit="MW",
        registration_date=dt.date(2024, 5, 1),
        credit_start=dt.date(2024, 1, 1),
        credit_end=None,
    )
    assert row.subject == "schemes/CCER/projects/001"
    assert row.capacity_w() == 1_500_000
