"""The test vectors of the audit log, tree heads, reports and canonical JSON (§8, §9).

Computed with :mod:`gateway.security.audit_chain` and :mod:`gateway.security.reports`; see
:mod:`gateway.tools.vector_cases` for the document layout.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from yrd.interop.v1 import reconciliation_pb2, records_pb2

from gateway.security import audit_chain, reports
from gateway.tools.vector_cases import (
    GATEWAY_SEED,
    REGISTRY_SEED,
    Json,
    document,
    envelope_chain,
    example_key,
    lp_fields,
    rfc3339,
)

# -- audit log ---------------------------------------------------------------------------------


def _micros(when: dt.datetime) -> int:
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _entries() -> list[tuple[audit_chain.EntryFields, bytes]]:
    _, registry = example_key(REGISTRY_SEED)
    signed = envelope_chain()
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    rows = [
        (
            "signing_key.registered",
            f"regions/310000/keys/{registry['key_id']}",
            "",
            "gateway",
            {
                "key_id": registry["key_id"],
                "owner": "registry",
                "public_key": registry["public_key"],
                "revoke_reason": None,
            },
            base + dt.timedelta(microseconds=123_456),
        ),
        (
            "transfer.proposed",
            "regions/310000/transfers/t-0001",
            "310000",
            "registry",
            {
                "destination": "320000",
                "envelope_hash": signed[0]["expected"]["envelope_hash"],
                "quantity_grams": 1_000_000,
            },
            base + dt.timedelta(seconds=1, microseconds=1),
        ),
        (
            "transfer.cancelled",
            "regions/310000/transfers/t-0001",
            "310000",
            "registry",
            {"envelope_hash": signed[1]["expected"]["envelope_hash"], "reason": "发错地区 wrong"},
            base + dt.timedelta(seconds=61),
        ),
    ]
    entries = []
    previous = audit_chain.GENESIS
    for number, (kind, subject, region, actor, detail, when) in enumerate(rows, start=1):
        fields = audit_chain.EntryFields(
            sequence=number,
            kind=kind,
            subject=subject,
            actor_region=region,
            actor=actor,
            detail=audit_chain.canonical_json(detail),
            previous_hash=previous,
            created_at=when,
        )
        previous = audit_chain.entry_hash(fields)
        entries.append((fields, previous))
    return entries


def _entry_input(e: audit_chain.EntryFields) -> bytes:
    """The hashed bytes, rebuilt field by field for display (the hash is the implementation's)."""

    def lp(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    return b"".join(
        [
            lp(audit_chain.ENTRY_TAG),
            lp(struct.pack(">Q", e.sequence)),
            lp(e.kind.encode()),
            lp(e.subject.encode()),
            lp(e.actor_region.encode()),
            lp(e.actor.encode()),
            lp(e.detail),
            lp(e.previous_hash),
            lp(struct.pack(">q", _micros(e.created_at))),
        ]
    )


def audit_vectors() -> Json:
    """A log of three entries: each entry's hash input and hash (§8.1)."""
    cases = []
    entries = _entries()
    for i, (e, digest) in enumerate(entries, start=1):
        hashed = _entry_input(e)
        if hashlib.sha256(hashed).digest() != digest:
            raise AssertionError("the displayed hash input disagrees with audit_chain.entry_hash")
        micros = _micros(e.created_at)
        cases.append(
            {
                "id": f"A{i}",
                "input": {
                    "sequence": e.sequence,
                    "kind": e.kind,
                    "subject": e.subject,
                    "actor_region": e.actor_region,
                    "actor": e.actor,
                    "detail": e.detail.hex(),
                    "detail_text": e.detail.decode(),
                    "previous_hash": e.previous_hash.hex(),
                    "create_time": {
                        "seconds": micros // 1_000_000,
                        "nanos": (micros % 1_000_000) * 1000,
                        "rfc3339": rfc3339(micros // 1_000_000, (micros % 1_000_000) * 1000),
                    },
                    "create_time_micros": micros,
                },
                "expected": {
                    "hash_input": hashed.hex(),
                    "hash_input_fields": lp_fields(hashed),
                    "entry_hash": digest.hex(),
                },
            }
        )
    tampered_detail = entries[1][0].detail.replace(b"1000000", b"2000000")
    return document(
        "audit-chain",
        "docs/protocol.md §8.1 (entry hash)",
        "The first three entries of a log. Verifying them in order succeeds; the tampered case"
        " (entry 2's detail changed, hashes kept) MUST fail at entry 2.",
        {},
        cases=cases,
        head={"size": len(entries), "head_hash": entries[-1][1].hex()},
        tampered={
            "description": "Entry A2 with this detail instead, every stored hash unchanged.",
            "entry": 2,
            "detail": tampered_detail.hex(),
            "expected": {"first_bad_entry": 2, "verified_entries": 1},
        },
    )


def tree_head_vectors() -> Json:
    """Signed tree heads over the log of :func:`audit_vectors` (§8.2)."""
    key, gateway = example_key(GATEWAY_SEED)
    entries = _entries()
    heads = [
        ("T0", 0, audit_chain.GENESIS, dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),
        ("T1", 1, entries[0][1], dt.datetime(2025, 1, 1, 0, 0, 1, tzinfo=dt.UTC)),
        ("T3", 3, entries[2][1], dt.datetime(2025, 1, 1, 0, 2, 0, 250_000, tzinfo=dt.UTC)),
    ]
    cases = []
    for case_id, size, head, when in heads:
        signed = audit_chain.tree_head_input(size, head, when)
        micros = _micros(when)
        cases.append(
            {
                "id": case_id,
                "input": {
                    "size": size,
                    "head_hash": head.hex(),
                    "sign_time": {
                        "seconds": micros // 1_000_000,
                        "nanos": (micros % 1_000_000) * 1000,
                        "rfc3339": rfc3339(micros // 1_000_000, (micros % 1_000_000) * 1000),
                    },
                    "sign_time_micros": micros,
                },
                "expected": {
                    "signing_input": signed.hex(),
                    "signing_input_fields": lp_fields(signed),
                    "signature": audit_chain.sign_tree_head(key, size, head, when).hex(),
                    "key_id": gateway["key_id"],
                },
            }
        )
    return document(
        "tree-head",
        "docs/protocol.md §8.2 (signed tree head)",
        "Tree heads signed by the gateway key: the empty log, after A1, after A3"
        " (see audit-chain.json).",
        {"gateway": gateway},
        cases=cases,
    )


# -- reconciliation reports and canonical JSON -------------------------------------------------


def _stamp(text: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromJsonString(text)
    return stamp


def _reports() -> list[tuple[str, str, reconciliation_pb2.ReconciliationReport]]:
    r1 = reconciliation_pb2.ReconciliationReport(
        name="reconciliations/7",
        region="320000",
        snapshot_time=_stamp("2025-01-02T18:00:00Z"),
        status=reconciliation_pb2.RECONCILIATION_STATUS_UNIT_BLOCKS_INCONSISTENT,
        discrepancies=[
            reconciliation_pb2.Discrepancy(
                kind=reconciliation_pb2.DISCREPANCY_KIND_LEDGER_ONLY,
                origin_region="310000",
                ranges=[records_pb2.SerialRange(start=1_000_001_000, end=1_000_001_999)],
                quantity_grams=1000,
                detail="the ledger gives these to the registry as active; it does not claim them",
            )
        ],
        finish_time=_stamp("2025-01-03T02:00:00.250Z"),
    )
    r2 = reconciliation_pb2.ReconciliationReport(
        name="reconciliations/8",
        region="330000",
        snapshot_time=_stamp("2025-01-02T18:00:00.000001Z"),
        status=reconciliation_pb2.RECONCILIATION_STATUS_TRANSFERS_INCONSISTENT,
        discrepancies=[
            reconciliation_pb2.Discrepancy(
                kind=reconciliation_pb2.DISCREPANCY_KIND_TRANSFER_UNKNOWN_TO_REGISTRY,
                origin_region="310000",
                transfer_ids=["regions/310000/transfers/t-0001"],
                quantity_grams=9_007_199_254_740_993,
                detail='完成的转让 "t-0001" 未列出',
            )
        ],
        finish_time=_stamp("2025-01-03T02:00:00.000000123Z"),
    )
    r3 = reconciliation_pb2.ReconciliationReport(
        name="reconciliations/9",
        region="340000",
        snapshot_time=_stamp("2025-01-02T18:00:00Z"),
        status=reconciliation_pb2.RECONCILIATION_STATUS_COMPLETED,
        finish_time=_stamp("2025-01-03T02:00:00Z"),
    )
    return [
        ("R1", "The worked example of §9.2: one LEDGER_ONLY discrepancy.", r1),
        (
            "R2",
            "A transfer discrepancy: Chinese text and a quote in a string, an int64 above 2^53"
            " (a decimal string in JSON), timestamps with 6 and 9 fractional digits.",
            r2,
        ),
        ("R3", "A clean run: no discrepancies, so the member is omitted.", r3),
    ]


def report_vectors() -> Json:
    """Reconciliation report signatures (§9.2)."""
    key, gateway = example_key(GATEWAY_SEED)
    cases = []
    for case_id, description, report in _reports():
        signed = reports.report_signing_input(report)
        signed_report = reconciliation_pb2.ReconciliationReport()
        signed_report.CopyFrom(report)
        reports.sign_report(key, signed_report)
        body = signed[len(reports.REPORT_TAG) + 1 :]
        cases.append(
            {
                "id": case_id,
                "description": description,
                "input": {
                    "report_proto": report.SerializeToString().hex(),
                    "report_json": json_format.MessageToDict(
                        report, preserving_proto_field_name=True
                    ),
                },
                "expected": {
                    "canonical_json": body.decode(),
                    "signing_input": signed.hex(),
                    "signature": signed_report.signature.hex(),
                    "key_id": signed_report.key_id,
                    "signed_report_proto": signed_report.SerializeToString().hex(),
                },
            }
        )
    return document(
        "reconciliation-report",
        "docs/protocol.md §9.2 (report signature), §9.1 (canonical JSON)",
        "report_proto is the unsigned report (signature and key_id empty) in protobuf;"
        " signed_report_proto is the report as GetReconciliationReport returns it.",
        {"gateway": gateway},
        cases=cases,
    )


CANONICAL_CASES: list[tuple[str, str, str]] = [
    (
        "J1",
        "The example of §9.1: keys sorted at every level, escapes, non-ASCII kept, '/' as is.",
        '{"b":[1,null,true],"a":"上海\\u0001\\"/","A":{"z":1,"y":2.5}}',
    ),
    (
        "J2",
        "Keys compared by code point: U+FFFF sorts before U+1F600 (UTF-16 order would not).",
        '{"\\ud83d\\ude00":1,"\\uffff":2,"é":3,"z":4,"Z":5,"":6}',
    ),
    (
        "J3",
        "Control characters: the short escapes, others as \\u00XX in lower-case hex; DEL and"
        " U+2028 as themselves.",
        '{"s":"\\b\\f\\n\\r\\t\\u0000\\u001f\\u007f\\u2028\\\\"}',
    ),
    (
        "J4",
        "Nesting, empty containers, negative integers, false; arrays keep their order.",
        '{"list":[{"b":{},"a":[]},-12,0,false,"x"],"n":-9007199254740991}',
    ),
    (
        "J5",
        "An audit detail as the gateway writes it (A1 of audit-chain.json).",
        '{"revoke_reason":null,"public_key":"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",'
        '"owner":"registry","key_id":"34750f98bd59fcfc946da45aaabe933b"}',
    ),
]
"""(id, description, input as JSON text) — the input's own formatting is irrelevant."""


def canonical_json_vectors() -> Json:
    """Canonical JSON (§9.1): each input value and its canonical UTF-8 bytes."""
    cases = []
    for case_id, description, text in CANONICAL_CASES:
        out = audit_chain.canonical_json(json.loads(text))
        cases.append(
            {
                "id": case_id,
                "description": description,
                "input_json": text,
                "expected": {"text": out.decode(), "utf8": out.hex()},
            }
        )
    return document(
        "canonical-json",
        "docs/protocol.md §9.1 (canonical JSON)",
        "input_json is any JSON text of the value; expected is its canonical form.",
        {},
        cases=cases,
    )
