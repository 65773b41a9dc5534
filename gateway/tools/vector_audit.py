"""Vectors for what audit entries commit to (docs/protocol.md §8.3): detail rule 2's digests and
the comparison of a stored row with the entry that wrote it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from gateway.security import audit_chain
from gateway.tools.vector_cases import Json, document

_BASE = dt.datetime(2025, 1, 1, 0, 5, tzinfo=dt.UTC)
_RECOGNITION_BODY = (
    '{"group": "579f6f8051f33123", "id": "579f6f8051f33123-310000", "state": "approved", '
    '"注": "审阅 reviewed"}'
)
"""A stored recognition body (its exact bytes matter, not its shape)."""
_REGISTRY_BLOCKS = [
    ("340000", 60_001_000, 70_000_999, "active"),
    ("310000", 1_000_001_000, 1_392_700_999, "active"),
    ("340000", 1_000, 10_000_999, "retired"),
]


def _entry(
    sequence: int, kind: str, subject: str, region: str, actor: str, detail: Json, previous: bytes
) -> tuple[audit_chain.EntryFields, bytes]:
    fields = audit_chain.EntryFields(
        sequence=sequence,
        kind=kind,
        subject=subject,
        actor_region=region,
        actor=actor,
        detail=audit_chain.canonical_json(detail),
        previous_hash=previous,
        created_at=_BASE + dt.timedelta(seconds=sequence),
    )
    return fields, audit_chain.entry_hash(fields)


def _show(e: audit_chain.EntryFields, digest: bytes) -> Json:
    micros = (e.created_at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    return {
        "sequence": e.sequence,
        "kind": e.kind,
        "subject": e.subject,
        "actor_region": e.actor_region,
        "actor": e.actor,
        "detail_text": e.detail.decode(),
        "previous_hash": e.previous_hash.hex(),
        "create_time_micros": micros,
        "entry_hash": digest.hex(),
    }


def commitment_vectors() -> Json:
    """C1: a rule-2 recognition entry and the stored body it commits to; C2: a rule-2 snapshot
    entry and the registry's blocks; each with a tampered stored value that MUST be named."""
    body = _RECOGNITION_BODY.encode()
    c1, h1 = _entry(
        1,
        "recognition.approved",
        "recognitions/579f6f8051f33123-310000",
        "310000",
        "admin/admin-b",
        {
            "v": audit_chain.DETAIL_RULE,
            "approvals": 2,
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "comment": "同意互认 / approved",
            "envelope_hash": "12" * 32,
            "recognising_region": "310000",
            "required_approvals": 2,
            "state": "approved",
            "subject": "regions/340000/methodologies/AH-FFX-PV-2024-02",
            "version": "1",
        },
        audit_chain.GENESIS,
    )
    lines = "".join(
        json.dumps(list(row), separators=(",", ":")) + "\n" for row in sorted(_REGISTRY_BLOCKS)
    )
    digest = audit_chain.blocks_digest(_REGISTRY_BLOCKS)
    if hashlib.sha256(lines.encode()).hexdigest() != digest:
        raise AssertionError("the displayed digest input disagrees with blocks_digest")
    c2, h2 = _entry(
        2,
        "reconciliation.snapshot",
        "regions/310000/snapshots/2",
        "310000",
        "310000/registry",
        {
            "v": audit_chain.DETAIL_RULE,
            "blocks": len(_REGISTRY_BLOCKS),
            "completed_transfers": ["regions/340000/transfers/ah-sh-2025-001"],
            "quantity_grams": sum(e - s + 1 for _, s, e, _ in _REGISTRY_BLOCKS),
            "registry_blocks_sha256": digest,
            "snapshot_time": "2025-01-01T00:00:00+00:00",
        },
        h1,
    )
    tampered_body = body.replace(b'"approved"', b'"rejected"')
    tampered_blocks = [(o, s, e, "active") for o, s, e, _ in _REGISTRY_BLOCKS]
    return document(
        "audit-commitments",
        "docs/protocol.md §8.3 (detail rule 2; verifying stored rows)",
        'Entries written under detail rule 2 (their detail has "v": 2) and the stored values '
        "they commit to. A verifier recomputes each digest from the stored row and compares; "
        "the tampered values MUST be named (table and row) while the chain still verifies.",
        {},
        cases=[
            {
                "id": "C1",
                "entry": _show(c1, h1),
                "stored": {
                    "table": "recognitions",
                    "key": "id=579f6f8051f33123-310000",
                    "column": "body",
                    "value_text": _RECOGNITION_BODY,
                    "sha256": hashlib.sha256(body).hexdigest(),
                },
                "tampered": {
                    "value_text": tampered_body.decode(),
                    "sha256": hashlib.sha256(tampered_body).hexdigest(),
                    "expected": "recognitions id=579f6f8051f33123-310000: sha256(body) differs",
                },
            },
            {
                "id": "C2",
                "entry": _show(c2, h2),
                "stored": {
                    "table": "snapshot_blocks",
                    "key": "snapshot_id=2 side=registry",
                    "rows": [list(r) for r in _REGISTRY_BLOCKS],
                    "digest_input": lines,
                    "registry_blocks_sha256": digest,
                },
                "tampered": {
                    "rows": [list(r) for r in tampered_blocks],
                    "registry_blocks_sha256": audit_chain.blocks_digest(tampered_blocks),
                    "expected": "snapshot_blocks snapshot_id=2 side=registry: digest differs",
                },
            },
        ],
        head={"size": 2, "head_hash": h2.hex()},
    )
