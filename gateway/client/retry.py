"""When a signed request is sent again: the same envelope bytes, after a failure that leaves open
whether the gateway took it."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from gateway.client.errors import TransportError
from gateway.errors import StorageUnavailable

RESEND_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
"""Transport failures after which a signed request may or may not have taken effect: the gateway
may have committed it and died (or been cut off) before its answer arrived."""
_RESEND_NAMES = frozenset(code.name for code in RESEND_CODES)


@dataclass(frozen=True)
class RetryPolicy:
    """How a signed request is re-sent after a transport failure in :data:`RESEND_CODES`.

    The very same envelope bytes are sent again, with exponential backoff, until the gateway
    answers or ``deadline_s`` has passed since the first attempt. The gateway answers an envelope
    it accepted before with its first answer, so the request takes effect exactly once however
    often it is sent; a new envelope (re-signed) under the same id would be a new request.
    """

    deadline_s: float = 20.0
    """Give up (raise the TransportError) once this long has passed since the first attempt."""
    initial_backoff_s: float = 0.05
    """Pause before the first re-send; doubled after each, up to ``max_backoff_s``."""
    max_backoff_s: float = 2.0
    """Longest pause between two re-sends, and between the channel's attempts to reconnect
    (gRPC's own default grows to two minutes, far past ``deadline_s``)."""


DEFAULT_RETRY = RetryPolicy()
"""The policy a client gets unless it names another."""


def may_resend(exc: TransportError | StorageUnavailable) -> bool:
    """Whether the failure leaves open that the gateway took the request (so the same bytes are
    sent again). StorageUnavailable: the gateway answered, but its database could not serve the
    request just now (it may have committed it)."""
    return exc.code.name in _RESEND_NAMES
