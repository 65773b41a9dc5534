"""The failover harness (issue 22): PostgreSQL's primary dies and its synchronous standby takes
over while two ``yrdgw serve`` processes serve four registries, and nothing acknowledged is lost.

The servers are real (``tests/failover/cluster.py``): a primary and a synchronous standby started
here, on free ports. Two gateway processes (mTLS, the dev PKI) serve the multi-host URL
``?host=<a>&host=<b>&target_session_attrs=read-write`` behind one address (a round-robin TCP
front door, as a load balancer would be). The registries are the crash harness's
(``tests/faults/harness.py``): SDK clients making seeded rounds of transfers, each keeping its own
books, plus rounds of publishes (a new issuance per region). At seeded moments the primary is
SIGKILLed (every one of its processes, as a machine dies) a few milliseconds after the k-th write
since the last failover was sent; after a seeded detection delay the standby is promoted and its
``synchronous_standby_names`` cleared; then a new standby is built on the dead server's port from
the new primary (``pg_basebackup -R``) and made synchronous before the next failover may come.

At the end, on the promoted server: every answer a client received is in the database (each
transfer in the state its answers said, each accepted envelope and the records it created), no
effect was taken twice, the ledger invariants and the audit chain hold, every gram sits where the
books put it, and each registry's own books reconcile with no discrepancy — the crash harness's
checks, reused.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, text
from yrd.interop.v1 import registry_service_pb2

from gateway.errors import DomainError
from gateway.samples import sample_documents
from gateway.security.pki import PKIDir
from gateway.storage.db import Database
from gateway.storage.models import EnvelopeRow, IssuanceRow, TransferRow
from tests.failover.cluster import Cluster, Node
from tests.faults.harness import (
    REGIONS,
    Action,
    CrashPlan,
    Figures,
    Gateway,
    Killer,
    Registry,
    Result,
    Run,
    Store,
    _traced,
    patiently,
    perform,
    pieces_of,
    plan_round,
    quota,
)
from tests.tcp_proxy import TcpProxy

GATEWAYS = 2
PUBLISH_EVERY = 10
"""A round of publishes (one new issuance per region) about every this many rounds."""
SERIAL_SHIFT = 10**10
"""New issuances take the sample's serials shifted by a multiple of this (no overlap)."""


# -- the plan drawn from the seed ---------------------------------------------------------------


@dataclass(frozen=True)
class Failover:
    """One planned failover: after how many writes since the last one (or the start), how many
    milliseconds after the last of them was sent the primary dies, and how long "detection"
    takes before the standby is promoted."""

    after_writes: int
    delay_ms: int
    detect_ms: int


@dataclass(frozen=True)
class FailoverPlan(CrashPlan):
    """What one run does; everything random in it is drawn from ``seed``."""

    backend: str = "postgresql"  # type: ignore[assignment]
    kills: int = 0
    failovers: int = 1
    asynchronous: bool = False
    """The negative control: before each failover the standby falls behind (replication made
    asynchronous and the standby stopped half-way to the kill), so answers are lost — and the
    checks must say so."""

    def failover_schedule(self) -> list[Failover]:
        """The failovers, spread over the run: their gaps in writes (counted from the previous
        promotion; a failover also waits for the new standby to be synchronous) add up to under
        half the writes the run makes (about two per proposal)."""
        rng = random.Random(f"failovers-{self.seed}")
        gap = max(2, int(self.transfers / (self.failovers + 1)))
        return [
            Failover(
                rng.randint(max(1, int(0.3 * gap)), gap), rng.randint(0, 40), rng.randint(100, 600)
            )
            for _ in range(self.failovers)
        ]

    def rerun(self) -> str:
        return (
            f"python -m tests.failover.run --seed {self.seed} --transfers {self.transfers} "
            f"--failovers {self.failovers}" + (" --asynchronous" if self.asynchronous else "")
        )


