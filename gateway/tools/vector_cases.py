"""The test vectors of ``docs/protocol.md``, computed with the gateway's own functions.

Each ``*_vectors`` function returns one JSON-ready document (``docs/vectors/{name}.json``): the
keys it uses (Ed25519 seed and raw public key, hex), the inputs, and the expected bytes, hashes and
signatures (hex). Everything is fixed (seeds, times, payloads) and Ed25519 is deterministic, so
the documents are the same on every run. No I/O here; :mod:`gateway.tools.vectors` writes them.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from yrd.interop.v1 import (
    duplicate_service_pb2,
    duplicates_pb2,
    records_pb2,
    transfer_pb2,
    transfer_service_pb2,
)

from gateway import contract
from gateway.security import signing

GENERATED_BY = "python -m gateway.tools.vectors docs/vectors"
Json = dict[str, Any]

REGISTRY_SEED = bytes([0x01]) * 32
"""The example registry key of §5 (Shanghai's registry in every vector)."""
GATEWAY_SEED = bytes([0x02]) * 32
"""The example gateway key of §5 (tree heads and reports)."""
OTHER_SEED = bytes([0x03]) * 32
"""A key that is not the registry's (the tampered vector signed by the wrong key)."""
ADMIN_SEED = bytes([0x04]) * 32
"""An administrator's key (the signed case verdicts)."""


def example_key(seed: bytes) -> tuple[ed25519.Ed25519PrivateKey, Json]:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    public = signing.raw_public_key(private)
    return private, {
        "seed": seed.hex(),
        "public_key": public.hex(),
        "key_id": signing.key_id_of(public),
    }


def lp_fields(data: bytes) -> list[str]:
    """Split a concatenation of LP(x) fields back into the hex of each ``u32be(len) || x``."""
    fields, at = [], 0
    while at < len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        fields.append(data[at : at + 4 + size].hex())
        at += 4 + size
    return fields


def rfc3339(seconds: int, nanos: int) -> str:
    stamp = Timestamp(seconds=seconds, nanos=nanos)
    return stamp.ToJsonString()


def document(name: str, spec: str, description: str, keys: Json, **body: Any) -> Json:
    return {
        "construction": name,
        "spec": spec,
        "description": description,
        "generated_by": GENERATED_BY,
        "keys": keys,
        **body,
    }


def key_vectors() -> Json:
    """Key ids of the example keys (§5)."""
    keys = {"registry": example_key(REGISTRY_SEED)[1], "gateway": example_key(GATEWAY_SEED)[1]}
    keys["other"] = example_key(OTHER_SEED)[1]
    return document(
        "keys",
        "docs/protocol.md §5 (key id)",
        "Ed25519 seeds (RFC 8032 private keys), raw public keys and key ids"
        " (first 32 hex characters of SHA-256 of the raw public key).",
        keys,
    )


# -- envelopes ---------------------------------------------------------------------------------

E1_PAYLOAD = transfer_service_pb2.TransferProposal(
    transfer_id="t-0001",
    destination_region="320000",
    units=transfer_pb2.UnitSelection(
        ranges=transfer_pb2.SerialRanges(
            origin_region="310000",
            ranges=[records_pb2.SerialRange(start=1_000_001_000, end=1_001_000_999)],
        )
    ),
    purpose=transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
)
E2_PAYLOAD = transfer_service_pb2.TransferAnswer(
    transfer="regions/310000/transfers/t-0001",
    reason="wrong destination",
    decision=transfer_service_pb2.TRANSFER_DECISION_CANCEL,
)
E3_PAYLOAD = transfer_service_pb2.RetirementOrder(
    retirement_id="r-0001",
    units=transfer_pb2.UnitSelection(
        ranges=transfer_pb2.SerialRanges(
            origin_region="310000",
            ranges=[records_pb2.SerialRange(start=1_000_001_000, end=1_001_000_999)],
        )
    ),
    purpose=transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
    beneficiary="上海某电力有限公司",
    compliance_year=2025,
    declared_obligation_grams=100_000_000_000,
)
NATIVE_PAYLOAD = (
    b'{"record_type":"issuance","issuance_no":"SHCI-I-2025-000045",'
    b'"project_no":"SHCI-P-2024-000123","vintage":2024,"serial_start":1000001,'
    b'"serial_end":1392700}'
)
"""A Shanghai native document, as bytes (the signature covers the bytes, not a parse of them)."""


def _envelope_case(
    case_id: str,
    description: str,
    key: ed25519.Ed25519PrivateKey,
    content_type: str,
    payload: bytes,
    sequence: int,
    previous_hash: bytes,
    seconds: int,
    nanos: int,
    message: Message | None = None,
) -> Json:
    fields = signing.EnvelopeFields(
        content_type=content_type,
        payload=payload,
        key_id=signing.key_id_of(signing.raw_public_key(key)),
        sequence=sequence,
        previous_hash=previous_hash,
        sign_time_seconds=seconds,
        sign_time_nanos=nanos,
    )
    signed = signing.signing_input(fields)
    signature = signing.sign(key, fields, signed=signed)
    inputs: Json = {
        "content_type": content_type,
        "key_id": fields.key_id,
        "sequence": sequence,
        "previous_hash": previous_hash.hex(),
        "sign_time": {"seconds": seconds, "nanos": nanos, "rfc3339": rfc3339(seconds, nanos)},
        "payload": payload.hex(),
    }
    if message is not None:
        inputs["payload_message"] = message.DESCRIPTOR.full_name
        inputs["payload_json"] = json_format.MessageToDict(
            message, preserving_proto_field_name=True
        )
    else:
        inputs["payload_text"] = payload.decode()
    return {
        "id": case_id,
        "description": description,
        "input": inputs,
        "expected": {
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
            "signing_input": signed.hex(),
            "signing_input_fields": lp_fields(signed),
            "signature": signature.hex(),
            "envelope_hash": signing.envelope_hash(fields, signature, signed=signed).hex(),
        },
    }


T0 = 1_735_689_600
"""2025-01-01T00:00:00Z."""


def envelope_chain() -> list[Json]:
    key, _ = example_key(REGISTRY_SEED)
    e1 = _envelope_case(
        "E1",
        "A transfer proposal, the first envelope of the registry key (sequence 1, previous hash"
        " 32 zero bytes).",
        key,
        contract.PROPOSAL_TYPE,
        E1_PAYLOAD.SerializeToString(),
        1,
        signing.GENESIS_HASH,
        T0,
        0,
        E1_PAYLOAD,
    )
    e2 = _envelope_case(
        "E2",
        "A cancellation of that proposal, chained on E1 (sent on CancelTransfer).",
        key,
        contract.ANSWER_TYPE,
        E2_PAYLOAD.SerializeToString(),
        2,
        bytes.fromhex(e1["expected"]["envelope_hash"]),
        T0 + 60,
        500_000_000,
        E2_PAYLOAD,
    )
    e3 = _envelope_case(
        "E3",
        "An ETS-offset retirement order chained on E2 (UTF-8 beneficiary, 64-bit quantity).",
        key,
        contract.RETIREMENT_TYPE,
        E3_PAYLOAD.SerializeToString(),
        3,
        bytes.fromhex(e2["expected"]["envelope_hash"]),
        T0 + 120,
        123_456_789,
        E3_PAYLOAD,
    )
    return [e1, e2, e3]


def envelope_vectors() -> Json:
    """Single envelopes: signing input, signature and envelope hash (§6.2, §6.4)."""
    key, registry = example_key(REGISTRY_SEED)
    e1 = envelope_chain()[0]
    native = _envelope_case(
        "N1",
        "A native Shanghai record; the content type's parameter is part of the signed bytes.",
        key,
        "application/vnd.yrd.310000+json; charset=utf-8",
        NATIVE_PAYLOAD,
        7,
        hashlib.sha256(b"any previous envelope").digest(),
        T0 + 3600,
        1,
    )
    before_1970 = _envelope_case(
        "S1",
        "A sign_time before 1970: seconds is a signed (two's-complement) 64-bit integer.",
        key,
        "application/vnd.yrd.310000+json",
        NATIVE_PAYLOAD,
        1,
        signing.GENESIS_HASH,
        -1,
        999_999_999,
    )
    return document(
        "envelope",
        "docs/protocol.md §6.2 (signing input), §6.4 (envelope hash)",
        "Signed envelopes: the exact signing input, the Ed25519 signature and the envelope hash.",
        {"registry": registry},
        cases=[e1, native, before_1970],
    )


def envelope_chain_vectors() -> Json:
    """One signer's chain of three envelopes (§6.5)."""
    _, registry = example_key(REGISTRY_SEED)
    cases = envelope_chain()
    last = cases[-1]
    return document(
        "envelope-chain",
        "docs/protocol.md §6.5 (the per-signer chain)",
        "Three envelopes of one key: each previous_hash is the envelope hash of the one before;"
        " the first's is 32 zero bytes.",
        {"registry": registry},
        cases=cases,
        chain_head={
            "sequence": last["input"]["sequence"],
            "envelope_hash": last["expected"]["envelope_hash"],
        },
    )


def _as_sent(case: Json) -> Json:
    """An envelope as it travels: the signed fields and the signature."""
    sent = {k: v for k, v in case["input"].items() if k not in ("payload_message", "payload_json")}
    sent["sign_time"] = {k: case["input"]["sign_time"][k] for k in ("seconds", "nanos")}
    sent["signature"] = case["expected"]["signature"]
    return sent


def _flip_last(hex_text: str) -> str:
    data = bytearray(bytes.fromhex(hex_text))
    data[-1] ^= 0x01
    return bytes(data).hex()


def tampered_vectors() -> Json:
    """Envelopes that MUST fail verification (§6.3) or the chain (§6.5)."""
    registry_key, registry = example_key(REGISTRY_SEED)
    other_key, other = example_key(OTHER_SEED)
    e1 = envelope_chain()[0]
    good = _as_sent(e1)

    def changed(case_id: str, description: str, **fields: Any) -> Json:
        return {
            "id": case_id,
            "description": description,
            "envelope": {**good, **fields},
            "expected": {"signature_valid": False, "reason": "SIGNATURE_INVALID"},
        }

    wrong_signer = _envelope_case(
        "X6",
        "",
        other_key,
        contract.PROPOSAL_TYPE,
        E1_PAYLOAD.SerializeToString(),
        1,
        signing.GENESIS_HASH,
        T0,
        0,
        E1_PAYLOAD,
    )
    fork = _envelope_case(
        "X7",
        "",
        registry_key,
        contract.ANSWER_TYPE,
        E2_PAYLOAD.SerializeToString(),
        2,
        signing.GENESIS_HASH,
        T0 + 60,
        500_000_000,
        E2_PAYLOAD,
    )
    cases = [
        changed(
            "X1",
            "E1 with the payload's last byte changed.",
            payload=_flip_last(e1["input"]["payload"]),
        ),
        changed("X2", "E1 claiming sequence 2.", sequence=2),
        changed(
            "X3",
            "E1 with sign_time one nanosecond later.",
            sign_time={"seconds": T0, "nanos": 1},
        ),
        changed("X4", "E1 with another content type.", content_type=contract.ANSWER_TYPE),
        changed(
            "X5",
            "E1 with the signature's last bit flipped.",
            signature=_flip_last(good["signature"]),
        ),
        {
            "id": "X6",
            "description": "E1's fields signed by another key but naming the registry's key id:"
            " it does not verify with the registry's public key.",
            "envelope": {**_as_sent(wrong_signer), "key_id": registry["key_id"]},
            "expected": {"signature_valid": False, "reason": "SIGNATURE_INVALID"},
        },
        {
            "id": "X7",
            "description": "A correctly signed second envelope whose previous_hash is not E1's"
            " envelope hash: the signature verifies, the chain refuses it.",
            "envelope": _as_sent(fork),
            "chain_head": {"sequence": 1, "envelope_hash": e1["expected"]["envelope_hash"]},
            "expected": {
                "signature_valid": True,
                "envelope_hash": fork["expected"]["envelope_hash"],
                "reason": "PREVIOUS_HASH_MISMATCH",
            },
        },
    ]
    return document(
        "envelope-tampered",
        "docs/protocol.md §6.3 (verification), §6.5 (chain refusals)",
        "Each envelope is checked with the registry's public key; every one MUST be refused."
        " X1–X6 fail the signature; X7 is signed correctly but breaks the chain at chain_head.",
        {"registry": registry, "other": other},
        cases=cases,
    )


# -- duplicate cases ---------------------------------------------------------------------------

V1_PAYLOAD = duplicate_service_pb2.CaseVerdict(
    duplicate_case="duplicateCases/dc-3f1c2a9b7e04",
    resolution=duplicates_pb2.CASE_RESOLUTION_DUPLICATE,
    standing="regions/320000/projects/JS-XM-2024-0517",
    comment="同一屋顶，江苏登记在先存续 / one roof: the Jiangsu registration stands",
)
V2_PAYLOAD = duplicate_service_pb2.CaseVerdict(
    duplicate_case="duplicateCases/dc-90ab41c6d2f3",
    resolution=duplicates_pb2.CASE_RESOLUTION_DISTINCT,
    comment="two plants on neighbouring roofs",
)


def case_verdict_vectors() -> Json:
    """Administrators' signed CaseVerdicts (§7.2, §11.9): a DUPLICATE naming the registration
    that stands, then a DISTINCT chained on it."""
    key, admin = example_key(ADMIN_SEED)
    v1 = _envelope_case(
        "V1",
        "A DUPLICATE verdict naming the registration that stands (UTF-8 comment), the first"
        " envelope of the administrator's key.",
        key,
        contract.CASE_VERDICT_TYPE,
        V1_PAYLOAD.SerializeToString(),
        1,
        signing.GENESIS_HASH,
        T0 + 600,
        250_000_000,
        V1_PAYLOAD,
    )
    v2 = _envelope_case(
        "V2",
        "A DISTINCT verdict on another case (standing empty, as it must be), chained on V1.",
        key,
        contract.CASE_VERDICT_TYPE,
        V2_PAYLOAD.SerializeToString(),
        2,
        bytes.fromhex(v1["expected"]["envelope_hash"]),
        T0 + 660,
        0,
        V2_PAYLOAD,
    )
    return document(
        "case-verdict",
        "docs/protocol.md §7.2 (signed bodies), §11.9 (ResolveDuplicateCase)",
        "Signed CaseVerdict envelopes of an administrator (content type"
        f" {contract.CASE_VERDICT_TYPE}): the serialised body, the signing input, the"
        " signature and the envelope hash; V2 continues V1's chain.",
        {"admin": admin},
        cases=[v1, v2],
    )
