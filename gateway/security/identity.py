"""Caller identity: the region and role carried in a certificate's one SAN URI.

URIs: ``spiffe://yrd-interop/region/<code>/registry``, ``spiffe://yrd-interop/region/<code>/admin/<name>``
and ``spiffe://yrd-interop/gateway``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

TRUST_DOMAIN = "yrd-interop"
_REGION = r"(?P<region>\d{6})"
_NAME = r"(?P<name>[a-z0-9][a-z0-9-]{0,62})"
_REGISTRY_URI = re.compile(rf"^spiffe://{TRUST_DOMAIN}/region/{_REGION}/registry$")
_ADMIN_URI = re.compile(rf"^spiffe://{TRUST_DOMAIN}/region/{_REGION}/admin/{_NAME}$")
_GATEWAY_URI = f"spiffe://{TRUST_DOMAIN}/gateway"

NAME_PATTERN = re.compile(rf"^{_NAME}$")
REGION_PATTERN = re.compile(rf"^{_REGION}$")


class Role(enum.StrEnum):
    """What a certificate holder may be."""

    REGISTRY = "registry"
    ADMIN = "admin"
    GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling, as proven by the peer certificate."""

    role: Role
    region: str | None
    """Region code; None only for the gateway role."""
    name: str | None = None
    """Administrator name; None for registries and the gateway."""
    serial_number: int = 0
    """Certificate serial, checked against the revocation list."""

    @property
    def uri(self) -> str:
        """The SAN URI that carries this identity."""
        if self.role is Role.GATEWAY:
            return _GATEWAY_URI
        base = f"spiffe://{TRUST_DOMAIN}/region/{self.region}"
        return f"{base}/registry" if self.role is Role.REGISTRY else f"{base}/admin/{self.name}"

    @property
    def actor(self) -> str:
        """Short label for logs and audit entries: ``registry``, ``admin/<name>`` or ``gateway``."""
        return f"admin/{self.name}" if self.role is Role.ADMIN else self.role.value

    def __str__(self) -> str:
        return self.actor if self.region is None else f"{self.region}/{self.actor}"


class IdentityError(ValueError):
    """The certificate does not carry exactly one valid identity URI."""


def parse_uri(uri: str) -> Identity:
    """Parse one SAN URI into an identity (without a serial number)."""
    if uri == _GATEWAY_URI:
        return Identity(role=Role.GATEWAY, region=None)
    if m := _REGISTRY_URI.match(uri):
        return Identity(role=Role.REGISTRY, region=m["region"])
    if m := _ADMIN_URI.match(uri):
        return Identity(role=Role.ADMIN, region=m["region"], name=m["name"])
    raise IdentityError(f"not a yrd-interop identity URI: {uri!r}")


def identity_of(cert: x509.Certificate) -> Identity:
    """The identity of a certificate: exactly one SAN URI in the yrd-interop trust domain."""
    # Imported here, not with the module: the command line's options need Role alone, and x509
    # would add ~60 ms to every start of `yrdgw`.
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise IdentityError("certificate has no subjectAltName") from exc
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier)]
    ours = [u for u in uris if u.startswith(f"spiffe://{TRUST_DOMAIN}/")]
    if len(ours) != 1:
        raise IdentityError(f"certificate must carry exactly one identity URI, found {len(ours)}")
    ident = parse_uri(ours[0])
    return Identity(ident.role, ident.region, ident.name, cert.serial_number)


@lru_cache(maxsize=1024)
def identity_of_pem(pem: bytes) -> Identity:
    """identity_of for a PEM certificate, cached: a peer presents the same one on every call."""
    from cryptography import x509

    return identity_of(x509.load_pem_x509_certificate(pem))
