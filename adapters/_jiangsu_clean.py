"""Jiangsu's own records read in one pass when the document has the usual shape and every field
is valid as written; the field parsers both readings share.

``JiangsuAdapter._parse`` tries ``read_clean`` first. It returns the common record of an own
record whose elements come in the documented order (optional ones may be absent), with no
attributes, text or comments between them, and whose every field is valid as written (printable
ASCII without blanks to strip, or a text that ``TextFields`` reads the same way); None as soon as
anything is otherwise (a foreign record, an empty or padded field, anything to report). The
adapter then reads the document in full with ``leaves`` and ``TextFields``, which report every
issue in order. A record returned here is the one the full reading builds (the same parsers and
builders; ``tests/adapters/test_jiangsu_clean.py`` compares the two readings).
"""

from __future__ import annotations

import functools
import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from operator import attrgetter, itemgetter, methodcaller
from typing import cast

from yrd.interop.v1 import records_pb2

from adapters._common import (
    MAX_TEXT_LENGTH,
    ParameterValues,
    build_issuance,
    build_methodology,
    build_project,
    clean_text,
    parse_compact_date,
    version_from_v,
)
from adapters.quantities import (
    GRAMS_PER_TONNE,
    check_decimal,
    decimal_to_grams,
    native_serials_to_grams,
)

__all__ = [
    "CATEGORIES",
    "METHODOLOGY_STATUSES",
    "PROJECT_STATUSES",
    "four_digit_year",
    "parse_tonnes",
    "read_clean",
    "serial",
]

_TONNES = re.compile(r"([0-9][0-9,]*)(?:\.([0-9]+))?\s*(?:tCO2e)?", re.ASCII)
_SEPARATED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+", re.ASCII)
_SERIAL = re.compile(r"[0-9]{1,19}", re.ASCII)
_FOUR_DIGIT_YEAR = re.compile(r"[0-9]{4}", re.ASCII)


def parse_tonnes(text: str, *, exact_decimals: bool = False) -> int:
    """``JPL``: whole tonnes, optional thousands separators and ``tCO2e`` suffix → grams.

    With ``exact_decimals`` (foreign records) up to 6 decimals, the value exact in grams.
    """
    match = _TONNES.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a quantity in tonnes such as 1,234 tCO2e")
    whole, frac = match.group(1), match.group(2) or ""
    if "," in whole and not _SEPARATED.fullmatch(whole):
        raise ValueError(f"{text!r} has thousands separators in the wrong place")
    if exact_decimals and frac:
        return decimal_to_grams(f"{whole.replace(',', '')}.{frac}", GRAMS_PER_TONNE, "t")
    if frac.strip("0"):
        raise ValueError(f"{text!r} is not a whole number of tonnes")
    return decimal_to_grams(whole.replace(",", ""), GRAMS_PER_TONNE, "t")


def serial(text: str) -> int:
    """``XLHQS``/``XLHZZ``: a serial number, ASCII digits only."""
    if not _SERIAL.fullmatch(text):
        raise ValueError(f"{text!r} is not a serial number (digits only)")
    return int(text)


def four_digit_year(text: str) -> int:
    """``ND``: a year written with four digits (not 0000)."""
    if not _FOUR_DIGIT_YEAR.fullmatch(text) or text == "0000":
        raise ValueError(f"{text!r} is not a year written YYYY")
    return int(text)


_SC = records_pb2.ScenarioCategory
_MS = records_pb2.MethodologyStatus
_PS = records_pb2.ProjectStatus

CATEGORIES = {
    "01": _SC.SCENARIO_CATEGORY_DISTRIBUTED_PV,
    "02": _SC.SCENARIO_CATEGORY_EV_CHARGING,
    "03": _SC.SCENARIO_CATEGORY_PUBLIC_TRANSIT,
    "04": _SC.SCENARIO_CATEGORY_CYCLING_WALKING,
    "05": _SC.SCENARIO_CATEGORY_WASTE_SORTING,
    "99": _SC.SCENARIO_CATEGORY_OTHER,
}
METHODOLOGY_STATUSES = {
    "1": _MS.METHODOLOGY_STATUS_FILED,
    "2": _MS.METHODOLOGY_STATUS_EFFECTIVE,
    "9": _MS.METHODOLOGY_STATUS_WITHDRAWN,
}
PROJECT_STATUSES = {
    "1": _PS.PROJECT_STATUS_REGISTERED,
    "2": _PS.PROJECT_STATUS_SUSPENDED,
    "3": _PS.PROJECT_STATUS_CLOSED,
}

