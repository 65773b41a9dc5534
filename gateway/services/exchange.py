"""Signed record exchange: publish (verify, chain, adapt, check, store, audit) and the feed.

A batch of envelopes is one database transaction: each envelope is checked against the database
and the batch so far, and only the accepted ones are written, so a refused envelope changes
nothing and the ones around it still land. Acknowledgements are returned only after the commit.
The feed serves the stored record bytes as they are.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from yrd.interop.v1 import envelope_pb2, records_pb2

from adapters.base import CommonRecord, render_checked
from adapters.errors import NotExpressibleError
from adapters.registry import AdapterRegistry
from gateway import errors
from gateway.errors import DomainError
from gateway.security.identity import Identity, Role
from gateway.services import Clock, page_limit, page_of, utc_now
from gateway.services.intake import DEFAULT_SIGN_TIME_SKEW
from gateway.services.publish import PublishBatch, SignaturesUnconfirmed
from gateway.services.verifier import SignatureWorker, shared_worker
from gateway.storage.db import Database
from gateway.storage.feed_store import FeedRow, FeedStore
from mutual_recognition import ApprovalPolicy

MAX_BATCH = 1000
"""Most envelopes accepted in one Publish message."""
WORKER_MIN_BATCH = 32
"""Smallest batch whose signatures go to the verifying worker process (below it, sending them
costs about what it saves)."""
DEFAULT_FEED_BATCH = 500
MAX_FEED_BATCH = 5000
KIND_NAMES = ("methodology", "project", "issuance")
_PV = records_pb2.SCENARIO_CATEGORY_DISTRIBUTED_PV


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """What happened to one envelope."""

    envelope_hash: bytes
    record_names: tuple[str, ...] = ()
    error: DomainError | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


class StoredEnvelope(NamedTuple):
    """An envelope's stored columns, as the feed reads them."""

    content_type: str
    payload: bytes
    key_id: str
    sequence: int
    previous_hash: bytes
    sign_time_seconds: int
    sign_time_nanos: int
    signature: bytes


@dataclass(slots=True)
class FeedItem:
    """One accepted record with the envelope it came in, kept as stored (the feed is a hot path:
    the record stays serialised until someone needs it as a message)."""

    position: int
    body: bytes
    """The serialised yrd.interop.v1.Record."""
    envelope_row: StoredEnvelope
    """The envelope's stored columns."""
    envelope_record_index: int
    accepted_at: dt.datetime
    native_payload: bytes = b""
    native_content_type: str = ""
    native_unavailable_reason: str = ""

    @property
    def record(self) -> records_pb2.Record:
        return records_pb2.Record.FromString(self.body)

    @property
    def envelope(self) -> envelope_pb2.SignedEnvelope:
        env = envelope_pb2.SignedEnvelope()
        fill_envelope(env, self.envelope_row)
        return env


def fill_envelope(env: envelope_pb2.SignedEnvelope, row: Any) -> None:
    """Set an envelope message's fields from its stored columns, in place."""
    env.content_type = row.content_type
    env.payload = row.payload
    env.key_id = row.key_id
    env.sequence = row.sequence
    env.previous_hash = row.previous_hash
    env.sign_time.seconds = row.sign_time_seconds
    env.sign_time.nanos = row.sign_time_nanos
    env.signature = row.signature


