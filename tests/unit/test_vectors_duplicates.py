"""The vectors of issue 20, re-derived independently of the gateway's code (as
tests/unit/test_vectors.py does for the others): signed CaseVerdict envelopes (§7.2, §11.9) with
hashlib, cryptography and the generated classes; the identity keys' validity (§7.4) with a
from-the-text implementation of GB 32100-2015 and the coordinate and account rules."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from yrd.interop.v1 import duplicate_service_pb2  # noqa: F401 (registers CaseVerdict)

from tests.unit.test_vectors import check_envelope, check_keys, load

CASE_VERDICT_TYPE = "application/vnd.yrd.case-verdict+proto"


def test_spec_case_verdicts() -> None:
    doc = load("case-verdict")
    check_keys(doc["keys"])
    previous, sequence = bytes(32), 0
    assert [c["id"] for c in doc["cases"]] == ["V1", "V2"]
    for case in doc["cases"]:
        sent = case["input"]
        assert sent["content_type"] == CASE_VERDICT_TYPE
        assert sent["payload_message"] == "yrd.interop.v1.CaseVerdict"
        assert sent["sequence"] == sequence + 1  # §6.5
        assert bytes.fromhex(sent["previous_hash"]) == previous
        previous, sequence = check_envelope(case, doc["keys"]), sent["sequence"]
    v1, v2 = (c["input"]["payload_json"] for c in doc["cases"])
    assert v1["resolution"] == "CASE_RESOLUTION_DUPLICATE" and v1["standing"]
    assert v2["resolution"] == "CASE_RESOLUTION_DISTINCT" and "standing" not in v2


# -- identity keys, from the text of §7.4 ----------------------------------------------------

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
COORDINATE = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]{1,6})?")


def credit_code_fault(code: str, categories: dict[str, str]) -> bool:
    """True when ``code`` is not a valid unified social credit code."""
    if len(code) != 18 or any(c not in ALPHABET for c in code):
        return True
    if code[1] not in categories.get(code[0], ""):
        return True
    if not code[2:8].isascii() or not code[2:8].isdigit():
        return True
    total = sum(ALPHABET.index(c) * 3**i for i, c in enumerate(code[:17]))
    return ALPHABET[(31 - total % 31) % 31] != code[17]


def coordinate_fault(text: str, limit: int) -> bool:
    return COORDINATE.fullmatch(text) is None or abs(Decimal(text)) > limit


def site_fault(lat: str | None, lon: str | None, datum: str | None) -> str | None:
    """The key at fault (latitude, longitude, then datum), or None."""
    if lat is not None and coordinate_fault(lat, 90):
        return "latitude"
    if lon is not None and coordinate_fault(lon, 180):
        return "longitude"
    if (lat is None) != (lon is None):
        return "longitude" if lon is None else "latitude"
    if datum is not None and (datum not in ("WGS84", "GCJ02", "BD09") or lat is None):
        return "datum"
    return None


def _agrees(case: dict[str, Any], fault: str | None) -> None:
    want = case["expected"]
    assert want["valid"] is (fault is None), case
    if fault is not None:
        assert want["key"] == fault, case


def test_spec_identity_keys() -> None:
    doc = load("identity-keys")
    assert doc["credit_code_alphabet"] == ALPHABET
    assert doc["credit_code_weights"] == [3**i % 31 for i in range(17)]
    categories = doc["credit_code_categories"]
    assert categories["9"] == "1239"
    for case in doc["owner_credit_codes"]:
        code = case["input"]["value"]
        _agrees(case, "owner_credit_code" if credit_code_fault(code, categories) else None)
    for case in doc["latitudes"]:
        _agrees(case, "latitude" if coordinate_fault(case["input"]["value"], 90) else None)
    for case in doc["longitudes"]:
        _agrees(case, "longitude" if coordinate_fault(case["input"]["value"], 180) else None)
    for case in doc["sites"]:
        i = case["input"]
        fault = site_fault(i["latitude"], i["longitude"], i["datum"])
        _agrees(case, fault)
        if fault is None:
            given = i["datum"] or ("WGS84" if i["latitude"] is not None else None)
            assert case["expected"]["datum"] == given
    for case in doc["grid_accounts"]:
        value = case["input"]["value"]
        ok = 10 <= len(value) <= 20 and value.isascii() and value.isdigit()
        _agrees(case, None if ok else "grid_account")
    valid = [c for c in doc["owner_credit_codes"] if c["expected"]["valid"]]
    assert len(valid) >= 5 and all(
        c["expected"]["check_character"] == c["input"]["value"][17] for c in valid
    )
