"""A seeded, deterministic data set for duplicate detection: distinct projects, near misses and
planted duplicates over the four provinces of the Yangtze Delta.

- ``distinct``: 10,000 region projects (by default) that must open no case among themselves:
  singletons at least ``SEPARATION_M`` from every other project, and near-miss groups whose
  members sit just beyond a threshold of a rule (52 m for the 50 m rule, 105 m with the same owner
  for the 100 m rule, 1,050 m with the same grid account for the 1 km rule, the same account in
  two provinces far apart with different owners, 40 m apart with another category, with
  capacities 6 % apart or with one capacity missing), some of them filed in GCJ-02 or BD-09.
  Credit codes (valid check characters) and grid accounts are distinct except where a group
  shares one on purpose; some projects leave a key out, as regions that do not export it do.
- ``planted``: region projects each duplicating one distinct singleton (its "original") by one
  rule, several per rule, some filed in GCJ-02 or BD-09, some in the original's own region.
- ``external``: rows of a CCER list: some duplicate a distinct singleton (one case each), the
  others match nothing, and two of them share a site and every key (external rows are never
  matched with each other).
- ``expected``: every pair that must become a case, with its rule; ``near_misses``: the pairs
  just beyond a threshold (no case).

Positions are drawn in WGS-84 (``wgs84``) and filed rounded to 6 decimals, converted with the
published forward transforms where a project is filed in GCJ-02 or BD-09: matching must undo the
conversion. Distances between members of a group are exact on the sphere the matching uses
(haversine, R = 6,371,008.8 m), so the margins to the thresholds (2 m at 50 m and more elsewhere)
are far above rounding (≈ 0.1 m).

Run ``python -m tests.duplicates.generate`` for a summary of a data set.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from fractions import Fraction

from mutual_recognition.duplicates import (
    EARTH_RADIUS_M,
    Rule,
    capacity_in_watts,
    distance_m,
    from_wgs84_to_gcj02,
    gcj02_to_bd09,
)
from mutual_recognition.identity import CREDIT_CODE_ALPHABET, credit_code_check_char

SEED = 20_20
DISTINCT = 10_000
SEPARATION_M = 200.0
"""Least distance between projects of different groups: four times the 50 m rule's radius."""

PROVINCES: dict[str, tuple[float, float, float, float]] = {
    # region: (south, north, west, east) in degrees, WGS-84.
    "310000": (30.70, 31.90, 120.85, 122.00),
    "320000": (30.75, 35.10, 116.30, 121.90),
    "330000": (27.00, 31.20, 118.00, 122.90),
    "340000": (29.40, 34.70, 114.90, 119.70),
}
COUNTIES: dict[str, tuple[str, ...]] = {
    "310000": ("310118", "310115", "310112", "310117", "310120"),
    "320000": ("320509", "320506", "320115", "320211", "320982"),
    "330000": ("330421", "330402", "330106", "330282", "330782"),
    "340000": ("340104", "340111", "340202", "340322", "341802"),
}
# Places on or near a border between two provinces, with the two provinces (near-miss groups
# straddle them): Qingpu/Wujiang/Jiashan, Kunshan/Jiading, Pinghu/Jinshan, Huzhou/Yixing,
# Xuancheng/Huzhou, Nanjing/Ma'anshan, Chuzhou/Nanjing, Xuzhou/Suzhou (Anhui).
BORDERS: tuple[tuple[float, float, str, str], ...] = (
    (31.03, 120.90, "310000", "320000"),
    (30.95, 120.93, "310000", "330000"),
    (31.00, 120.85, "320000", "330000"),
    (31.35, 121.15, "310000", "320000"),
    (30.75, 121.10, "310000", "330000"),
    (31.15, 119.85, "320000", "330000"),
    (30.90, 119.40, "330000", "340000"),
    (31.70, 118.60, "320000", "340000"),
    (32.25, 118.55, "320000", "340000"),
    (34.00, 117.10, "320000", "340000"),
)
# Category mix of the singletons (ScenarioCategory short names): share, capacity units or None.
CATEGORIES: tuple[tuple[str, float, bool], ...] = (
    ("DISTRIBUTED_PV", 0.55, True),
    ("EV_CHARGING", 0.20, True),
    ("PUBLIC_TRANSIT", 0.08, False),
    ("CYCLING_WALKING", 0.05, False),
    ("WASTE_SORTING", 0.07, False),
    ("OTHER", 0.05, False),
)
SCHEME = "CCER"


def category_name(short: str) -> str:
    """The ScenarioCategory name of a short category name."""
    return f"SCENARIO_CATEGORY_{short}"


