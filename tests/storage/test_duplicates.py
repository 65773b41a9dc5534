"""Duplicate detection through the real publish path and the external-list import, on SQLite and
PostgreSQL: each rule opens a case, near misses do not, a pair is opened once, and an open case
holds the overlapping issuances of both sides (at opening and when accepted later)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.engine import Connection
from yrd.interop.v1 import transfer_pb2, transfer_service_pb2

from adapters import default_registry
from gateway import errors
from gateway.client import EnvelopeSigner
from gateway.contract import ACTIVE, HELD, PROPOSAL_TYPE, RESERVED
from gateway.samples import sample_documents
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir, load_signing_key
from gateway.services.duplicates import import_external
from gateway.services.exchange import ExchangeService
from gateway.services.keys import KeyDirectory
from gateway.services.ledger import check_invariants
from gateway.services.transfers import TransferService
from gateway.storage.db import Database
from gateway.storage.direct import Statement
from gateway.storage.models import (
    AuditEntryRow,
    CaseHoldRow,
    DuplicateCaseRow,
    ExternalProjectRow,
    IdentitySubjectRow,
    UnitBlockRow,
)
from mutual_recognition import ApprovalPolicy
from mutual_recognition.duplicates import (
    EARTH_RADIUS_M,
    ExternalListRow,
    distance_m,
    from_wgs84_to_gcj02,
)
from mutual_recognition.identity import credit_code_check_char

SH, JS = "310000", "320000"
T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
# Qingpu and Wujiang share a border: a plant near it can be filed on both sides.
LAT, LON = 31.0455, 120.9012
APPROVALS = ApprovalPolicy(approvals={JS: 2})


def code(n: int) -> str:
    """A unified social credit code with a valid check character."""
    first17 = f"9131000{n:010d}"
    return first17 + credit_code_check_char(first17)


def north(metres: float) -> str:
    """The latitude (6 decimals) ``metres`` north of LAT."""
    return f"{LAT + math.degrees(metres / EARTH_RADIUS_M):.6f}"


def sh_project(
    pid: str,
    *,
    lat: str | None = None,
    lon: str = f"{LON:.6f}",
    datum: str | None = None,
    credit: str | None = None,
    account: str | None = None,
    mw: str = "0.85",
    title: str = "青浦某园区屋顶分布式光伏",
) -> bytes:
    doc: dict[str, object] = {
        "record_type": "project",
        "project_no": pid,
        "methodology_no": "SHCI-M-PV-2024-01",
        "methodology_version": "1.0",
        "project_name": title,
        "owner_name": "上海某新能源科技有限公司",
        "district_code": "310118",
        "capacity_mw": mw,
        "grid_connection_date": "2023-06-30",
        "crediting_start": "2023-07-01",
        "crediting_end": "2033-06-30",
        "status": "registered",
    }
    if lat is not None:
        doc.update(site_lat=lat, site_lon=lon)
        if datum:
            doc["site_datum"] = datum
    if credit:
        doc["owner_credit_code"] = credit
    if account:
        doc["grid_account_no"] = account
    return json.dumps(doc, ensure_ascii=False).encode()


def sh_issuance(iid: str, pid: str, start: str, end: str, first: int) -> bytes:
    """One tonne (1000 kilogram serials from ``first``) for the period [start, end]."""
    return json.dumps(
        {
            "record_type": "issuance",
            "issuance_no": iid,
            "project_no": pid,
            "vintage": int(start[:4]),
            "monitoring_start": start,
            "monitoring_end": end,
            "reduction_tco2e": "1.000",
            "serial_start": first,
            "serial_end": first + 999,
        }
    ).encode()


def js_project(
    pid: str,
    *,
    lat: str | None = None,
    lon: str = f"{LON:.6f}",
    datum: str | None = None,
    credit: str | None = None,
    account: str | None = None,
    kw: str = "850",
) -> bytes:
    extra = ""
    if credit:
        extra += f"<YZXYDM>{credit}</YZXYDM>"
    if lat is not None:
        extra += f"<WD>{lat}</WD><JD>{lon}</JD>"
        if datum:
            extra += f"<ZBX>{datum}</ZBX>"
    if account:
        extra += f"<DWHH>{account}</DWHH>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?><JSTPH LX="XM">'
        f"<XMBH>{pid}</XMBH><FFXBH>JS-FFX-GF-001</FFXBH><BBH>V01</BBH>"
        "<XMMC>吴江区厂房屋顶分布式光伏项目</XMMC><YZMC>苏州某光伏电力有限公司</YZMC>"
        f"<XZQH>320509</XZQH><ZJRL>{kw}</ZJRL><BWRQ>20230915</BWRQ><JRQKS>20231001</JRQKS>"
        f"<JRQJS>20330930</JRQJS><ZT>1</ZT>{extra}</JSTPH>"
    ).encode()


def js_issuance(iid: str, pid: str, start: str, end: str, first: int) -> bytes:
    """One tonne (one tonne serial ``first``) for the period [start, end] (YYYYMMDD)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><JSTPH LX="QF">'
        f"<QFBH>{iid}</QFBH><XMBH>{pid}</XMBH><ND>{start[:4]}</ND>"
        f"<JCKS>{start}</JCKS><JCJS>{end}</JCJS><JPL>1 tCO2e</JPL>"
        f"<XLHQS>{first}</XLHQS><XLHZZ>{first}</XLHZZ></JSTPH>"
    ).encode()


