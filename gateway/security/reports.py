"""Signing and verifying reconciliation reports. Pure functions, no I/O.

The signed bytes are a domain tag and the canonical JSON (sorted keys, no spaces) of the report
with its ``signature`` and ``key_id`` cleared, so anyone holding the gateway's public key can check
a report downloaded as protobuf or as JSON.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf import json_format
from yrd.interop.v1 import reconciliation_pb2

from gateway.security.audit_chain import canonical_json
from gateway.security.signing import key_id_of, raw_public_key

REPORT_TAG = b"yrd-interop/v1/reconciliation-report"


def report_signing_input(report: reconciliation_pb2.ReconciliationReport) -> bytes:
    """The bytes the gateway signs: tag, NUL, canonical JSON of the unsigned report."""
    unsigned = reconciliation_pb2.ReconciliationReport()
    unsigned.CopyFrom(report)
    unsigned.ClearField("signature")
    unsigned.ClearField("key_id")
    body = json_format.MessageToDict(unsigned, preserving_proto_field_name=True)
    return REPORT_TAG + b"\x00" + canonical_json(body)


def sign_report(
    key: ed25519.Ed25519PrivateKey, report: reconciliation_pb2.ReconciliationReport
) -> None:
    """Set ``key_id`` and ``signature`` on the report."""
    report.signature = key.sign(report_signing_input(report))
    report.key_id = key_id_of(raw_public_key(key))


def verify_report(public_key: bytes, report: reconciliation_pb2.ReconciliationReport) -> bool:
    """True when ``report.signature`` is the key's signature over the report and the key id
    names that key."""
    if report.key_id != key_id_of(public_key):
        return False
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(
            report.signature, report_signing_input(report)
        )
    except (InvalidSignature, ValueError):
        return False
    return True
