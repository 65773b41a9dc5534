"""Reads for the regulators' report pack: retirements, completed transfers (with the ranges their
audit entries name), reconciliation reports and recognitions, within a period. Inside a caller's
transaction."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.contract import COMPLETED
from gateway.storage.models import (
    AuditEntryRow,
    RecognitionRow,
    ReconciliationReportRow,
    RetirementRow,
    TransferRow,
)


@dataclass(frozen=True)
class Retirement:
    name: str
    holder_region: str
    purpose: int
    beneficiary: str
    compliance_year: int
    declared_obligation_grams: int
    quantity_grams: int
    outside_grams: int
    credited_grams: int
    retired_at: dt.datetime


@dataclass(frozen=True)
class CompletedTransfer:
    name: str
    source_region: str
    destination_region: str
    quantity_grams: int
    completed_at: dt.datetime
    ranges: list[tuple[str, int, int]]
    """(origin region, first serial, last serial) as the completion's audit entry names them."""


class ReportStore:
    """The rows the report pack reads (periods are half-open: ``since <= t < until``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def retirements(self, since: dt.datetime, until: dt.datetime) -> list[Retirement]:
        r = RetirementRow
        rows = self.session.scalars(
            select(r).where(r.retired_at >= since, r.retired_at < until).order_by(r.id)
        )
        return [
            Retirement(
                x.name,
                x.holder_region,
                x.purpose,
                x.beneficiary,
                x.compliance_year,
                x.declared_obligation_grams,
                x.quantity_grams,
                x.outside_grams,
                x.credited_grams,
                x.retired_at,
            )
            for x in rows
        ]

    def completed_transfers(
        self, since: dt.datetime, until: dt.datetime
    ) -> Iterator[CompletedTransfer]:
        """Transfers whose completion was recorded in the period, in audit order."""
        entry, transfer = AuditEntryRow, TransferRow
        stmt = (
            select(
                transfer.name,
                transfer.source_region,
                transfer.destination_region,
                transfer.quantity_grams,
                entry.created_at,
                entry.detail,
            )
            .join(transfer, transfer.name == entry.subject)
            .where(
                entry.kind == "transfer.completed",
                transfer.state == COMPLETED,
                entry.created_at >= since,
                entry.created_at < until,
            )
            .order_by(entry.sequence)
        )
        for name, source, destination, grams, at, detail in self.session.execute(stmt):
            blocks = json.loads(detail)["blocks"]
            yield CompletedTransfer(
                name,
                source,
                destination,
                grams,
                at,
                [(str(o), int(s), int(e)) for o, s, e in blocks],
            )

    def completed_grams(self, since: dt.datetime, until: dt.datetime) -> tuple[int, int]:
        """(count, grams) of the transfers whose completion falls in the period."""
        entry, transfer = AuditEntryRow, TransferRow
        count, grams = self.session.execute(
            select(func.count(), func.coalesce(func.sum(transfer.quantity_grams), 0))
            .select_from(entry)
            .join(transfer, transfer.name == entry.subject)
            .where(
                entry.kind == "transfer.completed",
                entry.created_at >= since,
                entry.created_at < until,
            )
        ).one()
        return int(count), int(grams)

    def reports_until(self, until: dt.datetime) -> list[tuple[str, str, dt.datetime, bytes]]:
        """Every signed reconciliation report finished before ``until``: (name, region,
        finished_at, body), oldest first."""
        r = ReconciliationReportRow
        return [
            (name, region, at, body)
            for name, region, at, body in self.session.execute(
                select(r.name, r.region, r.finished_at, r.body)
                .where(r.finished_at < until, r.name != "")
                .order_by(r.id)
            )
        ]

    def recognition_bodies(self) -> list[str]:
        return list(self.session.scalars(select(RecognitionRow.body).order_by(RecognitionRow.id)))