@dataclass(frozen=True)
class GenProject:
    """One generated registration: a region's project or an external list's row."""

    region: str | None
    """The registering region; None for an external (CCER) row."""
    project_id: str
    title: str
    credit_code: str
    latitude: str
    """As filed (in ``datum``), 6 decimals; empty without a site."""
    longitude: str
    datum: str
    grid_account: str
    category: str
    """Short name: DISTRIBUTED_PV, EV_CHARGING, ..."""
    capacity_value: str
    capacity_unit: str
    wgs84: tuple[float, float] | None
    """The true WGS-84 position the filed coordinates come from."""

    @property
    def subject(self) -> str:
        """Its subject name in the duplicate index."""
        if self.region is None:
            return f"schemes/{SCHEME}/projects/{self.project_id}"
        return f"regions/{self.region}/projects/{self.project_id}"


@dataclass(frozen=True)
class Pair:
    """Two subjects (sorted) and the rule they must match by (None: they must not match)."""

    subjects: tuple[str, str]
    rule: Rule | None
    label: str


@dataclass
class Dataset:
    """The generated projects and what detection must find among them."""

    distinct: list[GenProject] = field(default_factory=list)
    planted: list[GenProject] = field(default_factory=list)
    external: list[GenProject] = field(default_factory=list)
    expected: list[Pair] = field(default_factory=list)
    near_misses: list[Pair] = field(default_factory=list)

    def region_projects(self) -> list[GenProject]:
        """Distinct and planted region projects."""
        return self.distinct + self.planted


def pair(a: GenProject, b: GenProject, rule: Rule | None, label: str) -> Pair:
    """The pair of A and B (subjects sorted)."""
    first, second = sorted((a.subject, b.subject))
    return Pair((first, second), rule, label)


def destination(lat: float, lon: float, metres: float, bearing_deg: float) -> tuple[float, float]:
    """The point METRES from (lat, lon) along the great circle at BEARING (exact on the sphere
    the haversine distance uses)."""
    d = metres / EARTH_RADIUS_M
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    return math.degrees(p2), math.degrees(l2)


class _Space:
    """Where projects already are: a hash of 0.01° cells (≈ 1 km, more than SEPARATION_M)."""

    def __init__(self) -> None:
        self.cells: dict[tuple[int, int], list[tuple[float, float]]] = {}

    @staticmethod
    def _key(lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat * 100), math.floor(lon * 100)

    def free(self, points: list[tuple[float, float]]) -> bool:
        """Whether every point is at least SEPARATION_M from every point placed."""
        for lat, lon in points:
            i, j = self._key(lat, lon)
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    for plat, plon in self.cells.get((i + di, j + dj), ()):
                        if distance_m(lat, lon, plat, plon) < SEPARATION_M:
                            return False
        return True

    def add(self, points: list[tuple[float, float]]) -> None:
        for lat, lon in points:
            self.cells.setdefault(self._key(lat, lon), []).append((lat, lon))