class World:
    """A database with Shanghai's and Jiangsu's PV methodologies, publishing through the real
    exchange service (the clock moves one minute per publish, so registrations are ordered)."""

    def __init__(self, db: Database, pki: PKIDir) -> None:
        self.db = db
        self.now = T0
        KeyDirectory(db).import_from_pki(pki)
        self.exchange = ExchangeService(
            db, default_registry, clock=lambda: self.now, approvals=APPROVALS, sign_time_skew=None
        )
        self.signers = {
            r: EnvelopeSigner(load_signing_key(pki.registry(r).signing_key)) for r in (SH, JS)
        }
        for region in (SH, JS):
            _, methodology = sample_documents(region)[0]
            self.publish(region, methodology)

    def publish(self, region: str, *documents: bytes) -> None:
        self.now += dt.timedelta(minutes=1)
        content_type = default_registry.get(region).content_types[0]
        envelopes = [self.signers[region].sign(content_type, d) for d in documents]
        outcomes = self.exchange.publish(Identity(Role.REGISTRY, region), envelopes)
        assert all(o.accepted for o in outcomes), [o.error for o in outcomes]

    def cases(self) -> list[DuplicateCaseRow]:
        with self.db.transaction() as s:
            rows = list(s.execute(select(DuplicateCaseRow).order_by(DuplicateCaseRow.open_time)))
            s.expunge_all()
            return [r[0] for r in rows]

    def holds(self) -> dict[str, str]:
        with self.db.transaction() as s:
            return {r.issuance: r.outcome for r in s.execute(select(CaseHoldRow)).scalars()}

    def block_states(self) -> dict[str, set[str]]:
        """The states of each issuance's blocks, by issuance name."""
        found: dict[str, set[str]] = {}
        with self.db.transaction() as s:
            for name, state in s.execute(select(UnitBlockRow.issuance_name, UnitBlockRow.state)):
                found.setdefault(name, set()).add(state)
        return found

    def audit_kinds(self, prefix: str) -> list[tuple[str, str, dict[str, object]]]:
        with self.db.transaction() as s:
            rows = s.execute(
                select(AuditEntryRow.kind, AuditEntryRow.subject, AuditEntryRow.detail)
                .where(AuditEntryRow.kind.like(prefix + "%"))
                .order_by(AuditEntryRow.sequence)
            ).all()
        return [(k, subj, json.loads(d)) for k, subj, d in rows]


@pytest.fixture
def world(database: Database, pki: PKIDir) -> World:
    return World(database, pki)


def sh_name(pid: str) -> str:
    return f"regions/{SH}/projects/{pid}"


def js_name(pid: str) -> str:
    return f"regions/{JS}/projects/{pid}"


# -- the rules -----------------------------------------------------------------------------------


