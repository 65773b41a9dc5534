"""Several `yrdgw serve` processes on one PostgreSQL database, and clients firing conflicting
proposals of the same serials at all of them at once (issue 5's concurrency must-show).

Phase 1: six Anhui clients (each with its own registered registry key, two per gateway) race for
ten "hot" 1 kg slots that all of them want, and for random overlapping ranges of a shared field of
serials. Exactly one proposal wins each hot slot; no two winners share a serial; every loser is
refused by check 4 with SERIALS_NOT_ACTIVE and overlaps a winner; the database holds exactly the
winners' reservations; refused requests did not advance any signer's chain.

Phase 2: while the destinations accept half of the winners and Anhui cancels the other half (each
through another gateway), the six clients race again for the same serials. Cancelled units can be
won again (once); accepted ones cannot (SERIALS_NOT_HELD). The final ledger is compared serial for
serial with what the outcomes imply, and the invariants and the audit chain hold.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from yrd.interop.v1 import transfer_pb2

from adapters import default_registry
from gateway.client import EnvelopeSigner, GatewayClient, TransportError
from gateway.errors import DomainError
from gateway.samples import sample_documents
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir, load_signing_key
from gateway.security.signing import raw_public_key
from gateway.services.audit import AuditReader
from gateway.services.exchange import ExchangeService
from gateway.services.keys import KeyDirectory
from gateway.services.ledger import check_invariants
from gateway.storage.db import Database, make_engine
from gateway.storage.models import SigningKeyRow, TransferRow, UnitBlockRow
from tests.served import ServedGateway

pytestmark = pytest.mark.postgres

AH, SH, JS, ZJ = "340000", "310000", "320000", "330000"
DESTINATIONS = (SH, JS, ZJ)
GATEWAYS = 3
PROPOSERS = 6  # two per gateway, each signing with its own registry key of Anhui
# Anhui's PV issuance AH-QF-2025-0101 holds gram serials 1000..373010999.
ISSUANCE = (1_000, 373_010_999)
HOT = [(1_000 + k * 1_000, 1_999 + k * 1_000) for k in range(10)]  # every proposer wants each
FIELD = (11_000, 50_999)  # random overlapping ranges
Range = tuple[int, int]
Segment = tuple[int, int, str, str, str | None]  # start, end, holder, state, reserved_by


# -- gateway processes ---------------------------------------------------------------------------


@dataclass
class Cluster:
    db: Database
    url: str
    gateways: list[ServedGateway]


@pytest.fixture
def cluster(postgres_url: str, pki: PKIDir, tmp_path: Path) -> Iterator[Cluster]:
    """A fresh schema, migrated and holding the Anhui samples, served by three processes."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(make_engine(postgres_url, connect_args={"options": f"-csearch_path={schema}"}))
    gateways: list[ServedGateway] = []
    try:
        db.upgrade()
        KeyDirectory(db).import_from_pki(pki)
        signer = EnvelopeSigner(load_signing_key(pki.registry(AH).signing_key))
        envelopes = [signer.sign(ct, data) for ct, data in sample_documents(AH)]
        outcomes = ExchangeService(db, default_registry).publish(
            Identity(Role.REGISTRY, AH), envelopes
        )
        assert all(o.accepted for o in outcomes), outcomes
        # The schema travels in the URL, as an operator would configure it.
        url = (
            make_url(postgres_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
        config = tmp_path / "gateway.toml"
        # Migrated above, not on start: alembic_config() puts the URL (with its %3D) into
        # Alembic's ConfigParser, which refuses a bare '%'. Recognition (check 5) is not what this
        # test races for: every destination accepts every unit.
        config.write_text(
            f'listen = "127.0.0.1:0"\ncert_dir = "{pki.root}"\nmetrics_listen = ""\n'
            'log_format = "json"\nlog_level = "info"\nshutdown_grace_s = 3\n'
            "migrate_on_start = false\nrecognition_enforced = false\n"
        )
        env = {**os.environ, "YRDGW_DATABASE_URL": url}
        gateways = [ServedGateway(config, env) for _ in range(GATEWAYS)]
        for gw in gateways:
            gw.wait_started()
        yield Cluster(db, url, gateways)
    finally:
        for gw in gateways:
            gw.stop()
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# -- proposals and outcomes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    transfer_id: str
    destination: str
    ranges: tuple[Range, ...]
    client: int

    @property
    def name(self) -> str:
        return f"regions/{AH}/transfers/{self.transfer_id}"

    @property
    def grams(self) -> int:
        return sum(e - s + 1 for s, e in self.ranges)


@dataclass(frozen=True)
class Outcome:
    proposal: Proposal
    transfer: transfer_pb2.Transfer | None
    reason: str = ""
    check: str = ""
    message: str = ""


def overlaps(a: Iterable[Range], b: Iterable[Range]) -> bool:
    bs = list(b)
    return any(s <= f and t <= e for s, e in a for t, f in bs)


def random_ranges(rng: random.Random) -> tuple[Range, ...]:
    """One to three disjoint ranges of 0.1..6 kg somewhere in FIELD."""
    chosen: list[Range] = []
    for _ in range(rng.randint(1, 3)):
        length = rng.randint(100, 6_000)
        start = rng.randint(FIELD[0], FIELD[1] - length + 1)
        r = (start, start + length - 1)
        if not overlaps([r], chosen):
            chosen.append(r)
    return tuple(sorted(chosen))


def proposals_for(phase: int, client: int, rng: random.Random) -> list[Proposal]:
    """Each hot slot in turn (all proposers hit slot k at about the same time), each followed by
    a random proposal in the field."""
    out = []
    for k, slot in enumerate(HOT):
        for kind, ranges in (("hot", (slot,)), ("field", random_ranges(rng))):
            out.append(
                Proposal(
                    f"p{phase}-c{client}-{kind}-{k:02d}",
                    rng.choice(DESTINATIONS),
                    ranges,
                    client,
                )
            )
    return out


def run_threads(workers: Sequence[Callable[[threading.Barrier], None]]) -> None:
    """Run the workers on threads released together by a barrier; re-raise the first failure."""
    barrier = threading.Barrier(len(workers))
    failures: list[BaseException] = []

    def wrap(work: Callable[[threading.Barrier], None]) -> None:
        try:
            work(barrier)
        except BaseException as exc:  # reported on the main thread
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=wrap, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "client threads hung"
    if failures:
        raise failures[0]


def proposer(
    client: GatewayClient, proposals: Sequence[Proposal], out: list[Outcome]
) -> Callable[[threading.Barrier], None]:
    def work(barrier: threading.Barrier) -> None:
        barrier.wait(timeout=30)
        for p in proposals:
            try:
                t = client.propose_transfer(
                    p.transfer_id, p.destination, origin=AH, ranges=p.ranges
                )
            except DomainError as exc:
                out.append(Outcome(p, None, exc.reason, exc.metadata.get("check", ""), exc.message))
            except TransportError as exc:
                out.append(Outcome(p, None, f"TRANSPORT:{exc.code.name}", "", exc.details))
            else:
                out.append(Outcome(p, t))

    return work


def answerer(
    answer: Callable[[str], transfer_pb2.Transfer],
    names: Sequence[str],
    out: list[tuple[str, transfer_pb2.Transfer | Exception]],
) -> Callable[[threading.Barrier], None]:
    def work(barrier: threading.Barrier) -> None:
        barrier.wait(timeout=30)
        for name in names:
            try:
                out.append((name, answer(name)))
            except (DomainError, TransportError) as exc:
                out.append((name, exc))

    return work


# -- the ledger as the outcomes say it must be ---------------------------------------------------


def merged(segments: Iterable[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in sorted(segments, key=lambda s: s[0]):
        if out and out[-1][1] + 1 == seg[0] and out[-1][2:] == seg[2:]:
            last = out[-1]
            out[-1] = (last[0], seg[1], last[2], last[3], last[4])
        else:
            out.append(seg)
    return out


def assert_disjoint(live: Sequence[Proposal]) -> None:
    """No serial is held by two live (pending or completed) transfers."""
    claims = sorted((s, e, p.name) for p in live for s, e in p.ranges)
    for (s1, e1, n1), (s2, e2, n2) in itertools.pairwise(claims):
        assert e1 < s2, f"{n1} ({s1}..{e1}) and {n2} ({s2}..{e2}) both won the same serials"


def expected_ledger(pending: Sequence[Proposal], completed: Sequence[Proposal]) -> list[Segment]:
    claims: list[Segment] = [(s, e, AH, "reserved", p.name) for p in pending for s, e in p.ranges]
    claims += [(s, e, p.destination, "active", None) for p in completed for s, e in p.ranges]
    segments: list[Segment] = []
    cursor = ISSUANCE[0]
    for seg in sorted(claims, key=lambda c: c[0]):
        if seg[0] > cursor:
            segments.append((cursor, seg[0] - 1, AH, "active", None))
        segments.append(seg)
        cursor = seg[1] + 1
    if cursor <= ISSUANCE[1]:
        segments.append((cursor, ISSUANCE[1], AH, "active", None))
    return merged(segments)


def actual_ledger(db: Database) -> list[Segment]:
    with db.transaction() as s:
        rows = s.execute(
            select(
                UnitBlockRow.serial_start,
                UnitBlockRow.serial_end,
                UnitBlockRow.holder_region,
                UnitBlockRow.state,
                UnitBlockRow.reserved_by,
            )
            .where(
                UnitBlockRow.origin_region == AH,
                UnitBlockRow.serial_start >= ISSUANCE[0],
                UnitBlockRow.serial_end <= ISSUANCE[1],
            )
            .order_by(UnitBlockRow.serial_start)
        ).all()
    return merged((r[0], r[1], r[2], r[3], r[4]) for r in rows)


def transfer_states(db: Database) -> dict[str, str]:
    with db.transaction() as s:
        return {
            name: state for name, state in s.execute(select(TransferRow.name, TransferRow.state))
        }


def key_sequences(db: Database) -> dict[str, int]:
    with db.transaction() as s:
        rows = s.execute(select(SigningKeyRow.key_id, SigningKeyRow.last_sequence))
        return {key_id: sequence for key_id, sequence in rows}


def assert_ledger_sound(db: Database) -> None:
    report = check_invariants(db)
    assert report.ok, report.problems
    chain = AuditReader(db).verify()
    assert chain.ok, chain


def describe(outcomes: Iterable[Outcome]) -> str:
    return "\n".join(
        f"{o.proposal.transfer_id} {o.proposal.ranges}: {o.reason} [{o.check}] {o.message}"
        for o in outcomes
    )


def server_errors(gateways: Sequence[ServedGateway]) -> str:
    """The gateways' error log lines (last line of each traceback), for failure messages."""
    out = []
    for n, gw in enumerate(gateways):
        for e in gw.events():
            if e.get("level") == "error":
                lines = str(e.get("exception", "")).strip().splitlines()
                detail = [x for x in lines if x.startswith("sqlalchemy.exc.")] or lines[-1:]
                out.append(f"\ngateway {n}: {e.get('event')}: {' '.join(detail)}")
    return "".join(out)


# -- the tests -----------------------------------------------------------------------------------


class Race:
    """Clients of the cluster: Anhui proposers with keys of their own, spread over the gateways."""

    def __init__(self, cluster: Cluster, pki: PKIDir, seed: int) -> None:
        self.db, self.gws, self.pki = cluster.db, cluster.gateways, pki
        self.rng = random.Random(seed)
        self.clients: list[GatewayClient] = []
        # Extra registry keys of Anhui, registered by its administrator through the first
        # gateway (the others see them through the shared database): one per concurrent signer.
        admin = self.connect(0, AH, role=Role.ADMIN, name="admin-a")
        self.keys = [ed25519.Ed25519PrivateKey.generate() for _ in range(PROPOSERS + 1)]
        for key in self.keys:
            assert admin.register_signing_key("registry", raw_public_key(key)).owner == "registry"
        self.proposers = [self.connect(i % GATEWAYS, AH, key=i) for i in range(PROPOSERS)]

    def connect(
        self, gateway: int, region: str, key: int | None = None, **kw: Any
    ) -> GatewayClient:
        client = GatewayClient(self.gws[gateway].target, self.pki, region=region, **kw)
        self.clients.append(client)
        if key is not None:
            client.signer = EnvelopeSigner(self.keys[key])
        client.wait_ready()
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def fire(
        self, phase: int, extra: Sequence[Callable[[threading.Barrier], None]] = ()
    ) -> list[Outcome]:
        """Every proposer fires its plan at once (with extra workers released alongside)."""
        plans = [proposals_for(phase, i, self.rng) for i in range(PROPOSERS)]
        results: list[list[Outcome]] = [[] for _ in range(PROPOSERS)]
        run_threads(
            [proposer(self.proposers[i], plans[i], results[i]) for i in range(PROPOSERS)]
            + list(extra)
        )
        outcomes = [o for r in results for o in r]
        assert len(outcomes) == sum(len(p) for p in plans)
        return outcomes

    def assert_sequences(self, winners: Sequence[Proposal]) -> None:
        """Refused requests did not advance a chain: each key is at its own number of winners."""
        sequences = key_sequences(self.db)
        for i, client in enumerate(self.proposers):
            mine = sum(1 for p in winners if p.client == i)
            assert sequences[client.signer.key_id] == mine == client.signer.head()[0]

    def first_round(self) -> list[Proposal]:
        """Phase 1: conflicting proposals only. Returns the winners, everything checked."""
        db, gws = self.db, self.gws
        outcomes = self.fire(1)
        won = [o for o in outcomes if o.transfer is not None]
        lost = [o for o in outcomes if o.transfer is None]
        winners = [o.proposal for o in won]
        bad = [o for o in lost if (o.reason, o.check) != ("SERIALS_NOT_ACTIVE", "4")]
        assert not bad, (
            "refusals other than check 4 SERIALS_NOT_ACTIVE:\n" + describe(bad) + server_errors(gws)
        )
        for o in won:
            assert o.transfer is not None
            assert o.transfer.name == o.proposal.name
            assert o.transfer.state == transfer_pb2.TRANSFER_STATE_PROPOSED
            assert o.transfer.quantity_grams == o.proposal.grams
        for slot in HOT:
            takers = [p.transfer_id for p in winners if p.ranges == (slot,)]
            assert len(takers) == 1, f"hot slot {slot} won by {takers}"
        assert_disjoint(winners)
        claimed = [r for p in winners for r in p.ranges]
        for o in lost:
            assert overlaps(o.proposal.ranges, claimed), (
                f"{o.proposal.transfer_id} was refused but overlaps no winner: {o.message}"
            )
        assert len(lost) >= (PROPOSERS - 1) * len(HOT)
        assert transfer_states(db) == {p.name: "PROPOSED" for p in winners}
        assert actual_ledger(db) == expected_ledger(winners, [])
        assert_ledger_sound(db)
        self.assert_sequences(winners)
        return winners


def stop_all(gws: Sequence[ServedGateway]) -> list[list[dict[str, Any]]]:
    """Stop every process (each must exit 0 and have logged no error); their log events."""
    codes = [gw.stop() for gw in gws]
    assert codes == [0] * len(gws), codes
    assert not server_errors(gws), server_errors(gws)
    return [gw.events() for gw in gws]


@pytest.mark.timeout(300)
def test_conflicting_proposals_through_three_gateway_processes(
    cluster: Cluster, pki: PKIDir
) -> None:
    """120 proposals from six clients through three processes: exactly one wins each serial."""
    race = Race(cluster, pki, seed=20261125)
    try:
        race.first_round()
    finally:
        race.close()
    # Every process took part in the race: each let proposals through and refused others.
    for n, events in enumerate(stop_all(cluster.gateways)):
        proposes = [e for e in events if str(e.get("method", "")).endswith("/ProposeTransfer")]
        statuses = {e["status"] for e in proposes}
        assert {"OK", "FAILED_PRECONDITION"} <= statuses, f"gateway {n}: {statuses}"


@pytest.mark.timeout(300)
def test_proposals_racing_accepts_and_cancels(cluster: Cluster, pki: PKIDir) -> None:
    """While the destinations accept half of the winners and Anhui cancels the other half (each
    through another gateway), the proposers race for the same serials again: cancelled units are
    won again at most once, accepted ones never; every answer succeeds."""
    db, gws = cluster.db, cluster.gateways
    race = Race(cluster, pki, seed=20261126)
    try:
        winners = race.first_round()
        ordered = sorted(winners, key=lambda p: p.transfer_id)
        to_accept, to_cancel = ordered[::2], ordered[1::2]
        acceptors = {d: race.connect(n % GATEWAYS, d) for n, d in enumerate(DESTINATIONS)}
        canceller = race.connect(2, AH, key=PROPOSERS)
        answers: list[tuple[str, transfer_pb2.Transfer | Exception]] = []
        workers = [
            answerer(
                client.accept_transfer, [p.name for p in to_accept if p.destination == d], answers
            )
            for d, client in acceptors.items()
        ]
        workers.append(
            answerer(
                lambda name: canceller.cancel_transfer(name, "withdrawn"),
                [p.name for p in to_cancel],
                answers,
            )
        )
        second = race.fire(2, workers)

        failed = [(n, a) for n, a in answers if isinstance(a, Exception)]
        assert not failed, f"accepts or cancels failed: {failed}{server_errors(gws)}"
        assert len(answers) == len(winners)
        won2 = [o.proposal for o in second if o.transfer is not None]
        lost2 = [o for o in second if o.transfer is None]
        bad = [
            o
            for o in lost2
            if o.check != "4" or o.reason not in ("SERIALS_NOT_ACTIVE", "SERIALS_NOT_HELD")
        ]
        assert not bad, "refusals other than check 4:\n" + describe(bad) + server_errors(gws)
        accepted = [r for p in to_accept for r in p.ranges]
        assert not overlaps([r for p in won2 for r in p.ranges], accepted), (
            "a second-round proposal took units that were being accepted"
        )
        live = to_accept + won2
        assert_disjoint(live)
        blockers = [r for p in live + to_cancel for r in p.ranges]
        for o in lost2:
            assert overlaps(o.proposal.ranges, blockers), describe([o])
            if o.reason == "SERIALS_NOT_HELD":
                assert overlaps(o.proposal.ranges, accepted), describe([o])
        for slot in HOT:
            takers = [p.transfer_id for p in live if p.ranges == (slot,)]
            assert len(takers) == 1 or (
                not takers and any(p.ranges == (slot,) for p in to_cancel)
            ), f"hot slot {slot} live in {takers}"
        expected = {p.name: "COMPLETED" for p in to_accept}
        expected |= {p.name: "CANCELLED" for p in to_cancel}
        expected |= {p.name: "PROPOSED" for p in won2}
        assert transfer_states(db) == expected
        assert actual_ledger(db) == expected_ledger(won2, to_accept)
        assert_ledger_sound(db)
        race.assert_sequences(winners + won2)
    finally:
        race.close()
    stop_all(gws)


@pytest.mark.timeout(300)
def test_same_request_retried_through_every_gateway_at_once(cluster: Cluster, pki: PKIDir) -> None:
    """A byte-identical proposal sent at once through all three processes (by six signers of the
    source, as a registry retrying through another gateway would): one transfer per id, and every
    caller gets the first answer, never a check-4 refusal or an internal error."""
    db, gws = cluster.db, cluster.gateways
    race = Race(cluster, pki, seed=20261127)
    project = f"regions/{AH}/projects/AH-XM-2024-0031"
    ids = [f"dup-{k:02d}" for k in range(10)]
    got: list[list[tuple[str, str]]] = [[] for _ in range(PROPOSERS)]

    def send(
        client: GatewayClient, out: list[tuple[str, str]]
    ) -> Callable[[threading.Barrier], None]:
        def work(barrier: threading.Barrier) -> None:
            barrier.wait(timeout=30)
            for k, transfer_id in enumerate(ids):
                try:
                    if k % 2:  # a quantity: the gateway chooses the units
                        t = client.propose_transfer(
                            transfer_id, SH, project=project, vintage=2024, quantity_grams=1_000
                        )
                    else:
                        start = 100_000_000 + k * 1_000
                        t = client.propose_transfer(
                            transfer_id, SH, origin=AH, ranges=[(start, start + 999)]
                        )
                except (DomainError, TransportError) as exc:
                    out.append((transfer_id, f"{type(exc).__name__}: {exc}"))
                else:
                    out.append(
                        (transfer_id, f"{t.name} {transfer_pb2.TransferState.Name(t.state)}")
                    )

        return work

    try:
        run_threads([send(c, got[i]) for i, c in enumerate(race.proposers)])
    finally:
        race.close()
    answers = [a for per in got for a in per]
    wrong = [
        (i, a) for i, a in answers if a != f"regions/{AH}/transfers/{i} TRANSFER_STATE_PROPOSED"
    ]
    assert not wrong, f"{len(wrong)} of {len(answers)} calls did not get the first answer: " + (
        "\n".join(f"{i}: {a}" for i, a in wrong) + server_errors(gws)
    )
    assert transfer_states(db) == {f"regions/{AH}/transfers/{i}": "PROPOSED" for i in ids}
    with db.transaction() as s:
        reserved = s.execute(
            select(UnitBlockRow.reserved_by, UnitBlockRow.serial_start, UnitBlockRow.serial_end)
            .where(UnitBlockRow.state == "reserved")
            .order_by(UnitBlockRow.serial_start)
        ).all()
    grams: dict[str, int] = {}
    for name, start, end in reserved:
        assert name is not None
        grams[name] = grams.get(name, 0) + end - start + 1
    assert grams == {f"regions/{AH}/transfers/{i}": 1_000 for i in ids}
    assert_ledger_sound(db)
    stop_all(gws)
