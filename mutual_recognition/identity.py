"""Identity keys of a project: owner credit code, site coordinates and datum, grid account.

Pure validation (no I/O, no protobuf): each ``check_*`` function takes the text as filed and
returns it unchanged when valid, or raises ``IdentityKeyError`` whose message names the key and
says exactly what is wrong. Values are never rewritten: a coordinate ``"31.149200"`` stays
``"31.149200"`` (its value is read with ``coordinate_value`` where a number is needed).

- Unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters from
  ``0-9 A-H J-N P-R T-U W-Y`` (no I, O, Z, S, V); position 1 the registration authority,
  position 2 the category within it, positions 3-8 the registering authority's county code
  (6 digits), 9-17 the organisation's identifier, 18 the check character
  ``31 - (Σ cᵢ·3^(i-1) mod 31) mod 31`` over positions 1-17.
- Coordinates: plain decimal strings in degrees (an optional ``-``, no exponent, no ``+``, no
  blanks, no redundant leading zero), at most 6 decimals; latitude in [-90, 90], longitude in
  [-180, 180].
- Datum: ``WGS84`` (the default when absent), ``GCJ02`` or ``BD09``.
- Grid metering account (电网户号): 10 to 20 ASCII digits, a string (leading zeros count).
"""

from __future__ import annotations

import enum
import operator
import re
from decimal import Decimal
from typing import Literal

__all__ = [
    "CREDIT_CODE_ALPHABET",
    "CREDIT_CODE_CATEGORIES",
    "CREDIT_CODE_WEIGHTS",
    "MAX_COORDINATE_DECIMALS",
    "Datum",
    "IdentityKey",
    "IdentityKeyError",
    "check_credit_code",
    "check_datum",
    "check_grid_account",
    "check_latitude",
    "check_longitude",
    "check_site",
    "coordinate_value",
    "credit_code_check_char",
]

IdentityKey = Literal["owner_credit_code", "latitude", "longitude", "datum", "grid_account"]

#: The 31 characters of GB 32100-2015, in the order of their values 0..30.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUES = {char: value for value, char in enumerate(CREDIT_CODE_ALPHABET)}
#: Weight of positions 1..17: 3^(i-1) mod 31.
CREDIT_CODE_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))

#: Registration authority code (position 1) → category codes (position 2) it assigns.
#: The table of GB 32100-2015 (1 机构编制, 2 外交, 3 司法行政, 4 文化, 5 民政, 6 旅游, 7 宗教,
#: 8 工会, 9 工商/市场监管, A 中央军委改革和编制办公室, N 农业, Y 其他) with the authorities and
#: categories assigned since under it (G 公安: 境外非政府组织代表机构; J 住房城乡建设: 业主大会;
#: Q 侨联; 3-6 商事调解组织; 5-4/5-5 村民/居民委员会; 8-2 非法人工会组织; 9-9 其他): codes
#: issued under those exist and must be accepted.
CREDIT_CODE_CATEGORIES: dict[str, str] = {
    "1": "1239",  # 机关, 事业单位, 编办直接管理机构编制的群众团体, 其他
    "2": "19",  # 外国常驻新闻机构, 其他
    # 律师执业机构, 公证处, 基层法律服务所, 司法鉴定机构, 仲裁委员会, 商事调解组织, 其他
    "3": "1234569",
    "4": "19",  # 外国在华文化中心, 其他
    "5": "123459",  # 社会团体, 民办非企业单位, 基金会, 村民委员会, 居民委员会, 其他
    "6": "129",  # 外国/港澳台地区旅游部门常驻代表机构, 其他
    "7": "129",  # 宗教活动场所, 宗教院校, 其他
    "8": "129",  # 基层工会, 非法人工会组织, 其他
    "9": "1239",  # 企业, 个体工商户, 农民专业合作社, 其他
    "A": "19",  # 军队事业单位, 其他
    "G": "19",  # 境外非政府组织代表机构, 其他
    "J": "19",  # 业主大会, 其他
    "N": "1239",  # 组级, 村级, 乡镇级集体经济组织, 其他
    "Q": "1239",  # 区县级, 乡镇级, 村级侨联组织, 其他
    "Y": "1",  # 其他
}

