"""Holdings as columns (``HeldBlockColumns``, protocol 1.4.0) over real mTLS, on SQLite and
PostgreSQL: the same snapshot streamed as columns and as ``HeldBlockBatch`` messages is stored
alike (rows, totals, audit digests) and reconciles alike; every malformed batch of columns is
refused with SNAPSHOT_INVALID naming the first block at fault, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from yrd.interop.v1 import reconciliation_pb2, reconciliation_service_pb2, records_pb2

from gateway.client import GatewayClient
from gateway.client.reconciliation import HeldTuple
from gateway.errors import Code, SnapshotInvalid
from gateway.security.identity import Role
from gateway.server import GatewayServer
from gateway.storage.models import (
    AuditEntryRow,
    HoldingsSnapshotRow,
    SnapshotBlockRow,
    SnapshotTotalRow,
)
from tests.integration.conftest import publish_samples
from tests.integration.test_reconciliation import NOW

AH, SH = "340000", "310000"
ACTIVE, RETIRED, HELD = (
    records_pb2.UNIT_BLOCK_STATE_ACTIVE,
    records_pb2.UNIT_BLOCK_STATE_RETIRED,
    records_pb2.UNIT_BLOCK_STATE_HELD,
)
Status = reconciliation_pb2.ReconciliationStatus


def _ledger_view(client: GatewayClient, region: str) -> list[HeldTuple]:
    return [
        (b.origin_region, b.serials.start, b.serials.end, b.state) for b in client.holdings(region)
    ]


def _snapshot_audit(server: GatewayServer, name: str) -> dict[str, object]:
    with server.db.transaction() as s:
        detail = s.execute(
            select(AuditEntryRow.detail).where(
                AuditEntryRow.kind == "reconciliation.snapshot", AuditEntryRow.subject == name
            )
        ).scalar_one()
    loaded = json.loads(detail)  # canonical JSON bytes
    assert isinstance(loaded, dict)
    return loaded


def test_columns_and_batches_store_the_same_snapshot(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    publish_samples(client_for)
    ah = client_for(AH)
    ledger = _ledger_view(ah, AH)
    assert len(ledger) >= 1
    # The ledger's blocks, one of them claimed retired, and blocks of two other origins the
    # registry claims: three origins, three states, interleaved, so that columns regroup them.
    claimed = [(o, s, e, RETIRED if i == 0 else st) for i, (o, s, e, st) in enumerate(ledger)]
    claimed += [
        (SH, 10_000_000 + 10 * i, 10_000_000 + 10 * i + 4, (ACTIVE, RETIRED, HELD)[i % 3])
        for i in range(7)
    ]
    claimed += [("320000", 50 * i, 50 * i + 9, ACTIVE) for i in range(5)]
    claimed.sort(key=lambda b: b[1])  # interleave the origins
    admin = client_for(AH, Role.ADMIN, "admin-a")
    summaries, reports = [], []
    for columns, batch in ((True, 3), (False, 3), (True, 10_000)):
        ack = ah.submit_holdings(NOW, claimed, [], batch=batch, columns=columns)
        summaries.append((ack.block_count, ack.quantity_grams))
        detail = _snapshot_audit(server, ack.snapshot)
        reports.append(admin.run_reconciliation())
        with server.db.transaction() as s:
            sid = s.execute(select(func.max(HoldingsSnapshotRow.id))).scalar_one()
            kept = sorted(
                s.execute(
                    select(
                        SnapshotBlockRow.side,
                        SnapshotBlockRow.origin_region,
                        SnapshotBlockRow.serial_start,
                        SnapshotBlockRow.serial_end,
                        SnapshotBlockRow.state,
                    ).where(SnapshotBlockRow.snapshot_id == sid)
                ).all()
            )
            totals = sorted(
                s.execute(
                    select(
                        SnapshotTotalRow.origin_region,
                        SnapshotTotalRow.state,
                        SnapshotTotalRow.registry_grams,
                        SnapshotTotalRow.ledger_grams,
                    ).where(SnapshotTotalRow.snapshot_id == sid)
                ).all()
            )
        if columns and batch == 3:
            first = (detail, kept, totals)
        else:
            same = {k: v for k, v in detail.items() if k != "snapshot_time"}
            assert same == {k: v for k, v in first[0].items() if k != "snapshot_time"}
            assert (kept, totals) == first[1:]
    grams = sum(e - s + 1 for _, s, e, _ in claimed)
    assert summaries == [(len(claimed), grams)] * 3
    # The gateway's metrics timed each snapshot's three phases.
    for phase in ("receive", "stage", "difference"):
        sample = server.metrics.registry.get_sample_value(
            "yrdgw_snapshot_phase_seconds_count", {"phase": phase}
        )
        assert sample == 3, phase
    # Every retired, held and active gram of the claimed origins is in the totals as sent.
    registry_totals: dict[tuple[str, str], int] = {}
    for o, s, e, st in claimed:
        key = (o, {ACTIVE: "active", RETIRED: "retired", HELD: "held"}[st])
        registry_totals[key] = registry_totals.get(key, 0) + e - s + 1
    assert {(o, st): r for o, st, r, _ in first[2] if r} == registry_totals
    found = [
        sorted(
            (d.kind, d.origin_region, [(r.start, r.end) for r in d.ranges])
            for d in rep.discrepancies
        )
        for rep in reports
    ]
    assert found[0] == found[1] == found[2] and found[0]
    assert {rep.status for rep in reports} == {Status.RECONCILIATION_STATUS_TOTALS_INCONSISTENT}


def test_columns_out_of_serial_order_are_checked_for_overlaps(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    ah = client_for(AH)
    # Out of order but disjoint: taken (the overlap check runs in SQL).
    ack = ah.submit_holdings(NOW, [(AH, 100, 199, ACTIVE), (AH, 0, 99, ACTIVE)], [])
    assert (ack.block_count, ack.quantity_grams) == (2, 200)
    # Out of order and overlapping, the overlap in a later batch: refused.
    with pytest.raises(SnapshotInvalid) as info:
        ah.submit_holdings(
            NOW, [(AH, 100, 199, ACTIVE), (AH, 300, 399, ACTIVE), (AH, 0, 100, ACTIVE)], [], batch=2
        )
    assert "overlap at serial 100" in str(info.value)


def _columns(
    origin: str = AH,
    starts: tuple[int, ...] = (0, 10),
    ends: tuple[int, ...] = (9, 19),
    states: tuple[int, ...] = (ACTIVE, ACTIVE),
) -> reconciliation_service_pb2.SubmitHoldingsRequest:
    return reconciliation_service_pb2.SubmitHoldingsRequest(
        columns=reconciliation_service_pb2.HeldBlockColumns(
            origin_region=origin,
            serial_starts=starts,
            serial_ends=ends,
            states=states,  # type: ignore[arg-type]
        )
    )


@pytest.mark.parametrize(
    ("case", "bad", "field", "where"),
    [
        ("short ends", _columns(ends=(9,)), "columns", "block 2"),
        ("short states", _columns(states=(ACTIVE,)), "columns", "block 2"),
        ("origin", _columns(origin="31000"), "columns.origin_region", "block 2"),
        ("origin, newline", _columns(origin="310000\n"), "columns.origin_region", "block 2"),
        ("origin, no block", _columns("ab", (), (), ()), "columns.origin_region", "block 2"),
        ("negative start", _columns(starts=(0, -1)), "columns.serial_starts", "block 3"),
        ("end before start", _columns(ends=(9, 9)), "columns.serial_ends", "block 3"),
        ("unset state", _columns(states=(ACTIVE, 0)), "columns.states", "block 3"),
        ("unknown state", _columns(states=(99, ACTIVE)), "columns.states", "block 2"),
        ("overlap", _columns(starts=(1000, 1005), ends=(1009, 1019)), "blocks", ""),
        # One origin's serials hold at most 2^63 grams; two origins' can hold more than the
        # 64-bit totals do: refused as the stream arrives, in either form.
        (
            "grams past 2^63-1",
            _columns(SH, (5, 0), (9, 2**63 - 1), (ACTIVE, ACTIVE)),
            "columns.serial_ends",
            "block 3",
        ),
        (
            "grams past 2^63-1, HeldBlockBatch",
            reconciliation_service_pb2.SubmitHoldingsRequest(
                blocks=reconciliation_service_pb2.HeldBlockBatch(
                    blocks=[
                        reconciliation_pb2.HeldBlock(
                            origin_region=SH,
                            serials=records_pb2.SerialRange(start=0, end=2**63 - 1),
                            state=ACTIVE,
                        )
                    ]
                )
            ),
            "blocks.serials",
            "block 2",
        ),
    ],
)
def test_malformed_columns_are_refused_and_change_nothing(
    server: GatewayServer,
    client_for: Callable[..., GatewayClient],
    case: str,
    bad: reconciliation_service_pb2.SubmitHoldingsRequest,
    field: str,
    where: str,
) -> None:
    ah = client_for(AH)
    header = reconciliation_service_pb2.SubmitHoldingsRequest()
    header.header.snapshot_time.FromDatetime(NOW)
    # Two good blocks before (blocks 0 and 1), at serials the bad batch does not reach.
    good = _columns(starts=(1000, 2000), ends=(1999, 2999))
    with server.db.transaction() as s:
        before = s.execute(select(func.count()).select_from(AuditEntryRow)).scalar_one()
    with pytest.raises(SnapshotInvalid) as info:
        ah.call(ah.reconciliation.SubmitHoldings, iter([header, good, bad]))  # type: ignore[arg-type]
    err = info.value
    assert (err.code, err.reason) == (Code.INVALID_ARGUMENT, "SNAPSHOT_INVALID")
    assert field in err.field_errors, (case, err.field_errors)
    assert err.field_errors[field].startswith(where), (case, err.field_errors)
    assert str(err).startswith(f"{where}:") if where else "overlap" in str(err)
    with server.db.transaction() as s:
        assert s.execute(select(func.count()).select_from(HoldingsSnapshotRow)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(AuditEntryRow)).scalar_one() == before


def _vectors() -> dict[str, Any]:
    path = Path(__file__).resolve().parents[2] / "docs" / "vectors" / "held-block-columns.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def test_a_served_gateway_answers_every_vector_as_the_vectors_say(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    """docs/vectors/held-block-columns.json replayed byte for byte over mTLS: the generator
    gives each message to SnapshotBuilder.take as the servicer does, and this shows the served
    gateway (the validation layer before it included) answers alike."""
    doc = _vectors()
    region = doc["region"]
    registry = client_for(region)
    # The stream's own bytes, not messages re-serialised here.
    submit = registry.channel.stream_unary(
        "/yrd.interop.v1.ReconciliationService/SubmitHoldings",
        response_deserializer=reconciliation_service_pb2.SubmitHoldingsResponse.FromString,
    )
    for case in doc["cases"]:
        stream = [bytes.fromhex(h) for h in case["input"]["stream"]]
        ack = registry.call(submit, iter(stream))  # type: ignore[arg-type]
        want = case["expected"]
        assert (ack.block_count, ack.quantity_grams) == (
            int(want["block_count"]),
            int(want["quantity_grams"]),
        ), case["id"]
        assert ack.snapshot.startswith(f"regions/{region}/snapshots/")
    for case in doc["refused"]:
        stream = [bytes.fromhex(h) for h in case["input"]["stream"]]
        with pytest.raises(SnapshotInvalid) as info:
            registry.call(submit, iter(stream))  # type: ignore[arg-type]
        err, want = info.value, case["expected"]
        assert (err.code.name, err.reason) == (want["code"], want["reason"]), case["id"]
        assert str(err) == want["message"], case["id"]
        fields = {v["field"]: v["description"] for v in want["field_violations"]}
        assert err.field_errors == fields, case["id"]
