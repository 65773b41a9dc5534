"""Reading retirements over real mTLS, on SQLite and PostgreSQL: ListRetirements with each filter
and page by page, GetRetirement answering what Retire answered, another region's retirement read
as ListTransfers' rule allows (any caller), a name that does not exist, and malformed filters
refused with their field."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf.message import Message
from yrd.interop.v1 import records_pb2, transfer_pb2, transfer_service_pb2

from gateway.client import GatewayClient, error_from_rpc
from gateway.errors import DomainError, RetirementNotFound
from gateway.security.identity import Role

AH, SH, JS, ZJ = "340000", "310000", "320000", "330000"
ETS = transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET
NEUTRAL = transfer_pb2.TRANSFER_PURPOSE_VOLUNTARY_NEUTRALITY
CHARITY = transfer_pb2.TRANSFER_PURPOSE_CHARITABLE
TONNE = 1_000_000


def _own_block(client: GatewayClient, region: str) -> records_pb2.UnitBlock:
    return next(
        b
        for b in client.holdings(region, records_pb2.UNIT_BLOCK_STATE_ACTIVE)
        if b.origin_region == region
    )


@pytest.fixture
def retired(
    published: Callable[..., GatewayClient],
) -> tuple[Callable[..., GatewayClient], list[transfer_pb2.Retirement]]:
    """Three retirements, as Retire answered them: Shanghai's ETS offset of Anhui units (moved
    to it first), Shanghai's own units for neutrality, Anhui's own for charity."""
    ah, sh = published(AH), published(SH)
    moved = ah.propose_transfer("to-sh", SH, origin=AH, ranges=[(1_000, 2 * TONNE + 999)])
    sh.accept_transfer(moved.name)
    mine = _own_block(sh, SH)
    ah_block = _own_block(ah, AH)
    made = [
        sh.retire(
            "ets-1",
            ETS,
            "上海某钢铁有限公司",
            origin=AH,
            ranges=[(1_000, TONNE + 999)],
            compliance_year=2025,
            declared_obligation_grams=100 * TONNE,
        ),
        sh.retire(
            "neutral-1",
            NEUTRAL,
            "进博会",
            origin=SH,
            ranges=[(mine.serials.start, mine.serials.start + 4_999)],
        ),
        ah.retire(
            "charity-1",
            CHARITY,
            "希望工程",
            origin=AH,
            ranges=[(ah_block.serials.start, ah_block.serials.start + 99)],
        ),
    ]
    return published, made


def _names(found: list[transfer_pb2.Retirement]) -> list[str]:
    return [r.name for r in found]


def test_list_filters_and_get(
    retired: tuple[Callable[..., GatewayClient], list[transfer_pb2.Retirement]],
) -> None:
    client_for, made = retired
    ets, neutral, charity = made
    sh = client_for(SH)
    assert sh.list_retirements() == made  # every field, in the order they took effect
    assert _names(sh.list_retirements(holder=SH)) == [ets.name, neutral.name]
    assert _names(sh.list_retirements(holder=AH)) == [charity.name]
    assert sh.list_retirements(holder=JS) == []
    assert _names(sh.list_retirements(purpose=ETS)) == [ets.name]
    assert _names(sh.list_retirements(purpose=CHARITY)) == [charity.name]
    assert _names(sh.list_retirements(compliance_year=2025)) == [ets.name]
    assert sh.list_retirements(compliance_year=2026) == []
    assert _names(sh.list_retirements(holder=SH, purpose=NEUTRAL)) == [neutral.name]
    assert sh.list_retirements(holder=AH, purpose=ETS) == []

    got = sh.get_retirement(ets.name)
    assert got == ets  # what Retire answered, blocks included
    assert got.name == f"regions/{SH}/retirements/ets-1" and got.holder_region == SH
    assert (got.purpose, got.beneficiary, got.compliance_year) == (ETS, "上海某钢铁有限公司", 2025)
    assert (got.declared_obligation_grams, got.quantity_grams) == (100 * TONNE, TONNE)
    assert got.outside_grams == TONNE  # Anhui's units, retired in Shanghai, at ratio 1
    assert [(b.origin_region, b.serials.start, b.serials.end) for b in got.blocks] == [
        (AH, 1_000, TONNE + 999)
    ]
    assert all(b.state == records_pb2.UNIT_BLOCK_STATE_RETIRED for b in got.blocks)
    assert got.retire_time.seconds > 0
    own = sh.get_retirement(neutral.name)
    assert (own.outside_grams, own.declared_obligation_grams, own.compliance_year) == (0, 0, 0)
    assert own.quantity_grams == 5_000


def test_pages(
    retired: tuple[Callable[..., GatewayClient], list[transfer_pb2.Retirement]],
) -> None:
    client_for, made = retired
    sh = client_for(SH)
    seen, token, pages = [], "", 0
    while True:
        page = sh.transfers.ListRetirements(
            transfer_service_pb2.ListRetirementsRequest(page_size=1, page_token=token)
        )
        pages += 1
        seen += list(page.retirements)
        token = page.next_page_token
        if not token:
            break
    assert (pages, seen) == (3, made)
    two = sh.transfers.ListRetirements(transfer_service_pb2.ListRetirementsRequest(page_size=2))
    assert _names(list(two.retirements)) == _names(made[:2]) and two.next_page_token
    rest = sh.transfers.ListRetirements(
        transfer_service_pb2.ListRetirementsRequest(page_size=2, page_token=two.next_page_token)
    )
    assert list(rest.retirements) == made[2:] and rest.next_page_token == ""


def test_any_caller_reads_another_regions_retirement(
    retired: tuple[Callable[..., GatewayClient], list[transfer_pb2.Retirement]],
) -> None:
    client_for, made = retired
    ets = made[0]
    # §2.4: as GetTransfer and ListTransfers, any role of any region reads them.
    for reader in (
        client_for(JS),
        client_for(ZJ, Role.ADMIN, "admin-a"),
        client_for(AH),
    ):
        assert reader.get_retirement(ets.name) == ets
        assert _names(reader.list_retirements(holder=SH)) == _names(made[:2])


def test_unknown_retirement_is_not_found(
    retired: tuple[Callable[..., GatewayClient], list[transfer_pb2.Retirement]],
) -> None:
    client_for, _ = retired
    name = f"regions/{SH}/retirements/never"
    with pytest.raises(RetirementNotFound) as info:
        client_for(JS).get_retirement(name)
    assert info.value.code.name == "NOT_FOUND"
    assert info.value.metadata["retirement"] == name
    # A transfer's name is not a retirement's.
    with pytest.raises(RetirementNotFound):
        client_for(SH).get_retirement(f"regions/{AH}/transfers/to-sh")


def _refusal(client: GatewayClient, request: Message) -> DomainError:
    with pytest.raises(grpc.RpcError) as info:
        client.transfers.ListRetirements(request)
    err = error_from_rpc(info.value)
    assert isinstance(err, DomainError), err
    return err


@pytest.mark.parametrize(
    ("request_message", "reason", "field"),
    [
        (transfer_service_pb2.ListRetirementsRequest(purpose=42), "INVALID_ARGUMENT", "purpose"),
        (
            transfer_service_pb2.ListRetirementsRequest(
                purpose=transfer_pb2.TRANSFER_PURPOSE_TRANSFER
            ),
            "INVALID_ARGUMENT",
            "purpose",
        ),
        (
            transfer_service_pb2.ListRetirementsRequest(holder_region="31000"),
            "INVALID_ARGUMENT",
            "holder_region",
        ),
        (
            transfer_service_pb2.ListRetirementsRequest(compliance_year=1999),
            "INVALID_ARGUMENT",
            "compliance_year",
        ),
        (
            transfer_service_pb2.ListRetirementsRequest(page_size=1001),
            "INVALID_ARGUMENT",
            "page_size",
        ),
        (
            transfer_service_pb2.ListRetirementsRequest(page_token="x1"),
            "CURSOR_INVALID",
            "page_token",
        ),
    ],
)
def test_malformed_filters_are_refused_not_answered_empty(
    published: Callable[..., GatewayClient], request_message: Message, reason: str, field: str
) -> None:
    err = _refusal(published(SH), request_message)
    assert (err.code.name, err.reason) == ("INVALID_ARGUMENT", reason)
    assert list(err.field_errors) == [field]