# -- texts the full reading takes as written ------------------------------------------------------
# Each pattern accepts only printable ASCII without blanks, which ``TextFields`` hands on as it is
# (nothing to strip or normalise, no forbidden character), and only texts its parser accepts.
# An identifier: 1 to 128 characters, none of blank, '#', '%', '/', '?' or backslash.
_ID = re.compile(r"[\x21\x22\x24\x26-\x2e\x30-\x3e\x40-\x5b\x5d-\x7e]{1,128}")
_YEAR = re.compile(r"(?!0000)[0-9]{4}")
# Whole tonnes, at most 12 digits (so the grams stay below 2^63), separators where they belong.
_TONNES_PLAIN = re.compile(r"([0-9]{1,12}|[0-9]{1,3}(?:,[0-9]{3}){1,3})(?: ?tCO2e)?")
_CLEAN_SHORT = functools.lru_cache(maxsize=4096)(clean_text)
_SHORT = 64


def _text(raw: str) -> str:
    """A present text field as ``TextFields.text`` reads it ("" when blank; ``ValueError`` when
    refused)."""
    if raw.isascii() and raw.isprintable() and len(raw) <= MAX_TEXT_LENGTH:
        return raw.strip()
    # Titles and names recur from record to record: short ones are cached, as ``TextFields`` does.
    return (_CLEAN_SHORT if len(raw) <= _SHORT else clean_text)(raw) or ""


_TAG = attrgetter("tag")
_TEXT = attrgetter("text")
_TAIL = attrgetter("tail")
# ``keys()``, not ``attrib``: reading ``attrib`` gives each element without attributes a
# dictionary of its own (kept as long as the element).
_KEYS = methodcaller("keys")


def _plain_shape(children: _Children, text: str | None, attributes: bool) -> bool:
    """No text before (``text``) or after the ``children``, no attributes on them (the checks of
    ``leaves`` on a parent's children); ``attributes``: whether the document may have any."""
    if text and not text.isspace():
        return False
    tails = "".join(filter(None, map(_TAIL, children)))
    if tails and not tails.isspace():
        return False
    return not (attributes and any(map(_KEYS, children)))


# Tags of the children, in order → getter of the fields' texts (in the order the reader wants).
_Layouts = dict[tuple[str, ...], Callable[[list[str | None]], tuple[str, ...]]]
_Children = ET.Element | list[ET.Element]


def _layouts(required: tuple[str, ...], order: tuple[str, ...]) -> _Layouts:
    """For each sequence of tags in ``order`` holding every ``required`` one: a getter of the
    texts of ``order``'s fields from the children's texts (an absent field's text is the "" put
    after them)."""
    optional = [tag for tag in order if tag not in required]
    layouts: _Layouts = {}
    for present in itertools.product((True, False), repeat=len(optional)):
        absent = {tag for tag, here in zip(optional, present, strict=True) if not here}
        sequence = tuple(tag for tag in order if tag not in absent)
        layouts[sequence] = cast(
            Callable[[list[str | None]], tuple[str, ...]],
            itemgetter(*(sequence.index(tag) if tag not in absent else -1 for tag in order)),
        )
    return layouts


_ISSUANCE = _layouts(
    ("QFBH", "XMBH", "ND", "JCKS", "JCJS", "JPL", "XLHQS", "XLHZZ"),
    ("QFBH", "XMBH", "ND", "JCKS", "JCJS", "JPL", "XLHQS", "XLHZZ"),
)
_PROJECT = _layouts(
    ("XMBH", "FFXBH", "BBH", "XMMC", "YZMC", "XZQH", "JRQKS", "JRQJS", "ZT"),
    ("XMBH", "FFXBH", "BBH", "XMMC", "YZMC", "XZQH", "ZJRL", "BWRQ", "JRQKS", "JRQJS", "ZT"),
)
# Without the parameters (CS), which come between SXRQ (or SXJZRQ) and ZT.
_METHODOLOGY = _layouts(
    ("FFXBH", "BBH", "FFXMC", "CJLB", "SXRQ", "ZT"),
    ("FFXBH", "BBH", "FFXMC", "CJLB", "SXRQ", "SXJZRQ", "ZT"),
)
_PARAMETER = _layouts(("DM", "Z"), ("DM", "MC", "Z", "DW", "LY", "ND"))


def _texts(
    children: _Children, text: str | None, layouts: _Layouts, attributes: bool
) -> tuple[str, ...] | None:
    """The texts of the leaf elements ``children`` (after their parent's ``text``) in a layout of
    ``layouts``, none of them empty; else None."""
    getter = layouts.get(tuple(map(_TAG, children)))
    if getter is None or any(map(len, children)) or not _plain_shape(children, text, attributes):
        return None
    texts = list(map(_TEXT, children))
    if None in texts:
        return None  # an empty element: the full reading says whether it may be
    texts.append("")
    return getter(texts)


