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
    ("340000", 1_000, 10_000_999, "active"),
]
"""A registry's snapshot; the ledger holds the same blocks but the last one retired."""
_STORED_BLOCKS = {
    "registry": [("340000", 1_000, 10_000_999, "active")],
    "ledger": [("340000", 1_000, 10_000_999, "retired")],
}
"""What ``snapshot_blocks`` keeps of it: the blocks the two sides do not hold alike."""
_STORED_TOTALS = [
    ("340000", "active", 20_000_000, 10_000_000),
    ("310000", "active", 392_700_000, 392_700_000),
    ("340000", "retired", 0, 10_000_000),
]
"""``snapshot_totals``: (origin, state, registry grams, ledger grams)."""


_EXTERNAL_ROW: Json = {
    "subject": "schemes/CCER/projects/CCER-2023-0042",
    "scheme": "CCER",
    "scheme_project_id": "CCER-2023-0042",
    "title": "青浦区金泽镇屋顶分布式光伏（CCER）",
    "owner_credit_code": "91310118MA1JL3K81K",
    "latitude": "31.048120",
    "longitude": "120.889350",
    "datum": None,
    "grid_account": "0310118004567",
    "category": "SCENARIO_CATEGORY_DISTRIBUTED_PV",
    "capacity_value": "400",
    "capacity_unit": "kW",
    "registration_date": dt.date(2023, 11, 20),
    "credit_start": dt.date(2023, 12, 1),
    "credit_end": None,
}
"""An ``external_projects`` row as stored (its committed columns; no datum: WGS-84)."""


def _text(row: Json) -> Json:
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()}


def _lines(rows: list[tuple[str | int, ...]]) -> str:
    """The digest input: sorted rows as canonical JSON arrays, one a line."""
    return "".join(json.dumps(list(row), separators=(",", ":")) + "\n" for row in sorted(rows))


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
    entry and the rows stored for it (the blocks the two sides do not hold alike, and the
    totals); C3: an external list's import and the external project row it stored (by its row
    digest); each with tampered stored values that MUST be named."""
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
    blocks = {side: audit_chain.blocks_digest(rows) for side, rows in _STORED_BLOCKS.items()}
    totals = audit_chain.totals_digest(_STORED_TOTALS)
    shown = {side: _lines(list(rows)) for side, rows in _STORED_BLOCKS.items()}
    for side, digest in blocks.items():
        if hashlib.sha256(shown[side].encode()).hexdigest() != digest:
            raise AssertionError("the displayed digest input disagrees with blocks_digest")
    if hashlib.sha256(_lines(list(_STORED_TOTALS)).encode()).hexdigest() != totals:
        raise AssertionError("the displayed digest input disagrees with totals_digest")
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
            "snapshot_time": "2025-01-01T00:00:00+00:00",
            "stored_blocks": {side: len(rows) for side, rows in _STORED_BLOCKS.items()},
            "stored_blocks_sha256": blocks,
            "totals_sha256": totals,
        },
        h1,
    )
    row_digest = audit_chain.external_row_digest(_EXTERNAL_ROW)
    row_input = audit_chain.canonical_json(_text(_EXTERNAL_ROW)).decode()
    if hashlib.sha256(row_input.encode()).hexdigest() != row_digest:
        raise AssertionError("the displayed digest input disagrees with external_row_digest")
    c3, h3 = _entry(
        3,
        "external_list.imported",
        "schemes/CCER",
        "",
        "operator/alice",
        {
            "v": audit_chain.DETAIL_RULE,
            "scheme": "CCER",
            "rows": 1,
            "digest": hashlib.sha256(b"the imported file's bytes").hexdigest(),
            "projects": [[_EXTERNAL_ROW["subject"], row_digest]],
        },
        h2,
    )
    tampered_row = {**_EXTERNAL_ROW, "grid_account": "0310118004568"}
    tampered_body = body.replace(b'"approved"', b'"rejected"')
    tampered_blocks = [("340000", 1_000, 10_000_999, "active")]  # the ledger's side, changed
    tampered_totals = [
        (o, st, r, led + 1 if st == "retired" else led) for o, st, r, led in _STORED_TOTALS
    ]
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
                    "snapshot_blocks": {
                        side: {
                            "key": f"snapshot_id=2 side={side}",
                            "rows": [list(r) for r in rows],
                            "digest_input": shown[side],
                            "sha256": blocks[side],
                        }
                        for side, rows in _STORED_BLOCKS.items()
                    },
                    "snapshot_totals": {
                        "key": "snapshot_id=2",
                        "rows": [list(r) for r in _STORED_TOTALS],
                        "digest_input": _lines(list(_STORED_TOTALS)),
                        "sha256": totals,
                    },
                },
                "tampered": [
                    {
                        "table": "snapshot_blocks",
                        "side": "ledger",
                        "rows": [list(r) for r in tampered_blocks],
                        "sha256": audit_chain.blocks_digest(tampered_blocks),
                        "expected": "snapshot_blocks snapshot_id=2 side=ledger: digest differs",
                    },
                    {
                        "table": "snapshot_totals",
                        "rows": [list(r) for r in tampered_totals],
                        "sha256": audit_chain.totals_digest(tampered_totals),
                        "expected": "snapshot_totals snapshot_id=2: digest differs",
                    },
                ],
            },
            {
                "id": "C3",
                "entry": _show(c3, h3),
                "stored": {
                    "table": "external_projects",
                    "key": f"subject={_EXTERNAL_ROW['subject']}",
                    "row": _text(_EXTERNAL_ROW),
                    "import_time_micros": _show(c3, h3)["create_time_micros"],
                    "imported_by": "operator/alice",
                    "digest_input": row_input,
                    "sha256": row_digest,
                },
                "tampered": {
                    "row": _text(tampered_row),
                    "sha256": audit_chain.external_row_digest(tampered_row),
                    "expected": f"external_projects subject={_EXTERNAL_ROW['subject']}: "
                    "sha256 differs",
                },
            },
        ],
        head={"size": 3, "head_hash": h3.hex()},
    )
