"""Client-side verification of the gateway's audit log: anyone can check it end to end."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from gateway.client.connection import Connection
from gateway.security.audit_chain import (
    ENTRY_KINDS,
    ChainCheck,
    EntryFields,
    verify_chain,
    verify_tree_head,
)
from gateway.security.pki import load_signing_public_key
from gateway.security.signing import key_id_of


def verify_remote_log(client: Connection) -> ChainCheck:
    """Walk every entry, then check the signed tree head names the same size and head hash.

    The gateway's public key is read from the PKI directory (gateway/signing-key.pub.pem). An
    entry of a kind the protocol does not define (docs/protocol.md §8.1) is a finding, named
    after any fault of the chain itself: what it changed cannot be told, so it is not skipped.
    """
    head = client.tree_head()
    unknown: list[EntryFields] = []

    def entries() -> Iterator[tuple[EntryFields, bytes]]:
        for e in client.audit_entries():
            if e.sequence > head.size:
                continue
            fields = EntryFields(
                sequence=e.sequence,
                kind=e.kind,
                subject=e.subject,
                actor_region=e.actor_region,
                actor=e.actor,
                detail=e.detail,
                previous_hash=e.previous_hash,
                created_at=e.create_time.ToDatetime(tzinfo=dt.UTC),
            )
            if not unknown and fields.kind not in ENTRY_KINDS:
                unknown.append(fields)
            yield fields, e.entry_hash

    check = verify_chain(entries())
    if not check.ok:
        return check
    public_key = load_signing_public_key(client.pki.gateway().signing_public_key)
    if head.key_id != key_id_of(public_key):
        return ChainCheck(
            False, check.entries, check.head_hash, "tree head signed by an unknown key"
        )
    signed_at = head.sign_time.ToDatetime(tzinfo=dt.UTC)
    if not verify_tree_head(public_key, head.size, head.head_hash, signed_at, head.signature):
        return ChainCheck(False, check.entries, check.head_hash, "tree head signature invalid")
    if check.entries != head.size or check.head_hash != head.head_hash:
        return ChainCheck(
            False, check.entries, check.head_hash, "log does not match the signed tree head"
        )
    if unknown:
        bad = unknown[0]
        return ChainCheck(
            False,
            bad.sequence - 1,
            bad.previous_hash,
            f"entry {bad.sequence} is of kind {bad.kind!r}, which is not one this verifier "
            "knows (docs/protocol.md §8.1)",
            "audit_entries",
            f"sequence={bad.sequence}",
        )
    return check
