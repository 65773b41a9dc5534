"""The generated data set says the truth about itself: the pure rules (``classify``), applied to
every pair that could be within 1 km or share a key, find exactly the planted pairs with their
rules, and the near misses are where the generator says (just beyond their thresholds)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from itertools import combinations

from mutual_recognition.duplicates import (
    Subject,
    capacity_in_watts,
    classify,
    distance_m,
    to_e7,
    to_wgs84,
)
from tests.duplicates.generate import GenProject, category_name, generate

WHEN = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def subject_of(p: GenProject) -> Subject:
    lat_e7 = lon_e7 = None
    if p.latitude:
        lat, lon = to_wgs84(float(p.latitude), float(p.longitude), p.datum)
        lat_e7, lon_e7 = to_e7(lat), to_e7(lon)
    return Subject(
        subject=p.subject,
        region=p.region,
        credit_code=p.credit_code or None,
        grid_account=p.grid_account or None,
        lat_e7=lat_e7,
        lon_e7=lon_e7,
        category=category_name(p.category),
        capacity_w=capacity_in_watts(p.capacity_value, p.capacity_unit)
        if p.capacity_value
        else None,
        registered_time=WHEN,
    )


def candidate_pairs(subjects: list[Subject]) -> set[tuple[str, str]]:
    """Pairs sharing a key, or in neighbouring 0.01° cells (every pair within 1 km)."""
    groups: dict[object, list[Subject]] = defaultdict(list)
    for s in subjects:
        if s.grid_account:
            groups["a", s.grid_account].append(s)
        if s.credit_code:
            groups["c", s.credit_code].append(s)
    cells: dict[tuple[int, int], list[Subject]] = defaultdict(list)
    for s in subjects:
        if s.lat_e7 is not None and s.lon_e7 is not None:
            cells[s.lat_e7 // 100_000, s.lon_e7 // 100_000].append(s)
    pairs: set[tuple[str, str]] = set()
    for members in groups.values():
        pairs |= {tuple(sorted((a.subject, b.subject))) for a, b in combinations(members, 2)}  # type: ignore[misc]
    for (i, j), members in cells.items():
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                for a in members:
                    for b in cells.get((i + di, j + dj), ()):
                        if a.subject < b.subject:
                            pairs.add((a.subject, b.subject))
    return pairs


def test_same_seed_same_data_set() -> None:
    assert generate(600, per_rule=5) == generate(600, per_rule=5)
    assert generate(600, per_rule=5, seed=1) != generate(600, per_rule=5)


def test_the_rules_find_exactly_the_planted_pairs() -> None:
    data = generate()
    assert len(data.distinct) == 10_000
    projects = data.region_projects() + data.external
    assert len({p.subject for p in projects}) == len(projects)
    subjects = {p.subject: subject_of(p) for p in projects}
    found = {}
    for a, b in candidate_pairs(list(subjects.values())):
        match = classify(subjects[a], subjects[b])
        if match is not None:
            found[a, b] = match.rule
    expected = {p.subjects: p.rule for p in data.expected}
    assert found == expected
    assert {r for r in expected.values()} == {
        "DUPLICATE_RULE_SAME_GRID_ACCOUNT",
        "DUPLICATE_RULE_SAME_OWNER_NEARBY",
        "DUPLICATE_RULE_NEARBY_SIMILAR",
    }
    # Converted datums among the planted, and external sides for every rule.
    by_subject = {p.subject: p for p in projects}
    for rule in set(expected.values()):
        sides = [by_subject[s] for pair, r in expected.items() if r == rule for s in pair]
        assert {"GCJ02", "BD09"} <= {p.datum for p in sides}, rule
        assert any(p.region is None for p in sides), rule


def test_near_misses_sit_just_beyond_their_thresholds() -> None:
    data = generate(2_000, per_rule=5)
    by_subject = {p.subject: p for p in data.region_projects()}
    for miss in data.near_misses:
        a, b = (subject_of(by_subject[s]) for s in miss.subjects)
        assert classify(a, b) is None, miss
        assert a.lat_e7 is not None and b.lat_e7 is not None
        assert a.lon_e7 is not None and b.lon_e7 is not None
        metres = distance_m(a.lat_e7 / 1e7, a.lon_e7 / 1e7, b.lat_e7 / 1e7, b.lon_e7 / 1e7)
        if miss.label.startswith(("52 m", "105 m", "1,050 m", "40 m")):
            nominal = float(miss.label.split(" m")[0].replace(",", ""))
            assert abs(metres - nominal) < 0.5, (miss, metres)
        else:
            assert metres > 100_000, (miss, metres)
