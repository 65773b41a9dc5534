"""Group commit (several ledger requests in one transaction) on SQLite and PostgreSQL: a batch is
what its requests would have done one after another — a refused or failing request leaves no
trace and does not disturb the others — and concurrent conflicting proposals through it still
have exactly one winner per serial, with the invariants, the audit chain and every signer's
chain intact."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from yrd.interop.v1 import records_pb2, transfer_pb2, transfer_service_pb2

from adapters import default_registry
from gateway import errors
from gateway.client import EnvelopeSigner
from gateway.contract import PROPOSAL_TYPE
from gateway.samples import sample_documents
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir, load_signing_key
from gateway.security.signing import raw_public_key
from gateway.services.audit import AuditReader
from gateway.services.exchange import ExchangeService
from gateway.services.keys import KeyDirectory
from gateway.services.ledger import check_invariants
from gateway.services.transfers import TransferService
from gateway.storage.db import Database, UnitOfWork
from gateway.storage.group_commit import GroupCommit
from gateway.storage.models import RegionRow, UnitBlockRow

AH, SH = "340000", "310000"
WAIT = 30.0


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_batch_keeps_each_request_to_itself(database: Database) -> None:
    group = GroupCommit(database)
    units: list[int] = []
    entered, release = threading.Event(), threading.Event()

    def add(code: str) -> Callable[[UnitOfWork], str]:
        def work(unit: UnitOfWork) -> str:
            units.append(id(unit))
            unit.conn.execute(insert(RegionRow).values(code=code))
            return code

        return work

    def refused(unit: UnitOfWork) -> str:
        units.append(id(unit))
        unit.conn.execute(insert(RegionRow).values(code="300000"))
        raise errors.InvalidArgument("refused after writing")

    def leader(unit: UnitOfWork) -> str:
        entered.set()
        release.wait(WAIT)  # the others queue meanwhile, and form the next batch together
        return add("100000")(unit)

    outcomes: dict[str, Any] = {}

    def call(label: str, work: Callable[[UnitOfWork], str]) -> None:
        try:
            outcomes[label] = group.run(work)
        except Exception as exc:
            outcomes[label] = exc

    first = threading.Thread(target=call, args=("leader", leader))
    first.start()
    assert entered.wait(WAIT)
    others = [
        threading.Thread(target=call, args=(label, work))
        for label, work in (
            ("ok", add("200000")),
            ("refused", refused),
            ("duplicate", add("100000")),  # collides with the leader's committed row
        )
    ]
    for t in others:
        t.start()
    _until(lambda: group.waiting == 3)
    release.set()
    for t in (first, *others):
        t.join(WAIT)

    assert outcomes["leader"] == "100000"
    assert outcomes["ok"] == "200000"
    assert isinstance(outcomes["refused"], errors.InvalidArgument)
    assert isinstance(outcomes["duplicate"], IntegrityError)
    assert len(units) == 4 and len(set(units[1:])) == 1  # the three shared one transaction
    with database.transaction() as session:
        codes = set(session.execute(select(RegionRow.code)).scalars())
    assert codes == {"100000", "200000"}


def _proposal(transfer_id: str, start: int, end: int) -> bytes:
    return transfer_service_pb2.TransferProposal(
        purpose=transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
        transfer_id=transfer_id,
        destination_region=SH,
        units=transfer_pb2.UnitSelection(
            ranges=transfer_pb2.SerialRanges(
                origin_region=AH, ranges=[records_pb2.SerialRange(start=start, end=end)]
            )
        ),
    ).SerializeToString()


def test_concurrent_conflicting_proposals_have_one_winner_each(
    database: Database, pki: PKIDir
) -> None:
    keys = KeyDirectory(database)
    keys.import_from_pki(pki)
    publisher = EnvelopeSigner(load_signing_key(pki.registry(AH).signing_key))
    envelopes = [publisher.sign(ct, d) for ct, d in sample_documents(AH)]
    published = ExchangeService(database, default_registry).publish(
        Identity(Role.REGISTRY, AH), envelopes
    )
    assert all(o.accepted for o in published)
    ledger = TransferService(database)
    proposers = 6
    signers = []
    for _ in range(proposers):
        key = ed25519.Ed25519PrivateKey.generate()
        keys.register(Identity(Role.GATEWAY, None), "registry", raw_public_key(key), region=AH)
        signers.append(EnvelopeSigner(key))
    hot = [(1_000 + k * 1_000, 1_999 + k * 1_000) for k in range(8)]
    barrier = threading.Barrier(proposers)
    won: dict[tuple[int, int], list[str]] = {r: [] for r in hot}
    refusals: list[str] = []
    lock = threading.Lock()

    def propose(i: int) -> None:
        signer = signers[i]
        barrier.wait(WAIT)
        for start, end in hot:
            head = signer.head()
            env = signer.sign(PROPOSAL_TYPE, _proposal(f"p{i}-{start}", start, end))
            try:
                view = ledger.propose(Identity(Role.REGISTRY, AH), env)
            except errors.DomainError as exc:
                signer.rewind(*head)
                with lock:
                    refusals.append(exc.reason)
                continue
            with lock:
                won[(start, end)].append(view.name)

    threads = [threading.Thread(target=propose, args=(i,)) for i in range(proposers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 4)

    assert all(len(names) == 1 for names in won.values()), won
    assert refusals == ["SERIALS_NOT_ACTIVE"] * (len(hot) * (proposers - 1))
    with database.transaction() as session:
        reserved = session.execute(
            select(UnitBlockRow.serial_start, UnitBlockRow.serial_end, UnitBlockRow.reserved_by)
            .where(UnitBlockRow.state == "reserved")
            .order_by(UnitBlockRow.serial_start)
        ).all()
    assert [(s, e) for s, e, _ in reserved] == hot
    assert [t for _, _, t in reserved] == [won[r][0] for r in hot]
    report = check_invariants(database)
    assert report.ok, report.problems
    assert AuditReader(database).verify().ok
    # Refused proposals left every signer's chain where it was: each signs on without a resync.
    for i, signer in enumerate(signers):
        env = signer.sign(PROPOSAL_TYPE, _proposal(f"next-{i}", 20_000 + i, 20_000 + i))
        assert ledger.propose(Identity(Role.REGISTRY, AH), env).state == "PROPOSED"