def test_same_grid_account_within_1_km_is_certain(world: World) -> None:
    world.publish(SH, sh_project("SH-1", lat=north(0), credit=code(1), account="3100012345"))
    world.publish(JS, js_project("JS-1", lat=north(900), credit=code(2), account="3100012345"))
    [case] = world.cases()
    assert (case.first_subject, case.second_subject) == (sh_name("SH-1"), js_name("JS-1"))
    assert case.state == "OPEN"
    assert (case.rule, case.strength) == (
        "DUPLICATE_RULE_SAME_GRID_ACCOUNT",
        "MATCH_STRENGTH_CERTAIN",
    )
    evidence = json.loads(case.evidence)
    assert evidence["same_grid_account"] and not evidence["same_owner_credit_code"]
    assert 899.0 <= float(evidence["distance_metres"]) <= 901.0
    assert case.deciding_regions == f"{SH},{JS}"
    assert case.required_approvals == 2  # Jiangsu's quorum (the larger)
    assert case.open_time == world.now
    [(kind, subject, detail)] = world.audit_kinds("duplicate_case.")
    assert (kind, subject) == ("duplicate_case.opened", f"duplicateCases/{case.case_id}")
    assert detail["v"] == 2 and detail["rule"] == case.rule and detail["second"] == js_name("JS-1")


def test_same_owner_within_100_m_is_probable(world: World) -> None:
    world.publish(SH, sh_project("SH-1", lat=north(0), credit=code(1)))
    world.publish(JS, js_project("JS-1", lat=north(80), credit=code(1), kw="300"))
    [case] = world.cases()
    assert case.strength == "MATCH_STRENGTH_PROBABLE"
    evidence = json.loads(case.evidence)
    assert evidence["same_owner_credit_code"] and evidence["same_category"]
    assert evidence["capacity_ratio"] == "0.3529"  # 300 kW / 850 kW, truncated


def test_nearby_similar_plant_filed_in_gcj02_is_possible(world: World) -> None:
    world.publish(SH, sh_project("SH-1", lat=north(0), mw="0.85"))
    # The same roof 30 m north, as a Chinese map service shows it (GCJ-02: ~500 m off in WGS-84).
    g_lat, g_lon = from_wgs84_to_gcj02(float(north(30)), LON)
    assert distance_m(g_lat, g_lon, LAT, LON) > 300
    world.publish(
        JS, js_project("JS-1", lat=f"{g_lat:.6f}", lon=f"{g_lon:.6f}", datum="GCJ02", kw="830")
    )
    [case] = world.cases()
    assert case.strength == "MATCH_STRENGTH_POSSIBLE"
    evidence = json.loads(case.evidence)
    assert 29.5 <= float(evidence["distance_metres"]) <= 30.5
    assert evidence["capacity_ratio"] == "0.9764"
    with world.db.transaction() as s:
        subject = s.get(IdentitySubjectRow, js_name("JS-1"))
        assert subject is not None and subject.capacity_w == "830000" and subject.region == JS
        assert abs(subject.lat_e7 - round(float(north(30)) * 1e7)) < 20  # WGS-84, ≈ 2 mm


def test_near_misses_open_no_case(world: World) -> None:
    world.publish(SH, sh_project("SH-1", lat=north(0), credit=code(1), account="3100012345"))
    world.publish(
        JS,
        # the same owner 120 m away (probable needs 100 m)
        js_project("JS-1", lat=north(120), credit=code(1)),
        # 60 m away, same capacity, no common key (possible needs 50 m)
        js_project("JS-2", lat=north(-60), kw="850"),
        # 45 m away but 10 % smaller (possible needs 5 %)
        js_project("JS-3", lat=north(45), kw="765"),
        # the same account, another owner, 1.5 km away (certain needs the owner or 1 km)
        js_project("JS-4", lat=north(1500), credit=code(2), account="3100012345"),
        # the same account and owner but no site, and another owner: no rule
        js_project("JS-5", account="3100012345", credit=code(3)),
    )
    assert world.cases() == []


def test_two_filings_in_the_same_region_are_decided_by_that_region(world: World) -> None:
    world.publish(SH, sh_project("SH-1", credit=code(1), account="3100012345"))
    world.publish(SH, sh_project("SH-2", credit=code(1), account="3100012345"))
    [case] = world.cases()
    assert (case.first_subject, case.second_subject) == (sh_name("SH-1"), sh_name("SH-2"))
    assert case.deciding_regions == SH and case.required_approvals == 1


