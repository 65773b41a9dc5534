"""A TCP forwarder that a test puts between the gateway and PostgreSQL, to cut the database off
and bring it back without touching the PostgreSQL server: ``stop()`` closes every forwarded
connection and the listening socket (new connections are refused), ``start()`` listens again on
the same port."""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from types import TracebackType
from typing import Self


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``, one pair of threads per connection."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        """The port it listens on: chosen by the first ``start()``, kept by the next ones."""
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.accepted = 0
        """Connections forwarded so far, over every start."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # The closed connections' TIME_WAIT must not keep the port from being listened on again.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        self._spawn(self._accept, listener)

    def stop(self) -> None:
        """Refuse new connections and close the open ones (both sides), then wait for every
        forwarding thread to end."""
        with self._lock:
            listener, self._listener = self._listener, None
            open_sockets = list(self._sockets)
            self._sockets.clear()
            threads, self._threads = self._threads, []
        # shutdown() wakes the threads blocked on a socket; each thread closes its own sockets
        # (a socket closed under a blocked thread could see its descriptor reused).
        if listener is not None:
            _shutdown(listener)
        for sock in open_sockets:
            _shutdown(sock)
        for thread in threads:
            thread.join(timeout=30)
            assert not thread.is_alive(), "a proxy thread did not end"

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                listener.close()
                return  # stopped
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    client.close()
                    server.close()
                    continue
                self._sockets.update((client, server))
                self.accepted += 1
            ends = threading.Barrier(2, action=functools.partial(self._closed, client, server))
            self._spawn(self._pump, client, server, ends)
            self._spawn(self._pump, server, client, ends)

    def _pump(self, source: socket.socket, sink: socket.socket, ends: threading.Barrier) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        # One side ended: end the connection on both, and close it once both threads are out.
        _shutdown(source)
        _shutdown(sink)
        ends.wait()

    def _closed(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets.difference_update(sockets)
        for sock in sockets:
            sock.close()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
