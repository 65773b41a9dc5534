"""The crash harness (issue 8, item 1): ``yrdgw serve`` as a subprocess on SQLite or PostgreSQL,
four registry clients driving random transfers through it, and a killer that SIGKILLs it at random
moments and restarts it on the same database and port while the clients carry on.

The clients are the SDK's: a signed request that fails in transport is re-sent as the very same
envelope until the gateway answers (``RetryPolicy``). Each region's registry keeps its own books
(what it believes it holds, which of its proposals are pending, which transfers it saw complete);
proposals go to the destination as notices, answers come back to the source the same way.

Kills come in two kinds: ``in_flight`` (the harness SIGKILLs the process a few milliseconds after
the k-th transfer write since the last start was sent, landing before, during or after a commit)
and ``after_commit`` (the process is started with ``YRDGW_FAULT_KILL_AFTER_COMMIT=n`` and kills
itself once its n-th transfer write committed, before the reply leaves).

Seeded and replayable: the seed draws every operation and every kill point (in counts of
operations; only the milliseconds of an in-flight kill are wall-clock). The clients act in rounds,
one request each, concurrently; a round never touches one transfer twice, a region's proposals
only take units that region holds, and a proposal by quantity (the gateway chooses the units) never
meets a rejection giving its source units back, so the answers do not depend on how a round
interleaves: a replay makes the same requests and gets the same answers (the same digest).

At the end, against the database and through the gateway: the ledger invariants and the audit
chain hold; every transfer is in the state its answers said (in particular every transfer any
client saw COMPLETED is COMPLETED); no transfer took effect twice (one ``transfer.proposed`` and at
most one resolution in the audit log each, one envelope per chain position); every gram sits
where the clients' books put it (units lost and duplicated, both 0); and each registry's snapshot
of its own books, reconciled by its administrator, shows no discrepancy.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from yrd.interop.v1 import reconciliation_pb2, records_pb2, transfer_pb2

from gateway.client import RESEND_CODES, GatewayClient, RetryPolicy, TransportError
from gateway.errors import DomainError, StorageUnavailable
from gateway.samples import sample_documents
from gateway.security.identity import Role
from gateway.security.pki import PKIDir
from gateway.services.audit import AuditReader
from gateway.services.ledger import check_invariants
from gateway.storage.db import Database, make_engine
from gateway.storage.models import (
    AuditEntryRow,
    EnvelopeRow,
    IssuanceRow,
    SigningKeyRow,
    TransferRow,
    UnitBlockRow,
)

T = TypeVar("T")
REGIONS = ("310000", "320000", "330000", "340000")
YRDGW = str(Path(sys.executable).parent / "yrdgw")
Backend = Literal["sqlite", "postgresql"]
KillKind = Literal["in_flight", "after_commit"]
KILL_KINDS: tuple[KillKind, ...] = ("in_flight", "after_commit")
CALL_TIMEOUT_S = 15.0
PATIENCE_S = 180.0
"""How long a client keeps re-sending one request while the gateway is down or restarting."""
STATE = transfer_pb2.TransferState
RESOLUTIONS = ("transfer.completed", "transfer.rejected", "transfer.cancelled", "transfer.expired")


# -- the plan drawn from the seed ---------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    """One planned death: its kind, after how many transfer writes since the last start, and
    (in flight) how many milliseconds after the last of them was sent."""

    kind: KillKind
    after_writes: int
    delay_ms: int


@dataclass(frozen=True)
class CrashPlan:
    """What one run does; everything random in it is drawn from ``seed``."""

    seed: int
    backend: Backend = "sqlite"
    transfers: int = 150
    """Proposals the clients make (each then answered, cancelled, refused or left pending)."""
    kills: int = 3

    def kill_schedule(self) -> list[Kill]:
        """The kills, spread over the run: both kinds appear whenever two or more are planned,
        and their gaps add up to less than the writes the run is sure to make."""
        rng = random.Random(f"kills-{self.seed}")
        # Every proposal is one write and nearly every one is answered: ~1.6 writes each at least.
        gap = max(2, int(1.6 * self.transfers / (self.kills + 1)))
        kinds = [KILL_KINDS[i % 2] for i in range(self.kills)]
        rng.shuffle(kinds)
        return [
            Kill(kind, rng.randint(max(1, int(0.4 * gap)), gap), rng.randint(0, 40))
            for kind in kinds
        ]

    def rerun(self) -> str:
        """The command that replays this run."""
        return (
            f"python -m tests.faults.crash --backend {self.backend} --seeds 1 "
            f"--seed {self.seed} --transfers {self.transfers} --kills {self.kills}"
        )


# -- what a registry believes it holds ----------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Piece:
    """Serials of one origin, of one project and vintage (grams, inclusive)."""

    origin: str
    start: int
    end: int
    project: str
    vintage: int

    @property
    def grams(self) -> int:
        return self.end - self.start + 1


class BookError(Exception):
    """A registry's books cannot do what an answer says (a bug in the gateway or the harness)."""