@dataclass
class FailoverFigures(Figures):
    """The crash harness's figures, and what failovers add."""

    failovers: int = 0
    failovers_planned: int = 0
    unavailable_s: list[float] = field(default_factory=list)
    """Per failover: from the SIGKILL to the first write answered by the promoted server."""
    promote_s: list[float] = field(default_factory=list)
    """Per failover: from the SIGKILL to the end of ``pg_ctl promote`` (detection included)."""
    publishes_sent: int = 0
    publishes_accepted: int = 0
    acknowledged_lost: int = 0
    """Answers a client received that the promoted database does not bear out."""
    calls_per_gateway: list[int] = field(default_factory=list)
    not_serving_per_gateway: list[int] = field(default_factory=list)
    """How often each gateway's health went NOT_SERVING (storage unreachable or read-only)."""

    def merge(self, other: Figures) -> None:
        """Sums, with the per-gateway counts added gateway by gateway."""
        per_gateway = ("calls_per_gateway", "not_serving_per_gateway")
        kept = {name: list(getattr(self, name)) for name in per_gateway}
        super().merge(other)
        for name, mine in kept.items():
            theirs = list(getattr(other, name, []))
            width = max(len(mine), len(theirs))
            padded = [(mine + [0] * width)[i] + (theirs + [0] * width)[i] for i in range(width)]
            setattr(self, name, padded)

    @property
    def operations(self) -> int:
        return self.writes_sent + self.publishes_sent

    def summary(self) -> list[str]:
        """The figures issue 22 asks for, then the crash harness's own."""
        per = ", ".join(f"{s:.2f}" for s in self.unavailable_s) or "-"
        promote = ", ".join(f"{s:.2f}" for s in self.promote_s) or "-"
        rows = [
            (
                "operations",
                f"{self.operations} ({self.writes_sent} transfer writes, "
                f"{self.publishes_sent} publishes)",
            ),
            ("failovers", f"{self.failovers} (of {self.failovers_planned} planned)"),
            ("answers re-sent", self.resent_after_failure),
            ("unavailable per failover (s)", per),
            ("  of which kill -> promoted (s)", promote),
            ("acknowledged and lost", self.acknowledged_lost),
            ("duplicated", self.doubled_effects),
            ("invariant violations", self.invariant_violations),
            ("calls served per gateway", " / ".join(map(str, self.calls_per_gateway))),
            ("health NOT_SERVING per gateway", " / ".join(map(str, self.not_serving_per_gateway))),
        ]
        # The crash harness's rows, but for its kills (none here).
        crash = [line for line in self.lines() if "kills injected" not in line]
        return [f"  {name:<32} {value}" for name, value in rows] + crash


# -- the front door and the failer ---------------------------------------------------------------


class FrontDoor(TcpProxy):
    """One address for several gateway processes: each new connection goes to the next one
    (as an L4 load balancer would)."""

    def __init__(self, upstreams: Iterable[tuple[str, int]]) -> None:
        self._upstreams = list(upstreams)
        self._turn = itertools.count()
        super().__init__(self._upstreams[0])

    @property
    def upstream(self) -> tuple[str, int]:
        return self._upstreams[next(self._turn) % len(self._upstreams)]

    @upstream.setter
    def upstream(self, value: tuple[str, int]) -> None:
        pass  # the list is fixed


@dataclass
class Outage:
    """One failover's moments (monotonic seconds; 0 until reached)."""

    killed: float
    promoted: float = 0.0
    served: float = 0.0
    rebuilt: float = 0.0


