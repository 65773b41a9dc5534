"""Vectors for the identity keys of a project (docs/protocol.md §7.4): which owner credit codes,
coordinates, sites and grid accounts are valid, and at which key an invalid one fails, computed
with the validation the adapters use (``mutual_recognition.identity``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from gateway.tools.vector_cases import Json, document
from mutual_recognition.identity import (
    CREDIT_CODE_ALPHABET,
    CREDIT_CODE_CATEGORIES,
    IdentityKeyError,
    check_credit_code,
    check_grid_account,
    check_latitude,
    check_longitude,
    check_site,
    credit_code_check_char,
)

_CREDIT_CODES: list[tuple[str, str]] = [
    ("91310118MA1JL3K81K", "the Qingpu demo plant's owner (an enterprise, 9-1)"),
    ("91310115MA1FP2C43T", "Shanghai's sample owner"),
    ("91330502MA2B3K4D3L", "Zhejiang's sample owner"),
    ("12100000400000624D", "a public institution (1-2); check character a letter"),
    ("51100000500021475B", "a social organisation (5-1)"),
    ("N2320509MA1XYA7W8D", "a village collective (N-2); letters in the identifier"),
    ("91310000000000001Y", "check character Y (value 30)"),
    ("913100000000000022", "check character 2"),
    ("91310118MA1JL3K81J", "the check character changed: invalid"),
    ("91310118MA1JL3K8IK", "I is not in the alphabet: invalid"),
    ("N2320509MA1XYZ7W8D", "Z is not in the alphabet: invalid"),
    ("91310118ma1jl3k81k", "lower case: invalid (codes are upper case)"),
    ("91310118MA1JL3K81", "17 characters: invalid"),
    ("91310118MA1JL3K81KK", "19 characters: invalid"),
    ("B1310118MA1JL3K81K", "B is no registration authority: invalid"),
    ("94310118MA1JL3K81K", "category 4 is not one authority 9 assigns: invalid"),
    ("9131A118MA1JL3K81K", "a letter in the county code (positions 3-8): invalid"),
    ("", "empty: invalid (an absent key is not given at all)"),
]
_LATITUDES = [
    ("31.048120", "six decimals"),
    ("31.1492", "fewer decimals"),
    ("-90", "the south pole"),
    ("90.000000", "the north pole, six zero decimals"),
    ("0", "zero"),
    ("-0.5", "negative, leading zero"),
    ("31.0481201", "seven decimals: invalid"),
    ("90.000001", "beyond 90: invalid"),
    ("+31.1", "a plus sign: invalid"),
    ("031.1", "a redundant leading zero: invalid"),
    ("31,1", "a decimal comma: invalid"),
    ("3.1e1", "an exponent: invalid"),
    (" 31.1", "a blank: invalid"),
    ("31.", "a point without decimals: invalid"),
    (".5", "no whole part: invalid"),
    ("", "empty: invalid"),
]
_LONGITUDES = [
    ("120.889350", "six decimals"),
    ("-180", "the antimeridian, west"),
    ("180.000000", "the antimeridian, east"),
    ("180.000001", "beyond 180: invalid"),
    ("1000", "four whole digits: invalid"),
    ("１２０.８", "full-width digits: invalid"),
]
_SITES: list[tuple[str | None, str | None, str | None, str]] = [
    ("31.048120", "120.889350", None, "no datum: WGS-84"),
    ("31.045964", "120.893771", "GCJ02", "GCJ-02, as Chinese map services show it"),
    ("31.052071", "120.900291", "BD09", "BD-09, as Baidu maps show it"),
    ("31.048120", "120.889350", "WGS84", "WGS-84 named"),
    (None, None, None, "no site at all"),
    ("31.048120", None, None, "a latitude without a longitude: invalid"),
    (None, "120.889350", None, "a longitude without a latitude: invalid"),
    (None, None, "GCJ02", "a datum without a site: invalid"),
    ("31.048120", "120.889350", "CGCS2000", "a datum the protocol does not name: invalid"),
    ("31.048120", "120.889350", "gcj02", "a datum in lower case: invalid"),
]
_ACCOUNTS = [
    ("0310118004567", "13 digits, a leading zero kept"),
    ("3100012345", "10 digits, the fewest"),
    ("31000123456789012345", "20 digits, the most"),
    ("310001234", "9 digits: invalid"),
    ("310001234567890123456", "21 digits: invalid"),
    ("3100-012345", "a hyphen: invalid"),
    ("３１００１２３４５６", "full-width digits: invalid"),
    ("", "empty: invalid"),
]


def _case(case_id: str, description: str, check: Callable[[], object], inputs: Json) -> Json:
    """One case: its inputs, and whether they are valid (else the key at fault)."""
    try:
        result = check()
    except IdentityKeyError as exc:
        return {
            "id": case_id,
            "description": description,
            "input": inputs,
            "expected": {"valid": False, "key": exc.key},
        }
    expected: Json = {"valid": True}
    if "latitude" in inputs:
        expected["datum"] = result
    return {"id": case_id, "description": description, "input": inputs, "expected": expected}


def identity_vectors() -> Json:
    """Credit codes (I1…), latitudes (L1…), longitudes (G1…), sites (S1…), grid accounts
    (A1…): each valid, or invalid with the key at fault."""
    codes = []
    for n, (text, description) in enumerate(_CREDIT_CODES, 1):
        case = _case(f"I{n}", description, partial(check_credit_code, text), {"value": text})
        if case["expected"]["valid"]:
            case["expected"]["check_character"] = credit_code_check_char(text[:17])
        codes.append(case)
    latitudes = [
        _case(f"L{n}", d, partial(check_latitude, t), {"value": t})
        for n, (t, d) in enumerate(_LATITUDES, 1)
    ]
    longitudes = [
        _case(f"G{n}", d, partial(check_longitude, t), {"value": t})
        for n, (t, d) in enumerate(_LONGITUDES, 1)
    ]
    sites = [
        _case(
            f"S{n}",
            d,
            partial(check_site, lat, lon, datum),
            {"latitude": lat, "longitude": lon, "datum": datum},
        )
        for n, (lat, lon, datum, d) in enumerate(_SITES, 1)
    ]
    accounts = [
        _case(f"A{n}", d, partial(check_grid_account, t), {"value": t})
        for n, (t, d) in enumerate(_ACCOUNTS, 1)
    ]
    return document(
        "identity-keys",
        "docs/protocol.md §7.4 (identity keys of a project)",
        "Which identity keys are valid. owner_credit_code: GB 32100-2015 (alphabet, registration"
        " authority and category, 6-digit county code, check character over positions 1-17);"
        " latitude/longitude: plain decimal degrees, at most 6 decimals, in range; a site: both"
        " coordinates or none, a datum only with a site (absent: WGS84); grid_account: 10-20"
        " ASCII digits. An invalid case names the key at fault (for a site: the first checked,"
        " latitude, longitude, then datum). null: not given.",
        {},
        credit_code_alphabet=CREDIT_CODE_ALPHABET,
        credit_code_weights=[pow(3, i, 31) for i in range(17)],
        credit_code_categories=CREDIT_CODE_CATEGORIES,
        owner_credit_codes=codes,
        latitudes=latitudes,
        longitudes=longitudes,
        sites=sites,
        grid_accounts=accounts,
    )
