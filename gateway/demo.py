"""``yrdgw demo``: a gateway in process on a free port, a temporary PKI and SQLite database, four
registry clients, and a walk through everything that works so far.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gateway.client import GatewayClient, envelope_signature_ok, verify_remote_log
from gateway.config import GatewaySettings
from gateway.demo_duplicates import duplicate_step
from gateway.errors import DomainError
from gateway.logs import configure_logging
from gateway.samples import sample_documents
from gateway.security.identity import Role
from gateway.security.pki import PKIDir, init
from gateway.server import GatewayServer
from gateway.services.ledger import check_invariants
from mutual_recognition import DELTA_REGIONS

REGION_NAMES = {"310000": "Shanghai", "320000": "Jiangsu", "330000": "Zhejiang", "340000": "Anhui"}


def run_demo(console: Console, keep: Path | None = None) -> int:
    """Run the demo; returns the process exit code (0 when every step behaved as expected)."""
    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory(prefix="yrdgw-demo-") as tmp:
        root = keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        pki = PKIDir(root / "pki")
        init(pki)
        console.print(
            f"[bold]1.[/bold] dev PKI in {pki.root}: root CA, gateway, 4 registries, 8 admins"
        )
        settings = GatewaySettings(
            listen="127.0.0.1:0",
            database_url=f"sqlite:///{root / 'yrdgw.sqlite3'}",
            cert_dir=pki.root,
            metrics_listen="127.0.0.1:0",
            log_format="console",
            log_level="warning",
        )
        server = GatewayServer(settings)
        port = server.start()
        target = f"127.0.0.1:{port}"
        failures = 0
        try:
            console.print(
                f"[bold]2.[/bold] gateway serving on {target} (mTLS), "
                f"metrics on 127.0.0.1:{server.metrics_port}"
            )
            table = Table("region", "name", "identity", "health", "signing keys seen")
            clients = [
                GatewayClient(target, pki, region=r, role=Role.REGISTRY) for r in DELTA_REGIONS
            ]
            for client in clients:
                status = client.health()
                keys = client.list_signing_keys(region=client.region)
                failures += status != "SERVING"
                table.add_row(
                    client.region,
                    REGION_NAMES[client.region],
                    client.files.cert.parent.name,
                    status,
                    str(len(keys)),
                )
            console.print("[bold]3.[/bold] four registry clients connected:")
            console.print(table)

            sh = clients[0]
            try:
                sh.register_signing_key("registry", bytes(32))
                console.print("[red]a registry registered a key: authorization is broken[/red]")
                failures += 1
            except DomainError as exc:
                console.print(
                    f"[bold]4.[/bold] 310000 registry calling an admin-only RPC: refused, "
                    f"{exc.code.name} / {exc.reason}"
                )
            with GatewayClient(
                target, pki, region="310000", role=Role.ADMIN, name="admin-a"
            ) as admin:
                from cryptography.hazmat.primitives.asymmetric import ed25519

                from gateway.security.signing import raw_public_key

                new_key = raw_public_key(ed25519.Ed25519PrivateKey.generate())
                key = admin.register_signing_key("registry", new_key)
                admin.revoke_signing_key(key.key_id, "demo: key rotation")
                console.print(
                    f"[bold]5.[/bold] 310000 admin-a registered key {key.key_id} and revoked it "
                    "(both in the audit log)"
                )
            failures += _exchange(console, clients)
            with (
                GatewayClient(target, pki, region="310000", role=Role.ADMIN, name="admin-a") as a,
                GatewayClient(target, pki, region="310000", role=Role.ADMIN, name="admin-b") as b,
            ):
                failures += _recognition_and_transfers(console, clients[0], clients[3], a, b)
                with GatewayClient(
                    target, pki, region="340000", role=Role.ADMIN, name="admin-a"
                ) as ah_admin:
                    failures += _reconciliation(console, pki, clients[0], clients[3], a, ah_admin)
                failures += duplicate_step(console, 12, target, pki, clients, (a, b))
            invariants = check_invariants(server.db)
            failures += not invariants.ok
            console.print(
                "[bold]13.[/bold] ledger invariants (every unit in exactly one block, issued = "
                "active + held + reserved + retired + cancelled): "
                + ("OK" if invariants.ok else "VIOLATED: " + "; ".join(invariants.problems))
            )
            check = verify_remote_log(sh)
            failures += not check.ok
            console.print(
                f"[bold]14.[/bold] audit log verified end to end by 310000: "
                f"{'OK' if check.ok else 'FAILED ' + check.problem}, {check.entries} entries, "
                f"head {check.head_hash.hex()[:16]}…"
            )
            for client in clients:
                client.close()
        finally:
            server.stop(grace=1.0)
        console.print("[bold]15.[/bold] gateway stopped gracefully")
        if failures:
            console.print(f"[red]demo finished with {failures} failure(s)[/red]")
            return 1
        console.print("[green]demo finished: every step behaved as expected[/green]")
        return 0


def _exchange(console: Console, clients: list[GatewayClient]) -> int:
    """Steps 6 and 7: every region publishes its samples; every region reads the others'."""
    failures = 0
    table = Table("region", "document", "result", "records")
    for client in clients:
        for (_, payload), result in zip(
            sample_documents(client.region),
            client.publish(sample_documents(client.region)),
            strict=True,
        ):
            failures += not result.accepted
            status = "accepted" if result.accepted else f"REFUSED {result.reason}"
            table.add_row(
                client.region, f"{len(payload)} bytes", status, "\n".join(result.record_names)
            )
    console.print(
        "[bold]6.[/bold] each region publishes its sample methodology, project and issuance:"
    )
    console.print(table)
    keys = {k.key_id: k.public_key for k in clients[0].list_signing_keys()}
    table = Table("subscriber", "from others", "in own format", "in common schema", "signatures OK")
    for client in clients:
        events = [
            e
            for e in client.subscribe(native=True)
            if getattr(e.record, e.record.WhichOneof("kind") or "").region != client.region
        ]
        native = sum(1 for e in events if e.native_payload)
        verified = sum(envelope_signature_ok(e.envelope, keys[e.envelope.key_id]) for e in events)
        failures += verified != len(events)
        table.add_row(
            client.region,
            str(len(events)),
            str(native),
            str(len(events) - native),
            f"{verified}/{len(events)}",
        )
    console.print(
        "[bold]7.[/bold] each region reads the other regions' records in its own format where "
        "that format expresses them exactly (else in the common schema, with the reason) and "
        "checks every origin signature itself:"
    )
    console.print(table)
    return failures