def _issuance(root: ET.Element, region: str, attributes: bool) -> records_pb2.Issuance | None:
    texts = _texts(root, root.text, _ISSUANCE, attributes)
    if texts is None:
        return None
    number, project, year, first, last, quantity, first_serial, last_serial = texts
    tonnes = _TONNES_PLAIN.fullmatch(quantity)
    if tonnes is None or not (_ID.fullmatch(number) and _ID.fullmatch(project)):
        return None
    if not _YEAR.fullmatch(year):
        return None
    try:
        start, end = parse_compact_date(first), parse_compact_date(last)
        serials = native_serials_to_grams(
            serial(first_serial), serial(last_serial), GRAMS_PER_TONNE
        )
    except ValueError:
        return None
    grams = int(tonnes.group(1).replace(",", "")) * GRAMS_PER_TONNE
    if end < start or grams != serials[1] - serials[0] + 1:
        return None
    return build_issuance(
        region,
        number,
        project_id=project,
        vintage=int(year),
        monitoring=(start, end),
        quantity_grams=grams,
        serials=serials,
    )


def _project(
    root: ET.Element, region: str, county_check: Callable[[str], str], attributes: bool
) -> records_pb2.Project | None:
    texts = _texts(root, root.text, _PROJECT, attributes)
    if texts is None:
        return None
    number, methodology, version, title, owner, county, capacity, grid, first, last, status = texts
    state = PROJECT_STATUSES.get(status)
    if state is None or not (_ID.fullmatch(number) and _ID.fullmatch(methodology)):
        return None
    try:
        version = version_from_v(version)
        title, owner = _text(title), _text(owner)
        county = county_check(county)
        start, end = parse_compact_date(first), parse_compact_date(last)
        grid_date = parse_compact_date(grid) if grid else None
        if capacity:
            capacity = check_decimal(capacity, positive=True)
    except ValueError:
        return None
    if not (title and owner) or end <= start:
        return None
    return build_project(
        region,
        number,
        (methodology, version),
        title=title,
        owner=owner,
        county=county,
        crediting=(start, end),
        status=state,
        capacity=(capacity, "kW") if capacity else None,
        grid_date=grid_date,
    )


def _parameters(elements: list[ET.Element], attributes: bool) -> list[ParameterValues] | None:
    """The parameters of ``CS`` elements of the usual shape; ``ValueError`` when one is refused."""
    parameters = []
    codes = set()
    for element in elements:
        texts = _texts(element, element.text, _PARAMETER, attributes)
        if texts is None:
            return None
        code, name, value, unit, source, year = texts
        code = _text(code)
        if not code or code in codes or (year and not _YEAR.fullmatch(year)):
            return None
        codes.add(code)
        parameters.append(
            ParameterValues(  # code, name, value, unit, source, year
                code,
                _text(name),
                check_decimal(value, allow_negative=True),
                _text(unit),
                _text(source),
                int(year) if year else 0,
            )
        )
    return parameters


def _methodology(root: ET.Element, region: str, attributes: bool) -> records_pb2.Methodology | None:
    # The usual order: the fields, the parameters (CS), then the status (ZT).
    tags = tuple(map(_TAG, root))
    count = tags.count("CS")
    head = len(tags) - 1 - count
    getter = _METHODOLOGY.get(tags[:head] + tags[-1:])
    if getter is None or tags[head:-1].count("CS") != count:
        return None
    if not _plain_shape(root, root.text, attributes):
        return None
    fields = root[:head]
    fields.append(root[-1])
    texts = list(map(_TEXT, fields))
    if None in texts or any(map(len, fields)):
        return None
    texts.append("")
    number, version, title, category, effective, expiry, status = getter(texts)
    scenario = CATEGORIES.get(category)
    state = METHODOLOGY_STATUSES.get(status)
    if scenario is None or state is None or not _ID.fullmatch(number):
        return None
    try:
        version = version_from_v(version)
        title = _text(title)
        start = parse_compact_date(effective)
        end = parse_compact_date(expiry) if expiry else None
        parameters = _parameters(root[head:-1], attributes)
    except ValueError:
        return None
    if parameters is None or not title or (end is not None and end <= start):
        return None
    return build_methodology(
        region,
        number,
        version=version,
        title=title,
        category=scenario,
        parameters=parameters,
        effective=(start, end),
        status=state,
    )


def read_clean(
    root: ET.Element, data: bytes, region: str, county_check: Callable[[str], str]
) -> records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance | None:
    """The own record of the document ``root`` (parsed from ``data``) when it has the usual shape
    and all its fields are valid as written, else None (then read it with ``TextFields``);
    ``county_check`` is the parser of the region's own county codes."""
    attrib = root.attrib
    if root.tag != "JSTPH" or len(attrib) != 1:
        return None
    kind = attrib.get("LX")
    # Every attribute is written with a '=' (a byte no other character has in UTF-8): with only
    # the one of LX, no element has attributes, and the readers need not ask each of them.
    attributes = data.count(b"=") != 1
    if kind == "QF":
        return _issuance(root, region, attributes)
    if kind == "XM":
        return _project(root, region, county_check, attributes)
    if kind == "FFX":
        return _methodology(root, region, attributes)
    return None
