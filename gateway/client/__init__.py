"""Client SDK for registries and administrators: an mTLS channel from a PKI directory, envelope
signing, typed calls, and gateway statuses turned back into the domain exceptions.

Imports the shared contract (``gateway.contract``), ``gateway.security`` and ``gateway.errors``
only — never the server's services, storage or settings — so it runs with grpcio, protobuf,
grpcio-status and cryptography alone (``tests/unit/test_client_imports.py`` holds it to that).
"""

from gateway.client.api import GatewayClient
from gateway.client.audit import verify_remote_log
from gateway.client.channel import channel_credentials
from gateway.client.errors import CHAIN_REASONS, TransportError, error_from_rpc
from gateway.client.retry import RESEND_CODES, RetryPolicy
from gateway.client.signer import (
    EnvelopeSigner,
    admin_signed_payload,
    envelope_fields_of,
    envelope_signature_ok,
)
from gateway.client.signer_state import load_state, save_state

__all__ = [
    "CHAIN_REASONS",
    "RESEND_CODES",
    "EnvelopeSigner",
    "GatewayClient",
    "RetryPolicy",
    "TransportError",
    "admin_signed_payload",
    "channel_credentials",
    "envelope_fields_of",
    "envelope_signature_ok",
    "error_from_rpc",
    "load_state",
    "save_state",
    "verify_remote_log",
]