def test_a_republished_project_is_rematched_but_never_opens_a_second_case(world: World) -> None:
    world.publish(SH, sh_project("SH-1", lat=north(0), credit=code(1)))
    world.publish(JS, js_project("JS-1", lat=north(50), credit=code(1)))
    [case] = world.cases()
    # The Shanghai project files again (a new revision with a new title): same pair, no new case;
    # its subject row follows the revision but keeps when it was first registered.
    first_registered = case.open_time - dt.timedelta(minutes=1)  # SH-1 was published then
    world.publish(SH, sh_project("SH-1", lat=north(0), credit=code(1), title="改名后的项目"))
    world.publish(JS, js_project("JS-1", lat=north(60), credit=code(1)))
    assert [c.case_id for c in world.cases()] == [case.case_id]
    with world.db.transaction() as s:
        subject = s.get(IdentitySubjectRow, sh_name("SH-1"))
        assert subject is not None
        assert subject.title == "改名后的项目" and subject.registered_time == first_registered
    # Nor once the pair is resolved: the case stays the only one.
    with world.db.transaction() as s:
        s.execute(update(DuplicateCaseRow).values(state="DISTINCT", resolution="DISTINCT"))
    world.publish(JS, js_project("JS-1", lat=north(40), credit=code(1)))
    assert [(c.case_id, c.state) for c in world.cases()] == [(case.case_id, "DISTINCT")]
    # A republication that newly matches a third project opens that pair only.
    world.publish(SH, sh_project("SH-2", lat=north(5000), credit=code(1), account="3200054321"))
    assert len(world.cases()) == 1  # 5 km from both: the same owner alone is not enough
    world.publish(JS, js_project("JS-1", lat=north(40), credit=code(1), account="3200054321"))
    cases = world.cases()
    # JS-1 registered first (its first revision), whatever revision opened the case.
    assert len(cases) == 2
    assert (cases[1].first_subject, cases[1].second_subject) == (js_name("JS-1"), sh_name("SH-2"))


# -- holds ---------------------------------------------------------------------------------------


def test_an_opened_case_holds_the_overlapping_issuances_and_later_ones_at_acceptance(
    world: World,
) -> None:
    sh_i = [f"regions/{SH}/issuances/SH-I{n}" for n in (1, 2)]
    js_i = [f"regions/{JS}/issuances/JS-Q{n}" for n in (1, 2, 3)]
    world.publish(
        SH,
        sh_project("SH-1", lat=north(0), credit=code(1), account="3100012345"),
        sh_issuance("SH-I1", "SH-1", "2024-01-01", "2024-12-31", 1_000_001),
        sh_issuance("SH-I2", "SH-1", "2026-01-01", "2026-06-30", 1_001_001),
    )
    # Jiangsu files the same plant without identity keys first, with an issuance for mid-2024 to
    # mid-2025: no case yet, nothing held.
    world.publish(JS, js_project("JS-1"), js_issuance("JS-Q1", "JS-1", "20240701", "20250630", 1))
    assert world.cases() == [] and world.holds() == {}
    # A revision adds the keys: the case opens and holds SH-I1 and JS-Q1 (they overlap); SH-I2
    # (2026) overlaps nothing issued by Jiangsu and stays active.
    world.publish(JS, js_project("JS-1", lat=north(10), credit=code(1), account="3100012345"))
    [case] = world.cases()
    assert world.holds() == {sh_i[0]: "held", js_i[0]: "held"}
    states = world.block_states()
    assert states[sh_i[0]] == {HELD} and states[js_i[0]] == {HELD} and states[sh_i[1]] == {ACTIVE}
    assert check_invariants(world.db).problems == ()
    # Later Jiangsu issuances: one overlapping SH-I2 is held at acceptance, and holds SH-I2 too;
    # one in 2030 overlaps nothing Shanghai issued and stays active.
    world.publish(
        JS,
        js_issuance("JS-Q2", "JS-1", "20260301", "20260331", 2),
        js_issuance("JS-Q3", "JS-1", "20300101", "20301231", 3),
    )
    assert world.holds() == {sh_i[0]: "held", js_i[0]: "held", sh_i[1]: "held", js_i[1]: "held"}
    states = world.block_states()
    assert states[js_i[1]] == {HELD} and states[sh_i[1]] == {HELD} and states[js_i[2]] == {ACTIVE}
    assert check_invariants(world.db).problems == ()
    holds = [(s, d) for k, s, d in world.audit_kinds("duplicate_case.hold")]
    assert [d["issuances"] for _, d in holds] == [
        sorted([sh_i[0], js_i[0]]),
        sorted([sh_i[1], js_i[1]]),
    ]
    assert all(s == f"duplicateCases/{case.case_id}" for s, _ in holds)
    assert holds[0][1]["held_grams"] == 1_000_000 + 1_000_000  # a tonne on each side
    # Publishing a Shanghai issuance for 2030 now holds it and Jiangsu's 2030 one.
    world.publish(SH, sh_issuance("SH-I3", "SH-1", "2030-06-01", "2030-06-30", 1_002_001))
    assert world.block_states()[js_i[2]] == {HELD}
    assert check_invariants(world.db).problems == ()


