"""Record exchange calls: publish signed native records, read the feed."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator, Sequence

import grpc
from yrd.interop.v1 import registry_service_pb2

from gateway.client.connection import Connection
from gateway.client.errors import CHAIN_REASONS, TransportError, error_from_rpc
from gateway.errors import GatewayShuttingDown, StorageUnavailable

ResumeHook = Callable[[str, "GatewayShuttingDown | StorageUnavailable | TransportError"], None]
"""Called by :meth:`RecordCalls.follow` before each reconnect: (cursor, why the stream ended)."""


class RecordCalls(Connection):
    """RegistryService: Publish and Subscribe."""

    def publish(
        self, documents: Sequence[tuple[str, bytes]], batch_size: int = 100
    ) -> list[registry_service_pb2.EnvelopeResult]:
        """Sign each (content type, payload) and publish them over one Publish stream, in batches.

        Returns one result per document, in order. A refused envelope does not advance the chain
        at the gateway, so the envelopes signed after it are re-signed and sent again; a refusal
        that shows the local chain head is stale makes the signer resynchronise once.
        """
        results: list[registry_service_pb2.EnvelopeResult | None] = [None] * len(documents)
        outbox: queue.Queue[registry_service_pb2.PublishRequest | None] = queue.Queue()

        def requests() -> Iterator[registry_service_pb2.PublishRequest]:
            while (request := outbox.get()) is not None:
                yield request

        stream = self.registry.Publish(requests(), timeout=max(self.timeout, 300.0))
        resynced = False
        try:
            start = 0
            while start < len(documents):
                chunk = documents[start : start + batch_size]
                heads = []
                envelopes = []
                for content_type, payload in chunk:
                    heads.append(self.signer.head())
                    envelopes.append(self.signer.sign(content_type, payload))
                outbox.put(registry_service_pb2.PublishRequest(envelopes=envelopes))
                reply = next(stream)
                refused = next((i for i, r in enumerate(reply.results) if not r.accepted), None)
                if refused is None:
                    results[start : start + len(chunk)] = list(reply.results)
                    start += len(chunk)
                    continue
                self.signer.rewind(*heads[refused])
                results[start : start + refused] = list(reply.results[:refused])
                if reply.results[refused].reason in CHAIN_REASONS and not resynced:
                    resynced = True
                    self.sync_signer()
                    start += refused
                    continue
                results[start + refused] = reply.results[refused]
                start += refused + 1
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc
        except BaseException:
            outbox.put(None)
            stream.cancel()
            raise
        # Half-close and let the server finish the call, rather than cancelling it under its feet.
        outbox.put(None)
        try:
            for _ in stream:
                pass
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc
        return [r for r in results if r is not None]

    def subscribe(
        self,
        cursor: str = "",
        *,
        native: bool = False,
        regions: Sequence[str] = (),
        kinds: Sequence[registry_service_pb2.RecordKind.ValueType] = (),
        follow: bool = False,
        batch_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[registry_service_pb2.FeedEvent]:
        """The feed from cursor: every event in order; with follow, waits for new ones."""
        request = registry_service_pb2.SubscribeRequest(
            cursor=cursor,
            format=registry_service_pb2.FEED_FORMAT_NATIVE
            if native
            else registry_service_pb2.FEED_FORMAT_COMMON,
            regions=regions,
            kinds=kinds,
            follow=follow,
            max_batch_size=batch_size,
        )
        try:
            for response in self.registry.Subscribe(request, timeout=timeout):
                yield from response.events
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc

    def follow(
        self,
        cursor: str = "",
        *,
        native: bool = False,
        regions: Sequence[str] = (),
        kinds: Sequence[registry_service_pb2.RecordKind.ValueType] = (),
        batch_size: int = 0,
        on_resume: ResumeHook | None = None,
    ) -> Iterator[registry_service_pb2.FeedEvent]:
        """The feed from cursor, followed without end across gateway restarts: every event once,
        in order.

        When the gateway ends the stream because it shuts down (``GATEWAY_SHUTTING_DOWN``, whose
        ``metadata["cursor"]`` is the position after the last event it sent), cannot serve it
        just now (``STORAGE_UNAVAILABLE``) or cannot be reached (``UNAVAILABLE`` without
        ErrorInfo), this subscribes again from that cursor (else from the last event received),
        after a pause that doubles from the retry policy's ``initial_backoff_s`` up to its
        ``max_backoff_s`` and starts again once an event arrives. ``on_resume(cursor, error)``
        is called before each pause. Any other failure is raised.
        """
        pause = self.retry.initial_backoff_s
        while True:
            failure: GatewayShuttingDown | StorageUnavailable | TransportError
            try:
                for event in self.subscribe(
                    cursor,
                    native=native,
                    regions=regions,
                    kinds=kinds,
                    follow=True,
                    batch_size=batch_size,
                ):
                    cursor = event.cursor
                    pause = self.retry.initial_backoff_s
                    yield event
                # A following stream the gateway closed without an error: subscribe again.
                time.sleep(pause)
                pause = min(pause * 2, self.retry.max_backoff_s)
                continue
            except GatewayShuttingDown as exc:
                # The gateway's word on where this stream stopped (after the last event sent).
                cursor = exc.metadata.get("cursor", cursor)
                failure = exc
            except StorageUnavailable as exc:
                failure = exc
            except TransportError as exc:
                if exc.code is not grpc.StatusCode.UNAVAILABLE:
                    raise
                failure = exc
            if on_resume is not None:
                on_resume(cursor, failure)
            time.sleep(pause)
            pause = min(pause * 2, self.retry.max_backoff_s)