MAX_COORDINATE_DECIMALS = 6
_COORDINATE = re.compile(r"-?(0|[1-9][0-9]*)(?:\.([0-9]+))?", re.ASCII)
_ACCOUNT = re.compile(r"[0-9]{10,20}", re.ASCII)
_CODE_CHARS = re.compile(r"[0-9A-HJ-NP-RT-UW-Y]*", re.ASCII)


class Datum(enum.StrEnum):
    """Geodetic datum of a site's coordinates, by the name the region formats use."""

    WGS84 = "WGS84"
    GCJ02 = "GCJ02"
    BD09 = "BD09"


_DATUMS = {datum.value: datum for datum in Datum}


class IdentityKeyError(ValueError):
    """An identity key is invalid; ``key`` says which, the message names it and says why."""

    def __init__(self, key: IdentityKey, message: str) -> None:
        super().__init__(message)
        self.key: IdentityKey = key


def _shown(text: str) -> str:
    # Long garbage is cut so that a message stays readable (the field is named anyway).
    return repr(text if len(text) <= 40 else text[:40] + "…")


# --------------------------------------------------------------------------------------------
# Unified social credit code
# --------------------------------------------------------------------------------------------


def credit_code_check_char(first17: str) -> str:
    """The check character (position 18) of the code whose first 17 characters are given.

    Raises ``IdentityKeyError`` if ``first17`` is not 17 characters of the code's alphabet.
    """
    if len(first17) != 17:
        raise IdentityKeyError(
            "owner_credit_code", f"owner credit code body must be 17 characters, not {len(first17)}"
        )
    if not _CODE_CHARS.fullmatch(first17):
        raise IdentityKeyError("owner_credit_code", _alphabet_message(first17))
    return _check_char(first17)


def _check_char(first17: str) -> str:
    # Written with map (no Python-level loop): every record with a code runs this.
    total = sum(map(operator.mul, map(_VALUES.__getitem__, first17), CREDIT_CODE_WEIGHTS))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def _alphabet_message(text: str) -> str:
    position = next(i for i, char in enumerate(text) if char not in _VALUES)
    char = text[position]
    hint = " (codes are upper case)" if char.upper() in _VALUES and char != char.upper() else ""
    return (
        f"owner credit code {_shown(text)} has {char!r} at position {position + 1}, which is not"
        f" a character of GB 32100-2015 (0-9 and A-Z without I, O, S, V, Z){hint}"
    )


def check_credit_code(text: str) -> str:
    """``text`` if it is a valid unified social credit code, else ``IdentityKeyError``."""
    if len(text) != 18:
        raise IdentityKeyError(
            "owner_credit_code",
            f"owner credit code {_shown(text)} has {len(text)} characters; a unified social"
            " credit code has 18",
        )
    if not _CODE_CHARS.fullmatch(text):
        raise IdentityKeyError("owner_credit_code", _alphabet_message(text))
    authority, category = text[0], text[1]
    categories = CREDIT_CODE_CATEGORIES.get(authority)
    if categories is None:
        raise IdentityKeyError(
            "owner_credit_code",
            f"owner credit code {text!r} starts with {authority!r}, which is not a registration"
            f" authority code ({', '.join(CREDIT_CODE_CATEGORIES)})",
        )
    if category not in categories:
        raise IdentityKeyError(
            "owner_credit_code",
            f"owner credit code {text!r} has category {category!r} at position 2, which"
            f" registration authority {authority!r} does not assign ({', '.join(categories)})",
        )
    if not text[2:8].isdigit():  # the alphabet is ASCII: isdigit means 0-9 here
        raise IdentityKeyError(
            "owner_credit_code",
            f"owner credit code {text!r} has {text[2:8]!r} at positions 3-8, which must be the"
            " 6-digit county code of the registering authority",
        )
    expected = _check_char(text[:17])
    if text[17] != expected:
        raise IdentityKeyError(
            "owner_credit_code",
            f"owner credit code {text!r} has check character {text[17]!r}; the first 17"
            f" characters give {expected!r}",
        )
    return text


