"""Identity keys (mutual_recognition.identity): credit codes, coordinates, datums, grid accounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutual_recognition.identity import (
    CREDIT_CODE_ALPHABET,
    CREDIT_CODE_WEIGHTS,
    Datum,
    IdentityKeyError,
    check_credit_code,
    check_datum,
    check_grid_account,
    check_latitude,
    check_longitude,
    check_site,
    coordinate_value,
    credit_code_check_char,
)
from tests.adapters.identity_strategies import credit_codes, latitudes, longitudes

# -- unified social credit code ----------------------------------------------------------------


def test_alphabet_and_weights_are_those_of_gb_32100() -> None:
    assert len(CREDIT_CODE_ALPHABET) == 31
    assert not set("IOSVZ") & set(CREDIT_CODE_ALPHABET)
    assert CREDIT_CODE_WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def test_published_example_verifies() -> None:
    # The example printed in GB 32100-2015 (an enterprise registered in Fuzhou, 350100), by hand:
    # values 9 1 3 5 0 1 0 0 21(M) 0 0 0 1 0 0 30(Y) 4, Σ cᵢ·wᵢ = 1640, 1640 mod 31 = 28,
    # 31 - 28 = 3: the check character is '3', as printed.
    body = "91350100M000100Y4"
    values = [CREDIT_CODE_ALPHABET.index(c) for c in body]
    assert sum(v * w for v, w in zip(values, CREDIT_CODE_WEIGHTS, strict=True)) == 1640
    assert credit_code_check_char(body) == "3"
    assert check_credit_code("91350100M000100Y43") == "91350100M000100Y43"


@pytest.mark.parametrize(
    "code",
    [
        "91310118MA1JL3K81K",  # the Qingpu/Wujiang demo owner (adapters/samples/demo-*)
        "91310115MA1FP2C43T",
        "91320506MA1MYQ7T7X",
        "91330502MA2B3K4D3L",
        "91340104MA2TGH5N0K",
        "51100000500000011B",  # social organisation registered nationally (5-1, 100000)
        "Y13100000000000006",  # authority Y (其他), category 1
    ],
)
def test_computed_examples_verify(code: str) -> None:
    assert credit_code_check_char(code[:17]) == code[17]
    assert check_credit_code(code) == code


def test_a_check_sum_of_zero_gives_check_character_zero() -> None:
    # 31 - 0 = 31 is written '0' (not an out-of-alphabet 31): a sum of 0, and one of 31·k
    # (9·1 + 1·3 + 1·19 = 31: authority 9, category 1, then a 1 at position 5, weight 19).
    assert credit_code_check_char("0" * 17) == "0"
    assert check_credit_code("910010000000000000") == "910010000000000000"


@settings(max_examples=300)
@given(credit_codes())
def test_generated_valid_codes_verify(code: str) -> None:
    assert check_credit_code(code) == code


@settings(max_examples=300)
@given(credit_codes(), st.integers(0, 17), st.sampled_from(CREDIT_CODE_ALPHABET))
def test_any_single_character_change_is_detected(code: str, position: int, char: str) -> None:
    changed = code[:position] + char + code[position + 1 :]
    if changed == code:
        return
    with pytest.raises(IdentityKeyError) as info:
        check_credit_code(changed)
    assert info.value.key == "owner_credit_code"
    assert "owner credit code" in str(info.value)


@settings(max_examples=200)
@given(credit_codes(), st.integers(0, 16))
def test_swapping_two_adjacent_different_characters_is_detected(code: str, position: int) -> None:
    a, b = code[position], code[position + 1]
    if a == b:
        return
    swapped = code[:position] + b + a + code[position + 2 :]
    with pytest.raises(IdentityKeyError):
        check_credit_code(swapped)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91350100M000100Y4", "has 17 characters; a unified social credit code has 18"),
        ("91350100M000100Y433", "has 19 characters"),
        ("", "has 0 characters"),
        ("91350100M000100Y4O", "has 'O' at position 18, which is not a character of GB 32100"),
        ("91350100m000100Y43", "has 'm' at position 9"),
        ("91350100m000100Y43", "(codes are upper case)"),
        ("9135010０M000100Y43", "has '０' at position 8"),
        ("Z1350100M000100Y43", "has 'Z' at position 1"),
        ("B1350100M000100Y43", "starts with 'B', which is not a registration authority code"),
        ("94350100M000100Y43", "has category '4' at position 2, which registration authority"),
        ("Y2350100M000100Y43", "has category '2' at position 2"),
        ("913501A0M000100Y43", "has '3501A0' at positions 3-8, which must be the 6-digit county"),
        ("91350100M000100Y44", "has check character '4'; the first 17 characters give '3'"),
    ],
)
def test_invalid_codes_say_why(code: str, message: str) -> None:
    with pytest.raises(IdentityKeyError) as info:
        check_credit_code(code)
    assert message in str(info.value)
    assert str(info.value).startswith("owner credit code")


def test_check_char_of_a_bad_body_is_refused() -> None:
    with pytest.raises(IdentityKeyError, match="17 characters, not 3"):
        credit_code_check_char("913")
    with pytest.raises(IdentityKeyError, match="position 3"):
        credit_code_check_char("91I10000000000000")


# -- coordinates and datum ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["0", "-0", "90", "-90", "31.1492", "31.149200", "-89.999999", "0.5", "45.000000"]
)
def test_valid_latitudes_are_kept_verbatim(text: str) -> None:
    assert check_latitude(text) == text


@pytest.mark.parametrize("text", ["180", "-180", "121.124800", "-179.999999", "7"])
def test_valid_longitudes_are_kept_verbatim(text: str) -> None:
    assert check_longitude(text) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("90.000001", "latitude '90.000001' is outside [-90, 90] degrees"),
        ("-91", "outside [-90, 90]"),
        ("31.1234567", "has 7 decimals; at most 6 are allowed"),
        ("3.1e1", "is not a plain decimal number"),
        ("NaN", "is not a plain decimal number"),
        ("Infinity", "is not a plain decimal number"),
        (" 31.1", "is not a plain decimal number"),
        ("31.1 ", "is not a plain decimal number"),
        ("+31.1", "is not a plain decimal number"),
        ("031.1", "is not a plain decimal number"),
        ("31.", "is not a plain decimal number"),
        (".5", "is not a plain decimal number"),
        ("31,1", "is not a plain decimal number"),
        ("３１.１", "is not a plain decimal number"),
        ("", "is not a plain decimal number"),
        ("1000", "outside [-90, 90]"),
    ],
)
def test_invalid_latitudes_say_why(text: str, message: str) -> None:
    with pytest.raises(IdentityKeyError) as info:
        check_latitude(text)
    assert info.value.key == "latitude"
    assert message in str(info.value)
    assert str(info.value).startswith("latitude")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("180.000001", "longitude '180.000001' is outside [-180, 180] degrees"),
        ("-181", "outside [-180, 180]"),
        ("121.12345678", "has 8 decimals"),
        ("1.2E2", "is not a plain decimal number"),
        ("-nan", "is not a plain decimal number"),
    ],
)
def test_invalid_longitudes_say_why(text: str, message: str) -> None:
    with pytest.raises(IdentityKeyError) as info:
        check_longitude(text)
    assert info.value.key == "longitude"
    assert message in str(info.value)


@settings(max_examples=200)
@given(latitudes, longitudes)
def test_generated_coordinates_are_valid_and_exact(latitude: str, longitude: str) -> None:
    assert check_latitude(latitude) == latitude
    assert check_longitude(longitude) == longitude
    assert coordinate_value(latitude) == Decimal(latitude)


@given(st.decimals(min_value=-200, max_value=200, places=6))
def test_range_is_exact_at_the_edges(value: Decimal) -> None:
    text = format(value, "f")
    if abs(value) <= 90:
        assert check_latitude(text) == text
    else:
        with pytest.raises(IdentityKeyError, match="outside"):
            check_latitude(text)
    if abs(value) <= 180:
        assert check_longitude(text) == text
    else:
        with pytest.raises(IdentityKeyError, match="outside"):
            check_longitude(text)


@pytest.mark.parametrize(
    ("text", "datum"), [("WGS84", Datum.WGS84), ("GCJ02", Datum.GCJ02), ("BD09", Datum.BD09)]
)
def test_datums(text: str, datum: Datum) -> None:
    assert check_datum(text) is datum


@pytest.mark.parametrize("text", ["wgs84", "WGS-84", "CGCS2000", "", "GCJ-02", "bd09"])
def test_unknown_datums_are_refused(text: str) -> None:
    with pytest.raises(IdentityKeyError, match="is not one of: WGS84, GCJ02, BD09") as info:
        check_datum(text)
    assert info.value.key == "datum"


def test_site_rules() -> None:
    assert check_site(None, None, None) is None
    assert check_site("31.1", "121.2", None) is Datum.WGS84
    assert check_site("31.1", "121.2", "BD09") is Datum.BD09
    with pytest.raises(IdentityKeyError, match="longitude is missing") as info:
        check_site("31.1", None, None)
    assert info.value.key == "longitude"
    with pytest.raises(IdentityKeyError, match="latitude is missing"):
        check_site(None, "121.2", "GCJ02")
    with pytest.raises(IdentityKeyError, match="datum is given without a site"):
        check_site(None, None, "GCJ02")
    with pytest.raises(IdentityKeyError, match="latitude '95'"):
        check_site("95", "121.2", None)


# -- grid account ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0012345678", "1" * 20, "3100123456789"])
def test_grid_accounts_keep_leading_zeros(text: str) -> None:
    assert check_grid_account(text) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("123456789", "has 9 digits; it must have 10 to 20"),
        ("1" * 21, "has 21 digits"),
        ("12345-67890", "must be 10 to 20 digits 0-9"),
        ("１２３４５６７８９０", "must be 10 to 20 digits 0-9"),
        ("1234567890 ", "must be 10 to 20 digits 0-9"),
        ("", "must be 10 to 20 digits 0-9"),
    ],
)
def test_invalid_grid_accounts_say_why(text: str, message: str) -> None:
    with pytest.raises(IdentityKeyError) as info:
        check_grid_account(text)
    assert info.value.key == "grid_account"
    assert str(info.value).startswith("grid account")
    assert message in str(info.value)
