"""Crash-safe transfers across real processes (issue 8, item 1), the short version: on SQLite and
on PostgreSQL, ``yrdgw serve`` runs as a subprocess while four registries make 150 transfers and
the gateway is SIGKILLed three times — in flight, and between a commit and its reply — and
restarted. Every unit stays exactly once where the answers put it (see tests/faults/harness.py).

A fresh seed is drawn each run; a failure names it, and ``pytest tests/faults/test_crash.py --seed
N`` replays it. The long version, with its figures, is ``make faults``.
"""

from __future__ import annotations

import collections
import random
import signal
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from yrd.interop.v1 import transfer_pb2

from gateway.client import GatewayClient, RetryPolicy
from gateway.samples import sample_documents
from gateway.security.pki import PKIDir
from gateway.services.ledger import check_invariants
from gateway.storage.models import AuditEntryRow, SigningKeyRow
from tests.faults.harness import Backend, CrashPlan, Gateway, GatewayProcess, Run, open_store

SHORT_TRANSFERS = 150
SHORT_KILLS = 3


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    given: int | None = request.config.getoption("--seed")
    return given if given is not None else random.SystemRandom().randrange(1, 10**9)


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_transfers_survive_sigkills(
    backend: Backend, seed: int, pki: PKIDir, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    postgres = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    plan = CrashPlan(seed, backend, transfers=SHORT_TRANSFERS, kills=SHORT_KILLS)
    replay = (
        f"crash harness seed {seed} on {backend}; replay: "
        f"pytest tests/faults/test_crash.py --seed {seed} -k {backend}  (or {plan.rerun()})"
    )
    try:
        figures = Run(plan, pki, tmp_path / "run", postgres).execute()
    except BaseException as exc:
        exc.add_note(replay)
        raise
    print(replay, *figures.lines(), sep="\n")

    assert not figures.problems, "\n".join([replay, *figures.problems[:40]])
    assert figures.units_lost == 0 and figures.units_duplicated == 0, replay
    assert figures.invariant_violations == 0 and figures.doubled_effects == 0, replay
    assert figures.completed_not_completed == 0 and figures.unexpected_answers == 0, replay
    assert figures.reconciliation_discrepancies == 0, replay
    # Every planned proposal was made, but for those of a region left with no units to propose.
    assert figures.transfers_attempted + figures.proposals_without_units == SHORT_TRANSFERS, replay
    assert figures.transfers_completed > 0, replay
    # Every planned kill happened, of both kinds; each after-commit kill hid an answer that had
    # been committed, so the SDK re-sent at least that request.
    assert sum(figures.kills.values()) == SHORT_KILLS, (figures.kills, replay)
    assert figures.kills["in_flight"] >= 1 and figures.kills["after_commit"] >= 1, replay
    assert figures.resent_after_failure >= figures.kills["after_commit"], replay


def test_sdk_resends_a_request_whose_reply_died_with_the_gateway(
    pki: PKIDir, tmp_path: Path
) -> None:
    """The gateway commits a proposal, then an acceptance, and each time dies before replying
    (the after-commit fault); the SDK re-sends the very same envelope until the restarted gateway
    answers it with the first answer. Each request took effect once."""
    ah_region, sh_region = "340000", "310000"
    with open_store("sqlite", tmp_path, None) as store:
        gateway = Gateway(pki, store, tmp_path)
        # Publishing is no transfer write: the first to commit is the proposal. The second process
        # counts the re-sent proposal (answered from its first result) and dies after the accept.
        first = gateway.start(kill_after_commit=1)
        retry = RetryPolicy(deadline_s=120)
        ah = GatewayClient(gateway.target, pki, region=ah_region, retry=retry)
        sh = GatewayClient(gateway.target, pki, region=sh_region, retry=retry)
        deaths: list[GatewayProcess] = []

        def restart_twice() -> None:
            first.proc.wait(timeout=120)
            deaths.append(first)
            second = gateway.start(kill_after_commit=2)
            second.proc.wait(timeout=120)
            deaths.append(second)
            gateway.start()

        restarter = threading.Thread(target=restart_twice)
        try:
            assert all(r.accepted for r in ah.publish(sample_documents(ah_region)))
            restarter.start()
            proposed = ah.propose_transfer(
                "lost-reply", sh_region, origin=ah_region, ranges=[(1_000, 1_999)]
            )
            accepted = sh.accept_transfer(proposed.name)
            restarter.join(timeout=120)
            assert proposed.state == transfer_pb2.TRANSFER_STATE_PROPOSED
            assert accepted.state == transfer_pb2.TRANSFER_STATE_COMPLETED
            assert [d.proc.returncode for d in deaths] == [-signal.SIGKILL] * 2
            fired = [
                e["method"]
                for d in deaths
                for e in d.events()
                if e["event"] == "fault.kill_after_commit"
            ]
            assert fired == ["ProposeTransfer", "AcceptTransfer"]
            assert ah.resent >= 1 and sh.resent >= 1
            with store.db.transaction() as s:
                kinds = collections.Counter(
                    s.execute(
                        select(AuditEntryRow.kind).where(AuditEntryRow.kind.like("transfer.%"))
                    ).scalars()
                )
                heads = {
                    key_id: sequence
                    for key_id, sequence in s.execute(
                        select(SigningKeyRow.key_id, SigningKeyRow.last_sequence)
                    )
                }
            assert kinds == {"transfer.proposed": 1, "transfer.completed": 1}
            # Three records and one proposal from Anhui, one acceptance from Shanghai: the
            # re-sent envelopes took no second place in their chains.
            assert heads[ah.signer.key_id] == ah.signer.head()[0] == 4
            assert heads[sh.signer.key_id] == sh.signer.head()[0] == 1
            assert check_invariants(store.db).ok
        finally:
            if restarter.ident is not None:
                restarter.join(timeout=120)
            ah.close()
            sh.close()
            gateway.current.stop()