def _recognition_and_transfers(
    console: Console,
    sh: GatewayClient,
    ah: GatewayClient,
    admin_a: GatewayClient,
    admin_b: GatewayClient,
) -> int:
    """Steps 8–10: recognition with its assessment and quorum, a transfer and an ETS offset,
    and a revocation ending a pending transfer at once."""
    from yrd.interop.v1 import recognition_pb2, transfer_pb2

    failures = 0
    try:
        ah.propose_transfer("ah-sh-2025-000", "310000", origin="340000", ranges=[(1_000, 1_999)])
        failures += 1
    except DomainError as exc:
        console.print(
            f"[bold]8.[/bold] before any recognition, Anhui → Shanghai is refused: check "
            f"{exc.metadata.get('check')} {exc.reason}"
        )
    (rec,) = ah.request_recognition(
        "regions/340000/methodologies/AH-FFX-PV-2024-02", version="1", regions=["310000"]
    )
    table = Table("parameter", "Anhui (filed)", "Shanghai (filed)", "normalised", "differs")
    for p in rec.assessment.parameters:
        table.add_row(
            p.code,
            f"{p.subject.value} {p.subject.unit}",
            f"{p.counterpart.value} {p.counterpart.unit}",
            f"{p.subject_normalised} vs {p.counterpart_normalised} {p.normalised_unit}",
            "yes" if p.differs else "no",
        )
    console.print("   Anhui asks Shanghai to recognise its PV methodology; the assessment:")
    console.print(table)
    r = rec.assessment.suggested_ratio
    console.print(
        f"   suggested ETS adjustment ratio {r.numerator}/{r.denominator}; "
        f"{rec.required_approvals} Shanghai approvals needed"
    )
    admin_a.approve_recognition(
        rec.name, "电网排放因子差异已审阅 / grid factor difference reviewed"
    )
    rec = admin_b.approve_recognition(rec.name, "同意互认 / approved")
    state = recognition_pb2.RecognitionState.Name(rec.state).removeprefix("RECOGNITION_STATE_")
    failures += rec.state != recognition_pb2.RECOGNITION_STATE_APPROVED
    console.print(f"   admin-a and admin-b of Shanghai approve (signed): {state}")

    # Anhui's PV issuance AH-QF-2025-0101: 373.01 t on gram serials 1,000..373,010,999.
    proposal = ah.propose_transfer(
        "ah-sh-2025-001", "310000", origin="340000", ranges=[(1_000, 50_000_999)]
    )
    done = sh.accept_transfer(proposal.name)
    failures += done.state != transfer_pb2.TRANSFER_STATE_COMPLETED
    console.print(
        f"[bold]9.[/bold] Anhui proposes {proposal.quantity_grams:,} g of its PV issuance to "
        "Shanghai "
        f"({proposal.name}); Shanghai accepts: "
        f"{transfer_pb2.TransferState.Name(done.state).removeprefix('TRANSFER_STATE_')}"
    )
    retired = sh.retire(
        "sh-ets-2025-001",
        transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
        "上海某钢铁有限公司",
        origin="340000",
        ranges=[(1_000, 10_000_999)],
        compliance_year=2025,
        declared_obligation_grams=1_000 * 1_000_000,
    )
    console.print(
        f"   Shanghai retires {retired.quantity_grams:,} g as an ETS offset for "
        f"{retired.beneficiary} (2025): credited {retired.credited_grams:,} g"
    )
    refusals: list[tuple[str, Callable[[], object]]] = [
        (
            "Anhui proposes serials it no longer holds",
            lambda: ah.propose_transfer(
                "ah-sh-2025-002", "310000", origin="340000", ranges=[(1_000, 1_999)]
            ),
        ),
        (
            "Shanghai retires 0.5 t as an ETS offset",
            lambda: sh.retire(
                "sh-ets-2025-002",
                transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
                "上海某钢铁有限公司",
                origin="340000",
                ranges=[(10_001_000, 10_500_999)],
                compliance_year=2025,
                declared_obligation_grams=1_000 * 1_000_000,
            ),
        ),
    ]
    for label, attempt in refusals:
        try:
            attempt()
            failures += 1
            console.print(f"   [red]{label}: accepted, but should have been refused[/red]")
        except DomainError as exc:
            check = exc.metadata.get("check", "?")
            console.print(f"   {label}: refused by check {check}, {exc.code.name} / {exc.reason}")
    pending = ah.propose_transfer(
        "ah-sh-2025-003", "310000", origin="340000", ranges=[(60_001_000, 70_000_999)]
    )
    admin_a.revoke_recognition(rec.name, "参数复核 / parameters under review")
    ended = ah.get_transfer(pending.name)
    if ended.state != transfer_pb2.TRANSFER_STATE_REJECTED:
        failures += 1
    why = ended.reasons[0].message if ended.reasons else "?"
    console.print(
        f"[bold]10.[/bold] Shanghai revokes the recognition; the pending {pending.name} is "
        f"rejected at once, its units back with Anhui: {why}"
    )
    try:
        sh.accept_transfer(pending.name)
        failures += 1
    except DomainError as exc:
        console.print(f"   accepting it now fails: {exc.reason}")
    return failures