class Book:
    """One registry's own records: active pieces by origin, reserved pieces by pending proposal,
    and the transfers it saw completed."""

    def __init__(self, pieces: Iterable[Piece]) -> None:
        self.active: dict[str, list[Piece]] = collections.defaultdict(list)
        self.reserved: dict[str, list[Piece]] = {}
        self.completed: set[str] = set()
        self.add(pieces)

    def add(self, pieces: Iterable[Piece]) -> None:
        """Pieces become active (merged with their neighbours of the same project and vintage)."""
        for origin, group in _by_origin(pieces).items():
            merged: list[Piece] = []
            for p in sorted([*self.active[origin], *group]):
                last = merged[-1] if merged else None
                if last is not None and last.end >= p.start:
                    raise BookError(f"{p} overlaps {last}, which is held already")
                if (
                    last is not None
                    and last.end + 1 == p.start
                    and (last.project, last.vintage) == (p.project, p.vintage)
                ):
                    merged[-1] = dataclasses.replace(last, end=p.end)
                else:
                    merged.append(p)
            self.active[origin] = merged

    def take(self, origin: str, start: int, end: int) -> list[Piece]:
        """Remove serials start..end of origin from the active pieces (all must be active)."""
        out: list[Piece] = []
        keep: list[Piece] = []
        for p in self.active.get(origin, []):
            if p.end < start or p.start > end:
                keep.append(p)
                continue
            if p.start < start:
                keep.append(dataclasses.replace(p, end=start - 1))
            if p.end > end:
                keep.append(dataclasses.replace(p, start=end + 1))
            out.append(dataclasses.replace(p, start=max(p.start, start), end=min(p.end, end)))
        if sum(p.grams for p in out) != end - start + 1:
            raise BookError(f"{origin} {start}..{end} is not all active in these books")
        self.active[origin] = sorted(keep)
        return out

    def active_grams(self) -> int:
        return sum(p.grams for ps in self.active.values() for p in ps)

    def held(self) -> Iterator[tuple[Piece, str, str | None]]:
        """Every piece with its state as the ledger names it, and the transfer reserving it."""
        for ps in self.active.values():
            for p in ps:
                yield p, "active", None
        for name, ps in self.reserved.items():
            for p in ps:
                yield p, "reserved", name


def _by_origin(pieces: Iterable[Piece]) -> dict[str, list[Piece]]:
    out: dict[str, list[Piece]] = collections.defaultdict(list)
    for p in pieces:
        out[p.origin].append(p)
    return out


def pieces_of(blocks: Iterable[records_pb2.UnitBlock]) -> list[Piece]:
    return [
        Piece(b.origin_region, b.serials.start, b.serials.end, b.project, b.vintage) for b in blocks
    ]


