"""The duplicate cases pages' pure parts: the labels of every value a case shows, the plain
messages for the duplicate case refusals, the case view (sides as filed, quorums, signatures
checked) and the map's geometry."""

from __future__ import annotations

import math
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from yrd.interop.v1 import (
    duplicate_service_pb2,
    duplicates_pb2,
    key_service_pb2,
    records_pb2,
)

from gateway import errors
from gateway.client.duplicates import verdict_payload
from gateway.client.signer import EnvelopeSigner
from gateway.console.cases import EARTH_RADIUS_M, Site, case_view, site_map
from gateway.console.i18n import MESSAGES, describe_error
from gateway.contract import CASE_VERDICT_TYPE
from gateway.security.signing import raw_public_key
from mutual_recognition.duplicates import distance_m, to_wgs84

QINGPU = "regions/310000/projects/SHCI-P-2024-000518"
WUJIANG = "regions/320000/projects/JS-XM-2024-0517"


@pytest.mark.parametrize(
    ("enum", "prefix", "key"),
    [
        (duplicates_pb2.DuplicateCaseState, "DUPLICATE_CASE_STATE_", "cstate_"),
        (duplicates_pb2.MatchStrength, "MATCH_STRENGTH_", "strength_"),
        (duplicates_pb2.DuplicateRule, "DUPLICATE_RULE_", "rule_"),
        (duplicates_pb2.CaseResolution, "CASE_RESOLUTION_", "resolution_"),
        (duplicates_pb2.HoldOutcome, "HOLD_OUTCOME_", "outcome_"),
        (records_pb2.ScenarioCategory, "SCENARIO_CATEGORY_", "category_"),
        (records_pb2.UnitBlockState, "UNIT_BLOCK_STATE_", "block_"),
        (records_pb2.CoordinateDatum, "COORDINATE_DATUM_", "datum_"),
    ],
)
def test_every_value_a_case_shows_has_a_label(enum: Any, prefix: str, key: str) -> None:
    for name in (v.name for v in enum.DESCRIPTOR.values):
        value = name.removeprefix(prefix).lower()
        if key == "datum_" and value == "unspecified":
            continue  # a site without a datum is WGS-84 (shown so)
        assert f"{key}{value}" in MESSAGES["zh"], name
        assert f"{key}{value}" in MESSAGES["en"], name


def test_duplicate_case_refusals_read_as_sentences() -> None:
    closed = errors.DuplicateCaseClosed("resolved already", metadata={"state": "DUPLICATE"})
    assert describe_error("zh", closed) == "此案件已结案（重复登记），不能再作出决定。"
    assert "(duplicate)" in describe_error("en", closed)
    other = errors.NotDecidingRegion(
        "not yours", metadata={"region": "330000", "deciding_regions": "310000,320000"}
    )
    assert describe_error("zh", other) == (
        "只有决定地区（上海市（310000）、江苏省（320000））的管理员可以决定此案件。"
    )
    assert "Shanghai (310000)、Jiangsu (320000)" in describe_error("en", other)
    twice = errors.CaseAlreadyDecided("again", metadata={"region": "310000", "admin": "admin-a"})
    assert "每位管理员只计一次" in describe_error("zh", twice)
    held = errors.UnitsHeld("held", metadata={"cases": "duplicateCases/dc-1"})
    assert describe_error("en", held).startswith("These units belong to an issuance")


def _site(
    lat: str,
    lon: str,
    datum: records_pb2.CoordinateDatum.ValueType = records_pb2.COORDINATE_DATUM_WGS84,
) -> Any:
    return records_pb2.SiteLocation(latitude=lat, longitude=lon, datum=datum)


def _case() -> duplicates_pb2.DuplicateCase:
    case = duplicates_pb2.DuplicateCase(
        name="duplicateCases/dc-0123456789ab",
        state=duplicates_pb2.DUPLICATE_CASE_STATE_OPEN,
        rule=duplicates_pb2.DUPLICATE_RULE_SAME_GRID_ACCOUNT,
        strength=duplicates_pb2.MATCH_STRENGTH_CERTAIN,
        deciding_regions=["310000", "320000"],
        required_approvals=2,
        evidence=duplicates_pb2.MatchEvidence(
            same_grid_account=True,
            same_owner_credit_code=True,
            distance_metres="31.5",
            same_category=True,
            capacity_ratio="1.0000",
        ),
    )
    for side, subject, region, site, wgs in (
        (case.first, QINGPU, "310000", _site("31.048120", "120.889350"), None),
        (
            case.second,
            WUJIANG,
            "320000",
            _site("31.045964", "120.893771", records_pb2.COORDINATE_DATUM_GCJ02),
            _site("31.048270", "120.889630"),
        ),
    ):
        side.subject, side.region = subject, region
        side.identity.owner_credit_code = "91310118MA1JL3K81K"
        side.identity.grid_account = "0310118004567"
        side.identity.site.CopyFrom(site)
        side.site_wgs84.CopyFrom(wgs or site)
        side.category = records_pb2.SCENARIO_CATEGORY_DISTRIBUTED_PV
    case.issuances.add(
        issuance="regions/320000/issuances/JS-QF-2025-0517",
        quantity_grams=310_000_000,
        outcome=duplicates_pb2.HOLD_OUTCOME_HELD,
    )
    return case