class Failer(Killer):
    """Kills the primary as the plan says, promotes the standby, and builds a new one."""

    def __init__(
        self,
        gateway: Gateway,
        cluster: Cluster,
        schedule: list[Failover],
        *,
        asynchronous: bool = False,
    ) -> None:
        super().__init__(gateway, [])
        self.cluster = cluster
        self.failovers = schedule
        self.asynchronous = asynchronous
        self.outages: list[Outage] = []

    def _wait_for_writes(self, n: int) -> bool:
        """Until n writes since the last standby was attached; False when told to stop."""
        while self._writes_since_start() < n and not self.done.is_set():
            time.sleep(0.001)
        return not self.done.is_set()

    def answered(self) -> None:
        """A write was answered (the first answer after a promotion ends that outage)."""
        now = time.monotonic()
        with self._lock:
            last = self.outages[-1] if self.outages else None
            if last is not None and last.promoted and not last.served:
                last.served = now

    def _run(self) -> None:
        for failover in self.failovers:
            if self.asynchronous:
                if not self._wait_for_writes(failover.after_writes // 2):
                    return
                self.cluster.lag_standby()
            if not self._wait_for_writes(failover.after_writes):
                return
            time.sleep(failover.delay_ms / 1000)
            outage = Outage(time.monotonic())
            with self._lock:
                self.outages.append(outage)
            dead: Node = self.cluster.kill_primary()
            if self.asynchronous:
                self.cluster.catch_up_offline()
            time.sleep(failover.detect_ms / 1000)
            self.cluster.promote()
            with self._lock:
                outage.promoted = time.monotonic()
                self._writes = 0
            # The next failover waits for this (a synchronous standby again); the writes made
            # meanwhile count towards its gap.
            self.cluster.rebuild_standby(dead)
            with self._lock:
                outage.rebuilt = time.monotonic()

    def finish(self) -> None:
        self.done.set()
        self.join(timeout=180)
        if self._failure is not None:
            raise self._failure


# -- new issuances --------------------------------------------------------------------------------


def issuance(region: str, k: int) -> tuple[str, bytes]:
    """The region's sample issuance as a new one: its own id, serials shifted by (k+1) × 10^10."""
    content_type, sample = sample_documents(region)[2]
    shift = (k + 1) * SERIAL_SHIFT
    if region == "310000":
        doc = json.loads(sample)
        doc["issuance_no"] = f"SHCI-I-2026-{k:06d}"
        doc["serial_start"] += shift
        doc["serial_end"] += shift
        return content_type, json.dumps(doc).encode()
    if region == "330000":
        doc = json.loads(sample)
        info = doc["dataInfo"]
        info["certificationId"] = str(1_900_000_000_000_000_000 + k)
        info["serialFrom"] += shift
        info["serialTo"] += shift
        return content_type, json.dumps(doc, ensure_ascii=False).encode()
    if region == "320000":
        xml = sample.decode()
        for tag in ("XLHQS", "XLHZZ"):
            start = xml.index(f"<{tag}>") + len(tag) + 2
            end = xml.index(f"</{tag}>")
            xml = xml[:start] + str(int(xml[start:end]) + shift) + xml[end:]
        xml = xml.replace("JS-QF-2025-0012", f"JS-QF-2026-{k:06d}")
        return content_type, xml.encode()
    header, first, *_ = sample.decode("gb18030").splitlines()
    cells = first.split(",")
    cells[1] = f"AH-QF-2026-{k:06d}"
    cells[-2] = str(int(cells[-2]) + shift)
    cells[-1] = str(int(cells[-1]) + shift)
    return content_type, f"{header}\n{','.join(cells)}\n".encode("gb18030")


@dataclass
class Published:
    region: str
    envelope_hash: str
    record_names: list[str]


# -- one run -------------------------------------------------------------------------------------


class FailoverRun(Run):
    """One seeded run: a fresh cluster, two gateways, four registries, the failovers."""

    def __init__(self, plan: FailoverPlan, pki: PKIDir, workdir: Path) -> None:
        super().__init__(plan, pki, workdir)
        self.plan: FailoverPlan = plan
        self.figures: FailoverFigures = FailoverFigures("postgresql", seeds=[plan.seed])
        self.published: list[Published] = []
        self.issued = 0

    def execute(self) -> FailoverFigures:
        began = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        cluster = Cluster()
        gateways: list[Gateway] = []
        registries: dict[str, Registry] = {}
        door: FrontDoor | None = None
        db: Database | None = None
        try:
            cluster.start(prepare=_migrate)
            url = cluster.url()
            db = Database.from_url(url)  # never connects: the gateways only take its URL
            for i in range(GATEWAYS):
                home = self.workdir / f"gateway-{i}"
                home.mkdir(exist_ok=True)
                gateways.append(Gateway(self.pki, Store(url, db), home))
            with ThreadPoolExecutor(GATEWAYS) as starting:  # a start is seconds of imports
                list(starting.map(lambda g: g.start(), gateways))
            door = FrontDoor([("127.0.0.1", g.port) for g in gateways])
            door.start()
            front = _Address(f"127.0.0.1:{door.port}")
            registries = {r: Registry(r, front, self.pki) for r in REGIONS}  # type: ignore[arg-type]
            failer = Failer(
                gateways[0],
                cluster,
                self.plan.failover_schedule(),
                asynchronous=self.plan.asynchronous,
            )
            self.figures.failovers_planned += len(failer.failovers)
            self._setup(registries)
            failer.start()
            try:
                self._drive_with_publishes(registries, failer)
            finally:
                failer.finish()
            self._outages(failer.outages)
            for reg in registries.values():
                self.figures.resent_after_failure += reg.client.resent
            final = Database.from_url(url)
            try:
                self._check_on_primary(final, cluster)
                self._check_answers(final)
                # Through the gateway too; a lost answer can make these refuse (not found).
                for check in (self._check_books_against_gateway, self._reconcile):
                    try:
                        check(registries)
                    except DomainError as exc:
                        self.problem(f"{check.__name__}: {type(exc).__name__} {exc}")
                self._check_database(final, registries)
            finally:
                final.dispose()
        finally:
            for reg in registries.values():
                reg.close()
            with ThreadPoolExecutor(GATEWAYS) as stopping:
                statuses = list(stopping.map(lambda g: g.current.stop(), gateways))
            for gateway, status in zip(gateways, statuses, strict=True):
                events = gateway.current.events()
                self.figures.calls_per_gateway.append(sum(e.get("event") == "rpc" for e in events))
                self.figures.not_serving_per_gateway.append(
                    sum(e.get("event") == "gateway.not_serving" for e in events)
                )
                if status != 0:
                    self.problem(f"{gateway.current.log} exited with {status} on SIGTERM")
                self.figures.problems.extend(
                    f"gateway logged an error: {line}" for line in gateway.error_lines()
                )
            if door is not None:
                door.stop()
            if db is not None:
                db.dispose()
            cluster.stop()
            cluster.remove()
        self.figures.seconds = time.monotonic() - began
        return self.figures

    # -- driving ------------------------------------------------------------------------------

    def _drive_with_publishes(self, registries: dict[str, Registry], failer: Failer) -> None:
        """The crash harness's rounds, with a round of publishes now and then (alone in its
        round: a new issuance gives its region units a proposal by quantity might pick)."""
        rng = random.Random(f"ops-{self.plan.seed}")
        publishing = random.Random(f"publish-{self.plan.seed}")

        def write(action: Action) -> Result:
            result = perform(registries[action.region], action, failer)
            if result.error is None:
                failer.answered()
            return result

        with ThreadPoolExecutor(max_workers=len(REGIONS), thread_name_prefix="registry") as pool:
            for self.round in itertools.count():
                if publishing.randrange(PUBLISH_EVERY) == 0:
                    self._publish_round(pool, registries, failer)
                actions = plan_round(rng, self.plan, registries, self.round)
                if actions is None:
                    break
                results = list(pool.map(write, actions))
                self.figures.writes_sent += len(results)
                for result in results:
                    self._trace.update(_traced(result).encode())
                    self._apply(registries, result)
        for region, reg in registries.items():
            left = quota(self.plan, region) - reg.proposed
            if left > 0:
                if reg.book.active_grams() > 0:
                    self.problem(f"{region} stopped {left} proposals short while holding units")
                self.figures.proposals_without_units += left
        self.figures.traces.append(f"{self.plan.seed}:{self._trace.hexdigest()[:16]}")

    def _publish_round(
        self, pool: ThreadPoolExecutor, registries: dict[str, Registry], failer: Failer
    ) -> None:
        """Each region publishes a new issuance (re-sent as the same envelope until answered);
        the units it creates join that region's books."""
        k = self.issued
        self.issued += 1

        def publish(region: str) -> registry_service_pb2.EnvelopeResult:
            client = registries[region].client
            content_type, payload = issuance(region, k)
            failer.wrote()
            reply: registry_service_pb2.PublishEnvelopeResponse = client._signed_call(
                client.registry.PublishEnvelope,
                lambda env: registry_service_pb2.PublishEnvelopeRequest(envelope=env),
                content_type,
                payload,
            )
            failer.answered()
            return reply.result

        results = list(pool.map(publish, REGIONS))
        self.figures.publishes_sent += len(results)
        for region, result in zip(REGIONS, results, strict=True):
            self._trace.update(
                f"publish {region} {k} -> {result.accepted} {result.reason}\n".encode()
            )
            if not result.accepted:
                self.figures.unexpected_answers += 1
                self.problem(f"{region}'s issuance {k} refused: {result.reason} {result.message}")
                continue
            self.figures.publishes_accepted += 1
            self.published.append(
                Published(region, result.envelope_hash, list(result.record_names))
            )
            reg = registries[region]
            names = set(result.record_names)
            blocks = patiently(functools.partial(reg.client.holdings, region))
            reg.book.add(pieces_of(b for b in blocks if b.issuance in names))

    def _outages(self, outages: list[Outage]) -> None:
        f = self.figures
        f.failovers += len(outages)
        for o in outages:
            if not o.promoted:
                self.problem("a failover never completed its promotion")
                continue
            f.promote_s.append(o.promoted - o.killed)
            # No write answered after the promotion (the run ended first): the promotion ends it.
            f.unavailable_s.append((o.served or o.promoted) - o.killed)

    # -- the checks -----------------------------------------------------------------------------

    def _check_on_primary(self, db: Database, cluster: Cluster) -> None:
        """The checks read the promoted server: writable, and the one the cluster made primary."""
        assert cluster.primary is not None
        with db.engine.connect() as conn:
            port, recovering = conn.execute(
                text("SELECT inet_server_port(), pg_is_in_recovery()")
            ).one()
        if port != cluster.primary.port or recovering:
            self.problem(
                f"the checks reached port {port} (recovering: {recovering}), "
                f"not the primary on {cluster.primary.port}"
            )

    def _check_answers(self, db: Database) -> None:
        """Every answer a client received is in the database: each transfer at least in the
        state it was answered in, each accepted envelope and the records it created."""
        f = self.figures
        with db.transaction() as s:
            envelopes = {bytes(h).hex() for h in s.scalars(select(EnvelopeRow.envelope_hash))}
            issuances = set(s.scalars(select(IssuanceRow.name)))
            transfers = dict(s.execute(select(TransferRow.name, TransferRow.state)).all())
        for name, state in self.states.items():
            if transfers.get(name) != state:
                f.acknowledged_lost += 1
                self.problem(
                    f"{name}: answered {state}, the promoted database has {transfers.get(name)}"
                )
        for p in self.published:
            missing = [n for n in p.record_names if "/issuances/" in n and n not in issuances]
            if p.envelope_hash not in envelopes or missing:
                f.acknowledged_lost += 1
                self.problem(
                    f"{p.region}'s accepted envelope {p.envelope_hash[:12]} is not in "
                    f"the promoted database ({missing or 'envelope'})"
                )


def _migrate(url: str) -> None:
    """The schema, migrated on the primary before its standby is attached (the base backup then
    carries it; no migration commit waits for a standby)."""
    db = Database.from_url(url)
    try:
        db.upgrade()
    finally:
        db.dispose()


@dataclass(frozen=True)
class _Address:
    """What a ``Registry`` needs of a gateway: where to connect."""

    target: str
