"""Reconciliation calls: stream a holdings snapshot, run and read reconciliation reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence

from yrd.interop.v1 import reconciliation_pb2, reconciliation_service_pb2

from gateway.client.connection import Connection


class ReconciliationCalls(Connection):
    """ReconciliationService."""

    def submit_holdings(
        self,
        snapshot_time: dt.datetime,
        blocks: Iterator[reconciliation_pb2.HeldBlock] | Sequence[reconciliation_pb2.HeldBlock],
        completed_transfers: Sequence[str] = (),
        batch: int = 1000,
        on_batch: Callable[[int], None] | None = None,
    ) -> reconciliation_service_pb2.SubmitHoldingsResponse:
        """Stream this registry's holdings snapshot: the header, then blocks in batches
        (``on_batch(n)`` after each batch of n blocks is handed to the stream)."""

        def requests() -> Iterator[reconciliation_service_pb2.SubmitHoldingsRequest]:
            header = reconciliation_service_pb2.SnapshotHeader(
                completed_transfer_ids=completed_transfers
            )
            header.snapshot_time.FromDatetime(snapshot_time)
            yield reconciliation_service_pb2.SubmitHoldingsRequest(header=header)
            pending: list[reconciliation_pb2.HeldBlock] = []
            for block in blocks:
                pending.append(block)
                if len(pending) == batch:
                    yield _held_batch(pending)
                    if on_batch:
                        on_batch(len(pending))
                    pending = []
            if pending:
                yield _held_batch(pending)
                if on_batch:
                    on_batch(len(pending))

        # A snapshot of a large registry is big: allow it the time a reconciliation run gets.
        return self.call(
            self.reconciliation.SubmitHoldings,
            requests(),  # type: ignore[arg-type]
            timeout=600,
        )

    def run_reconciliation(self, region: str = "") -> reconciliation_pb2.ReconciliationReport:
        req = reconciliation_service_pb2.RunReconciliationRequest(region=region)
        return self.call(self.reconciliation.RunReconciliation, req, timeout=600).report

    def get_reconciliation_report(self, name: str) -> reconciliation_pb2.ReconciliationReport:
        req = reconciliation_service_pb2.GetReconciliationReportRequest(name=name)
        return self.call(self.reconciliation.GetReconciliationReport, req).report

    def list_reconciliation_reports(
        self, region: str = "", page_size: int = 50
    ) -> list[reconciliation_pb2.ReconciliationReport]:
        """The newest reports (one page), newest first."""
        req = reconciliation_service_pb2.ListReconciliationReportsRequest(
            region=region, page_size=page_size
        )
        return list(self.call(self.reconciliation.ListReconciliationReports, req).reports)


def _held_batch(
    blocks: list[reconciliation_pb2.HeldBlock],
) -> reconciliation_service_pb2.SubmitHoldingsRequest:
    return reconciliation_service_pb2.SubmitHoldingsRequest(
        blocks=reconciliation_service_pb2.HeldBlockBatch(blocks=blocks)
    )
