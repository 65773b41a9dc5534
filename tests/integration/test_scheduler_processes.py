"""Three `yrdgw scheduler` processes on one PostgreSQL database, every job firing every two
seconds: each scheduled run happens once. The reconciliation job leaves one report per run (a
stale snapshot makes every run write one), so a second effect would show as an extra report."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir
from gateway.services.reconciliation import ReconciliationService
from gateway.services.snapshots import SnapshotBuilder
from gateway.storage.db import Database, make_engine
from gateway.storage.models import JobRunRow, ReconciliationReportRow

pytestmark = pytest.mark.postgres

YRDGW = str(Path(sys.executable).parent / "yrdgw")
PROCESSES = 3
RUN_FOR_S = 8.0


@pytest.fixture
def schema_db(postgres_url: str) -> Iterator[tuple[Database, str]]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(make_engine(postgres_url, connect_args={"options": f"-csearch_path={schema}"}))
    url = (
        make_url(postgres_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    try:
        db.upgrade()
        yield db, url
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_each_scheduled_run_happens_once_across_processes(
    schema_db: tuple[Database, str], pki: PKIDir, tmp_path: Path
) -> None:
    db, url = schema_db
    # A snapshot that every reconciliation run after the first finds stale: one report per run.
    snapshot = SnapshotBuilder()
    snapshot.header(dt.datetime.now(dt.UTC), [])
    service = ReconciliationService(db, ed25519.Ed25519PrivateKey.generate())
    service.submit(Identity(Role.REGISTRY, "310000"), snapshot)
    config = tmp_path / "scheduler.toml"
    config.write_text(
        f'cert_dir = "{pki.root}"\nlog_format = "json"\nlog_level = "info"\n'
        "migrate_on_start = false\n"
        'reconcile_cron = "*/2 * * * * *"\nexpire_cron = "*/2 * * * * *"\n'
        'verify_cron = "*/2 * * * * *"\nreconcile_regions = ["310000"]\n'
        "job_misfire_grace_s = 10\n"
    )
    env = {**os.environ, "YRDGW_DATABASE_URL": url}
    procs = [
        subprocess.Popen(
            [YRDGW, "scheduler", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(PROCESSES)
    ]
    lines: list[list[str]] = [[] for _ in procs]
    readers = [
        threading.Thread(target=lambda p=p, out=out: out.extend(p.stderr), daemon=True)
        for p, out in zip(procs, lines, strict=True)
    ]
    for r in readers:
        r.start()
    try:
        deadline = time.monotonic() + 60
        while not all(any('"scheduler.started"' in x for x in out) for out in lines):
            assert time.monotonic() < deadline, lines
            assert all(p.poll() is None for p in procs), lines
            time.sleep(0.1)
        time.sleep(RUN_FOR_S)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
        for r in readers:
            r.join(timeout=10)
        for p in procs:
            assert p.stderr is not None
            p.stderr.close()
    logs = ["".join(out) for out in lines]
    assert [p.returncode for p in procs] == [0] * PROCESSES, logs
    assert all('"scheduler.started"' in log for log in logs), logs

    with db.transaction() as s:
        claims = s.execute(
            select(JobRunRow.job_id, JobRunRow.scheduled_for, JobRunRow.outcome)
        ).all()
        reports = s.execute(select(ReconciliationReportRow.id)).scalars().all()
    per_job = Counter(job for job, _, _ in claims)
    # Every job ran on (nearly) every two-second tick of the window, and no tick twice: the
    # primary key would refuse a second claim, so count the effects too.
    jobs = ("reconcile-regions", "expire-transfers", "verify-ledger")
    assert all(per_job[j] >= 3 for j in jobs), (per_job, logs)
    assert [c for c in claims if c[2] != "ok"] == []
    assert len(reports) == per_job["reconcile-regions"]
    ticks = sorted(t for job, t, _ in claims if job == "reconcile-regions")
    assert all((b - a).total_seconds() >= 2 for a, b in itertools.pairwise(ticks))
    # The processes did contend: some of them found a tick already claimed.
    skipped = sum(log.count('"job.skipped"') for log in logs)
    ran = sum(log.count('"job.ran"') for log in logs)
    assert ran == len(claims) and skipped > 0, (ran, skipped)
