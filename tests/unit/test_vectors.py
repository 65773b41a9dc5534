"""The test vectors (docs/vectors/*.json), both ways.

1. The implementation reproduces every vector byte for byte (``gateway.tools.vectors --check``)
   and its verifiers accept the good vectors and refuse the tampered ones.
2. The vectors alone are self-consistent with docs/protocol.md: the second half of this module is
   an independent implementation of the spec (hashlib, cryptography, the generated protobuf
   classes — never the gateway's own functions) that re-derives every expected value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf import json_format, symbol_database
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from yrd.interop.v1 import reconciliation_pb2, transfer_service_pb2  # noqa: F401 (registers)

from gateway.security import audit_chain, reports, signing
from gateway.tools import vectors

FOLDER = Path(__file__).resolve().parents[2] / "docs" / "vectors"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FOLDER / f"{name}.json").read_text(encoding="utf-8"))
    return data


# == 1. the implementation reproduces the vectors ============================================


def test_implementation_reproduces_every_vector_file() -> None:
    assert vectors.drift(FOLDER) == []


def test_check_command_fails_on_drift(tmp_path: Path) -> None:
    vectors.write(tmp_path)
    assert vectors.main(["--check", str(tmp_path)]) == 0
    path = tmp_path / "tree-head.json"
    path.write_text(path.read_text().replace('"size": 3', '"size": 4'))
    assert vectors.main(["--check", str(tmp_path)]) == 1


def _fields(sent: dict[str, Any]) -> signing.EnvelopeFields:
    return signing.EnvelopeFields(
        content_type=sent["content_type"],
        payload=bytes.fromhex(sent["payload"]),
        key_id=sent["key_id"],
        sequence=sent["sequence"],
        previous_hash=bytes.fromhex(sent["previous_hash"]),
        sign_time_seconds=sent["sign_time"]["seconds"],
        sign_time_nanos=sent["sign_time"]["nanos"],
    )


def test_implementation_verifies_good_envelopes_and_refuses_tampered_ones() -> None:
    public = bytes.fromhex(load("keys")["keys"]["registry"]["public_key"])
    for name in ("envelope", "envelope-chain"):
        for case in load(name)["cases"]:
            signature = bytes.fromhex(case["expected"]["signature"])
            assert signing.verify(public, _fields(case["input"]), signature), case["id"]
    for case in load("envelope-tampered")["cases"]:
        sent = case["envelope"]
        ok = signing.verify(public, _fields(sent), bytes.fromhex(sent["signature"]))
        assert ok is case["expected"]["signature_valid"], case["id"]


def _entry(case: dict[str, Any], detail: bytes | None = None) -> audit_chain.EntryFields:
    i = case["input"]
    when = dt.datetime.fromtimestamp(i["create_time"]["seconds"], dt.UTC) + dt.timedelta(
        microseconds=i["create_time"]["nanos"] // 1000
    )
    return audit_chain.EntryFields(
        sequence=i["sequence"],
        kind=i["kind"],
        subject=i["subject"],
        actor_region=i["actor_region"],
        actor=i["actor"],
        detail=detail if detail is not None else bytes.fromhex(i["detail"]),
        previous_hash=bytes.fromhex(i["previous_hash"]),
        created_at=when,
    )


def test_implementation_verifies_the_audit_chain_and_finds_the_tampered_entry() -> None:
    doc = load("audit-chain")
    pairs = [(_entry(c), bytes.fromhex(c["expected"]["entry_hash"])) for c in doc["cases"]]
    check = audit_chain.verify_chain(pairs)
    assert check.ok and check.entries == doc["head"]["size"]
    assert check.head_hash.hex() == doc["head"]["head_hash"]
    bad = doc["tampered"]
    at = bad["entry"] - 1
    pairs[at] = (_entry(doc["cases"][at], bytes.fromhex(bad["detail"])), pairs[at][1])
    check = audit_chain.verify_chain(pairs)
    assert check.first_bad_entry == bad["expected"]["first_bad_entry"]
    assert check.entries == bad["expected"]["verified_entries"]


def test_implementation_verifies_tree_heads_and_reports() -> None:
    doc = load("tree-head")
    public = bytes.fromhex(doc["keys"]["gateway"]["public_key"])
    for case in doc["cases"]:
        i = case["input"]
        when = dt.datetime.fromtimestamp(i["sign_time"]["seconds"], dt.UTC) + dt.timedelta(
            microseconds=i["sign_time"]["nanos"] // 1000
        )
        assert audit_chain.verify_tree_head(
            public,
            i["size"],
            bytes.fromhex(i["head_hash"]),
            when,
            bytes.fromhex(case["expected"]["signature"]),
        )
    for case in load("reconciliation-report")["cases"]:
        report = reconciliation_pb2.ReconciliationReport.FromString(
            bytes.fromhex(case["expected"]["signed_report_proto"])
        )
        assert reports.verify_report(public, report), case["id"]
        report.region = "310000"
        assert not reports.verify_report(public, report)


# == 2. an independent implementation of docs/protocol.md agrees with the vectors ============
# Nothing below calls the gateway: only hashlib, cryptography and the generated proto classes.


def lp(data: bytes) -> bytes:
    """§1: u32be(len(x)) || x."""
    return struct.pack(">I", len(data)) + data


def ed25519_public(seed: bytes) -> bytes:
    return (
        ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def ed25519_ok(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def spec_key_id(public: bytes) -> str:
    """§5: hex(SHA-256(raw public key))[0:32]."""
    return hashlib.sha256(public).hexdigest()[:32]


def spec_signing_input(sent: dict[str, Any]) -> bytes:
    """§6.2."""
    return (
        lp(b"yrd-interop/v1/envelope")
        + lp(sent["content_type"].encode("utf-8"))
        + lp(sent["key_id"].encode("utf-8"))
        + lp(struct.pack(">Q", sent["sequence"]))
        + lp(bytes.fromhex(sent["previous_hash"]))
        + lp(struct.pack(">qI", sent["sign_time"]["seconds"], sent["sign_time"]["nanos"]))
        + lp(hashlib.sha256(bytes.fromhex(sent["payload"])).digest())
    )


def check_keys(keys: dict[str, Any]) -> None:
    for key in keys.values():
        public = ed25519_public(bytes.fromhex(key["seed"]))
        assert public.hex() == key["public_key"]
        assert spec_key_id(public) == key["key_id"]


@pytest.mark.parametrize(
    "name",
    [
        "keys",
        "envelope",
        "envelope-chain",
        "envelope-tampered",
        "tree-head",
        "reconciliation-report",
    ],
)
def test_spec_key_ids_and_public_keys_follow_from_the_seeds(name: str) -> None:
    check_keys(load(name)["keys"])


def check_envelope(case: dict[str, Any], keys: dict[str, Any]) -> bytes:
    """Re-derive one envelope vector from its inputs; returns its envelope hash."""
    sent, want = case["input"], case["expected"]
    key = next(k for k in keys.values() if k["key_id"] == sent["key_id"])
    seed, public = bytes.fromhex(key["seed"]), bytes.fromhex(key["public_key"])
    payload = bytes.fromhex(sent["payload"])
    assert hashlib.sha256(payload).hexdigest() == want["payload_sha256"]
    signed = spec_signing_input(sent)
    assert signed.hex() == want["signing_input"]
    assert "".join(want["signing_input_fields"]) == want["signing_input"]
    signature = bytes.fromhex(want["signature"])
    assert ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(signed) == signature
    assert ed25519_ok(public, signature, signed)
    digest = hashlib.sha256(signed + lp(signature)).digest()  # §6.4
    assert digest.hex() == want["envelope_hash"]
    if "payload_message" in sent:  # the payload is the body message the JSON describes
        cls = symbol_database.Default().GetSymbol(sent["payload_message"])
        decoded = json_format.MessageToDict(
            cls.FromString(payload), preserving_proto_field_name=True
        )
        assert decoded == sent["payload_json"]
    return digest


def test_spec_envelopes() -> None:
    doc = load("envelope")
    for case in doc["cases"]:
        check_envelope(case, doc["keys"])


def test_spec_chain_of_three_envelopes() -> None:
    doc = load("envelope-chain")
    previous, sequence = bytes(32), 0
    assert len(doc["cases"]) == 3
    for case in doc["cases"]:
        assert case["input"]["sequence"] == sequence + 1  # §6.5
        assert bytes.fromhex(case["input"]["previous_hash"]) == previous
        previous, sequence = check_envelope(case, doc["keys"]), case["input"]["sequence"]
    assert doc["chain_head"] == {"sequence": sequence, "envelope_hash": previous.hex()}


def test_spec_tampered_envelopes_fail() -> None:
    doc = load("envelope-tampered")
    public = bytes.fromhex(doc["keys"]["registry"]["public_key"])
    assert len(doc["cases"]) >= 6
    for case in doc["cases"]:
        sent, want = case["envelope"], case["expected"]
        assert sent["key_id"] == spec_key_id(public)
        ok = ed25519_ok(public, bytes.fromhex(sent["signature"]), spec_signing_input(sent))
        assert ok is want["signature_valid"], case["id"]
        if ok:  # signed correctly: the chain refuses it (§6.5)
            head = case["chain_head"]
            assert sent["sequence"] == head["sequence"] + 1
            assert sent["previous_hash"] != head["envelope_hash"]
            assert want["reason"] == "PREVIOUS_HASH_MISMATCH"
        else:
            assert want["reason"] == "SIGNATURE_INVALID"


def spec_entry_input(i: dict[str, Any], detail: bytes) -> bytes:
    """§8.1 (the hash is SHA-256 of this)."""
    micros = i["create_time"]["seconds"] * 1_000_000 + i["create_time"]["nanos"] // 1000
    return (
        lp(b"yrd-interop/v1/audit-entry")
        + lp(struct.pack(">Q", i["sequence"]))
        + lp(i["kind"].encode())
        + lp(i["subject"].encode())
        + lp(i["actor_region"].encode())
        + lp(i["actor"].encode())
        + lp(detail)
        + lp(bytes.fromhex(i["previous_hash"]))
        + lp(struct.pack(">q", micros))
    )


def spec_verify_log(cases: list[dict[str, Any]], details: list[bytes]) -> tuple[int, bytes]:
    """§8.1 verification: the entries that verify in order, and the last good hash."""
    previous, good = bytes(32), 0
    for case, detail in zip(cases, details, strict=True):
        i = case["input"]
        if i["sequence"] != good + 1 or bytes.fromhex(i["previous_hash"]) != previous:
            break
        digest = hashlib.sha256(spec_entry_input(i, detail)).digest()
        if digest.hex() != case["expected"]["entry_hash"]:
            break
        previous, good = digest, good + 1
    return good, previous


def test_spec_audit_chain() -> None:
    doc = load("audit-chain")
    details = [bytes.fromhex(c["input"]["detail"]) for c in doc["cases"]]
    for case, detail in zip(doc["cases"], details, strict=True):
        i = case["input"]
        assert detail.decode("utf-8") == i["detail_text"]
        assert canonical(json.loads(detail)) == detail  # details are canonical JSON (§8.1)
        assert i["create_time"]["nanos"] % 1000 == 0
        assert i["create_time_micros"] == i["create_time"]["seconds"] * 10**6 + (
            i["create_time"]["nanos"] // 1000
        )
        hashed = spec_entry_input(i, detail)
        assert hashed.hex() == case["expected"]["hash_input"]
        assert "".join(case["expected"]["hash_input_fields"]) == case["expected"]["hash_input"]
    size, head = spec_verify_log(doc["cases"], details)
    assert {"size": size, "head_hash": head.hex()} == doc["head"]
    bad = doc["tampered"]
    details[bad["entry"] - 1] = bytes.fromhex(bad["detail"])
    size, _ = spec_verify_log(doc["cases"], details)
    assert size == bad["expected"]["verified_entries"] == bad["expected"]["first_bad_entry"] - 1


def test_spec_tree_heads() -> None:
    doc = load("tree-head")
    gateway = doc["keys"]["gateway"]
    public, seed = bytes.fromhex(gateway["public_key"]), bytes.fromhex(gateway["seed"])
    audit = load("audit-chain")
    hashes = {0: bytes(32).hex()} | {
        c["input"]["sequence"]: c["expected"]["entry_hash"] for c in audit["cases"]
    }
    for case in doc["cases"]:
        i, want = case["input"], case["expected"]
        assert i["head_hash"] == hashes[i["size"]]  # the heads of audit-chain.json
        micros = i["sign_time"]["seconds"] * 1_000_000 + i["sign_time"]["nanos"] // 1000
        assert micros == i["sign_time_micros"]
        signed = (  # §8.2
            lp(b"yrd-interop/v1/tree-head")
            + lp(struct.pack(">Q", i["size"]))
            + lp(bytes.fromhex(i["head_hash"]))
            + lp(struct.pack(">q", micros))
        )
        assert signed.hex() == want["signing_input"]
        signature = bytes.fromhex(want["signature"])
        assert ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(signed) == signature
        assert ed25519_ok(public, signature, signed)
        assert want["key_id"] == spec_key_id(public)


# -- canonical JSON (§9.1) and the report's JSON mapping (§9.2), written from the text ---------

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):  # not in signed structures; the §9.1 example has one
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ",".join(_value(v) for v in value) + "]"
    # keys by code point: Python compares str by code point
    items = sorted(value.items(), key=lambda kv: [ord(c) for c in kv[0]])
    return "{" + ",".join(_string(k) + ":" + _value(v) for k, v in items) + "}"


def canonical(value: Any) -> bytes:
    return _value(value).encode("utf-8")


def test_spec_canonical_json() -> None:
    for case in load("canonical-json")["cases"]:
        out = canonical(json.loads(case["input_json"]))
        assert out.decode() == case["expected"]["text"], case["id"]
        assert out.hex() == case["expected"]["utf8"]


def _timestamp(seconds: int, nanos: int) -> str:
    """RFC 3339 UTC with 0, 3, 6 or 9 fractional digits (§9.2)."""
    text = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        digits = f"{nanos:09d}"
        for width in (3, 6, 9):
            if int(digits[width:] or "0") == 0:
                text += "." + digits[:width]
                break
    return text + "Z"


_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64}


def _mapped(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return _timestamp(value.seconds, value.nanos)
        return spec_report_json(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return field.enum_type.values_by_number[value].name
    if field.type in _INT64:
        return str(value)
    return value


def spec_report_json(message: Message) -> dict[str, Any]:
    """§9.2's JSON mapping: proto field names, defaults omitted, enums by name, int64 as strings."""
    out: dict[str, Any] = {}
    for field, value in message.ListFields():  # set, non-default fields only
        if field.is_repeated:
            out[field.name] = [_mapped(field, v) for v in value]
        else:
            out[field.name] = _mapped(field, value)
    return out


def test_spec_report_signatures() -> None:
    doc = load("reconciliation-report")
    gateway = doc["keys"]["gateway"]
    public, seed = bytes.fromhex(gateway["public_key"]), bytes.fromhex(gateway["seed"])
    for case in doc["cases"]:
        want = case["expected"]
        signed_report = reconciliation_pb2.ReconciliationReport.FromString(
            bytes.fromhex(want["signed_report_proto"])
        )
        assert signed_report.signature.hex() == want["signature"]
        assert signed_report.key_id == want["key_id"] == spec_key_id(public)
        unsigned = reconciliation_pb2.ReconciliationReport()
        unsigned.CopyFrom(signed_report)
        unsigned.ClearField("signature")
        unsigned.ClearField("key_id")
        assert unsigned.SerializeToString().hex() == case["input"]["report_proto"]
        body = spec_report_json(unsigned)
        assert body == case["input"]["report_json"]
        assert canonical(body).decode() == want["canonical_json"]
        signed = b"yrd-interop/v1/reconciliation-report\x00" + canonical(body)
        assert signed.hex() == want["signing_input"]
        signature = bytes.fromhex(want["signature"])
        assert ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(signed) == signature
        assert ed25519_ok(public, signature, signed)