class Generator:
    """Draws a data set from one seed (same seed, same data set)."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.space = _Space()
        self.codes = 0
        self.accounts = 0
        self.ids: Counter[str] = Counter()

    # -- keys -------------------------------------------------------------------------------

    def credit_code(self, region: str) -> str:
        """A new valid unified social credit code (enterprise, county of REGION)."""
        self.codes += 1
        n, body = self.codes, ""
        for _ in range(9):
            n, digit = divmod(n, 31)
            body = CREDIT_CODE_ALPHABET[digit] + body
        first17 = "91" + self.rng.choice(COUNTIES[region]) + body
        return first17 + credit_code_check_char(first17)

    def grid_account(self) -> str:
        """A new grid account: 13 digits, a leading zero on every third."""
        self.accounts += 1
        lead = "0" if self.accounts % 3 == 0 else str(1 + self.accounts % 9)
        return f"{lead}{self.accounts * 7919 % 10**12:012d}"

    def project_id(self, region: str | None) -> str:
        prefix = {None: "CCER-14-", "310000": "SH", "320000": "JS", "330000": "ZJ"}.get(
            region, "AH"
        )
        self.ids[prefix] += 1
        return f"{prefix}{self.ids[prefix]:06d}"

    def capacity(self, category: str) -> tuple[str, str]:
        """A capacity as filed for CATEGORY: kW (some in MW or W for PV), 3 to 5,000 kW."""
        kw = self.rng.randint(30, 50_000) / 10
        if category == "EV_CHARGING":
            return str(self.rng.choice((7, 11, 22, 60, 120, 180, 240, 360))), "kW"
        style = self.rng.random()
        if style < 0.1:
            return f"{kw / 1000:.4f}".rstrip("0").rstrip("."), "MW"
        if style < 0.15:
            return str(int(kw * 1000)), "W"
        return f"{kw:.1f}".rstrip("0").rstrip("."), "kW"

    # -- projects ---------------------------------------------------------------------------

    def project(
        self,
        region: str | None,
        at: tuple[float, float] | None,
        *,
        category: str,
        capacity: tuple[str, str] | None,
        credit_code: str | None = None,
        account: str | None = None,
        datum: str = "WGS84",
    ) -> GenProject:
        """A project at the WGS-84 point AT, filed in DATUM; new keys unless given ("" = none)."""
        home = region or self.rng.choice(tuple(PROVINCES))
        code = self.credit_code(home) if credit_code is None else credit_code
        lat = lon = ""
        if at is not None:
            filed = at
            if datum in ("GCJ02", "BD09"):
                filed = from_wgs84_to_gcj02(*at)
                if datum == "BD09":
                    filed = gcj02_to_bd09(*filed)
            lat, lon = f"{filed[0]:.6f}", f"{filed[1]:.6f}"
        value, unit = capacity or ("", "")
        pid = self.project_id(region)
        return GenProject(
            region=region,
            project_id=pid,
            title=f"{category.lower()} {pid}",
            credit_code=code,
            latitude=lat,
            longitude=lon,
            datum=datum if at is not None else "",
            grid_account=self.grid_account() if account is None else account,
            category=category,
            capacity_value=value,
            capacity_unit=unit,
            wgs84=at,
        )

    def place(
        self, box: tuple[float, float, float, float], offsets: list[tuple[float, float]]
    ) -> list[tuple[float, float]]:
        """Points at OFFSETS (metres, bearing) from an anchor drawn in BOX, far from every
        other group; reserved in the space."""
        south, north, west, east = box
        while True:
            anchor = (self.rng.uniform(south, north), self.rng.uniform(west, east))
            points = [anchor] + [destination(*anchor, m, b) for m, b in offsets]
            if self.space.free(points):
                self.space.add(points)
                return points

    def near_border(self) -> tuple[tuple[float, float, float, float], str, str]:
        lat, lon, a, b = self.rng.choice(BORDERS)
        box = (lat - 0.25, lat + 0.25, lon - 0.25, lon + 0.25)
        return box, a, b

    def singleton(self, region: str, *, full: bool = False) -> GenProject:
        """A distinct project in REGION's box; FULL: every key and a capacity (an original)."""
        short, has_capacity = self._category()
        if full:
            short, has_capacity = "DISTRIBUTED_PV", True
        (at,) = self.place(PROVINCES[region], [])
        roll = self.rng.random()
        datum = "GCJ02" if roll < 0.10 else "BD09" if roll < 0.15 else "WGS84"
        keys = self.rng.random()
        return self.project(
            region,
            None if (keys < 0.04 and not full) else at,
            category=short,
            capacity=self.capacity(short) if has_capacity else None,
            credit_code="" if (0.04 <= keys < 0.08 and not full) else None,
            account="" if (0.08 <= keys < 0.18 and not full) else None,
            datum=datum,
        )

    def _category(self) -> tuple[str, bool]:
        roll, total = self.rng.random(), 0.0
        for short, share, has_capacity in CATEGORIES:
            total += share
            if roll < total:
                return short, has_capacity
        return CATEGORIES[-1][0], CATEGORIES[-1][2]