def _coalesced(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(ranges):
        if out and out[-1][1] + 1 == s:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


# -- the gateway process -------------------------------------------------------------------------


class GatewayProcess:
    """One ``yrdgw serve`` incarnation; its JSON log goes to a file of its own."""

    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [YRDGW, "serve", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=sink,
                env=env,
            )

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def wait_started(self, timeout: float = 90.0) -> int:
        """The bound port, once the process logged that it serves."""
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            for event in self.events():
                if event.get("event") == "gateway.started":
                    return int(event["port"])
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"yrdgw serve did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> int:
        """SIGKILL (when still running) and reap; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM and wait; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


@dataclass
class Store:
    """The database a run's gateway serves: its URL as configured, and a handle for the checks."""

    url: str
    db: Database


@contextlib.contextmanager
def open_store(backend: Backend, workdir: Path, postgres_url: str | None) -> Iterator[Store]:
    """A fresh, migrated database: a SQLite file, or a PostgreSQL schema of its own (dropped at
    the end)."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'gateway.sqlite3'}"
        db = Database.from_url(url)
        db.upgrade()
        try:
            yield Store(url, db)
        finally:
            db.dispose()
        return
    assert postgres_url is not None
    schema = f"crash_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(make_engine(postgres_url, connect_args={"options": f"-csearch_path={schema}"}))
    try:
        db.upgrade()
        # The schema travels in the URL, as an operator would configure it.
        url = (
            make_url(postgres_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
        yield Store(url, db)
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Gateway:
    """The served gateway across its incarnations: same database, same port."""

    def __init__(self, pki: PKIDir, store: Store, workdir: Path) -> None:
        self.workdir = workdir
        self.config = workdir / "gateway.toml"
        # Migrated before the first start (the URL's %3D would upset Alembic's ConfigParser, and
        # a restart should not spend its time on it); no scheduler: nothing but the clients
        # writes; recognition is not what this run is about.
        self.config.write_text(
            f'cert_dir = "{pki.root}"\nmetrics_listen = ""\nlog_format = "json"\n'
            'log_level = "info"\nshutdown_grace_s = 2\nmigrate_on_start = false\n'
            "recognition_enforced = false\nscheduler_enabled = false\n"
        )
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("YRDGW_") or k.startswith("YRDGW_TEST_")
        }
        self.env["YRDGW_DATABASE_URL"] = store.url
        self.port = 0
        self.incarnations: list[GatewayProcess] = []

    @property
    def current(self) -> GatewayProcess:
        return self.incarnations[-1]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, kill_after_commit: int = 0) -> GatewayProcess:
        env = {**self.env, "YRDGW_LISTEN": f"127.0.0.1:{self.port}"}
        if kill_after_commit:
            env["YRDGW_FAULT_KILL_AFTER_COMMIT"] = str(kill_after_commit)
        n = len(self.incarnations)
        proc = GatewayProcess(self.config, env, self.workdir / f"gateway-{n:03d}.log")
        self.incarnations.append(proc)
        port = proc.wait_started()
        if self.port == 0:
            self.port = port  # every later incarnation binds the same port
        return proc

    def error_lines(self) -> list[str]:
        """Error-level log lines of every incarnation (an internal error, say)."""
        return [
            f"{p.log.name}: {e.get('event')} {str(e.get('exception', ''))[-500:]}"
            for p in self.incarnations
            for e in p.events()
            if e.get("level") in ("error", "critical")
        ]


# -- one run -------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What a run (or several, merged) did and found."""

    backend: str
    seeds: list[int] = field(default_factory=list)
    transfers_attempted: int = 0
    proposals_without_units: int = 0
    """Planned proposals a region could not make: every unit it held was gone (moved away or
    reserved for good), so it had nothing left to propose."""
    transfers_completed: int = 0
    transfers_rejected: int = 0
    transfers_cancelled: int = 0
    transfers_pending: int = 0
    stale_answers_refused: int = 0
    writes_sent: int = 0
    resent_after_failure: int = 0
    kills: collections.Counter[str] = field(default_factory=collections.Counter)
    units_lost: int = 0
    units_duplicated: int = 0
    invariant_violations: int = 0
    completed_not_completed: int = 0
    doubled_effects: int = 0
    unexpected_answers: int = 0
    reconciliation_discrepancies: int = 0
    seconds: float = 0.0
    traces: list[str] = field(default_factory=list)
    """seed:digest of every request and answer of each run; a replay has the same digest."""
    problems: list[str] = field(default_factory=list)

    def merge(self, other: Figures) -> None:
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "backend":
                continue
            if isinstance(mine, collections.Counter):
                mine.update(theirs)
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                setattr(self, f.name, mine + theirs)

    @property
    def failed(self) -> bool:
        return bool(self.problems)

    def lines(self) -> list[str]:
        kills = ", ".join(f"{k.replace('_', ' ')} {self.kills[k]}" for k in KILL_KINDS)
        rows = [
            ("seeds run", f"{len(self.seeds)} ({', '.join(map(str, self.seeds))})"),
            ("transfers attempted", self.transfers_attempted),
            ("  not made: source out of units", self.proposals_without_units),
            ("transfers completed", self.transfers_completed),
            (
                "  rejected / cancelled / pending",
                f"{self.transfers_rejected} / {self.transfers_cancelled} / "
                f"{self.transfers_pending}",
            ),
            ("stale answers refused", self.stale_answers_refused),
            ("transfer writes sent", self.writes_sent),
            ("re-sent after a failure", self.resent_after_failure),
            ("kills injected", f"{sum(self.kills.values())} ({kills})"),
            ("units lost (g)", self.units_lost),
            ("units duplicated (g)", self.units_duplicated),
            ("invariant violations", self.invariant_violations),
            ("seen COMPLETED, not so", self.completed_not_completed),
            ("effects taken twice", self.doubled_effects),
            ("unexpected answers", self.unexpected_answers),
            ("reconciliation diffs", self.reconciliation_discrepancies),
            ("wall time (s)", f"{self.seconds:.1f}"),
            ("operations digest (seed:sha256)", " ".join(self.traces)),
        ]
        return [f"  {name:<32} {value}" for name, value in rows]


@dataclass
class Notice:
    """A proposal as its destination learns of it (out of band, as a registry would)."""

    name: str
    source: str
    pieces: list[Piece]


@dataclass
class Action:
    """One request a registry makes in a round."""

    kind: Literal["propose", "accept", "reject", "cancel"]
    region: str
    name: str = ""
    destination: str = ""
    origin: str = ""
    ranges: tuple[tuple[int, int], ...] = ()
    project: str = ""
    vintage: int = 0
    quantity: int = 0
    transfer_id: str = ""


@dataclass
class Result:
    action: Action
    transfer: transfer_pb2.Transfer | None = None
    error: DomainError | TransportError | None = None


class Registry:
    """One region's registry: its SDK clients, its books and its inbox of notices."""

    def __init__(self, region: str, gateway: Gateway, pki: PKIDir) -> None:
        self.region = region
        retry = RetryPolicy(deadline_s=PATIENCE_S)
        self.client = GatewayClient(
            gateway.target, pki, region=region, timeout=CALL_TIMEOUT_S, retry=retry
        )
        self.admin = GatewayClient(
            gateway.target,
            pki,
            region=region,
            role=Role.ADMIN,
            name="admin-a",
            timeout=CALL_TIMEOUT_S,
            retry=retry,
        )
        self.book = Book([])
        self.inbox: list[Notice] = []
        self.proposed = 0
        self.pending_since: dict[str, int] = {}
        """The round each of its pending proposals was answered in."""

    def close(self) -> None:
        self.client.close()
        self.admin.close()


def patiently(call: Callable[[], T]) -> T:
    """A read, retried while the gateway is down or restarting, or its database cannot serve
    (a PostgreSQL failover: tests/failover); reads change nothing."""
    give_up = time.monotonic() + PATIENCE_S
    pause = 0.05
    while True:
        try:
            return call()
        except (TransportError, StorageUnavailable) as exc:
            resendable = isinstance(exc, StorageUnavailable) or exc.code in RESEND_CODES
            if not resendable or time.monotonic() > give_up:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


class Killer(threading.Thread):
    """Kills the gateway as the plan says and restarts it, until told to stop."""

    def __init__(self, gateway: Gateway, schedule: Sequence[Kill]) -> None:
        super().__init__(name="killer", daemon=True)
        self.gateway = gateway
        self.schedule = list(schedule)
        self.done = threading.Event()
        self.kills: collections.Counter[str] = collections.Counter()
        self.problems: list[str] = []
        self._writes = 0
        self._lock = threading.Lock()
        self._failure: BaseException | None = None

    def wrote(self) -> None:
        """A client is sending a transfer write."""
        with self._lock:
            self._writes += 1

    def _writes_since_start(self) -> int:
        with self._lock:
            return self._writes

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # re-raised by finish()
            self._failure = exc

    def _run(self) -> None:
        for i, kill in enumerate(self.schedule):
            if self.done.is_set():
                return
            proc = self.gateway.current
            if kill.kind == "in_flight":
                while self._writes_since_start() < kill.after_writes and not self.done.is_set():
                    if proc.proc.poll() is not None:
                        break
                    time.sleep(0.001)
                if proc.proc.poll() is not None:
                    self.problems.append(
                        f"{proc.log.name} died by itself (exit {proc.proc.returncode})"
                    )
                elif self.done.is_set():
                    return
                else:
                    time.sleep(kill.delay_ms / 1000)
                    proc.kill()
                    self.kills["in_flight"] += 1
            else:
                while proc.proc.poll() is None and not self.done.is_set():
                    time.sleep(0.005)
                if proc.proc.poll() is None:
                    return
                fired = any(e.get("event") == "fault.kill_after_commit" for e in proc.events())
                if proc.proc.returncode == -signal.SIGKILL and fired:
                    self.kills["after_commit"] += 1
                else:
                    self.problems.append(
                        f"{proc.log.name} died (exit {proc.proc.returncode}) "
                        "without the after-commit fault firing"
                    )
            with self._lock:
                self._writes = 0
            nxt = self.schedule[i + 1] if i + 1 < len(self.schedule) else None
            self.gateway.start(nxt.after_writes if nxt and nxt.kind == "after_commit" else 0)

    def finish(self) -> None:
        """Stop killing; once this returns the gateway is up for good."""
        self.done.set()
        self.join(timeout=120)
        if self._failure is not None:
            raise self._failure
        if self.gateway.current.proc.poll() is not None:
            self.gateway.start()


def quota(plan: CrashPlan, region: str) -> int:
    """How many of the run's proposals this region makes."""
    share, rest = divmod(plan.transfers, len(REGIONS))
    return share + (1 if REGIONS.index(region) < rest else 0)


PATIENCE_ROUNDS = 8
"""A source cancels only proposals left unanswered this many rounds."""


def plan_round(
    rng: random.Random, plan: CrashPlan, registries: dict[str, Registry], now: int
) -> list[Action] | None:
    """One request per registry at most, none two touching one transfer; None once every
    proposal is made and every notice dealt with (what is left pending stays so). A round may
    hold no request at all (its only choice was to set a notice aside): the run goes on.

    A proposal by quantity lets the gateway choose among the source's active units, so it never
    shares a round with a rejection that gives that source units back (which of the two commits
    first would decide what is chosen, and the run would not replay).
    """
    by_quantity: set[str] = set()
    released: set[str] = set()
    can_propose = {
        r: reg.proposed < quota(plan, r) and reg.book.active_grams() > 0
        for r, reg in registries.items()
    }
    if not any(can_propose.values()) and not any(reg.inbox for reg in registries.values()):
        return None
    touched: set[str] = set()
    actions: list[Action] = []
    order = list(REGIONS)
    rng.shuffle(order)
    for region in order:
        reg = registries[region]
        options: list[tuple[str, int]] = []
        if can_propose[region]:
            options.append(("propose", 5))
        answerable = [n for n in reg.inbox if n.name not in touched]
        if answerable:
            options.append(("answer", 4))
        cancellable = sorted(
            n
            for n in reg.book.reserved
            if n not in touched and now - reg.pending_since[n] >= PATIENCE_ROUNDS
        )
        if cancellable and can_propose[region]:  # the last ones set aside stay pending
            options.append(("cancel", 1))
        if not options:
            continue
        kind = rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]
        if kind == "propose":
            action = _proposal(rng, plan, reg, quantity_allowed=region not in released)
            if action.quantity:
                by_quantity.add(region)
            actions.append(action)
            reg.proposed += 1
        elif kind == "answer":
            notice = rng.choice(answerable)
            touched.add(notice.name)
            verdict = rng.random()
            if verdict < 0.05:  # set aside: it stays pending for good
                reg.inbox.remove(notice)
                continue
            what: Literal["accept", "reject"] = "accept" if verdict < 0.7 else "reject"
            if what == "reject" and notice.source in by_quantity:
                what = "accept"
            if what == "reject":
                released.add(notice.source)
            actions.append(Action(what, region, name=notice.name))
        else:
            name = rng.choice(cancellable)
            touched.add(name)
            actions.append(Action("cancel", region, name=name))
    return actions


