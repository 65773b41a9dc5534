"""Held units over real mTLS, on SQLite and PostgreSQL: ListUnitBlocks filters HELD; propose,
retire and accept naming held units are refused with UNITS_HELD (the case named in the
ErrorInfo), leaving the database digest unchanged; the invariants hold throughout. The hold is
set up in the gateway's database as the detection leaves it (case, case_holds, blocks held)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from yrd.interop.v1 import records_pb2, transfer_pb2

from gateway.client import GatewayClient
from gateway.contract import ACTIVE, HELD, HOLD_HELD
from gateway.errors import Code, UnitsHeld
from gateway.server import GatewayServer
from gateway.services.ledger import check_invariants
from gateway.storage.ledger_holds import HoldStore
from gateway.storage.models import CaseHoldRow, DuplicateCaseRow
from tests.digest import table_digests
from tests.integration.conftest import publish_samples

AH, SH = "340000", "310000"
I101 = "regions/340000/issuances/AH-QF-2025-0101"


def _hold(server: GatewayServer, case_id: str, issuance: str) -> None:
    with server.db.transaction() as s:
        s.add(
            DuplicateCaseRow(
                case_id=case_id,
                state="OPEN",
                rule="DUPLICATE_RULE_SAME_GRID_ACCOUNT",
                strength="MATCH_STRENGTH_CERTAIN",
                first_subject=f"regions/{AH}/projects/a",
                second_subject=f"regions/{SH}/projects/b",
                evidence="{}",
                deciding_regions=f"{AH},{SH}",
                required_approvals=1,
                open_time=dt.datetime.now(dt.UTC),
            )
        )
        s.flush()
        s.add(CaseHoldRow(case_id=case_id, issuance=issuance, outcome=HOLD_HELD))
        s.flush()
        HoldStore(s.connection()).set_state([issuance], (ACTIVE,), HELD)


def test_held_units_are_listed_and_refused_over_mtls(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    publish_samples(client_for)
    ah, sh = client_for(AH), client_for(SH)
    pending = ah.propose_transfer("before-hold", SH, origin=AH, ranges=[(1_000, 1_999)])
    _hold(server, "dc-0123456789ab", I101)
    assert check_invariants(server.db).ok

    held = ah.holdings(AH, records_pb2.UNIT_BLOCK_STATE_HELD)
    assert {b.issuance for b in held} == {I101}
    assert all(b.state == records_pb2.UNIT_BLOCK_STATE_HELD for b in held)
    assert sum(b.serials.end - b.serials.start + 1 for b in held) == 373_010_000 - 1_000

    before = table_digests(server.db)
    refusals = [
        lambda: ah.propose_transfer("held-1", SH, origin=AH, ranges=[(2_000, 2_999)]),
        lambda: ah.retire(
            "held-r",
            transfer_pb2.TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY,
            "某公司",
            origin=AH,
            ranges=[(2_000, 2_999)],
        ),
        lambda: sh.accept_transfer(pending.name),
    ]
    for refused_call in refusals:
        with pytest.raises(UnitsHeld) as refused:
            refused_call()
        assert refused.value.code is Code.FAILED_PRECONDITION
        assert refused.value.metadata["cases"] == "duplicateCases/dc-0123456789ab"
        assert refused.value.metadata["issuance"] == I101
        assert refused.value.metadata["check"] == "4"
    assert table_digests(server.db) == before
    assert sh.get_transfer(pending.name).state == transfer_pb2.TRANSFER_STATE_PROPOSED
    # The refused calls did not advance the signers' chains: a rejection goes through, and the
    # released units go back to held, not active.
    assert sh.reject_transfer(pending.name, "held").state == transfer_pb2.TRANSFER_STATE_REJECTED
    assert {b.state for b in ah.holdings(AH) if b.issuance == I101} == {
        records_pb2.UNIT_BLOCK_STATE_HELD
    }
    assert check_invariants(server.db).ok
