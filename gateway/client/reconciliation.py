"""Reconciliation calls: stream a holdings snapshot, run and read reconciliation reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence

from yrd.interop.v1 import reconciliation_pb2, reconciliation_service_pb2

from gateway.client.connection import Connection

HeldTuple = tuple[str, int, int, int]
"""A held block as (origin region, first serial, last serial, ``UnitBlockState`` value)."""
DEFAULT_BATCH = 10_000
"""Blocks per stream message: ~140 KB as columns, well under the default 4 MiB message limit."""


class ReconciliationCalls(Connection):
    """ReconciliationService."""

    def submit_holdings(
        self,
        snapshot_time: dt.datetime,
        blocks: Iterable[reconciliation_pb2.HeldBlock | HeldTuple],
        completed_transfers: Sequence[str] = (),
        batch: int = DEFAULT_BATCH,
        on_batch: Callable[[int], None] | None = None,
        *,
        columns: bool = True,
    ) -> reconciliation_service_pb2.SubmitHoldingsResponse:
        """Stream this registry's holdings snapshot: the header, then blocks in batches of up to
        ``batch`` (``on_batch(n)`` after each batch of n blocks is handed to the stream). With
        ``columns`` (the default) each batch is one origin's ``HeldBlockColumns``; without, a
        ``HeldBlockBatch`` (what gateways before protocol 1.4.0 read)."""
        requests = holdings_requests(
            snapshot_time, blocks, completed_transfers, batch, columns=columns
        )

        def counted() -> Iterator[reconciliation_service_pb2.SubmitHoldingsRequest]:
            for request in requests:
                yield request
                if on_batch and request.WhichOneof("part") != "header":
                    on_batch(batch_size(request))

        # A snapshot of a large registry is big: allow it the time a reconciliation run gets.
        return self.call(
            self.reconciliation.SubmitHoldings,
            counted(),  # type: ignore[arg-type]
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


def holdings_requests(
    snapshot_time: dt.datetime,
    blocks: Iterable[reconciliation_pb2.HeldBlock | HeldTuple],
    completed_transfers: Sequence[str] = (),
    batch: int = DEFAULT_BATCH,
    *,
    columns: bool = True,
) -> Iterator[reconciliation_service_pb2.SubmitHoldingsRequest]:
    """The SubmitHoldings stream of a snapshot (docs/protocol.md §11.4): the header, then the
    blocks. As columns, each origin's blocks keep their order and go out whenever ``batch`` of
    them are pending (the rest at the end), so a snapshot in serial order per origin reaches the
    gateway in that order; as ``HeldBlockBatch`` messages, in the order given."""
    header = reconciliation_service_pb2.SnapshotHeader(completed_transfer_ids=completed_transfers)
    header.snapshot_time.FromDatetime(snapshot_time)
    yield reconciliation_service_pb2.SubmitHoldingsRequest(header=header)
    if columns:
        yield from _columns((_as_tuple(b) for b in blocks), batch)
    else:
        yield from _batches(blocks, batch)


def batch_size(request: reconciliation_service_pb2.SubmitHoldingsRequest) -> int:
    """How many blocks a stream message carries."""
    if request.WhichOneof("part") == "columns":
        return len(request.columns.serial_starts)
    return len(request.blocks.blocks)


def _as_tuple(block: reconciliation_pb2.HeldBlock | HeldTuple) -> HeldTuple:
    if isinstance(block, tuple):
        return block
    if not block.HasField("serials"):
        # A column has no "unset": 0..0 would be a different block, not a missing one.
        raise ValueError(f"a HeldBlock of {block.origin_region} has no serials")
    return (block.origin_region, block.serials.start, block.serials.end, block.state)


def _columns(
    blocks: Iterator[HeldTuple], batch: int
) -> Iterator[reconciliation_service_pb2.SubmitHoldingsRequest]:
    pending: dict[str, tuple[list[int], list[int], list[int]]] = {}
    for origin, start, end, state in blocks:
        cols = pending.get(origin)
        if cols is None:
            cols = pending[origin] = ([], [], [])
        cols[0].append(start)
        cols[1].append(end)
        cols[2].append(state)
        if len(cols[0]) >= batch:
            yield _columns_message(origin, cols)
            del pending[origin]
    for origin, cols in pending.items():
        yield _columns_message(origin, cols)


def _columns_message(
    origin: str, cols: tuple[list[int], list[int], list[int]]
) -> reconciliation_service_pb2.SubmitHoldingsRequest:
    starts, ends, states = cols
    return reconciliation_service_pb2.SubmitHoldingsRequest(
        columns=reconciliation_service_pb2.HeldBlockColumns(
            origin_region=origin,
            serial_starts=starts,
            serial_ends=ends,
            states=states,  # type: ignore[arg-type]
        )
    )


def _batches(
    blocks: Iterable[reconciliation_pb2.HeldBlock | HeldTuple], batch: int
) -> Iterator[reconciliation_service_pb2.SubmitHoldingsRequest]:
    pending: list[reconciliation_pb2.HeldBlock] = []
    for block in blocks:
        if isinstance(block, tuple):
            origin, start, end, state = block
            block = reconciliation_pb2.HeldBlock(origin_region=origin, state=state)  # type: ignore[arg-type]
            block.serials.start, block.serials.end = start, end
        pending.append(block)
        if len(pending) == batch:
            yield _held_batch(pending)
            pending = []
    if pending:
        yield _held_batch(pending)


def _held_batch(
    blocks: list[reconciliation_pb2.HeldBlock],
) -> reconciliation_service_pb2.SubmitHoldingsRequest:
    return reconciliation_service_pb2.SubmitHoldingsRequest(
        blocks=reconciliation_service_pb2.HeldBlockBatch(blocks=blocks)
    )
