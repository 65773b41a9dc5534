"""The federation status: per region, whether it is in sync and what is stuck (one read-only
unit of work), and the subscriber positions Subscribe records for it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from yrd.interop.v1 import reconciliation_pb2

from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir
from gateway.services import Clock
from gateway.services.keys import SigningKey
from gateway.storage.db import Database
from gateway.storage.status_store import OpenCases, Pending, StatusStore

__all__ = ["OpenCases", "Pending"]


@dataclass(frozen=True)
class Certificate:
    """A certificate the gateway knows of."""

    identity: str
    """The SAN URI."""
    region: str | None
    serial: int
    not_after: dt.datetime


@dataclass(frozen=True)
class Subscriber:
    """Where a region's registry reads the feed, and how far behind the head that is."""

    position: int
    updated_at: dt.datetime
    lag_records: int
    lag_seconds: int


@dataclass(frozen=True)
class RegionState:
    """One region's row of the federation status."""

    region: str
    last_record: tuple[str, int, dt.datetime] | None
    """(name, feed position, accepted_at) of its newest record."""
    subscriber: Subscriber | None
    pending_out: Pending
    pending_in: Pending
    last_snapshot: tuple[int, dt.datetime, dt.datetime, int, int] | None
    """(id, snapshot_time, received_at, block_count, grams)."""
    last_report: reconciliation_pb2.ReconciliationReport | None
    keys: list[SigningKey]
    certificates: list[Certificate]
    refusals: dict[str, int]
    open_cases: OpenCases
    """Open duplicate cases with a side registered in the region."""
    held_grams: int
    """Grams the region holds in state held (issuances open duplicate cases hold)."""


@dataclass(frozen=True)
class FederationStatus:
    """The federation at one instant."""

    as_of: dt.datetime
    feed_head: int
    regions: list[RegionState]
    certificates: list[Certificate] = field(default_factory=list)
    """Certificates of no region (the gateway's, the CA's)."""
    open_cases_by_strength: dict[str, int] = field(default_factory=dict)
    """Open duplicate cases by strength (``MATCH_STRENGTH_CERTAIN`` ...), every region's."""


@dataclass(frozen=True)
class JobSummary:
    """A scheduled job's runs as the database records them."""

    job: str
    runs: dict[str, int]
    """Runs by outcome (ok, failed, error; running while unfinished)."""
    last_started: dt.datetime | None
    last_success: dt.datetime | None
    last_outcome: str | None
    last_duration_s: float | None


Refusals = Callable[[], Mapping[str | None, Mapping[str, int]]]
"""Calls refused in the last hour: by caller region (None: no region), by reason."""


def _seconds(now: dt.datetime, then: dt.datetime | None) -> int:
    return max(0, int((now - then).total_seconds())) if then is not None else 0


class FederationStatusService:
    """Reads the federation status; records subscriber positions."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        regions: Sequence[str],
        certificates: Callable[[], list[Certificate]] = list,
    ) -> None:
        self.db = db
        self.clock = clock
        self.regions = tuple(sorted(regions))
        self.certificates = certificates
        self.refusals: Refusals = dict
        """Set by the server to its refusal window (refusals are counted per process)."""

    def subscriber_at(self, caller: Identity, position: int) -> None:
        """Record that the caller's registry is at feed POSITION (other roles are not tracked:
        the lag is the registries')."""
        if caller.role is not Role.REGISTRY or caller.region is None:
            return
        with self.db.transaction() as session:
            StatusStore(session).set_position(caller.region, position, self.clock())

    def subscriber_caught_up(self, caller: Identity, position: int, recorded: int | None) -> int:
        """The caller's registry read everything after POSITION its request asked for: record it
        at the feed head (records its filter left out are not lag). Writes only when the
        position differs from RECORDED; returns the position now recorded."""
        if caller.role is not Role.REGISTRY or caller.region is None:
            return position
        with self.db.transaction() as session:
            store = StatusStore(session)
            at = max(position, store.feed_head())
            if at != recorded:
                store.set_position(caller.region, at, self.clock())
        return at

    def jobs(self) -> list[JobSummary]:
        """Every job that ever ran, with its runs by outcome and its newest runs."""
        with self.db.transaction() as session:
            counts, started, ok, last = StatusStore(session).job_runs()
        runs: dict[str, dict[str, int]] = {}
        for job, outcome, n in counts:
            runs.setdefault(job, {})[outcome] = n
        return [
            JobSummary(
                job=job,
                runs=by_outcome,
                last_started=started.get(job),
                last_success=ok.get(job),
                last_outcome=last[job][0] if job in last else None,
                last_duration_s=(last[job][2] - last[job][1]).total_seconds()
                if job in last
                else None,
            )
            for job, by_outcome in sorted(runs.items())
        ]

    def status(self) -> FederationStatus:
        """Every served region's state, read in one transaction."""
        now = self.clock()
        certs = sorted(self.certificates(), key=lambda c: c.not_after)
        refused = self.refusals()
        with self.db.transaction() as session:
            store = StatusStore(session)
            head = store.feed_head()
            positions = store.positions()
            last = store.last_records()
            states = []
            for region in self.regions:
                sub = None
                if region in positions:
                    position, at = positions[region]
                    lag = store.lag_after(position)
                    sub = Subscriber(
                        position, at, lag.records, _seconds(now, lag.first_accepted_at)
                    )
                snap = store.last_snapshot(region)
                report_row = store.last_report(region)
                report = None
                if report_row is not None:
                    report = reconciliation_pb2.ReconciliationReport.FromString(report_row.body)
                states.append(
                    RegionState(
                        region=region,
                        last_record=last.get(region),
                        subscriber=sub,
                        pending_out=store.pending(region, outgoing=True),
                        pending_in=store.pending(region, outgoing=False),
                        last_snapshot=(
                            snap.id,
                            snap.snapshot_time,
                            snap.received_at,
                            snap.block_count,
                            snap.quantity_grams,
                        )
                        if snap
                        else None,
                        last_report=report,
                        keys=[SigningKey.of(k) for k in store.keys_in_force(region)],
                        certificates=[c for c in certs if c.region == region],
                        refusals=dict(refused.get(region, {})),
                        open_cases=store.open_cases(region),
                        held_grams=store.held_grams(region),
                    )
                )
            by_strength = store.open_cases_by_strength()
        return FederationStatus(
            as_of=now,
            feed_head=head,
            regions=states,
            certificates=[c for c in certs if c.region is None],
            open_cases_by_strength=by_strength,
        )


def pki_certificates(pki: PKIDir) -> list[Certificate]:
    """The certificates of a PKI directory (the CA's and every identity's on disk): in a region's
    deployment the gateway's own; in the development PKI every identity's."""
    from cryptography import x509

    out = []
    if pki.ca_cert.exists():
        ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        out.append(Certificate("ca", None, ca.serial_number, ca.not_valid_after_utc))
    for ident, files in pki.identities():
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        region = None if ident.role is Role.GATEWAY else ident.region
        out.append(Certificate(ident.uri, region, cert.serial_number, cert.not_valid_after_utc))
    return out