def _near_misses(g: Generator, data: Dataset, per_kind: int) -> None:
    """Groups of distinct projects just beyond a threshold, mostly across a province border."""
    pv = "DISTRIBUTED_PV"
    for i in range(per_kind):
        datum = ("WGS84", "GCJ02", "BD09")[i % 3]
        box, ra, rb = g.near_border()
        bearing = g.rng.uniform(0, 360)

        # 52 m, same category, same capacity: beyond the 50 m rule.
        a_at, b_at = g.place(box, [(52.0, bearing)])
        cap = g.capacity(pv)
        a = g.project(ra, a_at, category=pv, capacity=cap)
        b = g.project(rb, b_at, category=pv, capacity=cap, datum=datum)
        data.near_misses.append(pair(a, b, None, "52 m, same category and capacity"))
        data.distinct += [a, b]

        # 105 m, same owner and category (capacities far apart): beyond the 100 m rule.
        a_at, b_at = g.place(box, [(105.0, bearing)])
        a = g.project(ra, a_at, category=pv, capacity=("100", "kW"))
        b = g.project(
            rb, b_at, category=pv, capacity=("300", "kW"), credit_code=a.credit_code, datum=datum
        )
        data.near_misses.append(pair(a, b, None, "105 m, same owner"))
        data.distinct += [a, b]

        # 1,050 m, same grid account, different owners: beyond the 1 km rule.
        a_at, b_at = g.place(box, [(1050.0, bearing)])
        a = g.project(ra, a_at, category=pv, capacity=cap)
        b = g.project(rb, b_at, category=pv, capacity=cap, account=a.grid_account, datum=datum)
        data.near_misses.append(pair(a, b, None, "1,050 m, same account, other owner"))
        data.distinct += [a, b]

        # The same account in two provinces at least 100 km apart, different owners (accounts
        # are unique within one grid company only).
        (a_at,) = g.place(PROVINCES["320000"], [])
        b_at = a_at
        while distance_m(*a_at, *b_at) < 100_000:
            (b_at,) = g.place(PROVINCES["330000"], [])
        a = g.project("320000", a_at, category=pv, capacity=cap)
        b = g.project("330000", b_at, category=pv, capacity=cap, account=a.grid_account)
        data.near_misses.append(pair(a, b, None, "same account, two provinces, other owners"))
        data.distinct += [a, b]

        # 40 m, another category, the same capacity.
        a_at, b_at = g.place(box, [(40.0, bearing)])
        a = g.project(ra, a_at, category=pv, capacity=("60", "kW"))
        b = g.project(rb, b_at, category="EV_CHARGING", capacity=("60", "kW"), datum=datum)
        data.near_misses.append(pair(a, b, None, "40 m, other category"))
        data.distinct += [a, b]

        # 40 m, same category, capacities 6 % apart (0.94 < 0.95).
        a_at, b_at = g.place(box, [(40.0, bearing)])
        a = g.project(ra, a_at, category=pv, capacity=("1", "MW"))
        b = g.project(rb, b_at, category=pv, capacity=("940", "kW"), datum=datum)
        data.near_misses.append(pair(a, b, None, "40 m, capacity 6 % off"))
        data.distinct += [a, b]

        # 40 m, same category, one capacity missing.
        a_at, b_at = g.place(box, [(40.0, bearing)])
        a = g.project(ra, a_at, category=pv, capacity=("500", "kW"))
        b = g.project(rb, b_at, category=pv, capacity=None, datum=datum)
        data.near_misses.append(pair(a, b, None, "40 m, one capacity missing"))
        data.distinct += [a, b]


# The planted variants, per rule: (metres from the original, owner: "same" | "new" | "none",
# account: "same" | "new" | "none", category: "same" or another, capacity over the original's:
# a Fraction, or None for none). Variant 4 of each rule is an external (CCER) row.
Variant = tuple[float, str, str, str, Fraction | None]
VARIANTS: dict[Rule, tuple[Variant, ...]] = {
    Rule.SAME_GRID_ACCOUNT: (
        (3000.0, "same", "same", "OTHER", None),  # 3 km apart: by the owner
        (950.0, "none", "same", "WASTE_SORTING", None),  # no owner given: by the distance
        (10.0, "same", "same", "same", Fraction(1)),  # every rule holds: the strongest wins
        (950.0, "new", "same", "same", Fraction(1, 1000)),  # another owner: by the distance
        (0.0, "same", "same", "same", Fraction(1)),
    ),
    Rule.SAME_OWNER_NEARBY: (
        (95.0, "same", "new", "same", Fraction(3)),
        (30.0, "same", "new", "same", Fraction(96, 100)),  # possible too: probable wins
        (90.0, "same", "new", "same", Fraction(3)),
        (60.0, "same", "none", "same", None),
        (98.0, "same", "none", "same", Fraction(1, 2)),
    ),
    Rule.NEARBY_SIMILAR: (
        (48.0, "new", "new", "same", Fraction(95, 100)),  # exactly 0.95: within 5 %
        (10.0, "new", "new", "same", Fraction(98, 100)),
        (45.0, "new", "new", "same", Fraction(1)),
        (40.0, "new", "none", "same", Fraction(105, 100)),  # 1/1.05 = 0.952
        (20.0, "none", "none", "same", Fraction(1)),
    ),
}


