"""The signing-key directory: which Ed25519 keys sign for which region and owner."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.contract import key_name
from gateway.errors import (
    InvalidArgument,
    PermissionDenied,
    SigningKeyExists,
    SigningKeyInvalid,
    SigningKeyNotFound,
    SigningKeyRevoked,
    WrongRegion,
)
from gateway.security.identity import Identity, Role
from gateway.security.pki import PKIDir, load_signing_public_key
from gateway.security.signing import is_weak_public_key, key_id_of
from gateway.services import Clock, utc_now
from gateway.storage.audit_log import AuditLog, audit_log
from gateway.storage.db import Database
from gateway.storage.keys_store import SigningKeyStore
from gateway.storage.models import SigningKeyRow

_OWNER = re.compile(r"^(registry|admin/[a-z0-9][a-z0-9-]{0,62})$")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A key of the directory as the service layer hands it out."""

    key_id: str
    region: str
    owner: str
    public_key: bytes
    registered_at: dt.datetime
    revoked_at: dt.datetime | None
    revoke_reason: str | None
    last_sequence: int = 0
    last_hash: bytes = bytes(32)

    @classmethod
    def of(cls, row: SigningKeyRow) -> SigningKey:
        return cls(
            row.key_id,
            row.region,
            row.owner,
            row.public_key,
            row.registered_at,
            row.revoked_at,
            row.revoke_reason,
            row.last_sequence,
            row.last_hash,
        )


def _audit_key(
    audit: AuditLog, kind: str, key: SigningKeyRow, actor: Identity, now: dt.datetime
) -> None:
    audit.append(
        kind=kind,
        subject=key_name(key.region, key.key_id),
        actor_region=actor.region or "",
        actor=actor.actor,
        detail={
            "key_id": key.key_id,
            "owner": key.owner,
            "public_key": key.public_key.hex(),
            "revoke_reason": key.revoke_reason,
        },
        now=now,
    )


class KeyDirectory:
    """Registers, revokes and looks up record-signing keys."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self.db = db
        self.clock = clock

    def register(
        self, caller: Identity, owner: str, public_key: bytes, region: str | None = None
    ) -> SigningKey:
        """Bind public_key to the caller's region (the gateway may name any region)."""
        if caller.role is Role.REGISTRY:
            raise PermissionDenied("only administrators register signing keys")
        target = region if caller.role is Role.GATEWAY else caller.region
        if region is not None and caller.role is not Role.GATEWAY and region != caller.region:
            raise WrongRegion(
                f"an administrator of {caller.region} cannot register keys for {region}"
            )
        if target is None:
            raise InvalidArgument("region is required", field_errors={"region": "required"})
        if not _OWNER.match(owner):
            raise InvalidArgument(
                "owner must be 'registry' or 'admin/<name>'", field_errors={"owner": "invalid"}
            )
        if len(public_key) != 32:
            raise SigningKeyInvalid(
                f"an Ed25519 public key has 32 bytes, got {len(public_key)}",
                field_errors={"public_key": "must be 32 raw bytes"},
            )
        if is_weak_public_key(public_key):
            raise SigningKeyInvalid(
                "the public key is a point of small order: signatures under it prove nothing",
                field_errors={"public_key": "a weak (small-order) Ed25519 key"},
            )
        key_id = key_id_of(public_key)
        now = self.clock()
        with self.db.transaction() as session:
            # Under the audit head's lock (which the append below takes anyway), so a repeated
            # registration racing the first waits for it and then sees it, instead of colliding
            # on the primary key (PostgreSQL reads without waiting).
            audit = audit_log(session.connection())
            keys = SigningKeyStore(session)
            existing = keys.get(key_id)
            if existing is not None:
                if (
                    existing.region == target
                    and existing.owner == owner
                    and existing.revoked_at is None
                ):
                    return SigningKey.of(existing)  # same registration again: idempotent
                raise SigningKeyExists(
                    f"key {key_id} is already registered", metadata={"key_id": key_id}
                )
            row = keys.add(
                key_id=key_id,
                region=target,
                owner=owner,
                public_key=public_key,
                registered_at=now,
                registered_by=str(caller),
            )
            _audit_key(audit, "signing_key.registered", row, caller, now)
            return SigningKey.of(row)

    def revoke(self, caller: Identity, key_id: str, reason: str) -> SigningKey:
        """Revoke a key of the caller's region; it signs nothing from now on. Asked again with the
        same reason, answers as the first time; with another reason, refused."""
        if caller.role is Role.REGISTRY:
            raise PermissionDenied("only administrators revoke signing keys")
        if not reason.strip():
            raise InvalidArgument("a reason is required", field_errors={"reason": "required"})
        now = self.clock()
        with self.db.transaction() as session:
            keys = SigningKeyStore(session)
            row = keys.get_for_update(key_id)
            if row is None:
                raise SigningKeyNotFound(f"no signing key {key_id}", metadata={"key_id": key_id})
            if caller.role is Role.ADMIN and row.region != caller.region:
                raise WrongRegion(f"key {key_id} belongs to {row.region}, not {caller.region}")
            if row.revoked_at is not None:
                if row.revoke_reason == reason.strip():
                    return SigningKey.of(row)  # the same revocation again: the first answer
                raise SigningKeyRevoked(
                    f"key {key_id} is already revoked", metadata={"key_id": key_id}
                )
            keys.revoke(row, now, reason.strip())
            _audit_key(audit_log(session.connection()), "signing_key.revoked", row, caller, now)
            return SigningKey.of(row)

    def list(
        self, region: str | None = None, include_revoked: bool = False
    ) -> Sequence[SigningKey]:
        with self.db.transaction() as session:
            return [
                SigningKey.of(r) for r in SigningKeyStore(session).list(region, include_revoked)
            ]

    def get(self, key_id: str) -> SigningKey:
        with self.db.transaction() as session:
            row = SigningKeyStore(session).get(key_id)
            if row is None:
                raise SigningKeyNotFound(f"no signing key {key_id}", metadata={"key_id": key_id})
            return SigningKey.of(row)

    def import_from_pki(self, pki: PKIDir) -> int:
        """Register every registry's and administrator's signing key found in the PKI directory.

        Keys already registered are left as they are, so this is safe at every start. Returns how
        many keys were added.
        """
        gateway = Identity(role=Role.GATEWAY, region=None)
        added = 0
        for ident, files in pki.identities():
            if ident.role is Role.GATEWAY or not files.signing_public_key.exists():
                continue
            public_key = load_signing_public_key(files.signing_public_key)
            with self.db.transaction() as session:
                if SigningKeyStore(session).get(key_id_of(public_key)) is not None:
                    continue
            self.register(gateway, ident.actor, public_key, region=ident.region)
            added += 1
        return added
