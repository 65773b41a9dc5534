"""Shutdown with open feed streams, over real mTLS on SQLite and PostgreSQL: every Subscribe stream
ends at once with UNAVAILABLE / GATEWAY_SHUTTING_DOWN and the cursor after the last event it was
sent, while a call in flight still finishes within the grace; the SDK's follower resumes from
that cursor on the gateway started again, and receives every event exactly once.

Nothing here is timed: the grace is long (600 s) and a Publish stream is held open through it, so
the stop is still under way (its thread alive) when the follower's stream has already ended.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import grpc
import pytest
from yrd.interop.v1 import registry_service_pb2

from gateway.client import GatewayClient, TransportError, error_from_rpc
from gateway.errors import GatewayShuttingDown
from gateway.samples import sample_documents
from gateway.security.pki import PKIDir
from gateway.server import GatewayServer

WAIT = 60.0
"""Generous bound for each awaited event (never reached unless something is broken)."""
GRACE = 600.0
"""A grace the tests never wait out."""


class HeldPublish:
    """A Publish stream kept open: each ``send`` is one message and its acknowledgement; the call
    stays in flight until ``close``."""

    def __init__(self, client: GatewayClient) -> None:
        self._client = client
        self._outbox: queue.Queue[registry_service_pb2.PublishRequest | None] = queue.Queue()
        self._stream = client.registry.Publish(self._requests(), timeout=GRACE)

    def _requests(self) -> Iterator[registry_service_pb2.PublishRequest]:
        while (request := self._outbox.get()) is not None:
            yield request

    def send(self, content_type: str, payload: bytes) -> registry_service_pb2.EnvelopeResult:
        envelope = self._client.signer.sign(content_type, payload)
        self._outbox.put(registry_service_pb2.PublishRequest(envelopes=[envelope]))
        (result,) = next(self._stream).results
        return result

    def close(self) -> None:
        self._outbox.put(None)
        for _ in self._stream:
            pass


class Follower:
    """``GatewayClient.follow`` on a thread: events and resumes land in queues."""

    def __init__(self, client: GatewayClient, stop_after: int) -> None:
        self.events: queue.Queue[registry_service_pb2.FeedEvent] = queue.Queue()
        self.resumes: queue.Queue[tuple[str, Exception]] = queue.Queue()
        self.failure: list[BaseException] = []
        self._client = client
        self._stop_after = stop_after
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        seen = 0
        try:
            for event in self._client.follow(on_resume=lambda c, e: self.resumes.put((c, e))):
                self.events.put(event)
                seen += 1
                if seen == self._stop_after:
                    return
        except BaseException as exc:  # reported by the test
            self.failure.append(exc)

    def next_events(self, n: int) -> list[registry_service_pb2.FeedEvent]:
        got = []
        for _ in range(n):
            try:
                got.append(self.events.get(timeout=WAIT))
            except queue.Empty:
                raise AssertionError(f"got {len(got)} of {n} events: {self.failure}") from None
        return got


def _stop_in_thread(server: GatewayServer) -> threading.Thread:
    stopping = threading.Thread(target=server.stop, kwargs={"grace": GRACE}, daemon=True)
    stopping.start()
    return stopping


def test_follower_ended_at_once_with_its_cursor_and_resumes_exactly_once(
    server: GatewayServer, client_for: Callable[..., GatewayClient], pki: PKIDir
) -> None:
    sh, js = sample_documents("310000"), sample_documents("320000")
    assert all(r.accepted for r in client_for("310000").publish(sh))
    follower = Follower(client_for("330000"), stop_after=6)
    before = follower.next_events(3)

    publisher = client_for("320000")
    publisher.sync_signer()
    held = HeldPublish(publisher)
    assert held.send(*js[0]).accepted
    (fourth,) = follower.next_events(1)

    stopping = _stop_in_thread(server)
    cursor, why = follower.resumes.get(timeout=WAIT)
    # The stream ended while the stop still waits for the held call: not after the grace.
    assert stopping.is_alive()
    assert isinstance(why, GatewayShuttingDown)
    assert why.code.name == "UNAVAILABLE"
    assert why.cursor == cursor == fourth.cursor  # after the last event it was sent

    # The call in flight is still served during the grace, then the stop completes.
    assert held.send(*js[1]).accepted
    held.close()
    stopping.join(WAIT)
    assert not stopping.is_alive()

    # The gateway again, on the same port and database: the follower finds it and resumes.
    again = GatewayServer(
        server.settings.model_copy(update={"listen": f"127.0.0.1:{server.port}"}), db=server.db
    )
    again.start()
    try:
        assert publisher.publish([js[2]])[0].accepted
        after = follower.next_events(2)
        follower.thread.join(WAIT)
        assert not follower.failure, follower.failure
        got = [e.cursor for e in [*before, fourth, *after]]
        everything = [e.cursor for e in client_for("330000").subscribe()]
        assert got == everything  # every event once, in order: none repeated, none skipped
        kinds = [e.record.WhichOneof("kind") for e in after]
        assert kinds == ["project", "issuance"]  # the one published in the grace, then the new
        # Every other resume was the gateway being unreachable, from the same cursor.
        while not follower.resumes.empty():
            at, reason = follower.resumes.get_nowait()
            assert at == fourth.cursor
            assert isinstance(reason, TransportError)
            assert reason.code is grpc.StatusCode.UNAVAILABLE
    finally:
        again.stop(grace=0.5)


def test_every_open_stream_ends_with_the_cursor_after_what_it_was_sent(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    assert all(r.accepted for r in client_for("310000").publish(sample_documents("310000")))
    reader = client_for("340000")
    events = list(reader.subscribe())
    assert len(events) == 3
    streams = []
    for start, batch in (("", 0), (events[0].cursor, 1)):
        call = reader.registry.Subscribe(
            registry_service_pb2.SubscribeRequest(cursor=start, follow=True, max_batch_size=batch),
            timeout=GRACE,
        )
        got = [e.cursor for e in next(call).events]
        if batch == 1:
            got += [e.cursor for e in next(call).events]
        assert got[-1] == events[-1].cursor  # caught up: open, waiting for new records
        streams.append(call)
    server.stop(grace=GRACE)  # returns once every stream ended: none waits out the grace
    for call in streams:
        typed = _ended(call)
        assert typed.reason == "GATEWAY_SHUTTING_DOWN"
        assert typed.cursor == events[-1].cursor


def test_a_subscribe_during_shutdown_gets_back_its_own_cursor(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    """Between the start of the shutdown and the port's closing, a new Subscribe is sent nothing:
    the cursor it carries is where it resumes (the empty cursor: from the start)."""
    assert all(r.accepted for r in client_for("310000").publish(sample_documents("310000")))
    reader = client_for("320000")
    first = next(iter(reader.subscribe()))
    server.exchange.notifier.close()  # what stop() does first
    for cursor in ("", first.cursor):
        with pytest.raises(GatewayShuttingDown) as raised:
            next(iter(reader.subscribe(cursor, follow=True)))
        assert raised.value.cursor == cursor
        assert raised.value.code.name == "UNAVAILABLE"


def _ended(call: Iterator[registry_service_pb2.SubscribeResponse]) -> GatewayShuttingDown:
    """The typed end of a stream that has nothing more to send."""
    with pytest.raises(grpc.RpcError) as raised:
        next(call)
    error = raised.value
    assert isinstance(error, grpc.Call)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    typed = error_from_rpc(error)
    assert isinstance(typed, GatewayShuttingDown), typed
    return typed