class FeedNotifier:
    """Wakes followers when records are accepted in this process (others poll), and at once when
    the process begins to shut down (:meth:`close`)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0
        self._closed = False

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def close(self) -> None:
        """The process is shutting down: wake every follower; :attr:`closed` from now on."""
        with self._condition:
            self._closed = True
            self._generation += 1
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        with self._condition:
            return self._closed

    def generation(self) -> int:
        with self._condition:
            return self._generation

    def wait(self, seen: int, timeout: float) -> int:
        """Wait for a notification after ``seen`` (or :meth:`close`) or the timeout; returns the
        new generation."""
        with self._condition:
            self._condition.wait_for(
                lambda: self._generation != seen or self._closed, timeout=timeout
            )
            return self._generation


class ExchangeService:
    """Publish and read records; every public method is one transaction."""

    def __init__(
        self,
        db: Database,
        adapters: AdapterRegistry,
        clock: Clock = utc_now,
        notifier: FeedNotifier | None = None,
        *,
        verify_in_worker: bool = True,
        sign_time_skew: dt.timedelta | None = DEFAULT_SIGN_TIME_SKEW,
        approvals: ApprovalPolicy | None = None,
    ) -> None:
        self.db = db
        self.approvals = approvals or ApprovalPolicy()
        """The recognition approval policy, whose quorums the duplicate cases detection opens
        record."""
        self.sign_time_skew = sign_time_skew
        """How far an envelope's ``sign_time`` may be from the clock (None: no window)."""
        self.adapters = adapters
        self.clock = clock
        self.notifier = notifier or FeedNotifier()
        self.verify_in_worker = verify_in_worker
        """Whether large batches' signatures are checked by the process's shared worker (started
        on first use) while the batch is parsed and stored; else each one here, in turn."""

    # -- publish ------------------------------------------------------------------------------

    def publish(
        self, caller: Identity, envelopes: Sequence[envelope_pb2.SignedEnvelope]
    ) -> list[PublishOutcome]:
        """Check each envelope in order and store the accepted ones; one outcome per envelope.

        The batch is one transaction; outcomes are returned only after it commits.
        """
        if caller.role is not Role.REGISTRY or caller.region is None:
            raise errors.PermissionDenied("only registries publish records")
        if len(envelopes) > MAX_BATCH:
            raise errors.InvalidArgument(
                f"at most {MAX_BATCH} envelopes per message",
                field_errors={"envelopes": f"{len(envelopes)} > {MAX_BATCH}"},
            )
        worker = None
        if self.verify_in_worker:
            worker = shared_worker()
            if len(envelopes) < WORKER_MIN_BATCH:
                worker.start()  # a registry that publishes may soon send large batches
                worker = None
        try:
            outcomes = self._publish(caller, caller.region, envelopes, worker)
        except SignaturesUnconfirmed:
            # Rolled back: a signature taken as valid was not. Again, verifying each in turn.
            outcomes = self._publish(caller, caller.region, envelopes, None)
        if any(o.accepted for o in outcomes):
            self.notifier.notify()
        return outcomes

    def _publish(
        self,
        caller: Identity,
        region: str,
        envelopes: Sequence[envelope_pb2.SignedEnvelope],
        worker: SignatureWorker | None,
    ) -> list[PublishOutcome]:
        outcomes: list[PublishOutcome] = []
        with self.db.transaction() as session:
            batch = PublishBatch(
                session,
                self.adapters,
                caller,
                region,
                self.clock(),
                self.sign_time_skew,
                self.approvals,
            )
            try:
                for prepared in batch.prepare(envelopes, worker):
                    if prepared.error is not None:
                        outcomes.append(PublishOutcome(prepared.digest, error=prepared.error))
                        continue
                    try:
                        outcomes.append(PublishOutcome(prepared.digest, batch.accept(prepared)))
                    except DomainError as exc:
                        outcomes.append(PublishOutcome(prepared.digest, error=exc))
                batch.write()
                batch.confirm_signatures()
            finally:
                batch.close()
        return outcomes

    # -- reading ------------------------------------------------------------------------------

    def _items(self, rows: list[FeedRow], native_region: str | None) -> list[FeedItem]:
        items = [
            FeedItem(position, body, StoredEnvelope._make(envelope), index, accepted_at)
            for position, body, index, accepted_at, envelope in rows
        ]
        adapter = self.adapters.get(native_region) if native_region else None
        if adapter is None:
            return items  # the common schema: the stored bodies as they are
        for item in items:
            try:
                # Served only if the bytes read back as exactly the record delivered.
                item.native_payload = render_checked(adapter, _inner(item.record))
                item.native_content_type = adapter.content_types[0]
            except NotExpressibleError as exc:
                item.native_unavailable_reason = str(exc)
        return items

    def read_feed(
        self,
        after: int,
        *,
        regions: Sequence[str] = (),
        kinds: Sequence[str] = (),
        limit: int = DEFAULT_FEED_BATCH,
        native_region: str | None = None,
    ) -> list[FeedItem]:
        """Accepted records after feed position ``after``, in order, with their envelopes.

        With ``native_region``, each record is also rendered in that region's format (records of
        other regions as its foreign records) where the bytes read back as exactly the record,
        and otherwise carries the reason they do not.
        """
        if not 1 <= limit <= MAX_FEED_BATCH:
            raise errors.InvalidArgument(
                f"batch size must be 1..{MAX_FEED_BATCH}",
                field_errors={"max_batch_size": "out of range"},
            )
        with self.db.transaction() as session:
            rows = FeedStore(session).after(after, regions=regions, kinds=kinds, limit=limit)
        return self._items(rows, native_region)

    def get_record(self, name: str) -> FeedItem:
        """The current revision of a record (the newest version, for a methodology)."""
        with self.db.transaction() as session:
            rows = FeedStore(session).current(name, MAX_FEED_BATCH)
        found = self._items(rows, None)
        if not found:
            raise errors.RecordNotFound(f"no record {name}", metadata={"name": name})
        return found[-1]

    def list_records(
        self, *, region: str = "", kind: str = "", page_size: int = 0, after: int = 0
    ) -> tuple[list[FeedItem], int]:
        """Current records in feed order, page by page; returns the page and the position to
        resume after (0 on the last page)."""
        limit = page_limit(page_size)
        with self.db.transaction() as session:
            rows = FeedStore(session).current_page(
                region=region, kind=kind, after=after, limit=limit + 1
            )
        items, last = page_of(self._items(rows, None), limit)
        return items, (last.position if last is not None else 0)


def _inner(record: records_pb2.Record) -> CommonRecord:
    """The methodology, project or issuance inside a Record."""
    if record.HasField("methodology"):
        return record.methodology
    if record.HasField("project"):
        return record.project
    return record.issuance