def _proposal(
    rng: random.Random, plan: CrashPlan, reg: Registry, *, quantity_allowed: bool
) -> Action:
    """Units the registry believes it holds, as serial ranges (mostly) or as a quantity."""
    book = reg.book
    origins = sorted(o for o, ps in book.active.items() if ps)
    origin = rng.choice(origins)
    pieces = book.active[origin]
    destination = rng.choice([r for r in REGIONS if r != reg.region])
    transfer_id = f"crash-{plan.seed}-{reg.region}-{reg.proposed:05d}"
    if rng.random() < 0.2 and quantity_allowed:
        p = rng.choice(pieces)
        total = sum(q.grams for q in pieces if (q.project, q.vintage) == (p.project, p.vintage))
        quantity = rng.randint(1, min(total, 10 ** rng.randint(0, 7)))
        return Action(
            "propose",
            reg.region,
            destination=destination,
            project=p.project,
            vintage=p.vintage,
            quantity=quantity,
            transfer_id=transfer_id,
        )
    chosen = sorted(rng.sample(pieces, min(len(pieces), rng.randint(1, 3))))
    ranges = []
    for p in chosen:
        size = min(p.grams, rng.randint(1, 9) * 10 ** rng.randint(0, 7))
        start = rng.randint(p.start, p.end - size + 1)
        ranges.append((start, start + size - 1))
    return Action(
        "propose",
        reg.region,
        destination=destination,
        origin=origin,
        ranges=tuple(ranges),
        transfer_id=transfer_id,
    )


