"""Translation between service-layer values and protobuf messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from google.protobuf import duration_pb2, timestamp_pb2
from yrd.interop.v1 import (
    audit_pb2,
    gateway_info_service_pb2,
    key_service_pb2,
    recognition_pb2,
    records_pb2,
    registry_service_pb2,
    transfer_pb2,
)

import mutual_recognition as mr
from gateway import protowire
from gateway.contract import BLOCK_STATE_PROTO, TRANSFER_STATE_PROTO, block_name
from gateway.rpc.status import in_band_reason
from gateway.security.audit_chain import StoredEntry
from gateway.services import info as info_service
from gateway.services.exchange import FeedItem, PublishOutcome, StoredEnvelope, fill_envelope
from gateway.services.keys import SigningKey
from gateway.services.ledger import BlockView, RetirementView, TransferView


def timestamp(when: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when.astimezone(dt.UTC))
    return ts


def signing_key(key: SigningKey) -> key_service_pb2.SigningKey:
    msg = key_service_pb2.SigningKey(
        key_id=key.key_id,
        region=key.region,
        owner=key.owner,
        public_key=key.public_key,
        register_time=timestamp(key.registered_at),
        revoke_reason=key.revoke_reason or "",
        last_sequence=key.last_sequence,
        last_envelope_hash=key.last_hash,
    )
    if key.revoked_at is not None:
        msg.revoke_time.CopyFrom(timestamp(key.revoked_at))
    return msg


def audit_entry(row: StoredEntry) -> audit_pb2.AuditEntry:
    return audit_pb2.AuditEntry(
        sequence=row.sequence,
        kind=row.kind,
        subject=row.subject,
        actor_region=row.actor_region,
        actor=row.actor,
        detail=row.detail,
        previous_hash=row.previous_hash,
        entry_hash=row.entry_hash,
        create_time=timestamp(row.created_at),
    )


def envelope_result(outcome: PublishOutcome) -> registry_service_pb2.EnvelopeResult:
    result = registry_service_pb2.EnvelopeResult(
        envelope_hash=outcome.envelope_hash.hex(),
        accepted=outcome.accepted,
        record_names=outcome.record_names,
    )
    if outcome.error is not None:
        result.reason = in_band_reason(outcome.error)
        result.message = outcome.error.message
        result.field_errors.update(outcome.error.field_errors)
    return result


def publish_response(outcomes: list[PublishOutcome]) -> registry_service_pb2.PublishResponse:
    """The acknowledgement of a batch: one result per envelope, in order."""
    response = registry_service_pb2.PublishResponse()
    add = response.results.add
    for outcome in outcomes:
        if outcome.error is None:  # the common case, built in place
            add(
                envelope_hash=outcome.envelope_hash.hex(),
                accepted=True,
                record_names=outcome.record_names,
            )
        else:
            response.results.append(envelope_result(outcome))
    return response


def feed_response(items: list[FeedItem]) -> registry_service_pb2.SubscribeResponse:
    """A SubscribeResponse carrying the items as events (parsed once from the hand-written bytes,
    so what gRPC sends is the generated encoder's output)."""
    return registry_service_pb2.SubscribeResponse.FromString(protowire.feed_events(items))


def unit_block(b: BlockView) -> records_pb2.UnitBlock:
    return records_pb2.UnitBlock(
        name=block_name(b.origin_region, b.id),
        origin_region=b.origin_region,
        issuance=b.issuance,
        project=b.project,
        vintage=b.vintage,
        serials=records_pb2.SerialRange(start=b.serial_start, end=b.serial_end),
        holder_region=b.holder_region,
        state=BLOCK_STATE_PROTO[b.state],
        reserved_by=b.reserved_by or "",
        parent=block_name(b.origin_region, b.parent_id) if b.parent_id else "",
    )


def transfer(t: TransferView) -> transfer_pb2.Transfer:
    msg = transfer_pb2.Transfer(
        name=t.name,
        transfer_id=t.transfer_id,
        source_region=t.source_region,
        destination_region=t.destination_region,
        blocks=[unit_block(b) for b in t.blocks],
        quantity_grams=t.quantity_grams,
        purpose=transfer_pb2.TransferPurpose.ValueType(t.purpose),
        state=TRANSFER_STATE_PROTO[t.state],
        propose_time=timestamp(t.proposed_at),
        expire_time=timestamp(t.expires_at),
    )
    if t.resolved_at is not None:
        msg.resolve_time.CopyFrom(timestamp(t.resolved_at))
    if t.reason:
        msg.reasons.add(reason=t.state, message=t.reason)
    return msg


def retirement(r: RetirementView) -> transfer_pb2.Retirement:
    exact = r.ratio * r.quantity_grams
    return transfer_pb2.Retirement(
        name=r.name,
        retirement_id=r.retirement_id,
        holder_region=r.holder_region,
        blocks=[unit_block(b) for b in r.blocks],
        quantity_grams=r.quantity_grams,
        purpose=transfer_pb2.TransferPurpose.ValueType(r.purpose),
        beneficiary=r.beneficiary,
        compliance_year=r.compliance_year,
        retire_time=timestamp(r.retired_at),
        credited_grams=r.credited_grams,
        ratio_numerator=r.ratio.numerator,
        ratio_denominator=r.ratio.denominator,
        # quantity × ratio − credited is a multiple of 1/ratio.denominator.
        rounding_remainder_numerator=int((exact - r.credited_grams) * r.ratio.denominator),
        declared_obligation_grams=r.declared_obligation_grams,
        outside_grams=r.outside_grams,
    )


_RECOGNITION_STATE = {
    "requested": recognition_pb2.RECOGNITION_STATE_REQUESTED,
    "approved": recognition_pb2.RECOGNITION_STATE_APPROVED,
    "rejected": recognition_pb2.RECOGNITION_STATE_REJECTED,
    "revoked": recognition_pb2.RECOGNITION_STATE_REVOKED,
    "expired": recognition_pb2.RECOGNITION_STATE_EXPIRED,
}


def recognition(
    rec: mr.Recognition, assessment: bytes, envelopes: Mapping[bytes, StoredEnvelope]
) -> recognition_pb2.Recognition:
    """The proto form of a recognition, with each decision's signed envelope (from
    ``envelopes``, by hash) attached."""
    state = mr.effective_state(rec, dt.datetime.now(dt.UTC))
    msg = recognition_pb2.Recognition(
        name=rec.name,
        subject=rec.subject.name,
        requesting_region=rec.requesting_region,
        recognising_region=rec.recognising_region,
        state=_RECOGNITION_STATE[state.value],
        required_approvals=rec.required_approvals,
        assessment=recognition_pb2.EquivalenceAssessment.FromString(assessment),
        request_time=timestamp(rec.requested_at),
        revoke_reason=rec.revoke_reason or "",
    )
    c = rec.conditions
    msg.conditions.vintage_from = c.vintage_from or 0
    msg.conditions.vintage_to = c.vintage_to or 0
    if c.ets_adjustment_ratio is not None:
        msg.conditions.ets_adjustment_ratio.numerator = c.ets_adjustment_ratio.numerator
        msg.conditions.ets_adjustment_ratio.denominator = c.ets_adjustment_ratio.denominator
    if c.expire_date is not None:
        day = c.expire_date
        msg.conditions.expire_date.year, msg.conditions.expire_date.month = day.year, day.month
        msg.conditions.expire_date.day = day.day
    if rec.revoked_at is not None:
        msg.revoke_time.CopyFrom(timestamp(rec.revoked_at))
    for d in rec.decisions:
        item = msg.decisions.add(
            region=d.region,
            admin=d.admin,
            verdict=recognition_pb2.VERDICT_APPROVE
            if d.verdict is mr.DecisionVerdict.APPROVE
            else recognition_pb2.VERDICT_REJECT,
            comment=d.comment,
            decide_time=timestamp(d.decided_at),
        )
        if d.envelope in envelopes:
            fill_envelope(item.envelope, envelopes[d.envelope])
    return msg


_INFO = gateway_info_service_pb2
_ROLE = {
    info_service.REGISTRY: _INFO.REGION_ROLE_REGISTRY,
    info_service.RECOGNISER: _INFO.REGION_ROLE_RECOGNISER,
    info_service.ETS: _INFO.REGION_ROLE_ETS,
    info_service.RECONCILED: _INFO.REGION_ROLE_RECONCILED,
}


def duration(span: dt.timedelta) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(span)
    return d


def gateway_info(info: info_service.GatewayInfo) -> gateway_info_service_pb2.GetGatewayInfoResponse:
    """GetGatewayInfo's answer from the service's facts."""
    msg = _INFO.GetGatewayInfoResponse(
        protocol=_INFO.ProtocolVersion(package=info.protocol_package, version=info.protocol_version)
    )
    for key in info.signing_keys:
        k = msg.signing_keys.add(
            key_id=key.key_id,
            public_key=key.public_key,
            algorithm="Ed25519",
            status=_INFO.GATEWAY_SIGNING_KEY_STATUS_CURRENT
            if key.current
            else _INFO.GATEWAY_SIGNING_KEY_STATUS_PREVIOUS,
        )
        if key.valid_from is not None:
            k.valid_from.CopyFrom(timestamp(key.valid_from))
        if key.valid_until is not None:
            k.valid_until.CopyFrom(timestamp(key.valid_until))
    for r in info.regions:
        msg.regions.add(
            region=r.region,
            name_en=r.name_en,
            name_zh=r.name_zh,
            roles=[_ROLE[role] for role in r.roles],
            native_content_types=list(r.content_types),
            serial_unit_grams=r.serial_unit_grams,
            required_approvals=r.required_approvals,
        )
    p = info.policies
    msg.policies.recognition_enforced = p.recognition_enforced
    msg.policies.delta_wide_needs_every_region = p.delta_wide_needs_every_region
    msg.policies.transfer_proposal_ttl.CopyFrom(duration(p.proposal_ttl))
    for region, ets in p.ets_offsets.items():
        e = msg.policies.ets_offset_policies.add(
            region=region,
            max_share=str(ets.max_share),
            max_outside_share="" if ets.max_outside_share is None else str(ets.max_outside_share),
            quantity_multiple_grams=p.ets_quantity_multiple_grams,
        )
        if ets.vintage_window_years is not None:
            e.vintage_window_years = ets.vintage_window_years
    lim, out = info.limits, msg.limits
    out.max_message_bytes = lim.max_message_bytes
    out.max_concurrent_rpcs = lim.max_concurrent_rpcs
    out.max_envelopes_per_publish = lim.max_envelopes_per_publish
    out.max_native_document_bytes = lim.max_native_document_bytes
    out.max_native_csv_bytes = lim.max_native_csv_bytes
    out.max_native_csv_rows = lim.max_native_csv_rows
    out.max_native_identifier_chars = lim.max_native_identifier_chars
    out.max_native_text_chars = lim.max_native_text_chars
    out.max_request_id_chars = lim.max_request_id_chars
    out.max_snapshot_blocks = lim.max_snapshot_blocks
    out.max_snapshot_time_ahead.CopyFrom(duration(lim.max_snapshot_time_ahead))
    if lim.max_sign_time_skew is not None:
        out.max_sign_time_skew.CopyFrom(duration(lim.max_sign_time_skew))
    for rule in lim.page_rules:
        out.page_limits.add(method=rule.method, default_size=rule.default, max_size=rule.maximum)
    return msg
