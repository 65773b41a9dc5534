"""Claims of scheduled job runs (``job_runs``): the row is the claim, so each scheduled time of
a job runs once however many gateway processes schedule it. Inside a caller's transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway.storage.models import JobRunRow


class JobRunStore:
    """Claims and outcomes of scheduled runs."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(self, job_id: str, slot: dt.datetime, claimant: str, started: dt.datetime) -> None:
        """Claim (job, slot); the commit fails with an IntegrityError when it was claimed
        already."""
        self.session.add(
            JobRunRow(job_id=job_id, scheduled_for=slot, claimed_by=claimant, started_at=started)
        )

    def finish(
        self, job_id: str, slot: dt.datetime, finished: dt.datetime, outcome: str, detail: str
    ) -> None:
        """Record a claimed run's outcome (the detail cut to 4000 characters)."""
        self.session.execute(
            update(JobRunRow)
            .where(JobRunRow.job_id == job_id, JobRunRow.scheduled_for == slot)
            .values(finished_at=finished, outcome=outcome, detail=detail[:4000])
        )
