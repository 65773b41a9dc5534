"""Translation between service-layer values and protobuf messages."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2
from yrd.interop.v1 import audit_pb2, key_service_pb2, registry_service_pb2

from gateway.services.exchange import FeedItem, PublishOutcome, fill_envelope
from gateway.services.keys import SigningKey
from gateway.storage.models import AuditEntryRow


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


def audit_entry(row: AuditEntryRow) -> audit_pb2.AuditEntry:
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
        result.reason = outcome.error.reason
        result.message = outcome.error.message
        result.field_errors.update(outcome.error.field_errors)
    return result


def add_feed_events(
    response: registry_service_pb2.SubscribeResponse, items: list[FeedItem]
) -> None:
    """Append the items to a response in place (no intermediate messages: the feed is hot)."""
    for item in items:
        event = response.events.add()
        event.cursor = str(item.position)
        event.record.MergeFromString(item.body)
        fill_envelope(event.envelope, item.envelope_row)
        event.accept_time.FromDatetime(item.accepted_at)
        event.envelope_record_index = item.envelope_record_index
        if item.native_payload:
            event.native_payload = item.native_payload
            event.native_content_type = item.native_content_type
        elif item.native_unavailable_reason:
            event.native_unavailable_reason = item.native_unavailable_reason
