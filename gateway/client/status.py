"""The federation status as plain data (numbers as numbers, times as RFC 3339 strings): what
``yrdgw status -o json`` prints and the console shows."""

from __future__ import annotations

from typing import Any

from google.protobuf import timestamp_pb2
from yrd.interop.v1 import reconciliation_pb2, status_service_pb2


def _time(ts: timestamp_pb2.Timestamp) -> str:
    return str(ts.ToJsonString())


def _pending(p: status_service_pb2.PendingTransfers) -> dict[str, Any]:
    return {
        "count": p.count,
        "quantity_grams": p.quantity_grams,
        "oldest_age_seconds": p.oldest_age_seconds,
        "oldest_name": p.oldest_name or None,
    }


def _certificate(c: status_service_pb2.CertificateExpiry) -> dict[str, Any]:
    return {
        "identity": c.identity,
        "serial": c.serial,
        "not_after": _time(c.not_after),
        "days_left": c.days_left,
    }


def region_dict(r: status_service_pb2.RegionStatus) -> dict[str, Any]:
    """One region's status as plain data; absent parts are None."""
    out: dict[str, Any] = {
        "region": r.region,
        "last_record": None,
        "subscriber": None,
        "pending_out": _pending(r.pending_out),
        "pending_in": _pending(r.pending_in),
        "last_snapshot": None,
        "last_reconciliation": None,
        "signing_keys": [
            {"key_id": k.key_id, "owner": k.owner, "register_time": _time(k.register_time)}
            for k in r.signing_keys
        ],
        "certificates": [_certificate(c) for c in r.certificates],
        "refusals_last_hour": {x.reason: x.count for x in r.refusals_last_hour},
        "open_duplicate_cases": r.open_duplicate_cases,
        "held_grams": r.held_grams,
        "oldest_open_case_time": (
            _time(r.oldest_open_case_time) if r.HasField("oldest_open_case_time") else None
        ),
    }
    if r.HasField("last_record"):
        out["last_record"] = {
            "name": r.last_record.name,
            "cursor": r.last_record.cursor,
            "accept_time": _time(r.last_record.accept_time),
        }
    if r.HasField("subscriber"):
        out["subscriber"] = {
            "cursor": r.subscriber.cursor,
            "update_time": _time(r.subscriber.update_time),
            "lag_records": r.subscriber.lag_records,
            "lag_seconds": r.subscriber.lag_seconds,
        }
    if r.HasField("last_snapshot"):
        s = r.last_snapshot
        out["last_snapshot"] = {
            "name": s.name,
            "snapshot_time": _time(s.snapshot_time),
            "receive_time": _time(s.receive_time),
            "block_count": s.block_count,
            "quantity_grams": s.quantity_grams,
        }
    if r.HasField("last_reconciliation"):
        c = r.last_reconciliation
        out["last_reconciliation"] = {
            "name": c.name,
            "status": reconciliation_pb2.ReconciliationStatus.Name(c.status).removeprefix(
                "RECONCILIATION_STATUS_"
            ),
            "finish_time": _time(c.finish_time),
            "discrepancy_count": c.discrepancy_count,
        }
    return out


def federation_status_dict(reply: status_service_pb2.GetFederationStatusResponse) -> dict[str, Any]:
    """The whole status as plain data."""
    return {
        "as_of": _time(reply.as_of),
        "feed_head_cursor": reply.feed_head_cursor,
        "regions": [region_dict(r) for r in reply.regions],
        "certificates": [_certificate(c) for c in reply.certificates],
    }
