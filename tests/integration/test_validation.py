"""The validation layer over a real gateway (protocol §7.3), on both backends: the faults of issue
17 that answered INTERNAL or wrongly OK are refused with their reason and BadRequest field, and
change nothing (tests/hostile/ sends every field's hostile values; these name the reasons)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf.message import Message
from yrd.interop.v1 import (
    records_pb2,
    registry_service_pb2,
    transfer_pb2,
    transfer_service_pb2,
)

from gateway.client import GatewayClient, error_from_rpc
from gateway.contract import ANSWER_TYPE, PROPOSAL_TYPE, RETIREMENT_TYPE
from gateway.errors import DomainError
from gateway.server import GatewayServer
from tests.digest import table_digests

SH, JS = "310000", "320000"


def refusal(call: Callable[[], object]) -> DomainError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    err = error_from_rpc(info.value)
    assert isinstance(err, DomainError), err
    return err


def signed_refusal(
    client: GatewayClient,
    method: Callable[..., object],
    wrap: type[Message],
    ct: str,
    body: Message,
) -> DomainError:
    """Sign ``body`` as the next envelope of the client's chain and send it; the refusal (the
    chain head is put back: a refused envelope does not advance it)."""
    head = client.signer.head()
    env = client.signer.sign(ct, body.SerializeToString())
    try:
        return refusal(lambda: method(wrap(envelope=env)))
    finally:
        client.signer.rewind(*head)


def _block(client: GatewayClient) -> records_pb2.UnitBlock:
    reply = client.transfers.ListUnitBlocks(
        transfer_service_pb2.ListUnitBlocksRequest(holder_region=SH, origin_region=SH)
    )
    return reply.blocks[0]


def test_hostile_signed_bodies_are_refused_with_their_fields(
    server: GatewayServer, published: Callable[..., GatewayClient]
) -> None:
    sh, js = published(SH), published(JS)
    block = _block(sh)
    before = table_digests(server.db)
    ts = transfer_service_pb2
    # A retirement for 0 or -1 grams, or a reversed range: ZeroDivisionError / AssertionError
    # (INTERNAL) before the validation layer.
    for grams in (0, -1):
        order = ts.RetirementOrder(
            retirement_id="r-1",
            purpose=transfer_pb2.TRANSFER_PURPOSE_CHARITABLE,
            beneficiary="b",
            units=transfer_pb2.UnitSelection(
                quantity=transfer_pb2.QuantityFromProject(
                    project=block.project, vintage=block.vintage, quantity_grams=grams
                )
            ),
        )
        err = signed_refusal(sh, sh.transfers.Retire, ts.RetireRequest, RETIREMENT_TYPE, order)
        assert (err.code.name, err.reason) == ("INVALID_ARGUMENT", "INVALID_ARGUMENT")
        assert list(err.field_errors) == ["units.quantity.quantity_grams"]
    reversed_range = ts.RetirementOrder(
        retirement_id="r-2",
        purpose=transfer_pb2.TRANSFER_PURPOSE_CHARITABLE,
        beneficiary="b",
        units=transfer_pb2.UnitSelection(
            ranges=transfer_pb2.SerialRanges(
                origin_region=SH,
                ranges=[records_pb2.SerialRange(start=block.serials.end, end=block.serials.start)],
            )
        ),
    )
    err = signed_refusal(sh, sh.transfers.Retire, ts.RetireRequest, RETIREMENT_TYPE, reversed_range)
    assert list(err.field_errors) == ["units.ranges.ranges[0].end"]
    # A purpose UNSPECIFIED (stored as a transfer before), a NUL in the id (stored on SQLite).
    for purpose, transfer_id, field in (
        (transfer_pb2.TRANSFER_PURPOSE_UNSPECIFIED, "t-1", "purpose"),
        (transfer_pb2.TRANSFER_PURPOSE_TRANSFER, "t\x00", "transfer_id"),
    ):
        proposal = ts.TransferProposal(
            transfer_id=transfer_id,
            destination_region=JS,
            purpose=purpose,
            units=transfer_pb2.UnitSelection(
                ranges=transfer_pb2.SerialRanges(
                    origin_region=SH,
                    ranges=[
                        records_pb2.SerialRange(
                            start=block.serials.start, end=block.serials.start + 9
                        )
                    ],
                )
            ),
        )
        err = signed_refusal(
            sh, sh.transfers.ProposeTransfer, ts.ProposeTransferRequest, PROPOSAL_TYPE, proposal
        )
        assert err.reason == "INVALID_ARGUMENT" and list(err.field_errors) == [field]
    assert table_digests(server.db) == before  # every refusal above changed nothing
    # A decision outside the enum (ValueError before): its number in the metadata.
    pending = sh.propose_transfer(
        "t-2", JS, origin=SH, ranges=[(block.serials.start, block.serials.start + 9)]
    )
    before = table_digests(server.db)
    answer = ts.TransferAnswer(transfer=pending.name, decision=7)
    err = signed_refusal(
        js, js.transfers.AcceptTransfer, ts.AcceptTransferRequest, ANSWER_TYPE, answer
    )
    assert err.reason == "ANSWER_DECISION_MISMATCH"
    assert err.metadata["decision"] == "7" and err.metadata["check"] == "2"
    assert table_digests(server.db) == before


@pytest.mark.parametrize(
    ("method", "request_message", "field"),
    [
        ("ListTransfers", transfer_service_pb2.ListTransfersRequest(state=42), "state"),
        ("ListUnitBlocks", transfer_service_pb2.ListUnitBlocksRequest(state=9), "state"),
        (
            "ListTransfers",
            transfer_service_pb2.ListTransfersRequest(destination_region="32000"),
            "destination_region",
        ),
        ("ListRecords", registry_service_pb2.ListRecordsRequest(region="abcdef"), "region"),
        ("Subscribe", registry_service_pb2.SubscribeRequest(kinds=[12]), "kinds[0]"),
        ("Subscribe", registry_service_pb2.SubscribeRequest(regions=["31000"]), "regions[0]"),
    ],
)
def test_unknown_filters_are_refused_not_answered_empty(
    published: Callable[..., GatewayClient], method: str, request_message: Message, field: str
) -> None:
    client = published(SH)
    stub = client.registry if method in ("ListRecords", "Subscribe") else client.transfers

    def call() -> object:
        reply = getattr(stub, method)(request_message)
        return list(reply) if method == "Subscribe" else reply

    err = refusal(call)
    assert (err.code.name, err.reason) == ("INVALID_ARGUMENT", "INVALID_ARGUMENT")
    assert list(err.field_errors) == [field]


def test_gateway_info_serves_the_sign_time_skew(client_for: Callable[..., GatewayClient]) -> None:
    limits = client_for(SH).gateway_info().limits
    assert limits.max_sign_time_skew.ToSeconds() == 600