def _decide(
    case: duplicates_pb2.DuplicateCase,
    signer: EnvelopeSigner,
    region: str,
    admin: str,
    standing: str,
    stored_standing: str,
) -> None:
    payload = verdict_payload(case.name, "DUPLICATE", "同一电站", standing)
    case.decisions.add(
        region=region,
        admin=admin,
        resolution=duplicates_pb2.CASE_RESOLUTION_DUPLICATE,
        standing=stored_standing,
        comment="同一电站",
        envelope=signer.sign(CASE_VERDICT_TYPE, payload),
    )


def test_a_case_view_shows_each_side_as_filed_and_checks_each_signature() -> None:
    case = _case()
    key_a = ed25519.Ed25519PrivateKey.generate()
    signer = EnvelopeSigner(key_a)
    # An empty standing on DUPLICATE is stored as the earlier registration: it still verifies.
    _decide(case, signer, "310000", "admin-a", "", QINGPU)
    # A decision whose stored standing is not what was signed does not.
    _decide(case, signer, "310000", "admin-b", WUJIANG, QINGPU)
    keys = {
        signer.key_id: key_service_pb2.SigningKey(
            key_id=signer.key_id,
            owner="admin/admin-a",
            region="310000",
            public_key=raw_public_key(key_a),
        )
    }
    view = case_view(case, ("310000", "admin-a"), {"310000": 2, "320000": 1}, keys)
    assert (view.id, view.state, view.strength, view.rule) == (
        "dc-0123456789ab",
        "open",
        "certain",
        "same_grid_account",
    )
    assert view.second.site_filed == Site("31.045964", "120.893771", "gcj02")
    assert view.second.site_wgs84 == Site("31.048270", "120.889630", "wgs84")
    assert view.first.credit_code == view.second.credit_code == "91310118MA1JL3K81K"
    assert [(q.region, q.decided, q.required) for q in view.quorums] == [
        ("310000", 2, 2),
        ("320000", 0, 1),
    ]
    assert [d.signature_ok for d in view.decisions] == [True, False]
    assert view.decided_by_me == "duplicate"
    assert view.held_grams == 310_000_000
    assert case_view(case, ("320000", "admin-a"), {}).decided_by_me == ""
    # Another key, or another owner of the same key, does not verify either.
    forged = key_service_pb2.SigningKey()
    forged.CopyFrom(keys[signer.key_id])
    forged.owner = "admin/admin-b"
    assert (
        not case_view(case, ("310000", "x"), {}, {signer.key_id: forged}).decisions[0].signature_ok
    )
    body = duplicate_service_pb2.CaseVerdict.FromString(case.decisions[0].envelope.payload)
    assert body.standing == ""


def _plotted_metres(m: Any) -> float:
    """The distance between the plotted points in metres, by the map's own scale bar."""
    units = math.hypot(m.second.x - m.first.x, m.second.y - m.first.y)
    return float(units * m.scale_m / m.scale_px)


@pytest.mark.parametrize(
    ("north_m", "east_m", "scale"),
    [(20, 24, 50), (0, 49, 50), (-70, 20, 100), (400, -500, 1000), (3000, 100, 1000)],
)
def test_the_map_plots_both_sites_at_their_distance_with_a_threshold_scale(
    north_m: float, east_m: float, scale: int
) -> None:
    lat1, lon1 = 31.048120, 120.889350
    per_degree = EARTH_RADIUS_M * math.pi / 180
    lat2 = lat1 + north_m / per_degree
    lon2 = lon1 + east_m / (per_degree * math.cos(math.radians((lat1 + lat2) / 2)))
    m = site_map(
        Site(f"{lat1:.6f}", f"{lon1:.6f}", "wgs84"), Site(f"{lat2:.6f}", f"{lon2:.6f}", "wgs84")
    )
    assert m is not None
    assert m.scale_m == scale
    true = distance_m(lat1, lon1, float(f"{lat2:.6f}"), float(f"{lon2:.6f}"))
    assert math.isclose(_plotted_metres(m), true, rel_tol=0.01, abs_tol=0.5)
    for p in (m.first, m.second):  # both inside the frame, above the scale bar
        assert 0 < p.x < m.width and 0 < p.y < m.height - 30
    # North is up: the second site, north of the first, is drawn higher (smaller y).
    assert (m.second.y < m.first.y) == (north_m > 0)
    assert (m.second.x > m.first.x) == (east_m > 0)


def test_the_demo_pair_is_about_31_metres_apart_on_the_map() -> None:
    lat, lon = to_wgs84(31.045964, 120.893771, "GCJ02")
    m = site_map(
        Site("31.048120", "120.889350", "wgs84"), Site(f"{lat:.6f}", f"{lon:.6f}", "wgs84")
    )
    assert m is not None and m.scale_m == 50
    assert 30 < _plotted_metres(m) < 33
    assert [metres for metres, _ in m.rings] == [50, 100]  # 1000 m does not fit the frame
    assert site_map(None, Site("1", "2", "wgs84")) is None
    assert site_map(Site("x", "2", "wgs84"), Site("1", "2", "wgs84")) is None
