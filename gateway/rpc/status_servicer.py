"""StatusService: the federation status, translated to its message."""

from __future__ import annotations

import datetime as dt

import grpc
from yrd.interop.v1 import status_service_pb2, status_service_pb2_grpc

from gateway.rpc import convert
from gateway.services.federation import (
    Certificate,
    FederationStatus,
    FederationStatusService,
    Pending,
)

SECONDS_PER_DAY = 86400


def _days_left(as_of: dt.datetime, not_after: dt.datetime) -> int:
    return int((not_after - as_of).total_seconds() // SECONDS_PER_DAY)


def _certificate(as_of: dt.datetime, c: Certificate) -> status_service_pb2.CertificateExpiry:
    return status_service_pb2.CertificateExpiry(
        identity=c.identity,
        serial=format(c.serial, "x"),
        not_after=convert.timestamp(c.not_after),
        days_left=_days_left(as_of, c.not_after),
    )


def _pending(as_of: dt.datetime, p: Pending) -> status_service_pb2.PendingTransfers:
    age = int((as_of - p.oldest_at).total_seconds()) if p.oldest_at else 0
    return status_service_pb2.PendingTransfers(
        count=p.count,
        quantity_grams=p.grams,
        oldest_age_seconds=max(0, age),
        oldest_name=p.oldest_name,
    )


def federation_status(s: FederationStatus) -> status_service_pb2.GetFederationStatusResponse:
    """The response message for a federation status."""
    out = status_service_pb2.GetFederationStatusResponse(
        as_of=convert.timestamp(s.as_of),
        feed_head_cursor=str(s.feed_head) if s.feed_head else "",
        certificates=[_certificate(s.as_of, c) for c in s.certificates],
    )
    for r in s.regions:
        msg = out.regions.add(
            region=r.region,
            pending_out=_pending(s.as_of, r.pending_out),
            pending_in=_pending(s.as_of, r.pending_in),
            signing_keys=[convert.signing_key(k) for k in r.keys],
            certificates=[_certificate(s.as_of, c) for c in r.certificates],
            refusals_last_hour=[
                status_service_pb2.RefusalCount(reason=reason, count=n)
                for reason, n in sorted(r.refusals.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            open_duplicate_cases=r.open_cases.count,
            held_grams=r.held_grams,
        )
        if r.open_cases.oldest_open_time is not None:
            msg.oldest_open_case_time.CopyFrom(convert.timestamp(r.open_cases.oldest_open_time))
        if r.last_record is not None:
            name, position, accepted_at = r.last_record
            msg.last_record.CopyFrom(
                status_service_pb2.PublishedRecord(
                    name=name, cursor=str(position), accept_time=convert.timestamp(accepted_at)
                )
            )
        if r.subscriber is not None:
            sub = r.subscriber
            msg.subscriber.CopyFrom(
                status_service_pb2.SubscriberPosition(
                    cursor=str(sub.position) if sub.position else "",
                    update_time=convert.timestamp(sub.updated_at),
                    lag_records=sub.lag_records,
                    lag_seconds=sub.lag_seconds,
                )
            )
        if r.last_snapshot is not None:
            snap_id, snapshot_time, received_at, blocks, grams = r.last_snapshot
            msg.last_snapshot.CopyFrom(
                status_service_pb2.SnapshotSummary(
                    name=f"regions/{r.region}/snapshots/{snap_id}",
                    snapshot_time=convert.timestamp(snapshot_time),
                    receive_time=convert.timestamp(received_at),
                    block_count=blocks,
                    quantity_grams=grams,
                )
            )
        if r.last_report is not None:
            report = r.last_report
            msg.last_reconciliation.CopyFrom(
                status_service_pb2.ReconciliationSummary(
                    name=report.name,
                    status=report.status,
                    finish_time=report.finish_time,
                    discrepancy_count=len(report.discrepancies),
                )
            )
    return out


class StatusServicer(status_service_pb2_grpc.StatusServiceServicer):
    """StatusService over the FederationStatusService."""

    def __init__(self, status: FederationStatusService) -> None:
        self._status = status

    def GetFederationStatus(
        self,
        request: status_service_pb2.GetFederationStatusRequest,
        context: grpc.ServicerContext,
    ) -> status_service_pb2.GetFederationStatusResponse:
        return federation_status(self._status.status())
