"""The dev PKI: layout, key modes, openssl verifies every certificate, URI SANs, CRL."""

from __future__ import annotations

import datetime as dt
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from gateway.security.identity import Role, identity_of
from gateway.security.pki import PKIDir, PKIError, issue, revoke, revoked_serials


def _openssl_verify(pki: PKIDir, cert: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(pki.ca_cert), str(cert)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_init_makes_every_identity_and_openssl_verifies_them(pki: PKIDir) -> None:
    certs = sorted(pki.root.glob("**/cert.pem"))
    assert len(certs) == 1 + 4 * 3  # gateway + per region one registry and two admins
    for cert in certs:
        result = _openssl_verify(pki, cert)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith(": OK")


def test_each_certificate_carries_exactly_one_identity_uri(pki: PKIDir) -> None:
    seen = set()
    for ident, files in pki.identities():
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        assert uris == [ident.uri]
        seen.add(ident.uri)
    assert "spiffe://yrd-interop/region/320000/registry" in seen
    assert "spiffe://yrd-interop/region/340000/admin/admin-b" in seen
    assert "spiffe://yrd-interop/gateway" in seen


def test_gateway_certificate_serves_localhost(pki: PKIDir) -> None:
    cert = x509.load_pem_x509_certificate(pki.gateway().cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


def test_private_keys_are_mode_0600(pki: PKIDir) -> None:
    keys = [pki.ca_key, *pki.root.glob("**/key.pem"), *pki.root.glob("**/signing-key.pem")]
    assert len(keys) == 1 + 13 * 2
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(pki.ca_cert.stat().st_mode) == 0o644


def test_issue_new_region_and_admin(tmp_path: Path, pki: PKIDir) -> None:
    local = PKIDir(tmp_path / "pki")
    local.root.mkdir()
    for name in ("ca.pem", "ca-key.pem", "crl.pem"):
        (local.root / name).write_bytes((pki.root / name).read_bytes())
    gd = issue(local, Role.REGISTRY, "440000")
    ident = identity_of(x509.load_pem_x509_certificate(gd.cert.read_bytes()))
    assert (ident.role, ident.region) == (Role.REGISTRY, "440000")
    assert _openssl_verify(local, gd.cert).returncode == 0
    extra = issue(local, Role.ADMIN, "310000", "admin-c")
    assert identity_of(x509.load_pem_x509_certificate(extra.cert.read_bytes())).name == "admin-c"


def test_bad_region_or_name_is_refused(pki: PKIDir) -> None:
    with pytest.raises(PKIError):
        issue(pki, Role.REGISTRY, "31")
    with pytest.raises(PKIError):
        issue(pki, Role.ADMIN, "310000", "Bad Name")


def test_revoke_adds_serial_to_signed_crl(tmp_path: Path) -> None:
    from gateway.security.pki import init

    local = PKIDir(tmp_path / "pki")
    init(local, regions=("310000",), admins=("admin-a",))
    assert revoked_serials(local) == frozenset()
    serial = revoke(local, local.registry("310000").cert)
    serial2 = revoke(local, local.admin("310000", "admin-a").cert)
    assert revoked_serials(local) == {serial, serial2}
    crl = x509.load_pem_x509_crl(local.crl.read_bytes())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
    result = subprocess.run(
        ["openssl", "crl", "-in", str(local.crl), "-CAfile", str(local.ca_cert), "-noout"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "verify OK" in (result.stdout + result.stderr)


def test_init_refuses_to_overwrite(pki: PKIDir) -> None:
    from gateway.security.pki import init

    with pytest.raises(PKIError, match="already holds a CA"):
        init(pki)


def test_expired_certificate_can_be_made_for_tests(tmp_path: Path) -> None:
    from gateway.security.pki import init

    local = PKIDir(tmp_path / "pki")
    init(local, regions=("310000",), admins=())
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    files = issue(
        local,
        Role.REGISTRY,
        "310000",
        not_valid_before=past,
        not_valid_after=past + dt.timedelta(days=1),
    )
    result = _openssl_verify(local, files.cert)
    assert result.returncode != 0 and "expired" in (result.stdout + result.stderr)
