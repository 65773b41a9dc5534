"""The scheduled jobs on SQLite and PostgreSQL: APScheduler firing every second against the
persistent job store; the expiry job expires a stuck proposal exactly once; two schedulers racing
for the same scheduled time run it once; a failing invariant check is recorded as failed."""

from __future__ import annotations

import datetime as dt
import threading
import time

from sqlalchemy import insert, select

from gateway.assembly import build_services
from gateway.config import GatewaySettings
from gateway.cron import latest_fire_time
from gateway.scheduler import EXPIRE, RECONCILE, VERIFY, GatewayScheduler
from gateway.security.pki import PKIDir
from gateway.services.ledger import check_invariants
from gateway.storage.db import Database
from gateway.storage.models import (
    AuditEntryRow,
    JobRunRow,
    SchedulerJobRow,
    TransferRow,
    UnitBlockRow,
)
from tests.storage.test_ledger import AH, SH, World

EVERY_SECOND = "* * * * * *"
NEVER_SOON = "0 0 1 1 *"


def settings(pki: PKIDir, **crons: str) -> GatewaySettings:
    return GatewaySettings(
        cert_dir=pki.root,
        scheduler_timezone="Asia/Shanghai",
        reconcile_cron=crons.get("reconcile", NEVER_SOON),
        expire_cron=crons.get("expire", NEVER_SOON),
        verify_cron=crons.get("verify", NEVER_SOON),
        job_misfire_grace_s=30,
    )


def runs(db: Database, job_id: str) -> list[JobRunRow]:
    with db.transaction() as s:
        return list(
            s.execute(
                select(JobRunRow)
                .where(JobRunRow.job_id == job_id)
                .order_by(JobRunRow.scheduled_for)
            ).scalars()
        )


def wait_for(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_latest_fire_time_is_the_run_being_made() -> None:
    from gateway.cron import cron_trigger

    trigger = cron_trigger("*/15 * * * *", "Asia/Shanghai")
    grace = dt.timedelta(minutes=5)
    at = dt.datetime(2026, 11, 25, 2, 15, 0, 300_000, tzinfo=dt.UTC)
    assert latest_fire_time(trigger, at, grace) == at.replace(microsecond=0)
    late = at + dt.timedelta(minutes=4)
    assert latest_fire_time(trigger, late, grace) == at.replace(microsecond=0)
    # By hand, between fire times (beyond the grace): the run is its own time.
    odd = at + dt.timedelta(minutes=7, seconds=3)
    assert latest_fire_time(trigger, odd, grace) == odd.replace(microsecond=0)
    seconds = cron_trigger("*/2 * * * * *", "UTC")
    t = dt.datetime(2026, 11, 25, 2, 0, 7, 900_000, tzinfo=dt.UTC)
    assert latest_fire_time(seconds, t, dt.timedelta(seconds=30)) == t.replace(
        second=6, microsecond=0
    )


def test_expiry_job_expires_a_stuck_proposal_exactly_once(database: Database, pki: PKIDir) -> None:
    world = World(database, pki)
    t = world.propose(AH, "stuck", SH, ranges=[(1_000, 4_999)])
    world.now += dt.timedelta(hours=2)  # past the one-hour deadline
    services = build_services(settings(pki), database, clock=lambda: world.now)
    scheduler = GatewayScheduler(settings(pki, expire=EVERY_SECOND), services.jobs)
    scheduler.start()
    try:
        wait_for(lambda: any("1 expired" in (r.detail or "") for r in runs(database, EXPIRE)))
        wait_for(lambda: len(runs(database, EXPIRE)) >= 3)  # and it keeps running, finding none
    finally:
        scheduler.stop()
    with database.transaction() as s:
        row = s.execute(select(TransferRow).where(TransferRow.name == t.name)).scalar_one()
        assert row.state == "EXPIRED"
        entries = s.execute(
            select(AuditEntryRow.kind).where(AuditEntryRow.subject == t.name)
        ).scalars()
        assert sorted(entries) == ["transfer.expired", "transfer.proposed"]
        blocks = s.execute(
            select(UnitBlockRow.holder_region, UnitBlockRow.state, UnitBlockRow.reserved_by).where(
                UnitBlockRow.serial_start <= 4_999, UnitBlockRow.serial_end >= 1_000
            )
        ).all()
        assert blocks and all(b == (AH, "active", None) for b in blocks)
        stored = s.execute(select(SchedulerJobRow.id).order_by(SchedulerJobRow.id)).scalars()
        assert list(stored) == sorted([EXPIRE, RECONCILE, VERIFY])  # the persistent job store
    done = runs(database, EXPIRE)
    assert [r.outcome for r in done] == ["ok"] * len(done)
    assert sum("1 expired" in (r.detail or "") for r in done) == 1
    assert check_invariants(database).ok


def test_two_schedulers_racing_for_one_time_run_it_once(database: Database, pki: PKIDir) -> None:
    world = World(database, pki)
    world.propose(AH, "race", SH, ranges=[(1_000, 1_999)])
    world.now += dt.timedelta(hours=2)
    services = build_services(settings(pki), database, clock=lambda: world.now)
    contenders = [
        GatewayScheduler(settings(pki, expire="*/5 * * * *"), services.jobs) for _ in range(4)
    ]
    at = dt.datetime(2026, 11, 25, 2, 5, 0, 10_000, tzinfo=dt.UTC)
    barrier = threading.Barrier(len(contenders))
    results: list[object] = [None] * len(contenders)

    def contend(i: int) -> None:
        barrier.wait()
        results[i] = contenders[i].run_claimed(EXPIRE, at + dt.timedelta(milliseconds=i))

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(contenders))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ran = [r for r in results if r is not None]
    assert len(ran) == 1 and ran[0] == ("ok", f"1 expired: regions/{AH}/transfers/race")
    [row] = runs(database, EXPIRE)
    assert row.scheduled_for == at.replace(microsecond=0) and row.outcome == "ok"


def test_a_broken_invariant_is_recorded_as_a_failed_run(database: Database, pki: PKIDir) -> None:
    world = World(database, pki)
    with database.transaction() as s:  # a block out of thin air: serials nobody issued
        s.execute(
            insert(UnitBlockRow),
            [
                {
                    "origin_region": AH,
                    "issuance_name": "regions/340000/issuances/forged",
                    "project_name": "regions/340000/projects/forged",
                    "vintage": 2025,
                    "serial_start": 10**15,
                    "serial_end": 10**15 + 9,
                    "holder_region": SH,
                    "state": "active",
                    "created_at": world.now,
                }
            ],
        )
    services = build_services(settings(pki), database, clock=lambda: world.now)
    scheduler = GatewayScheduler(settings(pki, verify="*/5 * * * *"), services.jobs)
    result = scheduler.run_claimed(VERIFY, dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC))
    assert result is not None and result[0] == "failed"
    [row] = runs(database, VERIFY)
    assert row.outcome == "failed" and "issued" in (row.detail or "")
