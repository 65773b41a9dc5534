"""Reads for the federation status (per region: feed, subscriber, transfers, snapshots,
reconciliation, keys) and the subscriber positions it needs. Inside a caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.contract import CASE_OPEN, HELD, PROPOSED
from gateway.storage.models import (
    DuplicateCaseRow,
    HoldingsSnapshotRow,
    JobRunRow,
    ReconciliationReportRow,
    RecordRow,
    SigningKeyRow,
    SubscriberPositionRow,
    TransferRow,
    UnitBlockRow,
)


@dataclass(frozen=True)
class Pending:
    """Pending transfers on one side of a region."""

    count: int
    grams: int
    oldest_name: str
    oldest_at: dt.datetime | None


@dataclass(frozen=True)
class OpenCases:
    """Open duplicate cases with a side registered in one region."""

    count: int
    oldest_open_time: dt.datetime | None


@dataclass(frozen=True)
class FeedLag:
    """Records after a position: how many, and when the first was accepted."""

    records: int
    first_accepted_at: dt.datetime | None


def _aware(values: Mapping[str, dt.datetime | str | None]) -> dict[str, dt.datetime]:
    """Aggregates come back without the column's type (SQLite: naive or text): as UTC-aware."""
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        out[key] = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return out


class StatusStore:
    """The rows the federation status reads, and the subscriber positions it writes."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def set_position(self, region: str, position: int, at: dt.datetime) -> None:
        """Record that REGION's registry is at feed POSITION (insert or replace)."""
        dialect = self.session.get_bind().dialect.name
        row = SubscriberPositionRow
        ins = postgresql.insert(row) if dialect == "postgresql" else sqlite.insert(row)
        stmt = ins.values(region=region, position=position, updated_at=at)
        self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["region"],
                set_={"position": stmt.excluded.position, "updated_at": stmt.excluded.updated_at},
            )
        )

    def positions(self) -> dict[str, tuple[int, dt.datetime]]:
        rows = self.session.execute(
            select(
                SubscriberPositionRow.region,
                SubscriberPositionRow.position,
                SubscriberPositionRow.updated_at,
            )
        ).all()
        return {r: (p, at) for r, p, at in rows}

    def feed_head(self) -> int:
        """The newest feed position (0 when the feed is empty)."""
        return int(self.session.execute(select(func.max(RecordRow.id))).scalar_one() or 0)

    def lag_after(self, position: int) -> FeedLag:
        count = self.session.execute(
            select(func.count()).select_from(RecordRow).where(RecordRow.id > position)
        ).scalar_one()
        first = self.session.execute(
            select(RecordRow.accepted_at)
            .where(RecordRow.id > position)
            .order_by(RecordRow.id)
            .limit(1)
        ).scalar_one_or_none()
        return FeedLag(int(count), first)

    def last_records(self) -> dict[str, tuple[str, int, dt.datetime]]:
        """Per region: (name, position, accepted_at) of its newest record."""
        newest = (
            select(RecordRow.region, func.max(RecordRow.id).label("id"))
            .group_by(RecordRow.region)
            .subquery()
        )
        rows = self.session.execute(
            select(RecordRow.region, RecordRow.name, RecordRow.id, RecordRow.accepted_at).join(
                newest, newest.c.id == RecordRow.id
            )
        ).all()
        return {region: (name, pos, at) for region, name, pos, at in rows}

    def pending(self, region: str, *, outgoing: bool) -> Pending:
        """Proposed, unanswered transfers from (OUTGOING) or to REGION."""
        side = TransferRow.source_region if outgoing else TransferRow.destination_region
        where = (TransferRow.state == PROPOSED, side == region)
        count, grams = self.session.execute(
            select(func.count(), func.coalesce(func.sum(TransferRow.quantity_grams), 0)).where(
                *where
            )
        ).one()
        oldest = self.session.execute(
            select(TransferRow.name, TransferRow.proposed_at)
            .where(*where)
            .order_by(TransferRow.proposed_at, TransferRow.id)
            .limit(1)
        ).one_or_none()
        return Pending(
            int(count),
            int(grams),
            oldest[0] if oldest else "",
            oldest[1] if oldest else None,
        )

    def open_cases(self, region: str) -> OpenCases:
        """OPEN duplicate cases with a side that is one of REGION's projects."""
        c = DuplicateCaseRow
        prefix = f"regions/{region}/projects/%"  # a region code is six digits: no wildcard
        count, oldest = self.session.execute(
            select(func.count(), func.min(c.open_time)).where(
                c.state == CASE_OPEN,
                or_(c.first_subject.like(prefix), c.second_subject.like(prefix)),
            )
        ).one()
        return OpenCases(int(count), _aware({"oldest": oldest}).get("oldest"))

    def open_cases_by_strength(self) -> dict[str, int]:
        """OPEN duplicate cases by strength (the stored MatchStrength name)."""
        c = DuplicateCaseRow
        rows = self.session.execute(
            select(c.strength, func.count()).where(c.state == CASE_OPEN).group_by(c.strength)
        ).all()
        return {strength: int(n) for strength, n in rows}

    def held_grams(self, region: str) -> int:
        """Grams of the blocks REGION holds in state held (issuances open cases hold)."""
        b = UnitBlockRow
        grams = self.session.execute(
            select(func.coalesce(func.sum(b.serial_end - b.serial_start + 1), 0)).where(
                b.holder_region == region, b.state == HELD
            )
        ).scalar_one()
        return int(grams)

    def last_snapshot(self, region: str) -> HoldingsSnapshotRow | None:
        return self.session.scalars(
            select(HoldingsSnapshotRow)
            .where(HoldingsSnapshotRow.region == region)
            .order_by(HoldingsSnapshotRow.id.desc())
            .limit(1)
        ).one_or_none()

    def last_report(self, region: str) -> ReconciliationReportRow | None:
        return self.session.scalars(
            select(ReconciliationReportRow)
            .where(ReconciliationReportRow.region == region, ReconciliationReportRow.name != "")
            .order_by(ReconciliationReportRow.id.desc())
            .limit(1)
        ).one_or_none()

    def keys_in_force(self, region: str) -> list[SigningKeyRow]:
        return list(
            self.session.scalars(
                select(SigningKeyRow)
                .where(SigningKeyRow.region == region, SigningKeyRow.revoked_at.is_(None))
                .order_by(SigningKeyRow.registered_at, SigningKeyRow.key_id)
            )
        )

    def job_runs(
        self,
    ) -> tuple[
        list[tuple[str, str, int]],
        dict[str, dt.datetime],
        dict[str, dt.datetime],
        dict[str, tuple[str, dt.datetime, dt.datetime]],
    ]:
        """Job runs: (job, outcome or 'running', count) rows; per job the last start, the last
        ok finish, and (outcome, started, finished) of its newest finished run."""
        outcome = func.coalesce(JobRunRow.outcome, "running")
        counts = [
            (job, out, int(n))
            for job, out, n in self.session.execute(
                select(JobRunRow.job_id, outcome, func.count()).group_by(JobRunRow.job_id, outcome)
            ).all()
        ]
        started: dict[str, dt.datetime | None] = dict(
            self.session.execute(
                select(JobRunRow.job_id, func.max(JobRunRow.started_at)).group_by(JobRunRow.job_id)
            ).all()
        )
        ok: dict[str, dt.datetime | None] = dict(
            self.session.execute(
                select(JobRunRow.job_id, func.max(JobRunRow.finished_at))
                .where(JobRunRow.outcome == "ok")
                .group_by(JobRunRow.job_id)
            ).all()
        )
        newest = (
            select(JobRunRow.job_id, func.max(JobRunRow.started_at).label("started"))
            .where(JobRunRow.finished_at.is_not(None))
            .group_by(JobRunRow.job_id)
            .subquery()
        )
        last = {
            job: (out or "", st, fin or st)
            for job, out, st, fin in self.session.execute(
                select(
                    JobRunRow.job_id, JobRunRow.outcome, JobRunRow.started_at, JobRunRow.finished_at
                ).join(
                    newest,
                    (newest.c.job_id == JobRunRow.job_id)
                    & (newest.c.started == JobRunRow.started_at),
                )
            ).all()
        }
        return counts, _aware(started), _aware(ok), last
