"""GatewayInfoService over real mTLS: any authenticated caller reads the protocol version, the
gateway's keys, regions, policies and limits; the key it returns verifies a signed tree head and
a reconciliation report; after a rotation the previous key is listed with its validity."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

from google.protobuf import duration_pb2
from yrd.interop.v1 import gateway_info_service_pb2 as info_pb2

from gateway.client import GatewayClient
from gateway.config import GatewaySettings
from gateway.security import pki as pki_ops
from gateway.security.audit_chain import verify_tree_head
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, load_signing_key
from gateway.security.reports import verify_report
from gateway.security.signing import key_id_of, raw_public_key
from gateway.server import GatewayServer
from gateway.storage.db import Database
from tests.integration.conftest import publish_samples
from tests.integration.test_reconciliation import held

AH, SH = "340000", "310000"
CURRENT = info_pb2.GATEWAY_SIGNING_KEY_STATUS_CURRENT
PREVIOUS = info_pb2.GATEWAY_SIGNING_KEY_STATUS_PREVIOUS


def _current_key(info: info_pb2.GetGatewayInfoResponse) -> bytes:
    [key] = [k for k in info.signing_keys if k.status == CURRENT]
    assert key.algorithm == "Ed25519" and key.key_id == key_id_of(key.public_key)
    return key.public_key


def test_every_role_reads_the_facts(
    server: GatewayServer, client_for: Callable[..., GatewayClient], pki: PKIDir
) -> None:
    registry = client_for(SH).gateway_info()
    admin = client_for(AH, Role.ADMIN, "admin-b").gateway_info()
    assert registry == admin
    info = registry
    assert (info.protocol.package, info.protocol.version) == ("yrd.interop.v1", "1.4.1")
    gateway_key = raw_public_key(load_signing_key(pki.gateway().signing_key))
    assert [k.public_key for k in info.signing_keys] == [gateway_key]  # no rotation yet
    assert info.signing_keys[0].HasField("valid_from")
    assert not info.signing_keys[0].HasField("valid_until")

    regions = {r.region: r for r in info.regions}
    assert list(regions) == ["310000", "320000", "330000", "340000"]
    sh = regions[SH]
    assert (sh.name_en, sh.name_zh, sh.serial_unit_grams, sh.required_approvals) == (
        "Shanghai",
        "上海",
        1000,
        2,
    )
    assert list(sh.native_content_types) == ["application/vnd.yrd.310000+json"]
    assert info_pb2.REGION_ROLE_ETS in sh.roles and info_pb2.REGION_ROLE_REGISTRY in sh.roles
    assert info_pb2.REGION_ROLE_ETS not in regions["320000"].roles
    assert regions["320000"].serial_unit_grams == 1_000_000
    assert regions["330000"].required_approvals == 1

    [ets] = info.policies.ets_offset_policies
    assert (ets.region, ets.max_share, ets.max_outside_share) == (SH, "0.05", "")
    assert ets.HasField("vintage_window_years") and ets.vintage_window_years == 3
    assert ets.quantity_multiple_grams == 1_000_000
    assert not info.policies.recognition_enforced  # the fixture's gateway turns it off
    assert info.policies.transfer_proposal_ttl == duration_pb2.Duration(seconds=24 * 3600)

    lim = info.limits
    assert lim.max_message_bytes == 4 * 1024 * 1024 and lim.max_concurrent_rpcs == 256
    assert lim.max_native_document_bytes == 1024 * 1024
    assert (lim.max_native_csv_bytes, lim.max_native_csv_rows) == (10 * 1024 * 1024, 100_000)
    assert (lim.max_envelopes_per_publish, lim.max_request_id_chars) == (1000, 120)
    assert lim.max_snapshot_time_ahead == duration_pb2.Duration(seconds=300)
    pages = {p.method.rsplit("/", 1)[1]: (p.default_size, p.max_size) for p in lim.page_limits}
    assert pages == {
        "Subscribe": (500, 5000),
        "ListRecords": (100, 1000),
        "ListTransfers": (100, 1000),
        "ListUnitBlocks": (100, 1000),
        "ListRetirements": (100, 1000),
        "ListRecognitions": (100, 1000),
        "ListDuplicateCases": (100, 1000),
        "ListReconciliationReports": (50, 500),
        "ListAuditEntries": (500, 5000),
    }


def test_the_key_served_verifies_tree_heads_and_reports(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    publish_samples(client_for)
    ah = client_for(AH)
    key = _current_key(ah.gateway_info())

    head = ah.tree_head()
    assert head.size > 0 and head.key_id == key_id_of(key)
    signed_at = head.sign_time.ToDatetime(tzinfo=dt.UTC)
    assert verify_tree_head(key, head.size, head.head_hash, signed_at, head.signature)
    assert not verify_tree_head(key, head.size + 1, head.head_hash, signed_at, head.signature)

    ah.submit_holdings(dt.datetime.now(dt.UTC), held(ah, AH), [])
    report = client_for(AH, Role.ADMIN, "admin-a").run_reconciliation()
    assert report.key_id == key_id_of(key)
    assert verify_report(key, report)
    report.region = SH  # any change breaks it
    assert not verify_report(key, report)


def test_a_rotated_key_is_listed_as_previous(
    pki: PKIDir, sqlite_database: Database, tmp_path: Path
) -> None:
    rotated = PKIDir(tmp_path / "pki")
    shutil.copytree(pki.root, rotated.root)
    old_key = raw_public_key(load_signing_key(rotated.gateway().signing_key))
    before = dt.datetime.now(dt.UTC)
    pki_ops.issue(rotated, Role.GATEWAY)  # a new TLS certificate and a new signing key
    new_key = raw_public_key(load_signing_key(rotated.gateway().signing_key))
    assert new_key != old_key

    settings = GatewaySettings(
        listen="127.0.0.1:0",
        cert_dir=rotated.root,
        metrics_listen="",
        log_level="warning",
        scheduler_enabled=False,
    )
    gw = GatewayServer(settings, db=sqlite_database)
    gw.start()
    try:
        with GatewayClient(f"127.0.0.1:{gw.port}", rotated, region=SH) as client:
            info = client.gateway_info()
            current, previous = info.signing_keys
            assert (current.status, current.public_key) == (CURRENT, new_key)
            assert (previous.status, previous.public_key) == (PREVIOUS, old_key)
            assert previous.valid_until == current.valid_from
            assert previous.valid_until.ToDatetime(tzinfo=dt.UTC) >= before.replace(microsecond=0)
            assert info.policies.recognition_enforced
            head = client.tree_head()
            assert head.key_id == current.key_id
            assert verify_tree_head(
                new_key,
                head.size,
                head.head_hash,
                head.sign_time.ToDatetime(tzinfo=dt.UTC),
                head.signature,
            )
    finally:
        gw.stop(grace=0.5)
