"""The mTLS channel to the gateway, built from a PKI directory."""

from __future__ import annotations

from typing import Any

import grpc

from gateway.client.retry import RetryPolicy
from gateway.security.pki import IdentityFiles, PKIDir


def channel_credentials(pki: PKIDir, files: IdentityFiles) -> grpc.ChannelCredentials:
    """mTLS credentials trusting the federation CA and presenting one identity's certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert.read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )


def open_channel(
    target: str, pki: PKIDir, files: IdentityFiles, max_message_bytes: int, retry: RetryPolicy
) -> grpc.Channel:
    """A secure channel to target as one identity: message limits both ways, keepalive, and
    reconnect backoff bounded by the retry policy (so a re-send finds the channel back soon)."""
    return grpc.secure_channel(
        target,
        channel_credentials(pki, files),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.initial_reconnect_backoff_ms", int(retry.initial_backoff_s * 1000) or 1),
            ("grpc.max_reconnect_backoff_ms", int(retry.max_backoff_s * 1000) or 1),
        ],
    )


def traced_channel(channel: grpc.Channel, tracer_provider: Any = None) -> grpc.Channel:
    """CHANNEL with OpenTelemetry's client interceptor: a span per call, its context sent to the
    server (``traceparent``). OpenTelemetry is imported only here: the SDK needs it only when
    tracing is asked for (the ``client-tracing`` extra)."""
    from opentelemetry.instrumentation.grpc import client_interceptor
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

    interceptor = client_interceptor(tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]
    traced: grpc.Channel = intercept_channel(channel, interceptor)  # type: ignore[no-untyped-call]
    return traced
