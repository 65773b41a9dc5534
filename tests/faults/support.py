"""Support for the fault and attack tests: whole-database snapshots, raw channels, outcomes of a
call as (status code, ErrorInfo reason), and certificates the federation PKI would never hand out
(foreign CA, expired, a second certificate to revoke, a replacement server certificate)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from sqlalchemy import select

from gateway.client import TransportError, channel_credentials, error_from_rpc
from gateway.errors import DomainError
from gateway.security.identity import Role
from gateway.security.pki import IdentityFiles, PKIDir, init, issue
from gateway.storage.db import Database
from gateway.storage.models import AuditHeadRow
from tests.digest import BACKGROUND_TABLES as BACKGROUND_TABLES
from tests.digest import table_digests


@dataclass(frozen=True)
class Snapshot:
    """Every table's row count and a digest of its rows, and the audit log's head."""

    tables: dict[str, tuple[int, str]]
    audit_head: tuple[int, bytes]

    def counts(self) -> dict[str, int]:
        return {name: count for name, (count, _) in self.tables.items()}


def snapshot(db: Database) -> Snapshot:
    """The whole database, as rows (sorted, so the digest ignores physical order)."""
    tables = table_digests(db)
    with db.transaction() as session:
        head = session.execute(select(AuditHeadRow.sequence, AuditHeadRow.head_hash)).one()
    return Snapshot(tables, (head[0], head[1]))


def delta(before: Snapshot, after: Snapshot) -> dict[str, int]:
    """Rows added (or removed, negative) per table, tables without change left out."""
    b, a = before.counts(), after.counts()
    return {
        t: a.get(t, 0) - b.get(t, 0)
        for t in sorted(a.keys() | b.keys())
        if a.get(t, 0) != b.get(t, 0)
    }


@dataclass(frozen=True)
class Outcome:
    """How a call ended: its status code and, when the gateway sent one, the ErrorInfo reason."""

    code: grpc.StatusCode
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.code.name}/{self.reason or '-'}"


def outcome_of(call: Callable[[], Any]) -> tuple[Outcome, Any]:
    """Run a call; its outcome, and its answer when it succeeded (None otherwise)."""
    try:
        answer = call()
    except grpc.RpcError as exc:
        err = error_from_rpc(exc)
        return _outcome(err), None
    except (DomainError, TransportError) as exc:
        return _outcome(exc), None
    return Outcome(grpc.StatusCode.OK), answer


def _outcome(err: DomainError | TransportError) -> Outcome:
    if isinstance(err, DomainError):
        return Outcome(grpc.StatusCode[err.code.name], err.reason)
    return Outcome(err.code)


def target(port: int) -> str:
    return f"127.0.0.1:{port}"


def raw_channel(
    port: int,
    credentials: grpc.ChannelCredentials,
    *,
    max_send_bytes: int = 4 * 1024 * 1024,
) -> grpc.Channel:
    """A channel of its own (its own connection and TLS handshake), nothing shared with others."""
    return grpc.secure_channel(
        target(port),
        credentials,
        options=[
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.max_send_message_length", max_send_bytes),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ],
    )


def identity_channel(
    port: int, pki: PKIDir, files: IdentityFiles, *, max_send_bytes: int = 4 * 1024 * 1024
) -> grpc.Channel:
    """A raw channel presenting one identity's certificate and trusting the federation CA."""
    return raw_channel(port, channel_credentials(pki, files), max_send_bytes=max_send_bytes)


# -- certificates the federation would not issue --------------------------------------------------


def sibling_pki(pki: PKIDir, root: Path) -> PKIDir:
    """A directory sharing the federation CA (and its CRL), to issue extra certificates without
    touching ``pki``'s identities. Kept outside ``pki.root``: the gateway imports every signing key
    found under its own PKI directory."""
    sibling = PKIDir(root)
    root.mkdir(parents=True)
    for name in ("ca.pem", "ca-key.pem", "crl.pem"):
        shutil.copy2(pki.root / name, root / name)
    return sibling


def foreign_pki(root: Path, regions: Sequence[str] = ("310000",)) -> PKIDir:
    """A complete PKI under a CA the federation never heard of."""
    foreign = PKIDir(root)
    init(foreign, regions=regions, admins=())
    return foreign


def expired_identity(pki: PKIDir, root: Path, region: str = "310000") -> PKIDir:
    """A sibling PKI holding a registry certificate of the federation CA that expired last month."""
    sibling = sibling_pki(pki, root)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    issue(
        sibling,
        Role.REGISTRY,
        region,
        not_valid_before=past,
        not_valid_after=past + dt.timedelta(days=1),
    )
    return sibling


def serial_of(cert_path: Path) -> int:
    return x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number


def replace_gateway_certificate(pki: PKIDir, scratch: Path) -> int:
    """Issue the gateway a new TLS certificate and key from the same CA and put them in place of
    the old ones (each file replaced atomically, the key first); returns the new serial."""
    sibling = sibling_pki(pki, scratch)
    fresh = issue(sibling, Role.GATEWAY)
    live = pki.gateway()
    for source, destination in ((fresh.key, live.key), (fresh.cert, live.cert)):
        staged = destination.with_name(destination.name + ".new")
        shutil.copy2(source, staged)
        os.replace(staged, destination)
    return serial_of(live.cert)


def served_certificate_serial(port: int, pki: PKIDir, files: IdentityFiles) -> int:
    """The serial of the certificate the gateway presents to a brand-new TLS connection."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(files.cert), str(files.key))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number
