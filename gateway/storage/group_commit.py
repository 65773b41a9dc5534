"""Group commit: concurrent units of work of one process share a transaction.

The first request to arrive leads: it takes every request waiting at that moment (its own first,
at most ``limit``), runs each in a savepoint of one transaction — a request that fails rolls back
to its savepoint, leaving the others' effects as they were — and commits once; then it hands the
lead to the first request that arrived meanwhile. A lone request runs alone, without a savepoint,
exactly as a plain ``Database.transaction`` would run it. Each request's answer is released only
after the commit, so no answer is given for an effect that could still be lost; if the commit
fails, every request of the batch fails with that error and none took effect.

The batch is equivalent to its requests run one after another, each in its own transaction, in
the order they arrived: each sees the effects of those before it. What it saves is the per-
transaction cost — BEGIN, COMMIT (on PostgreSQL a WAL flush, on SQLite a share of the WAL
checkpoints), the session, and on SQLite the in-process write turn — which under load is most
of a small write's cost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

from gateway.storage.db import Database, UnitOfWork

T = TypeVar("T")


@dataclass(eq=False)
class _Request(Generic[T]):
    work: Callable[[UnitOfWork], T]
    lock_key: str
    wake: threading.Event = field(default_factory=threading.Event)
    """Set when the request is done, or when it is its turn to lead."""
    done: bool = False
    result: T | None = None
    error: BaseException | None = None


class GroupCommit:
    """Runs units of work, batching those that arrive while a batch is being written.

    ``prelude(connection, lock_keys)`` runs first in every transaction of two or more requests,
    with the ``lock_key`` of each: it takes, in a fixed order, the locks the requests would
    otherwise take one after another in a different order (so that batches in several processes
    cannot deadlock).
    """

    def __init__(
        self,
        db: Database,
        prelude: Callable[[Connection, Sequence[str]], None] | None = None,
        limit: int = 64,
    ) -> None:
        self.db = db
        self.prelude = prelude
        self.limit = limit
        self._lock = threading.Lock()
        self._waiting: list[_Request[Any]] = []
        self._leading = False

    @property
    def waiting(self) -> int:
        """Requests queued for the next batch."""
        with self._lock:
            return len(self._waiting)

    def run(self, work: Callable[[UnitOfWork], T], lock_key: str = "") -> T:
        """Run ``work(unit)`` in a transaction, possibly shared; its result once committed."""
        request = _Request(work, lock_key)
        with self._lock:
            self._waiting.append(request)
            lead = not self._leading
            self._leading = True
        if not lead:
            request.wake.wait()
        if not request.done:  # leading: this request is first in line
            with self._lock:
                batch = self._waiting[: self.limit]
                del self._waiting[: self.limit]
            try:
                self._write(batch)
            finally:
                with self._lock:
                    if self._waiting:
                        self._waiting[0].wake.set()  # not done: it leads the next batch
                    else:
                        self._leading = False
                for other in batch:
                    other.done = True
                    other.wake.set()
        if request.error is not None:
            raise request.error
        return request.result  # type: ignore[return-value]

    def _write(self, batch: list[_Request[Any]]) -> None:
        try:
            with self.db.unit_of_work() as unit:
                if len(batch) == 1:
                    batch[0].result = batch[0].work(unit)
                    return
                conn = unit.conn
                if self.prelude is not None:
                    self.prelude(conn, [r.lock_key for r in batch])
                cursor = conn.connection.cursor()
                try:
                    for i, request in enumerate(batch):
                        # Never released one by one (COMMIT releases them all): a statement less
                        # per request. Within PostgreSQL's cache of 64 subtransactions per batch.
                        cursor.execute(f"SAVEPOINT group_commit_{i}")
                        try:
                            request.result = request.work(unit)
                        except Exception as exc:
                            cursor.execute(f"ROLLBACK TO SAVEPOINT group_commit_{i}")
                            unit.rolled_back()
                            request.error = exc
                finally:
                    cursor.close()
        except BaseException as exc:
            for request in batch:
                if request.error is None:
                    request.result, request.error = None, exc
            if not isinstance(exc, Exception):
                raise
