"""PostgreSQL failover under load, the short version (issue 22): a primary and a synchronous
standby started by the test, two ``yrdgw serve`` processes on the multi-host URL, four registries
making 150 transfers and publishing new issuances; the primary is SIGKILLed once at a seeded
moment, the standby promoted, a new standby rebuilt; nothing any client was answered is lost or
taken twice (see tests/failover/harness.py).

A fresh seed is drawn each run and printed; ``YRDGW_FAILOVER_SEED=N`` replays it. The long
version, several failovers per run, is ``make failover``. A negative control runs the same with
the standby left behind (asynchronous replication, the standby stopped before the kill): answers
are lost then, and the checks must find them.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from gateway.security.pki import PKIDir
from tests.conftest import IN_CI
from tests.failover.cluster import cluster_problem
from tests.failover.harness import FailoverPlan, FailoverRun

SHORT_TRANSFERS = 150
CONTROL_TRANSFERS = 60


@pytest.fixture
def seed() -> int:
    given = os.environ.get("YRDGW_FAILOVER_SEED")
    return int(given) if given else random.SystemRandom().randrange(1, 10**9)


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_nothing_acknowledged_is_lost_when_the_standby_takes_over(
    seed: int, pki: PKIDir, tmp_path: Path
) -> None:
    problem = cluster_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)
    plan = FailoverPlan(seed, transfers=SHORT_TRANSFERS, failovers=1)
    replay = f"failover harness seed {seed}; replay: YRDGW_FAILOVER_SEED={seed} pytest {__file__}"
    try:
        figures = FailoverRun(plan, pki, tmp_path / "run").execute()
    except BaseException as exc:
        exc.add_note(replay)
        raise
    print(replay, *figures.summary(), sep="\n")

    assert figures.failovers == 1, replay
    assert figures.resent_after_failure > 0, f"no request met the outage; {replay}"
    assert figures.acknowledged_lost == 0, replay
    assert figures.doubled_effects == 0 and figures.units_duplicated == 0, replay
    assert figures.units_lost == 0, replay
    assert figures.invariant_violations == 0, replay
    assert figures.reconciliation_discrepancies == 0, replay
    assert figures.publishes_accepted == figures.publishes_sent > 0, replay
    assert not figures.problems, "\n".join([replay, *figures.problems[:40]])


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_the_checks_catch_answers_lost_to_an_asynchronous_standby(
    seed: int, pki: PKIDir, tmp_path: Path
) -> None:
    """The negative control: the same run with the standby left behind (asynchronous, and stopped
    some writes before the kill) loses answers, and the checks find them."""
    problem = cluster_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)
    plan = FailoverPlan(seed, transfers=CONTROL_TRANSFERS, failovers=1, asynchronous=True)
    replay = f"failover harness seed {seed}; replay: YRDGW_FAILOVER_SEED={seed} pytest {__file__}"
    figures = FailoverRun(plan, pki, tmp_path / "run").execute()
    print(replay, *figures.summary(), sep="\n")

    assert figures.failovers == 1, replay
    assert figures.acknowledged_lost > 0, replay
    assert figures.problems, replay
