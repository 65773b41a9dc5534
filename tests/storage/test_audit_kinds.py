"""An audit entry of a kind the protocol does not define is a finding — offline (the replay),
online (the client's walk of the served log) and through `yrdgw audit verify` (exit 3) — never
skipped: what it changed cannot be told."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from adapters import default_registry
from gateway.client import EnvelopeSigner, GatewayClient, verify_remote_log
from gateway.config import GatewaySettings
from gateway.samples import sample_documents
from gateway.security.audit_chain import ENTRY_KINDS
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir, load_signing_key
from gateway.server import GatewayServer
from gateway.services.audit import AuditReader
from gateway.services.audit_replay import _HANDLERS
from gateway.services.exchange import ExchangeService
from gateway.services.keys import KeyDirectory
from gateway.storage.audit_log import audit_log
from gateway.storage.db import Database

YRDGW = str(Path(sys.executable).parent / "yrdgw")


def test_the_replay_knows_exactly_the_protocols_kinds() -> None:
    assert set(_HANDLERS) == ENTRY_KINDS


def _publish(db: Database, pki: PKIDir) -> int:
    """Keys and the Shanghai samples; returns the log's size."""
    KeyDirectory(db).import_from_pki(pki)
    signer = EnvelopeSigner(load_signing_key(pki.registry("310000").signing_key))
    envelopes = [signer.sign(ct, data) for ct, data in sample_documents("310000")]
    outcomes = ExchangeService(db, default_registry).publish(
        Identity(Role.REGISTRY, "310000"), envelopes
    )
    assert all(o.accepted for o in outcomes), [o.error for o in outcomes]
    return AuditReader(db).verify().entries


def _append_unknown(db: Database, kind: str = "units.teleported") -> int:
    """A well-chained entry of a kind no gateway writes; returns its sequence."""
    with db.transaction() as s:
        log = audit_log(s.connection())
        log.append(
            kind=kind,
            subject="regions/310000/units/1",
            actor_region="310000",
            actor="registry",
            detail={"v": 2, "to": "elsewhere"},
            now=dt.datetime.now(dt.UTC),
        )
        return log.sequence


def test_an_unknown_kind_is_named_offline(database: Database, pki: PKIDir) -> None:
    size = _publish(database, pki)
    assert AuditReader(database).verify_storage(default_registry).check.ok
    sequence = _append_unknown(database)
    assert sequence == size + 1
    # The chain alone is intact: only a verifier that reads the kinds can see it.
    assert AuditReader(database).verify().ok
    check = AuditReader(database).verify_storage(default_registry).check
    assert not check.ok
    assert (check.table, check.key, check.first_bad_entry) == (
        "audit_entries",
        f"sequence={sequence}",
        sequence,
    )
    assert check.entries == size  # the log verifies up to the entry before it
    assert "'units.teleported'" in check.problem and "not one audit verify knows" in check.problem


def test_an_unknown_kind_fails_the_command_with_exit_3(
    sqlite_database: Database, pki: PKIDir
) -> None:
    _publish(sqlite_database, pki)
    url = sqlite_database.engine.url.render_as_string(hide_password=False)
    ok = subprocess.run(
        [YRDGW, "audit", "verify", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    sequence = _append_unknown(sqlite_database)
    bad = subprocess.run(
        [YRDGW, "audit", "verify", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 3, (bad.stdout, bad.stderr)
    assert f"FAILED at entry {sequence}" in bad.stderr
    assert "units.teleported" in bad.stderr


def test_an_unknown_kind_is_named_online(database: Database, pki: PKIDir) -> None:
    """The client walks the served log: an entry of an unknown kind fails the check after the
    chain and the signed tree head verified, naming the entry."""
    size = _publish(database, pki)
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        database_url="sqlite://",
        cert_dir=pki.root,
        metrics_listen="127.0.0.1:0",
        shutdown_grace_s=1.0,
        log_format="json",
        log_level="warning",
    )
    server = GatewayServer(settings, db=database)
    target = f"127.0.0.1:{server.start()}"
    client = GatewayClient(target, pki, region="320000", role=Role.REGISTRY)
    try:
        assert verify_remote_log(client).ok
        sequence = _append_unknown(database, "duplicate_case.forgotten")
        check = verify_remote_log(client)
        assert not check.ok
        assert (check.first_bad_entry, check.key, check.entries) == (
            sequence,
            f"sequence={sequence}",
            size,
        )
        assert "'duplicate_case.forgotten'" in check.problem
    finally:
        client.close()
        server.stop(grace=1.0)
