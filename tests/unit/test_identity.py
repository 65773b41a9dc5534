"""Identities come from exactly one SAN URI in the yrd-interop trust domain."""

from __future__ import annotations

import pytest
from cryptography import x509

from gateway.security.identity import Identity, IdentityError, Role, identity_of, parse_uri
from gateway.security.pki import PKIDir


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("spiffe://yrd-interop/region/310000/registry", Identity(Role.REGISTRY, "310000")),
        (
            "spiffe://yrd-interop/region/340000/admin/admin-b",
            Identity(Role.ADMIN, "340000", "admin-b"),
        ),
        ("spiffe://yrd-interop/gateway", Identity(Role.GATEWAY, None)),
    ],
)
def test_parse_valid_uris(uri: str, expected: Identity) -> None:
    assert parse_uri(uri) == expected
    assert parse_uri(uri).uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        "spiffe://other-domain/region/310000/registry",
        "spiffe://yrd-interop/region/31000/registry",
        "spiffe://yrd-interop/region/310000/operator",
        "spiffe://yrd-interop/region/310000/admin/",
        "spiffe://yrd-interop/region/310000/admin/Admin_A",
        "spiffe://yrd-interop/region/310000/registry/extra",
    ],
)
def test_reject_malformed_uris(uri: str) -> None:
    with pytest.raises(IdentityError):
        parse_uri(uri)


def test_identity_of_dev_certificates(pki: PKIDir) -> None:
    for region in ("310000", "320000", "330000", "340000"):
        cert = x509.load_pem_x509_certificate(pki.registry(region).cert.read_bytes())
        ident = identity_of(cert)
        assert (ident.role, ident.region, ident.name) == (Role.REGISTRY, region, None)
        assert ident.serial_number == cert.serial_number
        admin = x509.load_pem_x509_certificate(pki.admin(region, "admin-a").cert.read_bytes())
        assert identity_of(admin).actor == "admin/admin-a"
