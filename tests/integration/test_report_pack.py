"""The regulators' report pack on SQLite and PostgreSQL: a federation with transfers, offsets,
a charitable retirement, a recognition and three reconciliations; each report written as XLSX,
read back with openpyxl, its totals equal to the ledger's; CSV and JSON carry the same."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from yrd.interop.v1 import reconciliation_pb2, records_pb2, transfer_pb2

from gateway.client import GatewayClient
from gateway.errors import InvalidArgument
from gateway.report_pack import render
from gateway.security.identity import Role
from gateway.server import GatewayServer
from gateway.services.reports import CHINA, ReportPack
from gateway.storage.models import RetirementRow, TransferRow
from tests.integration.conftest import publish_samples

SH, JS, AH = "310000", "320000", "340000"
AH_PV = "regions/340000/methodologies/AH-FFX-PV-2024-02"


def _held(client: GatewayClient, region: str) -> list[reconciliation_pb2.HeldBlock]:
    return [
        reconciliation_pb2.HeldBlock(
            origin_region=b.origin_region, serials=b.serials, state=b.state
        )
        for b in client.holdings(region)
    ]


def _planted(client: GatewayClient, region: str) -> list[reconciliation_pb2.HeldBlock]:
    blocks = _held(client, region)
    for b in blocks:
        if b.state == records_pb2.UNIT_BLOCK_STATE_RETIRED:
            b.state = records_pb2.UNIT_BLOCK_STATE_ACTIVE
    return blocks


@pytest.fixture
def federation(server: GatewayServer, client_for: Callable[..., GatewayClient]) -> GatewayServer:
    publish_samples(client_for)
    sh, js, ah = client_for(SH), client_for(JS), client_for(AH)
    sh.accept_transfer(
        ah.propose_transfer("ah-sh-1", SH, origin=AH, ranges=[(1_000, 50_000_999)]).name
    )
    js.accept_transfer(
        sh.propose_transfer("sh-js-1", JS, origin=SH, ranges=[(1_000_001_000, 1_005_000_999)]).name
    )
    js.accept_transfer(
        sh.propose_transfer("sh-js-2", JS, origin=AH, ranges=[(40_001_000, 45_000_999)]).name
    )
    ah.propose_transfer("ah-js-pending", JS, origin=AH, ranges=[(60_001_000, 61_000_999)])
    for retirement_id, grams in (("ets-1", 10_000_000), ("ets-2", 3_000_000)):
        start = 1_000 if retirement_id == "ets-1" else 20_001_000
        sh.retire(
            retirement_id,
            transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
            "上海某钢铁有限公司",
            origin=AH,
            ranges=[(start, start + grams - 1)],
            compliance_year=2025,
            declared_obligation_grams=1_000 * 10**6,
        )
    sh.retire(
        "charity-1",
        transfer_pb2.TRANSFER_PURPOSE_CHARITABLE,
        "某公益基金会",
        origin=SH,
        ranges=[(1_100_001_000, 1_100_500_999)],
    )
    (rec,) = ah.request_recognition(AH_PV, version="1", regions=[SH])
    client_for(SH, Role.ADMIN, "admin-a").approve_recognition(rec.name, "ok")
    client_for(SH, Role.ADMIN, "admin-b").approve_recognition(rec.name, "ok")
    admin = client_for(SH, Role.ADMIN, "admin-a")
    completed = [t.name for t in sh.list_transfers(state=transfer_pb2.TRANSFER_STATE_COMPLETED)]
    for blocks in (_planted(sh, SH), _held(sh, SH), _planted(sh, SH)):
        sh.submit_holdings(dt.datetime.now(dt.UTC), blocks, completed)
        admin.run_reconciliation(SH)
    return server


def _pack(server: GatewayServer) -> ReportPack:
    return ReportPack(server.db, server.settings.ets_offset_policies)


TODAY = dt.datetime.now(CHINA).date()


def _sheet_rows(data: bytes, sheet: str) -> tuple[list[object], list[list[object]], list[object]]:
    """(headers, data rows, totals row or []) of a sheet written by report_xlsx."""
    book = load_workbook(io.BytesIO(data))
    rows = [list(r) for r in book[sheet].iter_rows(values_only=True)]
    headers, body = rows[3], rows[4:]
    if body and body[-1][0] in ("合计", "Total"):
        return headers, body[:-1], body[-1]
    return headers, body, []


def _ledger(server: GatewayServer) -> dict[str, int]:
    with server.db.transaction() as s:
        ets = s.execute(
            select(
                func.sum(RetirementRow.credited_grams), func.sum(RetirementRow.quantity_grams)
            ).where(RetirementRow.purpose == transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET)
        ).one()
        retired = s.execute(
            select(func.sum(RetirementRow.quantity_grams), func.count()).select_from(RetirementRow)
        ).one()
        moved = s.execute(
            select(func.sum(TransferRow.quantity_grams), func.count()).where(
                TransferRow.state == "COMPLETED"
            )
        ).one()
    return {
        "ets_credited": int(ets[0]),
        "ets_retired": int(ets[1]),
        "retired": int(retired[0]),
        "retirements": int(retired[1]),
        "moved": int(moved[0]),
        "transfers": int(moved[1]),
    }


def test_ets_offsets_report_totals_equal_the_ledger(federation: GatewayServer) -> None:
    ledger = _ledger(federation)
    data = render(_pack(federation).build("ets-offsets", TODAY, TODAY), "xlsx")
    headers, rows, totals = _sheet_rows(data, "报表")
    assert headers[:3] == ["ETS 地区", "履约年度", "受益主体"]
    assert _sheet_rows(data, "Report")[0][:3] == ["ETS region", "Compliance year", "Beneficiary"]
    (row,) = rows
    assert row[:4] == [SH, 2025, "上海某钢铁有限公司", 2]
    col = {h: i for i, h in enumerate(headers)}
    assert row[col["抵消量（克）"]] == ledger["ets_credited"] == totals[col["抵消量（克）"]]
    assert row[col["注销量（克）"]] == ledger["ets_retired"] == 13_000_000
    assert isinstance(row[col["注销量（克）"]], int)
    assert row[col["注销量（吨）"]] == 13.0
    # Cap: 5 % of the declared 1,000 t = 50 t; the share used is credited / cap.
    assert row[col["抵消上限（克）"]] == 50_000_000
    assert row[col["上限使用比例"]] == pytest.approx(ledger["ets_credited"] / 50_000_000)
    book = load_workbook(io.BytesIO(data))
    tonnes_cell = book["报表"].cell(row=5, column=col["注销量（吨）"] + 1)
    assert tonnes_cell.number_format == "#,##0.000000"


def test_flows_report_totals_equal_the_completed_transfers(federation: GatewayServer) -> None:
    ledger = _ledger(federation)
    report = _pack(federation).build("flows", TODAY, TODAY)
    headers, rows, totals = _sheet_rows(render(report, "xlsx"), "Report")
    by_key = {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}
    assert by_key == {
        (AH, AH, SH): (1, 50_000_000),
        (SH, SH, JS): (1, 5_000_000),
        (AH, SH, JS): (1, 5_000_000),
    }
    assert totals[4] == ledger["moved"] == sum(g for _, g in by_key.values())
    assert totals[3] == ledger["transfers"] == 3  # the pending transfer is no flow yet
    assert headers[4:6] == ["Quantity (g)", "Quantity (t)"]


def test_retirements_report_totals_equal_the_ledger(federation: GatewayServer) -> None:
    ledger = _ledger(federation)
    _, rows, totals = _sheet_rows(
        render(_pack(federation).build("retirements", TODAY, TODAY), "xlsx"), "报表"
    )
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (SH, "CHARITABLE", 1, 500_000),
        (SH, "ETS_OFFSET", 2, 13_000_000),
    ]
    assert (totals[2], totals[3]) == (ledger["retirements"], ledger["retired"])
    # Outside the period, nothing.
    earlier = TODAY - dt.timedelta(days=30)
    assert _pack(federation).build("retirements", earlier, earlier).rows == []


def test_discrepancies_report_shows_open_and_resolved(federation: GatewayServer) -> None:
    report = _pack(federation).build("discrepancies", TODAY, TODAY)
    headers, rows, _ = _sheet_rows(render(report, "xlsx"), "Report")
    col = {h: i for i, h in enumerate(headers)}
    states = [(r[col["Report"]], r[col["State"]], r[col["Resolved by"]]) for r in rows]
    reports = sorted({name for name, _, _ in states}, key=lambda n: int(n.rsplit("/", 1)[1]))
    assert len(reports) == 2  # the second run agreed: no discrepancy of its own
    first, third = reports
    assert {s for n, s, _ in states if n == first} == {"RESOLVED"}
    assert {s for n, s, _ in states if n == third} == {"OPEN"}
    resolved_by = {r for n, _, r in states if n == first}
    assert len(resolved_by) == 1 and int(resolved_by.pop().rsplit("/", 1)[1]) < int(
        third.rsplit("/", 1)[1]
    )
    assert all(isinstance(r[col["Finished"]], dt.datetime) for r in rows)


def test_recognitions_report_lists_those_in_force(federation: GatewayServer) -> None:
    data = render(_pack(federation).build("recognitions", TODAY, TODAY), "xlsx")
    _, rows, _ = _sheet_rows(data, "报表")
    assert [(r[1], r[3], r[4]) for r in rows] == [(AH_PV, AH, SH)]
    earlier = TODAY - dt.timedelta(days=30)
    assert _pack(federation).build("recognitions", earlier, earlier).rows == []


def test_csv_and_json_carry_the_same_numbers(federation: GatewayServer) -> None:
    report = _pack(federation).build("flows", TODAY, TODAY)
    doc = json.loads(render(report, "json"))
    assert doc["totals"]["grams"] == sum(r["grams"] for r in doc["rows"]) == 60_000_000
    assert {r["tonnes"] for r in doc["rows"]} >= {"50.000000", "5.000000"}
    text = render(report, "csv").decode()
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert table[0] == [
        "签发地区",
        "转出地区",
        "转入地区（持有地）",
        "转让笔数",
        "数量（克）",
        "数量（吨）",
    ]
    assert sum(int(r[4]) for r in table[1:]) == 60_000_000
    assert Decimal(table[1][5]) * 1_000_000 == int(table[1][4])


def test_unknown_report_and_reversed_period_are_refused(federation: GatewayServer) -> None:
    with pytest.raises(InvalidArgument):
        _pack(federation).build("nope", TODAY, TODAY)
    with pytest.raises(InvalidArgument):
        _pack(federation).build("flows", TODAY, TODAY - dt.timedelta(days=1))