def _traced(result: Result) -> str:
    a, t, err = result.action, result.transfer, result.error
    answer = (
        f"{t.name} {t.state} {[(b.serials.start, b.serials.end) for b in t.blocks]}"
        if t is not None
        else f"{type(err).__name__} {getattr(err, 'reason', '')}"
    )
    return f"{dataclasses.astuple(a)} -> {answer}\n"


def perform(reg: Registry, action: Action, killer: Killer) -> Result:
    """Send one request through the SDK (which re-sends it until answered)."""
    client = reg.client
    killer.wrote()
    try:
        if action.kind == "propose":
            if action.ranges:
                t = client.propose_transfer(
                    action.transfer_id,
                    action.destination,
                    origin=action.origin,
                    ranges=action.ranges,
                )
            else:
                t = client.propose_transfer(
                    action.transfer_id,
                    action.destination,
                    project=action.project,
                    vintage=action.vintage,
                    quantity_grams=action.quantity,
                )
        elif action.kind == "accept":
            t = client.accept_transfer(action.name)
        elif action.kind == "reject":
            t = client.reject_transfer(action.name, "not wanted")
        else:
            t = client.cancel_transfer(action.name, "withdrawn")
    except (DomainError, TransportError) as exc:
        return Result(action, error=exc)
    return Result(action, transfer=t)


