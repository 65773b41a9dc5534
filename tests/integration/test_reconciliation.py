"""ReconciliationService over real mTLS, on SQLite and PostgreSQL: registries stream snapshots,
administrators run and read signed reports; every refusal has its code and changes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from yrd.interop.v1 import reconciliation_pb2, reconciliation_service_pb2, records_pb2

from gateway.client import GatewayClient
from gateway.errors import (
    Code,
    CursorInvalid,
    DomainError,
    ReportNotFound,
    RoleNotAllowed,
    SnapshotInvalid,
    SnapshotMissing,
    WrongRegion,
)
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, load_signing_key
from gateway.security.reports import verify_report
from gateway.security.signing import raw_public_key
from gateway.server import GatewayServer
from gateway.storage.models import (
    AuditEntryRow,
    HoldingsSnapshotRow,
    ReconciliationReportRow,
    SnapshotBlockRow,
)
from tests.integration.conftest import publish_samples

AH, SH, JS = "340000", "310000", "320000"
Kind = reconciliation_pb2.DiscrepancyKind
Status = reconciliation_pb2.ReconciliationStatus
NOW = dt.datetime.now(dt.UTC)


def held(client: GatewayClient, region: str) -> list[reconciliation_pb2.HeldBlock]:
    """The registry's view, read from the gateway's ledger (a registry in full agreement)."""
    return [
        reconciliation_pb2.HeldBlock(
            origin_region=b.origin_region, serials=b.serials, state=b.state
        )
        for b in client.holdings(region)
    ]


def test_snapshots_runs_and_signed_reports(
    server: GatewayServer, client_for: Callable[..., GatewayClient], pki: PKIDir
) -> None:
    publish_samples(client_for)
    ah, sh = client_for(AH), client_for(SH)
    t = ah.propose_transfer("rc-1", SH, origin=AH, ranges=[(1_000, 5_000_999)])
    sh.accept_transfer(t.name)

    ah_blocks = held(ah, AH)
    ack = ah.submit_holdings(NOW, ah_blocks, [t.name], batch=1)
    assert ack.block_count == len(ah_blocks) and ack.snapshot.startswith(f"regions/{AH}/snapshots/")
    assert ack.quantity_grams == sum(b.serials.end - b.serials.start + 1 for b in ah_blocks)
    ah_admin = client_for(AH, Role.ADMIN, "admin-a")
    clean = ah_admin.run_reconciliation()  # empty region: the administrator's own
    assert clean.region == AH and clean.status == Status.RECONCILIATION_STATUS_COMPLETED

    # Shanghai forgets the transfer and still counts 1 t of the received units as active while
    # the ledger has it retired... it never retired them: it claims 1 t it never received.
    sh_blocks = held(sh, SH)
    sh_blocks.append(
        reconciliation_pb2.HeldBlock(
            origin_region=AH,
            serials=records_pb2.SerialRange(start=5_001_000, end=6_000_999),
            state=records_pb2.UNIT_BLOCK_STATE_ACTIVE,
        )
    )
    sh.submit_holdings(NOW, sh_blocks, [])
    sh_admin = client_for(SH, Role.ADMIN, "admin-a")
    report = sh_admin.run_reconciliation(SH)
    assert report.status == Status.RECONCILIATION_STATUS_TOTALS_INCONSISTENT
    found = sorted(
        (d.kind, d.origin_region, [(r.start, r.end) for r in d.ranges], list(d.transfer_ids))
        for d in report.discrepancies
    )
    assert found == sorted(
        [
            (Kind.DISCREPANCY_KIND_TOTAL_MISMATCH, AH, [], []),
            (Kind.DISCREPANCY_KIND_REGISTRY_ONLY, AH, [(5_001_000, 6_000_999)], []),
            (Kind.DISCREPANCY_KIND_TRANSFER_UNKNOWN_TO_REGISTRY, "", [], [t.name]),
        ]
    )
    gateway_key = raw_public_key(load_signing_key(pki.gateway().signing_key))
    assert verify_report(gateway_key, report)
    assert sh.get_reconciliation_report(report.name) == report  # any role may read
    assert [r.name for r in sh_admin.list_reconciliation_reports(SH)] == [report.name]
    newest_first = sh_admin.list_reconciliation_reports()
    assert [r.name for r in newest_first] == [report.name, clean.name]
    page = sh_admin.call(
        sh_admin.reconciliation.ListReconciliationReports,
        reconciliation_service_pb2.ListReconciliationReportsRequest(page_size=1),
    )
    assert [r.name for r in page.reports] == [report.name] and page.next_page_token
    rest = sh_admin.call(
        sh_admin.reconciliation.ListReconciliationReports,
        reconciliation_service_pb2.ListReconciliationReportsRequest(
            page_size=1, page_token=page.next_page_token
        ),
    )
    assert [r.name for r in rest.reports] == [clean.name] and not rest.next_page_token
    with server.db.transaction() as s:
        kinds = s.execute(select(AuditEntryRow.kind).order_by(AuditEntryRow.sequence)).scalars()
        assert [k for k in kinds if k.startswith("reconciliation.")] == [
            "reconciliation.snapshot",
            "reconciliation.report",
            "reconciliation.snapshot",
            "reconciliation.report",
        ]


def _rows(server: GatewayServer) -> tuple[int, ...]:
    with server.db.transaction() as s:
        return tuple(
            s.execute(select(func.count()).select_from(m)).scalar_one()
            for m in (HoldingsSnapshotRow, SnapshotBlockRow, ReconciliationReportRow, AuditEntryRow)
        )


def _block(start: int, end: int) -> reconciliation_pb2.HeldBlock:
    return reconciliation_pb2.HeldBlock(
        origin_region=AH,
        serials=records_pb2.SerialRange(start=start, end=end),
        state=records_pb2.UNIT_BLOCK_STATE_ACTIVE,
    )


def _raw_stream(
    client: GatewayClient, messages: list[reconciliation_service_pb2.SubmitHoldingsRequest]
) -> None:
    client.call(client.reconciliation.SubmitHoldings, iter(messages))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "error", "code", "reason"),
    [
        ("overlap", SnapshotInvalid, Code.INVALID_ARGUMENT, "SNAPSHOT_INVALID"),
        ("no header", SnapshotInvalid, Code.INVALID_ARGUMENT, "SNAPSHOT_INVALID"),
        ("no time", SnapshotInvalid, Code.INVALID_ARGUMENT, "SNAPSHOT_INVALID"),
        ("bad state", SnapshotInvalid, Code.INVALID_ARGUMENT, "SNAPSHOT_INVALID"),
        ("admin submits", RoleNotAllowed, Code.PERMISSION_DENIED, "ROLE_NOT_ALLOWED"),
        ("registry runs", RoleNotAllowed, Code.PERMISSION_DENIED, "ROLE_NOT_ALLOWED"),
        ("other region", WrongRegion, Code.PERMISSION_DENIED, "WRONG_REGION"),
        ("no snapshot", SnapshotMissing, Code.FAILED_PRECONDITION, "SNAPSHOT_MISSING"),
        ("unknown report", ReportNotFound, Code.NOT_FOUND, "REPORT_NOT_FOUND"),
        ("bad token", CursorInvalid, Code.INVALID_ARGUMENT, "CURSOR_INVALID"),
    ],
)
def test_refusals_change_nothing(
    server: GatewayServer,
    client_for: Callable[..., GatewayClient],
    case: str,
    error: type[DomainError],
    code: Code,
    reason: str,
) -> None:
    ah, admin = client_for(AH), client_for(AH, Role.ADMIN, "admin-a")
    header = reconciliation_service_pb2.SnapshotHeader()
    header.snapshot_time.FromDatetime(NOW)
    actions: dict[str, Callable[[], object]] = {
        "overlap": lambda: ah.submit_holdings(NOW, [_block(0, 10), _block(10, 20)]),
        "no header": lambda: _raw_stream(
            ah,
            [
                reconciliation_service_pb2.SubmitHoldingsRequest(
                    blocks=reconciliation_service_pb2.HeldBlockBatch(blocks=[_block(0, 1)])
                )
            ],
        ),
        "no time": lambda: _raw_stream(
            ah,
            [
                reconciliation_service_pb2.SubmitHoldingsRequest(
                    header=reconciliation_service_pb2.SnapshotHeader()
                )
            ],
        ),
        "bad state": lambda: ah.submit_holdings(
            NOW, [reconciliation_pb2.HeldBlock(origin_region=AH, serials=_block(0, 1).serials)]
        ),
        "admin submits": lambda: admin.submit_holdings(NOW, [_block(0, 1)]),
        "registry runs": lambda: ah.run_reconciliation(AH),
        "other region": lambda: admin.run_reconciliation(SH),
        "no snapshot": lambda: admin.run_reconciliation(AH),
        "unknown report": lambda: ah.get_reconciliation_report("reconciliations/404"),
        "bad token": lambda: ah.call(
            ah.reconciliation.ListReconciliationReports,
            reconciliation_service_pb2.ListReconciliationReportsRequest(page_token="x"),
        ),
    }
    before = _rows(server)
    with pytest.raises(error) as info:
        actions[case]()
    assert (info.value.code, info.value.reason) == (code, reason)
    assert _rows(server) == before
