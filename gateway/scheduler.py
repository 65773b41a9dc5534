"""Scheduled jobs on APScheduler 3, with a persistent SQLAlchemy job store in the gateway's
database: reconcile every region, expire stuck transfer proposals, verify the ledger invariants and
the audit chain.

Every gateway process may run a scheduler on the same database. APScheduler 3 does not coordinate
schedulers sharing a job store, so each run first claims its scheduled time in ``job_runs`` (a
primary key on job and time): the first process to insert the row runs the job, the others see the
conflict and skip. The scheduled time is computed from the job's cron trigger — the same in every
process — as its latest fire time not after now.

Settings: ``coalesce=True`` (runs missed while the process was down collapse into one),
``max_instances=1`` (a job never overlaps itself in a process), ``misfire_grace_time`` from the
configuration (a run that could not start that late is skipped; the next one catches up).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import IntegrityError

from gateway.config import GatewaySettings
from gateway.cron import cron_trigger, latest_fire_time
from gateway.services import Clock, utc_now
from gateway.services.audit import AuditReader
from gateway.services.ledger import check_invariants
from gateway.services.reconciliation import ReconciliationService, discrepancy_counts
from gateway.services.transfers import TransferService
from gateway.storage.db import Database
from gateway.storage.jobs_store import JobRunStore

log = structlog.get_logger("yrdgw.scheduler")

RECONCILE, EXPIRE, VERIFY = "reconcile-regions", "expire-transfers", "verify-ledger"
JOB_IDS = (RECONCILE, EXPIRE, VERIFY)


@dataclass(frozen=True)
class Jobs:
    """What the jobs do: calls into the same services the RPCs use. Each returns a summary."""

    db: Database
    transfers: TransferService
    reconciliation: ReconciliationService
    audit: AuditReader
    regions: tuple[str, ...]

    def expire_transfers(self) -> str:
        names = self.transfers.expire_due()
        return f"{len(names)} expired" + (f": {', '.join(names)}" if names else "")

    def reconcile_regions(self) -> str:
        reports = self.reconciliation.run_scheduled(self.regions)
        return "; ".join(
            f"{r.name} {r.region} {r.status} {discrepancy_counts(r)}" for r in reports
        ) or ("no region has sent a snapshot")

    def verify_ledger(self) -> str:
        invariants = check_invariants(self.db)
        chain = self.audit.verify()
        problems = list(invariants.problems)
        if not chain.ok:
            problems.append(f"audit chain: {chain.problem}")
        if problems:
            raise JobFailed("; ".join(problems))
        return f"invariants hold; audit chain of {chain.entries} entries verifies"

    def by_id(self, job_id: str) -> Callable[[], str]:
        return {
            RECONCILE: self.reconcile_regions,
            EXPIRE: self.expire_transfers,
            VERIFY: self.verify_ledger,
        }[job_id]


class JobFailed(Exception):
    """A job found something wrong (it is recorded as failed, with the detail)."""


_active: dict[str, GatewayScheduler] = {}
_active_lock = threading.Lock()


def run_job(database: str, job_id: str) -> None:
    """The function the job store names (``gateway.scheduler:run_job``): runs the job through
    this process's scheduler for that database (the job store keeps only these two strings)."""
    with _active_lock:
        scheduler = _active.get(database)
    if scheduler is None:
        log.warning("job.no_scheduler", job=job_id, database=database)
        return
    scheduler.run_claimed(job_id)


class GatewayScheduler:
    """A BackgroundScheduler over the gateway's database; one per process."""

    def __init__(self, settings: GatewaySettings, jobs: Jobs, clock: Clock = utc_now) -> None:
        self.jobs = jobs
        self.clock = clock
        self.grace = dt.timedelta(seconds=settings.job_misfire_grace_s)
        zone = settings.scheduler_timezone
        self.triggers = {
            RECONCILE: cron_trigger(settings.reconcile_cron, zone),
            EXPIRE: cron_trigger(settings.expire_cron, zone),
            VERIFY: cron_trigger(settings.verify_cron, zone),
        }
        self.instance = f"{socket.gethostname()}/{os.getpid()}/{id(self):x}"
        self.database = jobs.db.engine.url.render_as_string(hide_password=True)
        self._scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=jobs.db.engine)},
            executors={"default": ThreadPoolExecutor(max_workers=3)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": settings.job_misfire_grace_s,
            },
            timezone=ZoneInfo(zone),
        )

    def start(self) -> None:
        """Register the jobs (replacing their stored definitions) and start running them. A
        second scheduler for the same database in one process stays idle (the first runs them)."""
        with _active_lock:
            if self.database in _active:
                log.warning("scheduler.already_running", database=self.database)
                return
            _active[self.database] = self
        self._scheduler.start()
        for job_id, trigger in self.triggers.items():
            self._scheduler.add_job(
                "gateway.scheduler:run_job",
                trigger=trigger,
                args=[self.database, job_id],
                id=job_id,
                name=job_id,
                replace_existing=True,
            )
        log.info(
            "scheduler.started",
            instance=self.instance,
            jobs={j: str(t) for j, t in self.triggers.items()},
        )

    def stop(self) -> None:
        """Stop scheduling and wait for running jobs to finish."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        with _active_lock:
            if _active.get(self.database) is self:
                del _active[self.database]
        log.info("scheduler.stopped", instance=self.instance)

    def run_claimed(self, job_id: str, now: dt.datetime | None = None) -> tuple[str, str] | None:
        """Run the job for its current scheduled time unless another process claimed that time
        first; returns (outcome, detail), or None when it was not this call's to run."""
        now = now or self.clock()
        slot = latest_fire_time(self.triggers[job_id], now, self.grace)
        return run_once(self.jobs, job_id, slot, self.instance, self.clock)


def run_once(
    jobs: Jobs, job_id: str, slot: dt.datetime, claimant: str, clock: Clock = utc_now
) -> tuple[str, str] | None:
    """Claim (job, slot) in ``job_runs`` and run the job; returns (outcome, detail) — outcome
    ``ok``, ``failed`` or ``error`` — also recorded on the claim, or None when the slot was
    claimed already."""
    started = clock()
    try:
        with jobs.db.transaction() as session:
            JobRunStore(session).claim(job_id, slot, claimant, started)
    except IntegrityError:
        log.info("job.skipped", job=job_id, scheduled_for=slot.isoformat(), reason="claimed")
        return None
    try:
        detail, outcome = jobs.by_id(job_id)(), "ok"
    except JobFailed as exc:
        detail, outcome = str(exc), "failed"
        log.error("job.failed", job=job_id, scheduled_for=slot.isoformat(), detail=detail)
    except Exception as exc:
        detail, outcome = f"{type(exc).__name__}: {exc}", "error"
        log.exception("job.error", job=job_id, scheduled_for=slot.isoformat())
    with jobs.db.transaction() as session:
        JobRunStore(session).finish(job_id, slot, clock(), outcome, detail)
    log.info("job.ran", job=job_id, scheduled_for=slot.isoformat(), outcome=outcome, detail=detail)
    return outcome, detail