class Run:
    """One seeded run against one backend."""

    def __init__(
        self, plan: CrashPlan, pki: PKIDir, workdir: Path, postgres_url: str | None = None
    ) -> None:
        self.plan = plan
        self.pki = pki
        self.workdir = workdir
        self.postgres_url = postgres_url
        self.figures = Figures(plan.backend, seeds=[plan.seed])
        self.states: dict[str, str] = {}
        """Every transfer the clients were answered about, in the state the answers imply."""
        self.quantities: dict[str, int] = {}
        self.notices: dict[str, Notice] = {}
        self.round = 0
        self._trace = hashlib.sha256()
        """Every request and its answer, in order: equal digests, equal runs (replay check)."""

    def problem(self, text: str) -> None:
        self.figures.problems.append(text)

    def execute(self) -> Figures:
        began = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open_store(self.plan.backend, self.workdir, self.postgres_url) as store:
            gateway = Gateway(self.pki, store, self.workdir)
            schedule = self.plan.kill_schedule()
            first = schedule[0] if schedule else None
            gateway.start(first.after_writes if first and first.kind == "after_commit" else 0)
            registries = {r: Registry(r, gateway, self.pki) for r in REGIONS}
            killer = Killer(gateway, schedule)
            try:
                self._setup(registries)
                killer.start()
                try:
                    self._drive(registries, killer)
                finally:
                    killer.finish()
                self.figures.kills.update(killer.kills)
                self.figures.problems.extend(killer.problems)
                for reg in registries.values():
                    self.figures.resent_after_failure += reg.client.resent
                self._check_books_against_gateway(registries)
                self._reconcile(registries)
                self._check_database(store.db, registries)
            finally:
                for reg in registries.values():
                    reg.close()
                status = gateway.current.stop()
                if status != 0:
                    self.problem(f"the last gateway exited with {status} on SIGTERM")
                self.figures.problems.extend(
                    f"gateway logged an error: {line}" for line in gateway.error_lines()
                )
        self.figures.seconds = time.monotonic() - began
        return self.figures

    # -- setup and driving ----------------------------------------------------------------------

    def _setup(self, registries: dict[str, Registry]) -> None:
        """Each region publishes its samples, then starts its books from what the ledger gives
        it (its own issuances, all active)."""
        for region, reg in registries.items():
            results = reg.client.publish(sample_documents(region))
            if not all(r.accepted for r in results):
                raise RuntimeError(f"{region} samples refused: {[r.message for r in results]}")
        for region, reg in registries.items():
            reg.book.add(pieces_of(reg.client.holdings(region)))

    def _drive(self, registries: dict[str, Registry], killer: Killer) -> None:
        rng = random.Random(f"ops-{self.plan.seed}")
        with ThreadPoolExecutor(max_workers=len(REGIONS), thread_name_prefix="registry") as pool:
            for self.round in itertools.count():
                actions = plan_round(rng, self.plan, registries, self.round)
                if actions is None:
                    break
                results = list(
                    pool.map(lambda a: perform(registries[a.region], a, killer), actions)
                )
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

    def _apply(self, registries: dict[str, Registry], result: Result) -> None:
        """Check the answer against what it must be, then update the books and notices."""
        a, t, err = result.action, result.transfer, result.error
        reg = registries[a.region]
        if a.kind == "propose":
            self.figures.transfers_attempted += 1
        if isinstance(err, TransportError):
            self.figures.unexpected_answers += 1
            self.problem(f"{a.kind} {a.name or a.transfer_id} never answered: {err}")
            return
        if a.kind == "propose":
            if t is None or t.state != STATE.TRANSFER_STATE_PROPOSED:
                self._unexpected(a, t, err, "PROPOSED")
                return
            pieces = pieces_of(t.blocks)
            asked = a.quantity or sum(e - s + 1 for s, e in a.ranges)
            got = _coalesced((p.start, p.end) for p in pieces)
            if t.quantity_grams != asked or (a.ranges and got != _coalesced(a.ranges)):
                self._unexpected(a, t, err, f"PROPOSED with {asked} g")
                return
            try:
                taken = [x for p in pieces for x in reg.book.take(p.origin, p.start, p.end)]
            except BookError as exc:
                self.problem(f"{t.name} reserved units {a.region} does not hold: {exc}")
                return
            if a.quantity and any((p.project, p.vintage) != (a.project, a.vintage) for p in taken):
                self.problem(f"{t.name} reserved units of another project or vintage")
            reg.book.reserved[t.name] = taken
            reg.pending_since[t.name] = self.round
            self.states[t.name] = "PROPOSED"
            self.quantities[t.name] = t.quantity_grams
            notice = Notice(t.name, a.region, taken)
            self.notices[t.name] = notice
            registries[a.destination].inbox.append(notice)
            return
        expected = {"accept": "COMPLETED", "reject": "REJECTED", "cancel": "CANCELLED"}[a.kind]
        now = self.states.get(a.name)
        if a.kind in ("accept", "reject"):
            notice = next(n for n in reg.inbox if n.name == a.name)
            reg.inbox.remove(notice)
        if now != "PROPOSED":
            # A stale notice: the source cancelled it meanwhile; the refusal says so.
            if (
                isinstance(err, DomainError)
                and err.reason == "TRANSFER_NOT_PENDING"
                and err.metadata.get("state") == now
            ):
                self.figures.stale_answers_refused += 1
            else:
                self._unexpected(a, t, err, f"TRANSFER_NOT_PENDING ({now})")
            return
        if t is None or transfer_pb2.TransferState.Name(t.state) != f"TRANSFER_STATE_{expected}":
            self._unexpected(a, t, err, expected)
            return
        self.states[a.name] = expected
        source = registries[self.notices[a.name].source]
        pieces = source.book.reserved.pop(a.name)
        try:
            if expected == "COMPLETED":
                reg.book.add(pieces)
                reg.book.completed.add(a.name)
                source.book.completed.add(a.name)
            else:
                source.book.add(pieces)
        except BookError as exc:
            self.problem(f"{a.name} {expected}: {exc}")

    def _unexpected(
        self,
        action: Action,
        transfer: transfer_pb2.Transfer | None,
        err: DomainError | TransportError | None,
        wanted: str,
    ) -> None:
        self.figures.unexpected_answers += 1
        got = (
            f"{type(err).__name__} {getattr(err, 'reason', '')}: {err}"
            if err is not None
            else f"{transfer.name if transfer else '-'} "
            f"{transfer_pb2.TransferState.Name(transfer.state) if transfer else '-'}"
        )
        self.problem(
            f"{action.kind} {action.name or action.transfer_id}: wanted {wanted}, got {got}"
        )

    # -- the checks -----------------------------------------------------------------------------

    def _check_books_against_gateway(self, registries: dict[str, Registry]) -> None:
        """Every transfer reads back (through the gateway) in the state its answers said."""
        f = self.figures
        for name, state in sorted(self.states.items()):
            source = registries[self.notices[name].source]
            read = patiently(functools.partial(source.client.get_transfer, name))
            actual = transfer_pb2.TransferState.Name(read.state).removeprefix("TRANSFER_STATE_")
            if actual != state:
                self.problem(f"{name}: answers said {state}, the gateway says {actual}")
                if state == "COMPLETED":
                    f.completed_not_completed += 1
        counted = collections.Counter(self.states.values())
        f.transfers_completed += counted["COMPLETED"]
        f.transfers_rejected += counted["REJECTED"]
        f.transfers_cancelled += counted["CANCELLED"]
        f.transfers_pending += counted["PROPOSED"]

    def _reconcile(self, registries: dict[str, Registry]) -> None:
        """Each registry submits its own books; its administrator reconciles them."""
        for region, reg in registries.items():
            blocks = [
                reconciliation_pb2.HeldBlock(
                    origin_region=p.origin,
                    serials=records_pb2.SerialRange(start=p.start, end=p.end),
                    state=records_pb2.UNIT_BLOCK_STATE_ACTIVE
                    if state == "active"
                    else records_pb2.UNIT_BLOCK_STATE_IN_TRANSFER,
                )
                for p, state, _ in reg.book.held()
            ]
            submit = functools.partial(
                reg.client.submit_holdings,
                dt.datetime.now(dt.UTC),
                blocks,
                sorted(reg.book.completed),
            )
            patiently(submit)
            report = patiently(functools.partial(reg.admin.run_reconciliation, region))
            n = len(report.discrepancies)
            self.figures.reconciliation_discrepancies += n
            if n or report.status != reconciliation_pb2.RECONCILIATION_STATUS_COMPLETED:
                self.problem(
                    f"reconciliation of {region}: "
                    f"{reconciliation_pb2.ReconciliationStatus.Name(report.status)}, "
                    + "; ".join(
                        f"{reconciliation_pb2.DiscrepancyKind.Name(d.kind)} {d.detail} "
                        f"{[(r.start, r.end) for r in d.ranges][:5]} {list(d.transfer_ids)[:5]}"
                        for d in report.discrepancies[:10]
                    )
                )

    def _check_database(self, db: Database, registries: dict[str, Registry]) -> None:
        f = self.figures
        report = check_invariants(db)
        f.invariant_violations += len(report.problems)
        self.figures.problems.extend(f"ledger invariant: {p}" for p in report.problems)
        chain = AuditReader(db).verify()
        if not chain.ok:
            f.invariant_violations += 1
            self.problem(f"audit chain: {chain}")
        with db.transaction() as s:
            transfers = {
                name: (state, grams)
                for name, state, grams in s.execute(
                    select(TransferRow.name, TransferRow.state, TransferRow.quantity_grams)
                )
            }
            entries = collections.Counter(
                (kind, subject)
                for kind, subject in s.execute(
                    select(AuditEntryRow.kind, AuditEntryRow.subject).where(
                        AuditEntryRow.kind.like("transfer.%")
                    )
                )
            )
            blocks = s.execute(
                select(
                    UnitBlockRow.origin_region,
                    UnitBlockRow.serial_start,
                    UnitBlockRow.serial_end,
                    UnitBlockRow.holder_region,
                    UnitBlockRow.state,
                    UnitBlockRow.reserved_by,
                )
            ).all()
            issued = dict(
                s.execute(
                    select(IssuanceRow.region, func.sum(IssuanceRow.quantity_grams)).group_by(
                        IssuanceRow.region
                    )
                ).all()
            )
            heads = dict(s.execute(select(SigningKeyRow.key_id, SigningKeyRow.last_sequence)).all())
            envelopes = s.execute(
                select(
                    EnvelopeRow.key_id,
                    func.count(),
                    func.count(func.distinct(EnvelopeRow.sequence)),
                    func.max(EnvelopeRow.sequence),
                ).group_by(EnvelopeRow.key_id)
            ).all()

        # Transfers: exactly those the clients were answered about, each in its state.
        for name in sorted(transfers.keys() - self.states.keys()):
            f.doubled_effects += 1
            self.problem(f"{name} exists in the ledger, but no client was ever answered about it")
        for name, state in self.states.items():
            found = transfers.get(name)
            if found is None or found[0] != state:
                f.invariant_violations += 1
                self.problem(f"{name}: answers said {state}, the ledger has {found}")
                if state == "COMPLETED":
                    f.completed_not_completed += 1
        # Each transfer proposed once and resolved at most once; a second effect counts its grams.
        for name, (state, grams) in transfers.items():
            proposed = entries[("transfer.proposed", name)]
            resolved = sum(entries[(kind, name)] for kind in RESOLUTIONS)
            extra = max(0, proposed - 1) + max(0, resolved - 1)
            if proposed == 0 or extra or (resolved == 0) != (state == "PROPOSED"):
                f.doubled_effects += extra
                f.units_duplicated += extra * grams
                self.problem(
                    f"{name} ({state}): {proposed} proposal and {resolved} resolution entries"
                )
        # One envelope per position of each signer's chain, up to its head.
        for key_id, count, distinct, top in envelopes:
            if count != distinct or top != heads.get(key_id) or count != top:
                f.doubled_effects += count - distinct
                self.problem(
                    f"key {key_id}: {count} envelopes, {distinct} positions, "
                    f"last {top}, head {heads.get(key_id)}"
                )
        for reg in registries.values():
            if heads.get(reg.client.signer.key_id) != reg.client.signer.head()[0]:
                self.problem(
                    f"{reg.region}'s signer is at {reg.client.signer.head()[0]}, the gateway "
                    f"at {heads.get(reg.client.signer.key_id)}"
                )
        # Every gram where the books put it.
        lost, duplicated = compare_serials(
            blocks, [(reg.region, reg.book) for reg in registries.values()], issued
        )
        f.units_lost += lost
        f.units_duplicated += duplicated
        if lost or duplicated:
            self.problem(f"{lost} g lost and {duplicated} g duplicated against the books")


