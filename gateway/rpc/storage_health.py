"""Health that follows the database: NOT_SERVING while it cannot be reached, SERVING when it
answers again.

One background thread asks the database for ``SELECT 1``: every ``interval_s`` while it answers
(one round trip every few seconds: cheap), every ``retry_s`` while it does not, and at once when
a call has just failed with STORAGE_UNAVAILABLE (``suspect``). A busy database or a lost deadlock
fails a call but not the probe, so health stays SERVING; a refused, timed-out or dropped
connection fails both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger("yrdgw.health")


class StorageHealth:
    """Watches whether storage can be reached and reports each change to ``on_change``."""

    def __init__(
        self,
        ping: Callable[[], None],
        on_change: Callable[[bool], None],
        *,
        interval_s: float,
        retry_s: float,
    ) -> None:
        self._ping = ping
        self._on_change = on_change
        self._interval_s = interval_s
        self._retry_s = retry_s
        self.reachable = True
        """What the last probe found (the gateway starts once the database has answered)."""
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="yrdgw-storage-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def suspect(self) -> None:
        """A call just failed for want of storage: probe now (not again while it is known
        unreachable: the retry interval is probing already)."""
        if self.reachable:
            self._wake.set()

    def probe(self) -> bool:
        """Ask the database once; True when it answered."""
        try:
            self._ping()
        except Exception as exc:  # whatever the cause, storage cannot serve a request now
            if self.reachable:
                log.warning("storage.unreachable", error=str(exc).splitlines()[0])
            return False
        return True

    def _run(self) -> None:
        while not self._stopped.is_set():
            if self.reachable:
                self._wake.wait(self._interval_s)  # or until a call suspects an outage
            else:
                self._stopped.wait(self._retry_s)
            self._wake.clear()
            if self._stopped.is_set():
                return
            reachable = self.probe()
            if reachable != self.reachable:
                self.reachable = reachable
                if reachable:
                    log.info("storage.reachable")
                self._on_change(reachable)
            if reachable:
                # However many calls fail meanwhile (deadlocks, say), probes are retry_s apart.
                self._stopped.wait(self._retry_s)
