"""Transfers and retirements over real mTLS, on SQLite and PostgreSQL: the SDK round trip, a
retried request answered identically, a check's code travelling as ErrorInfo, and holdings."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from yrd.interop.v1 import records_pb2, transfer_pb2, transfer_service_pb2

from gateway.client import GatewayClient
from gateway.contract import PROPOSAL_TYPE
from gateway.errors import CallerNotDestination, Code, SerialsNotHeld
from gateway.security.identity import Role
from gateway.server import GatewayServer
from gateway.services.ledger import check_invariants
from tests.integration.conftest import publish_samples

AH, SH, JS = "340000", "310000", "320000"


def test_transfer_round_trip_and_ets_offset(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    publish_samples(client_for)
    ah, sh = client_for(AH), client_for(SH)
    t = ah.propose_transfer("ah-1", SH, origin=AH, ranges=[(1_000, 5_000_999)])
    assert t.state == transfer_pb2.TRANSFER_STATE_PROPOSED and t.quantity_grams == 5_000_000
    assert [(b.serials.start, b.serials.end) for b in t.blocks] == [(1_000, 5_000_999)]
    assert all(b.state == records_pb2.UNIT_BLOCK_STATE_IN_TRANSFER for b in t.blocks)
    done = sh.accept_transfer(t.name)
    assert done.state == transfer_pb2.TRANSFER_STATE_COMPLETED
    held = [
        (b.origin_region, b.serials.start, b.serials.end)
        for b in sh.holdings(SH)
        if b.origin_region == AH
    ]
    assert held == [(AH, 1_000, 5_000_999)]
    r = sh.retire(
        "ets-1",
        transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
        "上海某钢铁有限公司",
        origin=AH,
        ranges=[(1_000, 2_000_999)],
        compliance_year=2025,
        declared_obligation_grams=100 * 10**6,
    )
    assert (r.quantity_grams, r.credited_grams, r.ratio_numerator, r.ratio_denominator) == (
        2_000_000,
        2_000_000,
        1,
        1,
    )
    assert check_invariants(server.db).ok


def test_retried_request_gets_the_first_answer(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    publish_samples(client_for)
    ah = client_for(AH)
    ah.sync_signer()
    body = transfer_service_pb2.TransferProposal(
        purpose=transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
        transfer_id="retry-1",
        destination_region=JS,
        units=transfer_pb2.UnitSelection(
            ranges=transfer_pb2.SerialRanges(
                origin_region=AH, ranges=[records_pb2.SerialRange(start=1_000, end=1_999)]
            )
        ),
    ).SerializeToString()
    envelope = ah.signer.sign(PROPOSAL_TYPE, body)
    request = transfer_service_pb2.ProposeTransferRequest(envelope=envelope)
    first = ah.call(ah.transfers.ProposeTransfer, request).transfer
    again = ah.call(ah.transfers.ProposeTransfer, request).transfer  # e.g. after a lost reply
    assert again == first


def test_check_codes_travel_as_error_info(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    publish_samples(client_for)
    ah, js = client_for(AH), client_for(JS)
    with pytest.raises(SerialsNotHeld) as info:
        js.propose_transfer("steal", SH, origin=AH, ranges=[(1_000, 1_999)])
    assert info.value.code is Code.FAILED_PRECONDITION
    assert info.value.metadata["check"] == "4"
    t = ah.propose_transfer("ah-2", SH, origin=AH, ranges=[(1_000, 1_999)])
    with pytest.raises(CallerNotDestination) as denied:
        js.accept_transfer(t.name)
    assert denied.value.code is Code.PERMISSION_DENIED
    assert denied.value.metadata["check"] == "1"
    # The refused calls did not advance either signer's chain: the next calls go through.
    assert client_for(SH).accept_transfer(t.name).state == transfer_pb2.TRANSFER_STATE_COMPLETED
    admin = client_for(SH, Role.ADMIN, "admin-a")
    assert admin.get_transfer(t.name).state == transfer_pb2.TRANSFER_STATE_COMPLETED