def test_a_hold_leaves_the_units_of_a_pending_transfer_reserved(world: World) -> None:
    name = f"regions/{SH}/issuances/SH-I1"
    world.publish(
        SH,
        sh_project("SH-1", lat=north(0), credit=code(1)),
        sh_issuance("SH-I1", "SH-1", "2024-01-01", "2024-12-31", 1_000_001),
    )
    # Shanghai proposes to move 400 kg of the tonne to Jiangsu (a real, pending transfer).
    proposal = transfer_service_pb2.TransferProposal(
        purpose=transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
        transfer_id="t-1",
        destination_region=JS,
        units=transfer_pb2.UnitSelection(
            quantity=transfer_pb2.QuantityFromProject(
                project=sh_name("SH-1"), vintage=2024, quantity_grams=400_000
            )
        ),
    ).SerializeToString()
    transfers = TransferService(world.db, clock=lambda: world.now, sign_time_skew=None)
    transfers.propose(Identity(Role.REGISTRY, SH), world.signers[SH].sign(PROPOSAL_TYPE, proposal))
    world.publish(JS, js_project("JS-1", lat=north(20), credit=code(1)))
    world.publish(JS, js_issuance("JS-Q1", "JS-1", "20240101", "20241231", 1))
    assert world.holds()[name] == "held"
    assert world.block_states()[name] == {RESERVED, HELD}
    with world.db.transaction() as s:
        grams = {
            state: e - b + 1
            for state, b, e in s.execute(
                select(
                    UnitBlockRow.state, UnitBlockRow.serial_start, UnitBlockRow.serial_end
                ).where(UnitBlockRow.issuance_name == name)
            )
        }
    assert grams == {RESERVED: 400_000, HELD: 600_000}
    assert check_invariants(world.db).problems == ()


# -- external lists ------------------------------------------------------------------------------


def external(pid: str, **changes: object) -> ExternalListRow:
    row: dict[str, object] = {
        "scheme": "CCER",
        "scheme_project_id": pid,
        "title": "青浦屋顶光伏（CCER）",
        "owner_credit_code": code(1),
        "latitude": north(5),
        "longitude": f"{LON:.6f}",
        "datum": "WGS84",
        "grid_account": "3100012345",
        "category": "SCENARIO_CATEGORY_DISTRIBUTED_PV",
        "capacity_value": "0.85",
        "capacity_unit": "MW",
        "registration_date": dt.date(2023, 1, 10),
        "credit_start": dt.date(2023, 1, 1),
        "credit_end": dt.date(2024, 6, 30),
    }
    row.update(changes)
    return ExternalListRow(**row)  # type: ignore[arg-type]