# --------------------------------------------------------------------------------------------
# Coordinates and datum
# --------------------------------------------------------------------------------------------


def _check_coordinate(key: Literal["latitude", "longitude"], text: str, limit: int) -> str:
    match = _COORDINATE.fullmatch(text)
    if match is None:
        raise IdentityKeyError(
            key,
            f"{key} {_shown(text)} is not a plain decimal number of degrees (digits, an optional"
            " leading '-' and '.', no exponent, no blanks), e.g. '31.1492'",
        )
    whole, decimals = match.group(1), match.group(2)
    if decimals is not None and len(decimals) > MAX_COORDINATE_DECIMALS:
        raise IdentityKeyError(
            key,
            f"{key} {_shown(text)} has {len(decimals)} decimals; at most"
            f" {MAX_COORDINATE_DECIMALS} are allowed (about 0.1 m)",
        )
    # Compared by its whole part (at most 3 digits), then the decimals at the limit itself: no
    # number is built (every record with a site runs this).
    if (
        len(whole) > 3
        or int(whole) > limit
        or (int(whole) == limit and (decimals or "0").strip("0"))
    ):
        raise IdentityKeyError(key, f"{key} {_shown(text)} is outside [-{limit}, {limit}] degrees")
    return text


def check_latitude(text: str) -> str:
    """``text`` if it is a valid latitude (decimal degrees in [-90, 90], ≤ 6 decimals)."""
    return _check_coordinate("latitude", text, 90)


def check_longitude(text: str) -> str:
    """``text`` if it is a valid longitude (decimal degrees in [-180, 180], ≤ 6 decimals)."""
    return _check_coordinate("longitude", text, 180)


def check_datum(text: str) -> Datum:
    """The datum named ``text`` (``WGS84``, ``GCJ02`` or ``BD09``, exactly)."""
    datum = _DATUMS.get(text)
    if datum is None:
        raise IdentityKeyError("datum", f"datum {_shown(text)} is not one of: {', '.join(_DATUMS)}")
    return datum


def check_site(latitude: str | None, longitude: str | None, datum: str | None) -> Datum | None:
    """Check a site given by its three optional parts; return its datum (None: no site).

    Latitude and longitude come together; a datum needs them; an absent datum is WGS-84.
    Raises the ``IdentityKeyError`` of the first part at fault.
    """
    if latitude is not None:
        check_latitude(latitude)
    if longitude is not None:
        check_longitude(longitude)
    if (latitude is None) != (longitude is None):
        missing: IdentityKey = "longitude" if longitude is None else "latitude"
        raise IdentityKeyError(
            missing, f"{missing} is missing: a site needs both latitude and longitude"
        )
    parsed = None if datum is None else check_datum(datum)
    if latitude is None:
        if parsed is not None:
            raise IdentityKeyError(
                "datum", "datum is given without a site (latitude and longitude)"
            )
        return None
    return parsed or Datum.WGS84


def coordinate_value(text: str) -> Decimal:
    """The exact value of a coordinate string already checked (``check_latitude``/``longitude``)."""
    return Decimal(text)


# --------------------------------------------------------------------------------------------
# Grid account
# --------------------------------------------------------------------------------------------


def check_grid_account(text: str) -> str:
    """``text`` if it is a grid metering account number: 10 to 20 ASCII digits."""
    if not _ACCOUNT.fullmatch(text):
        if text.isascii() and text.isdigit():
            reason = f"has {len(text)} digits; it must have 10 to 20"
        else:
            reason = "must be 10 to 20 digits 0-9 (written as a string)"
        raise IdentityKeyError("grid_account", f"grid account {_shown(text)} {reason}")
    return text