def _plant(g: Generator, data: Dataset, original: GenProject, rule: Rule, k: int) -> None:
    """Plant the K-th duplicate of ORIGINAL (a singleton with every key) by RULE: variant k % 5
    of the rule, filed in WGS-84, GCJ-02 or BD-09 by k % 3, in the original's own region one
    time in four (a region filing twice), else in another region or (variant 4) an external
    list. Its site is reserved, so that no other project comes near it."""
    assert original.wgs84 is not None and original.region is not None
    metres, owner, account, category, ratio = VARIANTS[rule][k % 5]
    datum = ("WGS84", "GCJ02", "BD09")[k % 3]
    others = [r for r in PROVINCES if r != original.region]
    region: str | None = original.region if k % 4 == 3 else g.rng.choice(others)
    if k % 5 == 4:
        region = None
    while True:
        at = destination(*original.wgs84, metres, g.rng.uniform(0, 360))
        # Near copies sit by their original, which is far from the rest; far ones must be free.
        if metres < SEPARATION_M / 2 or g.space.free([at]):
            g.space.add([at])
            break
    capacity = None
    if ratio is not None:
        watts = capacity_in_watts(original.capacity_value, original.capacity_unit) * ratio
        # Whole watts, rounded towards the original (the exact ratio stays within 5 %).
        whole = math.ceil(watts) if ratio < 1 else math.floor(watts)
        capacity = (str(whole), "W")
    copy = g.project(
        region,
        at,
        category=original.category if category == "same" else category,
        capacity=capacity,
        credit_code={"same": original.credit_code, "none": ""}.get(owner),
        account={"same": original.grid_account, "none": ""}.get(account),
        datum=datum,
    )
    (data.external if region is None else data.planted).append(copy)
    data.expected.append(pair(original, copy, rule, f"{rule.name} variant {k % 5}"))


def generate(distinct: int = DISTINCT, *, per_rule: int = 15, seed: int = SEED) -> Dataset:
    """The data set: DISTINCT distinct region projects (near-miss groups included), PER_RULE
    planted duplicates per rule (region and external sides), external rows that match nothing."""
    g = Generator(seed)
    data = Dataset()
    per_kind = max(1, distinct // 200)  # 14 near misses per group of kinds: 7 % of the set
    _near_misses(g, data, per_kind)
    regions = tuple(PROVINCES)
    # Originals (every key, PV with a capacity) and their plants first: then every other
    # project keeps its distance from the plants too.
    for r, rule in enumerate(VARIANTS):
        for k in range(per_rule):
            original = g.singleton(regions[(r + k) % 4], full=True)
            data.distinct.append(original)
            _plant(g, data, original, rule, k)
    while len(data.distinct) < distinct:
        data.distinct.append(g.singleton(g.rng.choice(regions)))
    # External rows that match nothing, and two rows of one site (never matched together).
    for _ in range(max(2, distinct // 100)):
        (at,) = g.place(g.rng.choice(tuple(PROVINCES.values())), [])
        data.external.append(g.project(None, at, category="DISTRIBUTED_PV", capacity=("1", "MW")))
    twin = data.external[-1]
    data.external.append(replace(twin, project_id=g.project_id(None)))
    g.rng.shuffle(data.external)
    return data


def external_csv(rows: list[GenProject]) -> bytes:
    """The rows as an external-list CSV (the template's columns, English header)."""
    import csv
    import io

    from adapters.external_list import COLUMNS

    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.english for c in COLUMNS])
    for r in rows:
        writer.writerow(
            [
                r.project_id,
                r.title,
                r.credit_code,
                r.latitude,
                r.longitude,
                r.datum,
                r.grid_account,
                r.category,
                f"{r.capacity_value} {r.capacity_unit}" if r.capacity_value else "",
                "2024-06-01",
                "2024-01-01",
                "2033-12-31",
            ]
        )
    return out.getvalue().encode("utf-8")


def summary(data: Dataset) -> str:
    """Counts of the data set, for a person."""
    by_region = Counter(p.region for p in data.distinct)
    datums = Counter(p.datum for p in data.region_projects() + data.external)
    rules = Counter(p.rule.name for p in data.expected if p.rule is not None)
    misses = Counter(p.label for p in data.near_misses)
    lines = [
        f"distinct region projects: {len(data.distinct):,} "
        + ", ".join(f"{r}: {n:,}" for r, n in sorted(by_region.items())),
        f"planted region projects: {len(data.planted)}; external rows: {len(data.external)}",
        "datums: " + ", ".join(f"{d or 'no site'}: {n:,}" for d, n in sorted(datums.items())),
        "expected cases: " + ", ".join(f"{r}: {n}" for r, n in sorted(rules.items())),
        "near misses: " + "; ".join(f"{label}: {n}" for label, n in sorted(misses.items())),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    started = dt.datetime.now()
    generated = generate()
    print(summary(generated))
    print(f"generated in {(dt.datetime.now() - started).total_seconds():.1f} s")