def _reconciliation(
    console: Console,
    pki: PKIDir,
    sh: GatewayClient,
    ah: GatewayClient,
    sh_admin: GatewayClient,
    ah_admin: GatewayClient,
) -> int:
    """Step 11: both registries send their holdings; Anhui's agree with the ledger, Shanghai's
    carry one planted mistake (the retired units still counted as active) and the run finds it."""
    import datetime as dt

    from yrd.interop.v1 import reconciliation_pb2, records_pb2, transfer_pb2

    from gateway.report_export import short_kind, short_status
    from gateway.security.pki import load_signing_key
    from gateway.security.reports import verify_report
    from gateway.security.signing import raw_public_key

    def view(client: GatewayClient, region: str) -> list[reconciliation_pb2.HeldBlock]:
        return [
            reconciliation_pb2.HeldBlock(
                origin_region=b.origin_region, serials=b.serials, state=b.state
            )
            for b in client.holdings(region)
        ]

    completed = [t.name for t in sh.list_transfers(state=transfer_pb2.TRANSFER_STATE_COMPLETED)]
    now = dt.datetime.now(dt.UTC)
    ah.submit_holdings(now, view(ah, "340000"), completed)
    agreed = ah_admin.run_reconciliation("340000")
    planted = view(sh, "310000")
    for block in planted:
        if block.state == records_pb2.UNIT_BLOCK_STATE_RETIRED:
            block.state = records_pb2.UNIT_BLOCK_STATE_ACTIVE
    sh.submit_holdings(now, planted, completed)
    report = sh_admin.run_reconciliation("310000")
    gateway_key = raw_public_key(load_signing_key(pki.gateway().signing_key))
    failures = int(agreed.status != reconciliation_pb2.RECONCILIATION_STATUS_COMPLETED)
    failures += int(
        not any(
            d.kind == reconciliation_pb2.DISCREPANCY_KIND_STATE_MISMATCH
            for d in report.discrepancies
        )
    )
    failures += int(not verify_report(gateway_key, report))
    console.print(
        f"[bold]11.[/bold] reconciliation: Anhui's snapshot → {short_status(agreed)}; "
        f"Shanghai's (retired units planted as active) → {short_status(report)} "
        f"({report.name}, signature {'verified' if verify_report(gateway_key, report) else 'BAD'})"
    )
    table = Table("kind", "origin", "ranges", "grams", "detail")
    for d in report.discrepancies:
        table.add_row(
            short_kind(d.kind),
            d.origin_region,
            ", ".join(f"{r.start:,}..{r.end:,}" for r in d.ranges) or "-",
            f"{d.quantity_grams:,}",
            d.detail,
        )
    console.print(table)
    return failures
