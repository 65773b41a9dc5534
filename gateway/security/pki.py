"""The federation PKI on disk: a root CA, TLS certificates carrying identities, a CRL, and
Ed25519 record-signing keys.

Layout under the PKI directory (see certs/README.md)::

    ca.pem  ca-key.pem  crl.pem
    gateway/{cert.pem,key.pem,signing-key.pem,signing-key.pub.pem,signing-keys.json}
    regions/<code>/registry/{cert.pem,key.pem,signing-key.pem,signing-key.pub.pem}
    regions/<code>/admin/<name>/{cert.pem,key.pem,signing-key.pem,signing-key.pub.pem}

Private keys are written with mode 0600. ``gateway/signing-keys.json`` lists the gateway's signing
keys, the earlier ones too, with their validity (``gateway_keys``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.security import gateway_keys
from gateway.security.identity import (
    NAME_PATTERN,
    REGION_PATTERN,
    Identity,
    Role,
    identity_of,
)
from mutual_recognition import DELTA_REGIONS

DEFAULT_ADMINS: tuple[str, ...] = ("admin-a", "admin-b")
CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=825)
_ORG = "Yangtze Delta carbon-inclusive federation"


class PKIError(Exception):
    """The PKI directory is missing, inconsistent or asked for something impossible."""


@dataclass(frozen=True, slots=True)
class IdentityFiles:
    """Paths of one identity's TLS certificate and keys."""

    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def key(self) -> Path:
        return self.directory / "key.pem"

    @property
    def signing_key(self) -> Path:
        return self.directory / "signing-key.pem"

    @property
    def signing_public_key(self) -> Path:
        return self.directory / "signing-key.pub.pem"


@dataclass(frozen=True, slots=True)
class PKIDir:
    """A PKI directory laid out by ``yrdgw pki init``."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca-key.pem"

    @property
    def crl(self) -> Path:
        return self.root / "crl.pem"

    def identity_dir(self, role: Role, region: str | None = None, name: str | None = None) -> Path:
        """Where the files of an identity live."""
        if role is Role.GATEWAY:
            return self.root / "gateway"
        if region is None or not REGION_PATTERN.match(region):
            raise PKIError(f"region must be a six-digit GB/T 2260 code, got {region!r}")
        if role is Role.REGISTRY:
            return self.root / "regions" / region / "registry"
        if name is None or not NAME_PATTERN.match(name):
            raise PKIError(f"administrator name must match {NAME_PATTERN.pattern}, got {name!r}")
        return self.root / "regions" / region / "admin" / name

    def files(
        self, role: Role, region: str | None = None, name: str | None = None
    ) -> IdentityFiles:
        """The files of one identity."""
        return IdentityFiles(self.identity_dir(role, region, name))

    def gateway(self) -> IdentityFiles:
        return self.files(Role.GATEWAY)

    def registry(self, region: str) -> IdentityFiles:
        return self.files(Role.REGISTRY, region)

    def admin(self, region: str, name: str) -> IdentityFiles:
        return self.files(Role.ADMIN, region, name)

    def identities(self) -> Iterator[tuple[Identity, IdentityFiles]]:
        """Every identity whose certificate is on disk."""
        for cert_path in sorted(self.root.glob("**/cert.pem")):
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            yield identity_of(cert), IdentityFiles(cert_path.parent)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # O_CREAT's mode does not apply to a file that already existed


def _private_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def load_ca(pki: PKIDir) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The root CA certificate and key."""
    if not pki.ca_cert.exists() or not pki.ca_key.exists():
        raise PKIError(f"no CA in {pki.root}; run `yrdgw pki init --dir {pki.root}`")
    cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PKIError("CA key is not an EC key")
    return cert, key


def create_ca(pki: PKIDir, common_name: str = "YRD Interop Federation Root CA") -> None:
    """Create the federation root CA and an empty CRL."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name, "federation")
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(pki.ca_key, _private_pem(key), private=True)
    _write(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
    write_crl(pki, [])


def issue(
    pki: PKIDir,
    role: Role,
    region: str | None = None,
    name: str | None = None,
    *,
    not_valid_before: dt.datetime | None = None,
    not_valid_after: dt.datetime | None = None,
) -> IdentityFiles:
    """Issue a TLS certificate and an Ed25519 record-signing key for one identity."""
    ca_cert, ca_key = load_ca(pki)
    files = pki.files(role, region, name)
    ident = Identity(role=role, region=None if role is Role.GATEWAY else region, name=name)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    start = not_valid_before or now - dt.timedelta(minutes=5)
    end = not_valid_after or min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc)
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(ident.uri)]
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if role is Role.GATEWAY:
        sans += [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(str(ident), role.value))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    signing = ed25519.Ed25519PrivateKey.generate()
    _write(files.key, _private_pem(key), private=True)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(files.signing_key, _private_pem(signing), private=True)
    _write(
        files.signing_public_key,
        signing.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        private=False,
    )
    if role is Role.GATEWAY:  # tree heads and reports signed earlier stay verifiable
        gateway_keys.record_key(
            files.directory,
            signing.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            ),
            now,
        )
    return files


def init(
    pki: PKIDir,
    regions: Iterable[str] = DELTA_REGIONS,
    admins: Iterable[str] = DEFAULT_ADMINS,
) -> list[IdentityFiles]:
    """Create a complete dev PKI: CA, gateway, and per region a registry and administrators."""
    if pki.ca_cert.exists():
        raise PKIError(f"{pki.root} already holds a CA; choose another directory")
    create_ca(pki)
    made = [issue(pki, Role.GATEWAY)]
    admin_names = tuple(admins)
    for region in regions:
        made.append(issue(pki, Role.REGISTRY, region))
        made.extend(issue(pki, Role.ADMIN, region, admin) for admin in admin_names)
    return made


def revoked_serials(pki: PKIDir) -> frozenset[int]:
    """Serial numbers on the CRL, after checking the CRL is signed by the CA."""
    if not pki.crl.exists():
        return frozenset()
    crl = x509.load_pem_x509_crl(pki.crl.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_public = ca_cert.public_key()
    if not isinstance(ca_public, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(
        ca_public
    ):
        raise PKIError(f"{pki.crl} is not signed by {pki.ca_cert}")
    return frozenset(entry.serial_number for entry in crl)


def write_crl(pki: PKIDir, serials: Iterable[int]) -> None:
    """Write a CRL listing exactly the given serial numbers, signed by the CA."""
    ca_cert, ca_key = load_ca(pki)
    now = _now()
    number = 1
    if pki.crl.exists():
        old = x509.load_pem_x509_crl(pki.crl.read_bytes())
        try:
            number = old.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
        except x509.ExtensionNotFound:
            number = 1
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=30))
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial in sorted(set(serials)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())
    _write(pki.crl, crl.public_bytes(serialization.Encoding.PEM), private=False)


def revoke(pki: PKIDir, cert_path: Path) -> int:
    """Add a certificate to the CRL; returns its serial number."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ca_cert, _ = load_ca(pki)
    if cert.issuer != ca_cert.subject:
        raise PKIError(f"{cert_path} was not issued by this CA")
    write_crl(pki, revoked_serials(pki) | {cert.serial_number})
    return cert.serial_number


def load_signing_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """An Ed25519 private key from PEM."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise PKIError(f"{path} is not an Ed25519 private key")
    return key


def load_signing_public_key(path: Path) -> bytes:
    """The raw 32 bytes of an Ed25519 public key stored as PEM."""
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise PKIError(f"{path} is not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
