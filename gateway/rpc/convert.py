"""Translation between service-layer values and protobuf messages."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2
from yrd.interop.v1 import audit_pb2, key_service_pb2

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
