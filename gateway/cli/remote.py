"""Commands that talk to a running gateway get their client here: over mTLS with a certificate
of the PKI directory, and for signed requests with the signer's chain kept beside its key.

The SDK (``gateway.client``, its signer state and audit verification) is imported here only, and
only when a command runs, so that ``yrdgw --help`` does not load gRPC.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.output import fail
from gateway.security.identity import Role

if TYPE_CHECKING:
    from gateway.client import GatewayClient
    from gateway.security.audit_chain import ChainCheck


def refusal(exc: Exception) -> str:
    """A refusal's reason code (when it has one) and message."""
    return f"{getattr(exc, 'reason', '')} {exc}".strip()


def refusal_types() -> tuple[type[Exception], ...]:
    """What a client call raises when the gateway refuses it or cannot be reached."""
    from gateway.client import TransportError
    from gateway.errors import DomainError

    return (DomainError, TransportError)


@contextmanager
def connect(
    gateway: str, cert_dir: Path, region: str, role: Role, name: str | None
) -> Iterator[GatewayClient]:
    """A client of GATEWAY as this identity. A bad certificate directory, a refusal or a
    transport failure inside the block exits 1 with its message."""
    from gateway.client import GatewayClient
    from gateway.security.pki import PKIDir, PKIError

    try:
        client = GatewayClient(gateway, PKIDir(cert_dir), region=region, role=role, name=name)
    except (PKIError, OSError) as exc:
        raise fail(str(exc)) from exc
    with client:
        try:
            yield client
        except refusal_types() as exc:
            raise fail(str(exc)) from exc


@contextmanager
def signing(
    gateway: str,
    cert_dir: Path,
    region: str,
    role: Role = Role.REGISTRY,
    name: str | None = None,
    *,
    with_reason: bool = True,
) -> Iterator[GatewayClient]:
    """A client whose signer (registry or administrator key) continues its saved chain, or the
    gateway's head when signer-state.json is missing; the chain is saved again on the way out.
    A refusal exits 1 with its reason code and message (only the message without WITH_REASON)."""
    from gateway.client.signer_state import load_state, save_state

    with connect(gateway, cert_dir, region, role, name) as client:
        try:
            if not load_state(client.files, client.signer):
                client.sync_signer()
            yield client
        except refusal_types() as exc:
            raise fail(refusal(exc) if with_reason else str(exc)) from exc
        finally:
            save_state(client.files, client.signer)


def verify_audit_log(client: GatewayClient) -> ChainCheck:
    """Fetch the audit log and the signed tree head over CLIENT and check every hash link."""
    from gateway.client import verify_remote_log

    return verify_remote_log(client)