Position = tuple[str, str, str | None]  # holder, state, reserved_by


def compare_serials(
    blocks: Sequence[Any], books: Sequence[tuple[str, Book]], issued: dict[str, int]
) -> tuple[int, int]:
    """(grams lost, grams duplicated): serials the books place with a holder (in a state) where
    the ledger has them nowhere or elsewhere, and serials the ledger holds twice or gives to a
    holder the books do not — plus any difference between grams issued and grams in blocks."""
    expected: dict[str, list[tuple[int, int, Position]]] = collections.defaultdict(list)
    for region, book in books:
        for p, state, name in book.held():
            expected[p.origin].append((p.start, p.end, (region, state, name)))
    actual: dict[str, list[tuple[int, int, Position]]] = collections.defaultdict(list)
    in_blocks: collections.Counter[str] = collections.Counter()
    for origin, start, end, holder, state, reserved_by in blocks:
        actual[origin].append((start, end, (holder, state, reserved_by)))
        in_blocks[origin] += end - start + 1
    lost = duplicated = 0
    for origin in sorted(expected.keys() | actual.keys()):
        for start, end, want, got in _overlay(expected[origin], actual[origin]):
            grams = end - start + 1
            if len(got) > 1:
                duplicated += grams * (len(got) - 1)
            if want is None:
                duplicated += grams if got else 0
            elif want not in got:
                lost += grams
                if got:
                    duplicated += grams  # elsewhere: someone holds what is not theirs
    for origin in sorted(issued.keys() | in_blocks.keys()):
        difference = int(in_blocks[origin]) - int(issued.get(origin, 0))
        if difference > 0:
            duplicated += difference
        elif difference < 0:
            lost += -difference
    return lost, duplicated


def _overlay(
    want: list[tuple[int, int, Position]], got: list[tuple[int, int, Position]]
) -> Iterator[tuple[int, int, Position | None, list[Position]]]:
    """Cut the serial line at every boundary of either side; for each elementary segment that
    either side covers: the expected position (None if none) and every position the ledger has."""
    cuts = sorted({s for s, _, _ in want + got} | {e + 1 for _, e, _ in want + got})
    if not cuts:
        return
    want_at: list[list[Position]] = [[] for _ in cuts]
    got_at: list[list[Position]] = [[] for _ in cuts]
    for side, out in ((want, want_at), (got, got_at)):
        for s, e, pos in side:
            i = bisect.bisect_left(cuts, s)
            j = bisect.bisect_left(cuts, e + 1)
            for k in range(i, j):
                out[k].append(pos)
    for k in range(len(cuts) - 1):
        if want_at[k] or got_at[k]:
            expected = want_at[k][0] if want_at[k] else None
            yield cuts[k], cuts[k + 1] - 1, expected, got_at[k]