def test_an_external_list_match_opens_a_case_with_one_external_side(world: World) -> None:
    world.publish(
        SH,
        sh_project("SH-1", lat=north(0), credit=code(1), account="3100012345"),
        sh_issuance("SH-I1", "SH-1", "2024-01-01", "2024-12-31", 1_000_001),
        sh_issuance("SH-I2", "SH-1", "2025-01-01", "2025-12-31", 1_001_001),
    )
    rows = [
        external("0001"),
        external("0002"),
        external(
            "0003", grid_account="", latitude="", longitude="", datum="", owner_credit_code=code(4)
        ),
    ]
    now = world.now + dt.timedelta(minutes=1)
    outcome = import_external(world.db, rows, "operator/alice", approvals=APPROVALS, now=now)
    # Both listed copies match the Shanghai project (never each other); the third matches nothing.
    assert outcome.rows == 3 and outcome.scheme == "CCER" and len(outcome.digest) == 64
    assert sorted(c.first for c in outcome.cases) == [
        "schemes/CCER/projects/0001",
        "schemes/CCER/projects/0002",
    ]
    cases = world.cases()
    assert len(cases) == 2
    for case in cases:
        # The CCER registration (2023-01-10) is the earlier one; Shanghai alone decides.
        assert case.second_subject == sh_name("SH-1") and case.deciding_regions == SH
        assert case.strength == "MATCH_STRENGTH_CERTAIN" and case.required_approvals == 1
    # The crediting period (to mid-2024) overlaps SH-I1 only.
    held = f"regions/{SH}/issuances/SH-I1"
    assert world.holds() == {held: "held"}
    assert world.block_states()[held] == {HELD}
    assert world.block_states()[f"regions/{SH}/issuances/SH-I2"] == {ACTIVE}
    assert check_invariants(world.db).problems == ()
    [(_, subject, detail)] = world.audit_kinds("external_list.")
    assert subject == "schemes/CCER" and detail["rows"] == 3 and detail["digest"] == outcome.digest
    with world.db.transaction() as s:
        stored = s.get(ExternalProjectRow, "schemes/CCER/projects/0001")
        assert stored is not None and stored.imported_by == "operator/alice"
        assert stored.capacity_value == "0.85" and stored.capacity_unit == "MW"
        subject_row = s.get(IdentitySubjectRow, "schemes/CCER/projects/0001")
        assert subject_row is not None and subject_row.kind == "external"
        assert subject_row.capacity_w == "850000" and subject_row.region is None
    # Imported again: the same pairs are never opened twice.
    again = import_external(world.db, rows, "operator/alice", approvals=APPROVALS, now=now)
    assert again.cases == () and len(world.cases()) == 2
    # A region project published later is matched against the list too.
    world.publish(JS, js_project("JS-9", credit=code(4)))
    assert len(world.cases()) == 2  # no site, no account: nothing to match on
    world.publish(JS, js_project("JS-8", lat=north(7), kw="850"))
    assert {c.second_subject for c in world.cases()} == {sh_name("SH-1"), js_name("JS-8")}


def test_an_invalid_external_list_stores_nothing(world: World) -> None:
    rows = [
        external("0001"),
        external("0002", category="PV"),
        external("0003", latitude="31.1", longitude=""),
        external("0004", capacity_unit="hp"),
        external("0001"),
    ]
    with pytest.raises(errors.ExternalListInvalid) as caught:
        import_external(world.db, rows, "operator/alice", approvals=APPROVALS, now=world.now)
    assert set(caught.value.field_errors) == {"row 2", "row 3", "row 4", "row 5"}
    with world.db.transaction() as s:
        assert s.execute(select(ExternalProjectRow)).first() is None
    with pytest.raises(errors.ExternalListInvalid):
        import_external(
            world.db,
            [external("1"), external("2", scheme="CEA")],
            "operator/alice",
            approvals=APPROVALS,
            now=world.now,
        )


# -- cost on the publish path -------------------------------------------------------------------


def test_detection_costs_an_upsert_and_two_indexed_reads_per_project(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []

    def note(sql: str) -> None:
        if "identity_subjects" in sql or "duplicate_cases" in sql:
            statements.append(sql)

    def seen(conn: Connection, cursor: object, sql: str, *args: object) -> None:
        note(sql)

    # The hot statements run on the DBAPI cursor (gateway.storage.direct), out of the engine's
    # sight: they are counted where they run.
    for method in ("rows", "execute"):
        original = getattr(Statement, method)

        def counted(self: Statement, conn: Connection, *a: Any, _f: Any = original) -> Any:
            note(self._plan(conn.dialect).sql)
            return _f(self, conn, *a)

        monkeypatch.setattr(Statement, method, counted)
    event.listen(world.db.engine, "before_cursor_execute", seen)
    try:
        world.publish(
            SH,
            *(
                sh_project(f"SH-{n}", lat=north(300 * n), credit=code(n), account=f"31000{n:05d}")
                for n in range(20)
            ),
        )
    finally:
        event.remove(world.db.engine, "before_cursor_execute", seen)
    assert world.cases() == []
    assert len(statements) == 3 * 20
    if world.db.engine.dialect.name == "sqlite":
        with world.db.engine.connect() as conn:
            for where in ("cell IN (1, 2, 3)", "grid_account = '1'"):
                plan = " ".join(
                    str(r[-1])
                    for r in conn.execute(
                        text(f"EXPLAIN QUERY PLAN SELECT * FROM identity_subjects WHERE {where}")
                    )
                )
                assert "USING INDEX" in plan, plan
