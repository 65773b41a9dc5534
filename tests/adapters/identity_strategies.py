"""Hypothesis strategies for identity keys: valid credit codes, coordinates, datums, accounts.

Valid unified social credit codes are built from a registration authority, one of its categories,
six digits, nine characters of the alphabet and the computed check character.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st
from yrd.interop.v1 import records_pb2 as pb

from mutual_recognition.identity import (
    CREDIT_CODE_ALPHABET,
    CREDIT_CODE_CATEGORIES,
    credit_code_check_char,
)

DATUMS = (
    pb.COORDINATE_DATUM_WGS84,
    pb.COORDINATE_DATUM_GCJ02,
    pb.COORDINATE_DATUM_BD09,
)


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    authority = draw(st.sampled_from(sorted(CREDIT_CODE_CATEGORIES)))
    category = draw(st.sampled_from(CREDIT_CODE_CATEGORIES[authority]))
    county = draw(st.from_regex(r"[0-9]{6}", fullmatch=True))
    body = "".join(draw(st.lists(st.sampled_from(CREDIT_CODE_ALPHABET), min_size=9, max_size=9)))
    first17 = authority + category + county + body
    return first17 + credit_code_check_char(first17)


def coordinates(limit: int) -> st.SearchStrategy[str]:
    """Decimal strings of degrees in [-limit, limit] with 0 to 6 decimals, as a filer writes."""

    def build(negative: bool, whole: int, decimals: str) -> str:
        text = f"{whole}.{decimals}" if decimals else str(whole)
        return f"-{text}" if negative else text

    return st.builds(
        build, st.booleans(), st.integers(0, limit), st.text("0123456789", max_size=6)
    ).filter(lambda text: abs(Decimal(text)) <= limit)


latitudes = coordinates(90)
longitudes = coordinates(180)
grid_accounts = st.from_regex(r"[0-9]{10,20}", fullmatch=True)


@st.composite
def identities(draw: st.DrawFn) -> pb.ProjectIdentity:
    """A ProjectIdentity with at least one key, as an adapter reads it (a site's datum set)."""
    keys = draw(st.sets(st.sampled_from(["code", "site", "account"]), min_size=1))
    identity = pb.ProjectIdentity(
        owner_credit_code=draw(credit_codes()) if "code" in keys else "",
        grid_account=draw(grid_accounts) if "account" in keys else "",
    )
    if "site" in keys:
        identity.site.latitude = draw(latitudes)
        identity.site.longitude = draw(longitudes)
        identity.site.datum = draw(st.sampled_from(DATUMS))
    return identity


optional_identities = st.one_of(st.none(), identities())
