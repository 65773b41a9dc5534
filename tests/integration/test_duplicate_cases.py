"""Duplicate cases end to end over real mTLS, on SQLite and PostgreSQL, through the SDK only: a
rooftop plant filed in Shanghai and in Jiangsu with the same identity keys opens a case when the
second registry publishes it; both issuances are held (a held unit is refused on transfer and on
retirement with UNITS_HELD); a DISTINCT resolution needs both regions' quorums (two
administrators each here) and releases; a DUPLICATE resolution cancels the side that does not
stand, ends its pending transfer and lists its units moved or retired before the case as
findings; an administrator of an uninvolved region and a second decision by the same
administrator are refused; the ledger's invariants hold throughout, and so does reconciliation:
while the case is open and after its resolution, each region whose units are concerned submits
the holdings the gateway gives it (held units reported as HELD by one region, as ACTIVE by
another) and its run finds nothing; a registry that still counts cancelled units as active is
told exactly those serials."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from yrd.interop.v1 import duplicates_pb2, reconciliation_pb2, records_pb2, transfer_pb2

from gateway import errors
from gateway.client import GatewayClient
from gateway.config import GatewaySettings
from gateway.security.identity import Role
from gateway.security.pki import PKIDir
from gateway.server import GatewayServer
from gateway.services.ledger import check_invariants
from gateway.storage.db import Database
from tests.duplicate_docs import documents, identity

SH, JS, ZJ = "310000", "320000", "330000"
SH_PROJECT = "regions/310000/projects/SHCI-P-2024-000123"
JS_PROJECT = "regions/320000/projects/JS-XM-2024-0456"
SH_ISSUANCE = "regions/310000/issuances/SHCI-I-2025-000045"
JS_ISSUANCE = "regions/320000/issuances/JS-QF-2025-0012"
SH_FIRST, JS_FIRST = 1_000_001_000, 20_001_000_000
SH_LAST = 1_392_700_999
NEUTRAL = transfer_pb2.TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY
D = duplicates_pb2
HELD, ACTIVE = records_pb2.UNIT_BLOCK_STATE_HELD, records_pb2.UNIT_BLOCK_STATE_ACTIVE
CANCELLED = records_pb2.UNIT_BLOCK_STATE_CANCELLED
R = reconciliation_pb2


@pytest.fixture
def gateway(pki: PKIDir, database: Database, tmp_path: Path) -> Iterator[GatewayServer]:
    """A gateway whose policy needs two administrators of Shanghai and of Jiangsu."""
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        cert_dir=pki.root,
        metrics_listen="",
        log_level="warning",
        recognition_enforced=False,
        scheduler_enabled=False,
        recognition_approvals={SH: 2, JS: 2},
    )
    gw = GatewayServer(settings, db=database)
    gw.start()
    yield gw
    gw.stop(grace=0.5)


@pytest.fixture
def client(gateway: GatewayServer, pki: PKIDir) -> Iterator[Callable[..., GatewayClient]]:
    """``client(region)`` is the region's registry; ``client(region, "admin-a")`` an
    administrator of it (one connection each, closed afterwards)."""
    opened: dict[tuple[str, str], GatewayClient] = {}

    def make(region: str, admin: str = "") -> GatewayClient:
        if (region, admin) not in opened:
            opened[(region, admin)] = GatewayClient(
                f"127.0.0.1:{gateway.port}",
                pki,
                region=region,
                role=Role.ADMIN if admin else Role.REGISTRY,
                name=admin or None,
            )
        return opened[(region, admin)]

    yield make
    for c in opened.values():
        c.close()


def publish(c: GatewayClient, region: str) -> None:
    results = c.publish(documents(region, identity()))
    assert [r.accepted for r in results] == [True, True, True], [r.message for r in results]


def block_state(c: GatewayClient, origin: str, serial: int) -> tuple[str, int]:
    """(holder region, state) of the block holding ``serial`` of ``origin``."""
    for b in c.holdings():
        if b.origin_region == origin and b.serials.start <= serial <= b.serials.end:
            return b.holder_region, b.state
    raise AssertionError(f"no block of {origin} holds {serial}")


def invariants(db: Database) -> None:
    report = check_invariants(db)
    assert report.ok, report.problems


def the_case(c: GatewayClient) -> duplicates_pb2.DuplicateCase:
    (case,) = c.list_duplicate_cases()
    return case


def mirrored(
    c: GatewayClient, region: str, held_as: records_pb2.UnitBlockState.ValueType
) -> list[R.HeldBlock]:
    """The holdings of a registry that mirrors the ledger: the blocks the gateway gives
    ``region`` (ListUnitBlocks), its held ones reported as ``held_as`` (HELD or ACTIVE)."""
    return [
        R.HeldBlock(
            origin_region=b.origin_region,
            serials=b.serials,
            state=held_as if b.state == HELD else b.state,
        )
        for b in c.holdings(region)
    ]


def reconcile(
    client: Callable[..., GatewayClient], region: str, blocks: list[R.HeldBlock]
) -> R.ReconciliationReport:
    """``region``'s registry submits ``blocks`` (and every transfer completed with it) over
    mTLS; its administrator runs the reconciliation."""
    c = client(region)
    done = transfer_pb2.TRANSFER_STATE_COMPLETED
    completed = [t.name for t in c.list_transfers(source=region, state=done)]
    completed += [t.name for t in c.list_transfers(destination=region, state=done)]
    c.submit_holdings(dt.datetime.now(dt.UTC), blocks, completed)
    return client(region, "admin-a").run_reconciliation(region)


def reconciled(
    client: Callable[..., GatewayClient],
    held_as: dict[str, records_pb2.UnitBlockState.ValueType],
) -> dict[str, int]:
    """Each region of ``held_as`` reconciles its mirrored holdings: COMPLETED, nothing found.
    Returns the grams each region reported held (as HELD or ACTIVE), the regions with none
    left out."""
    reported: dict[str, int] = {}
    for region, state in held_as.items():
        blocks = client(region).holdings(region)
        held = sum(b.serials.end - b.serials.start + 1 for b in blocks if b.state == HELD)
        if held:
            reported[region] = held
        report = reconcile(client, region, mirrored(client(region), region, state))
        assert report.region == region
        assert report.status == R.RECONCILIATION_STATUS_COMPLETED, list(report.discrepancies)
        assert list(report.discrepancies) == []
    return reported


def test_held_units_refused_and_distinct_by_both_quorums_releases(
    client: Callable[..., GatewayClient], database: Database
) -> None:
    sh, js = client(SH), client(JS)
    publish(sh, SH)
    assert sh.list_duplicate_cases() == []
    publish(js, JS)  # the same plant: a case opens, both 2024 issuances are held
    case = the_case(js)
    assert case.state == D.DUPLICATE_CASE_STATE_OPEN
    assert case.rule == D.DUPLICATE_RULE_SAME_GRID_ACCOUNT
    assert case.strength == D.MATCH_STRENGTH_CERTAIN
    assert (case.first.subject, case.second.subject) == (SH_PROJECT, JS_PROJECT)
    assert case.first.identity == identity()
    assert case.evidence.same_grid_account and case.evidence.distance_metres == "0.0"
    assert list(case.deciding_regions) == [SH, JS]
    assert {h.issuance: h.outcome for h in case.issuances} == {
        SH_ISSUANCE: D.HOLD_OUTCOME_HELD,
        JS_ISSUANCE: D.HOLD_OUTCOME_HELD,
    }
    assert block_state(sh, SH, SH_FIRST) == (SH, records_pb2.UNIT_BLOCK_STATE_HELD)
    assert client(ZJ).get_duplicate_case(case.name) == case  # any registry reads it
    invariants(database)
    # Shanghai's registry knows of the hold, Jiangsu's still counts its units active: both agree.
    assert reconciled(client, {SH: HELD, JS: ACTIVE}) == {SH: 392_700_000, JS: 502_000_000}

    # A held unit is neither transferred nor retired.
    with pytest.raises(errors.UnitsHeld) as moved:
        sh.propose_transfer("t-held", ZJ, origin=SH, ranges=[(SH_FIRST, SH_FIRST + 999)])
    assert case.name in moved.value.metadata["cases"]
    with pytest.raises(errors.UnitsHeld) as retired:
        js.retire("r-held", NEUTRAL, "某公司", origin=JS, ranges=[(JS_FIRST, JS_FIRST + 999_999)])
    assert case.name in retired.value.metadata["cases"]

    # Deciding: administrators only, of the deciding regions; one decision per administrator.
    with pytest.raises(errors.RoleNotAllowed):
        sh.resolve_duplicate_case(case.name, "DISTINCT", "a registry does not decide")
    with pytest.raises(errors.NotDecidingRegion):
        client(ZJ, "admin-a").resolve_duplicate_case(case.name, "DISTINCT", "不相干")
    after = client(SH, "admin-a").resolve_duplicate_case(case.name, "DISTINCT", "两个电站")
    assert after.state == D.DUPLICATE_CASE_STATE_OPEN
    with pytest.raises(errors.CaseAlreadyDecided):
        client(SH, "admin-a").resolve_duplicate_case(case.name, "DUPLICATE", "改主意")
    with pytest.raises(errors.StandingInvalid):
        client(JS, "admin-a").resolve_duplicate_case(
            case.name, "DISTINCT", "x", standing=JS_PROJECT
        )
    client(SH, "admin-b").resolve_duplicate_case(case.name, "DISTINCT", "同意")
    client(JS, "admin-a").resolve_duplicate_case(case.name, "DISTINCT", "两个电站")
    assert js.get_duplicate_case(case.name).state == D.DUPLICATE_CASE_STATE_OPEN  # 2 of Jiangsu
    assert block_state(js, JS, JS_FIRST)[1] == records_pb2.UNIT_BLOCK_STATE_HELD
    done = client(JS, "admin-b").resolve_duplicate_case(case.name, "DISTINCT", "同意")
    assert done.state == D.DUPLICATE_CASE_STATE_DISTINCT
    assert done.resolution == D.CASE_RESOLUTION_DISTINCT
    assert [(d.region, d.admin) for d in done.decisions] == [
        (SH, "admin-a"),
        (SH, "admin-b"),
        (JS, "admin-a"),
        (JS, "admin-b"),
    ]
    assert all(d.envelope.signature for d in done.decisions)
    assert {h.outcome for h in done.issuances} == {D.HOLD_OUTCOME_RELEASED}
    with pytest.raises(errors.DuplicateCaseClosed):
        client(JS, "admin-b").resolve_duplicate_case(case.name, "DUPLICATE", "again")
    # Released: the units move and retire again.
    assert block_state(sh, SH, SH_FIRST) == (SH, records_pb2.UNIT_BLOCK_STATE_ACTIVE)
    sh.propose_transfer("t-free", ZJ, origin=SH, ranges=[(SH_FIRST, SH_FIRST + 999)])
    js.retire("r-free", NEUTRAL, "某公司", origin=JS, ranges=[(JS_FIRST, JS_FIRST + 999_999)])
    assert sh.list_duplicate_cases(state="DISTINCT") == [done]
    assert sh.list_duplicate_cases(state="OPEN") == []
    invariants(database)
    assert reconciled(client, {SH: HELD, JS: ACTIVE}) == {}  # nothing held any more


def test_duplicate_cancels_the_other_side_and_lists_findings(
    client: Callable[..., GatewayClient], database: Database
) -> None:
    sh, js, zj = client(SH), client(JS), client(ZJ)
    publish(sh, SH)
    # Before Jiangsu files the same plant: Shanghai moved a tonne to Zhejiang, retired half a
    # tonne, and proposes another tonne to Zhejiang (pending when the case opens).
    moved = sh.propose_transfer("t-1", ZJ, origin=SH, ranges=[(SH_FIRST, SH_FIRST + 999_999)])
    zj.accept_transfer(moved.name)
    sh.retire(
        "r-1", NEUTRAL, "进博会", origin=SH, ranges=[(SH_FIRST + 1_000_000, SH_FIRST + 1_499_999)]
    )
    pending = sh.propose_transfer(
        "t-2", ZJ, origin=SH, ranges=[(SH_FIRST + 2_000_000, SH_FIRST + 2_999_999)]
    )
    publish(js, JS)
    case = the_case(sh)
    assert block_state(zj, SH, SH_FIRST) == (ZJ, records_pb2.UNIT_BLOCK_STATE_HELD)
    with pytest.raises(errors.UnitsHeld):
        zj.accept_transfer(pending.name)  # refused, the transfer stays pending
    assert zj.get_transfer(pending.name).state == transfer_pb2.TRANSFER_STATE_PROPOSED
    invariants(database)
    # Shanghai's held, reserved and retired units, Zhejiang's received ones, Jiangsu's issuance.
    assert reconciled(client, {SH: HELD, ZJ: ACTIVE, JS: ACTIVE}) == {
        SH: 392_700_000 - 2_500_000,
        ZJ: 1_000_000,
        JS: 502_000_000,
    }

    # Jiangsu's registration stands (both regions, two administrators each).
    for region in (SH, JS):
        for admin in ("admin-a", "admin-b"):
            done = client(region, admin).resolve_duplicate_case(
                case.name, "DUPLICATE", "同一电站，江苏登记为准", standing=JS_PROJECT
            )
    assert done.state == D.DUPLICATE_CASE_STATE_DUPLICATE
    assert done.standing == JS_PROJECT
    assert {h.issuance: h.outcome for h in done.issuances} == {
        SH_ISSUANCE: D.HOLD_OUTCOME_CANCELLED,
        JS_ISSUANCE: D.HOLD_OUTCOME_RELEASED,
    }
    findings = [
        (f.issuance, f.serials.start, f.serials.end, f.holder_region, f.state, f.quantity_grams)
        for f in done.findings
    ]
    assert findings == [
        (
            SH_ISSUANCE,
            SH_FIRST,
            SH_FIRST + 999_999,
            ZJ,
            records_pb2.UNIT_BLOCK_STATE_CANCELLED,
            1_000_000,
        ),
        (
            SH_ISSUANCE,
            SH_FIRST + 1_000_000,
            SH_FIRST + 1_499_999,
            SH,
            records_pb2.UNIT_BLOCK_STATE_RETIRED,
            500_000,
        ),
    ]
    # Both regions (and any other) see the findings.
    assert js.get_duplicate_case(case.name).findings == done.findings
    assert zj.get_duplicate_case(case.name).findings == done.findings
    cancelled = zj.get_transfer(pending.name)
    assert cancelled.state == transfer_pb2.TRANSFER_STATE_CANCELLED
    assert block_state(zj, SH, SH_FIRST) == (ZJ, records_pb2.UNIT_BLOCK_STATE_CANCELLED)
    assert block_state(sh, SH, SH_FIRST + 1_000_000)[1] == records_pb2.UNIT_BLOCK_STATE_RETIRED
    assert block_state(sh, SH, SH_FIRST + 2_000_000) == (SH, records_pb2.UNIT_BLOCK_STATE_CANCELLED)
    assert block_state(js, JS, JS_FIRST) == (JS, records_pb2.UNIT_BLOCK_STATE_ACTIVE)
    with pytest.raises(errors.DuplicateCaseClosed):
        client(SH, "admin-a").resolve_duplicate_case(case.name, "DISTINCT", "late")
    invariants(database)
    assert reconciled(client, {SH: ACTIVE, ZJ: HELD, JS: HELD}) == {}

    # A registry that missed the cancellation and still counts those units as active: the run
    # finds exactly the serials the case cancelled in Shanghai (the pending tonne and the rest
    # of the issuance after the retired half tonne), as one range, and nothing else.
    stale = mirrored(sh, SH, HELD)
    for block in stale:
        if block.state == CANCELLED:
            block.state = ACTIVE
    report = reconcile(client, SH, stale)
    assert report.status == R.RECONCILIATION_STATUS_TOTALS_INCONSISTENT
    cancelled = SH_LAST - (SH_FIRST + 1_500_000) + 1
    assert sum(b.serials.end - b.serials.start + 1 for b in sh.holdings(SH, CANCELLED)) == cancelled
    found = sorted(
        (d.kind, d.origin_region, [(r.start, r.end) for r in d.ranges], d.quantity_grams)
        for d in report.discrepancies
    )
    assert found == sorted(
        [
            (R.DISCREPANCY_KIND_TOTAL_MISMATCH, SH, [], cancelled),
            (R.DISCREPANCY_KIND_TOTAL_MISMATCH, SH, [], cancelled),
            (
                R.DISCREPANCY_KIND_STATE_MISMATCH,
                SH,
                [(SH_FIRST + 1_500_000, SH_LAST)],
                cancelled,
            ),
        ]
    )
    assert sorted(
        d.detail for d in report.discrepancies if d.kind == R.DISCREPANCY_KIND_TOTAL_MISMATCH
    ) == [
        f"active: registry {cancelled} g, ledger 0 g",
        f"cancelled: registry 0 g, ledger {cancelled} g",
    ]
