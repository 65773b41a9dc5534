"""The validation layer (gateway/validation, protocol §7.3): the table names real messages and
fields, and the known faults of issue 17 are refused with their reasons and field paths."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from yrd.interop.v1 import (
    audit_service_pb2,
    duplicate_service_pb2,
    duplicates_pb2,
    envelope_pb2,
    gateway_info_service_pb2,
    key_service_pb2,
    recognition_pb2,
    recognition_service_pb2,
    reconciliation_pb2,
    reconciliation_service_pb2,
    records_pb2,
    registry_service_pb2,
    transfer_pb2,
    transfer_service_pb2,
)

from gateway import errors, validation
from gateway.validation.rules import RULES, Enum, Required

MODULES = (
    audit_service_pb2,
    duplicate_service_pb2,
    duplicates_pb2,
    envelope_pb2,
    gateway_info_service_pb2,
    key_service_pb2,
    recognition_pb2,
    recognition_service_pb2,
    reconciliation_pb2,
    reconciliation_service_pb2,
    records_pb2,
    registry_service_pb2,
    transfer_pb2,
    transfer_service_pb2,
)
DESCRIPTORS = {
    d.full_name: d
    for m in MODULES
    for d in m.DESCRIPTOR.message_types_by_name.values()
    for d in [d, *d.nested_types]
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_names_a_real_message_field_and_oneof(name: str) -> None:
    descriptor = DESCRIPTORS[name]
    rules = RULES[name]
    for field, rule in rules.fields.items():
        f = descriptor.fields_by_name[field]  # KeyError: a typo in the table
        if isinstance(rule, Enum):
            assert f.type == FieldDescriptor.TYPE_ENUM, field
            assert all(v in f.enum_type.values_by_number for v in rule.allowed), field
        if isinstance(rule, Required):
            assert f.type == FieldDescriptor.TYPE_MESSAGE, field
    for oneof in rules.oneofs:
        assert oneof in descriptor.oneofs_by_name


def ranges(*pairs: tuple[int, int], origin: str = "310000") -> transfer_pb2.UnitSelection:
    return transfer_pb2.UnitSelection(
        ranges=transfer_pb2.SerialRanges(
            origin_region=origin,
            ranges=[records_pb2.SerialRange(start=s, end=e) for s, e in pairs],
        )
    )


def quantity(grams: int) -> transfer_pb2.UnitSelection:
    return transfer_pb2.UnitSelection(
        quantity=transfer_pb2.QuantityFromProject(
            project="regions/310000/projects/p", vintage=2024, quantity_grams=grams
        )
    )


def order(units: transfer_pb2.UnitSelection) -> transfer_service_pb2.RetirementOrder:
    return transfer_service_pb2.RetirementOrder(
        retirement_id="r-1",
        units=units,
        purpose=transfer_pb2.TRANSFER_PURPOSE_CHARITABLE,
        beneficiary="某公司",
    )


def proposal(**changes: object) -> transfer_service_pb2.TransferProposal:
    p = transfer_service_pb2.TransferProposal(
        transfer_id="t-1",
        destination_region="320000",
        units=ranges((0, 9)),
        purpose=transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
    )
    for name, value in changes.items():
        setattr(p, name, value)
    return p


def refused(message: Message) -> errors.DomainError:
    err = validation.refusal(message)
    assert err is not None, message
    return err


def test_well_formed_bodies_pass() -> None:
    assert validation.refusal(proposal()) is None
    assert validation.refusal(order(quantity(1))) is None
    assert validation.refusal(order(ranges((5, 5), (0, 4)))) is None


@pytest.mark.parametrize(
    ("units", "path"),
    [
        (quantity(0), "units.quantity.quantity_grams"),
        (quantity(-1), "units.quantity.quantity_grams"),
        (ranges((9, 0)), "units.ranges.ranges[0].end"),
        (ranges((-1, 0)), "units.ranges.ranges[0].start"),
        (ranges((0, 9), (9, 12)), "units.ranges.ranges"),
        (ranges(), "units.ranges.ranges"),
        (transfer_pb2.UnitSelection(), "units.selection"),
    ],
)
def test_a_retirement_order_without_units_to_count_is_refused(
    units: transfer_pb2.UnitSelection, path: str
) -> None:
    err = refused(order(units))
    assert type(err) is errors.InvalidArgument
    assert path in err.field_errors, err.field_errors


def test_a_transfer_purpose_unspecified_is_refused() -> None:
    err = refused(proposal(purpose=transfer_pb2.TRANSFER_PURPOSE_UNSPECIFIED))
    assert err.field_errors == {"purpose": "required (TRANSFER_PURPOSE_UNSPECIFIED is not a value)"}
    assert (
        "purpose"
        in refused(proposal(purpose=transfer_pb2.TRANSFER_PURPOSE_CHARITABLE)).field_errors
    )


@pytest.mark.parametrize("transfer_id", ["a\x00b", "\x7f", "a\u0085", "a b", " ", "x" * 121, "a/b"])
def test_request_ids_have_no_controls_whitespace_or_slash(transfer_id: str) -> None:
    assert "transfer_id" in refused(proposal(transfer_id=transfer_id)).field_errors


def test_every_string_field_refuses_control_characters() -> None:
    err = refused(transfer_service_pb2.GetTransferRequest(name="regions/310000/transfers/a\x00"))
    assert err.field_errors == {"name": "control character U+0000 not allowed"}
    # Free text allows line breaks and tabs, nothing else.
    assert validation.refusal(transfer_service_pb2.TransferAnswer(reason="a\r\n\tb")) is None
    assert "reason" in refused(transfer_service_pb2.TransferAnswer(reason="a\x1bb")).field_errors


@pytest.mark.parametrize(
    "request_message",
    [
        transfer_service_pb2.ListTransfersRequest(state=42),
        transfer_service_pb2.ListUnitBlocksRequest(state=-1),
        registry_service_pb2.ListRecordsRequest(kind=9),
        recognition_service_pb2.ListRecognitionsRequest(state=77),
        registry_service_pb2.SubscribeRequest(kinds=[registry_service_pb2.RECORD_KIND_PROJECT, 0]),
        registry_service_pb2.SubscribeRequest(format=5),
        transfer_service_pb2.ListTransfersRequest(source_region="31000"),
        transfer_service_pb2.ListUnitBlocksRequest(holder_region="３１００００"),
        registry_service_pb2.SubscribeRequest(regions=["310000", ""]),
        key_service_pb2.ListSigningKeysRequest(region="abc"),
    ],
)
def test_unknown_filters_are_refused_not_answered_empty(request_message: Message) -> None:
    err = refused(request_message)
    assert type(err) is errors.InvalidArgument
    assert err.field_errors


def test_zero_means_any_in_filters_and_an_unserved_region_is_well_formed() -> None:
    assert validation.refusal(transfer_service_pb2.ListTransfersRequest()) is None
    assert (
        validation.refusal(transfer_service_pb2.ListTransfersRequest(source_region="999999"))
        is None
    )


def test_the_reasons_the_spec_names_for_particular_fields() -> None:
    assert type(refused(registry_service_pb2.SubscribeRequest(cursor="x"))) is errors.CursorInvalid
    err = refused(recognition_service_pb2.CheckRecognizedRequest(region="31"))
    assert err.reason == "UNKNOWN_REGION"
    held = reconciliation_service_pb2.SubmitHoldingsRequest()
    held.blocks.blocks.add(origin_region="310000", serials=records_pb2.SerialRange(start=1))
    err = refused(held)
    assert type(err) is errors.SnapshotInvalid
    assert set(err.field_errors) == {"blocks.blocks[0].state", "blocks.blocks[0].serials.end"}


def test_held_block_columns_are_left_to_the_snapshot_builder() -> None:
    """Checked whole where the snapshot is built (a column at a time), not element by element
    here: tests/integration/test_reconciliation_columns.py has their refusals."""
    held = reconciliation_service_pb2.SubmitHoldingsRequest()
    held.columns.origin_region = "x\x00"
    held.columns.serial_starts.extend([-1, 5])
    held.columns.states.append(99)
    assert validation.refusal(held) is None
    assert validation.refusal(reconciliation_service_pb2.SubmitHoldingsRequest()) is not None


def test_decisions_and_verdicts_are_left_to_their_rpc() -> None:
    answer = transfer_service_pb2.TransferAnswer(transfer="regions/310000/transfers/t", decision=9)
    assert validation.refusal(answer) is None  # ANSWER_DECISION_MISMATCH, by the RPC
    verdict = recognition_service_pb2.RecognitionVerdict(recognition="recognitions/a", verdict=7)
    assert validation.refusal(verdict) is None  # VERDICT_MISMATCH, by the RPC


def test_the_signed_envelope_keeps_its_own_checks() -> None:
    request = transfer_service_pb2.ProposeTransferRequest(
        envelope=envelope_pb2.SignedEnvelope(content_type="\x00")
    )
    assert validation.refusal(request) is None


def case_verdict(**changes: object) -> duplicate_service_pb2.CaseVerdict:
    v = duplicate_service_pb2.CaseVerdict(
        duplicate_case="duplicateCases/dc-0123456789ab",
        resolution=duplicates_pb2.CASE_RESOLUTION_DUPLICATE,
        standing="regions/310000/projects/PV-1",
        comment="同一电站，江苏登记在后",
    )
    for name, value in changes.items():
        setattr(v, name, value)
    return v


def test_a_case_verdict_needs_a_case_a_resolution_and_a_comment() -> None:
    assert validation.refusal(case_verdict()) is None
    assert validation.refusal(case_verdict(standing="schemes/CCER/projects/C-1")) is None
    assert validation.refusal(case_verdict(standing="")) is None  # the earlier one
    for changes, path in [
        ({"comment": ""}, "comment"),
        ({"comment": " \n "}, "comment"),
        ({"comment": "x" * 20_001}, "comment"),
        ({"comment": "a\x00b"}, "comment"),
        ({"resolution": duplicates_pb2.CASE_RESOLUTION_UNSPECIFIED}, "resolution"),
        ({"resolution": 7}, "resolution"),
        ({"duplicate_case": "recognitions/x"}, "duplicate_case"),
        ({"duplicate_case": "duplicateCases/../x"}, "duplicate_case"),
    ]:
        err = refused(case_verdict(**changes))
        assert type(err) is errors.InvalidArgument, changes
        assert list(err.field_errors) == [path], changes
    # A standing that names no registration at all is the resolution's own reason.
    err = refused(case_verdict(standing="regions/310000/transfers/t"))
    assert type(err) is errors.StandingInvalid
    assert list(err.field_errors) == ["standing"]


def test_duplicate_case_requests() -> None:
    get = duplicate_service_pb2.GetDuplicateCaseRequest
    assert validation.refusal(get(name="duplicateCases/dc-0123456789ab")) is None
    assert "name" in refused(get(name="")).field_errors
    listing = duplicate_service_pb2.ListDuplicateCasesRequest
    assert validation.refusal(listing()) is None
    assert (
        validation.refusal(
            listing(
                region="320000",
                state=duplicates_pb2.DUPLICATE_CASE_STATE_OPEN,
                strength=duplicates_pb2.MATCH_STRENGTH_CERTAIN,
                subject="regions/320000/projects/PV-9",
                page_token="1733000000000000.dc-0123456789ab",
            )
        )
        is None
    )
    assert type(refused(listing(page_token="12"))) is errors.CursorInvalid
    assert type(refused(listing(page_token="x.dc-1"))) is errors.CursorInvalid
    assert "region" in refused(listing(region="31")).field_errors
    assert "state" in refused(listing(state=9)).field_errors
    assert "strength" in refused(listing(strength=-1)).field_errors
    assert "subject" in refused(listing(subject="projects/x")).field_errors
