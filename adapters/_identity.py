"""A project's identity keys in the native formats (``docs/regions.md``, "Identity keys").

Every format names five optional project fields: the owner's unified social credit code, the
site's latitude, longitude and datum, and the grid metering account. They are read into
``Project.identity`` exactly as filed (validated by ``mutual_recognition.identity``) and written
back from it:

- a site needs both coordinates; a datum needs a site; an absent datum is WGS-84, so a site read
  without a datum gets ``COORDINATE_DATUM_WGS84``;
- a WGS-84 site is written without a datum (the formats' default), any other datum by its name:
  the rendering reads back as exactly the same record, and a filer's explicit ``WGS84`` reads as
  the same record as an absent one (``adapters.base.comparable_record`` reads an unspecified datum
  of a site as WGS-84 too, as the contract says);
- own and foreign records carry them the same way (they are not in the extension object).

A document without any of the fields costs five dictionary lookups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from yrd.interop.v1 import records_pb2

from adapters._build import IdentityValues
from adapters._common import CommonCheck, Fields
from mutual_recognition.identity import (
    Datum,
    IdentityKeyError,
    check_credit_code,
    check_datum,
    check_grid_account,
    check_latitude,
    check_longitude,
)

__all__ = [
    "ANHUI",
    "JIANGSU",
    "SHANGHAI",
    "ZHEJIANG",
    "IdentityFields",
    "identity_items",
    "read_identity",
]

_CD = records_pb2.CoordinateDatum
DATUMS: dict[Datum, records_pb2.CoordinateDatum.ValueType] = {
    Datum.WGS84: _CD.COORDINATE_DATUM_WGS84,
    Datum.GCJ02: _CD.COORDINATE_DATUM_GCJ02,
    Datum.BD09: _CD.COORDINATE_DATUM_BD09,
}
_DATUM_NAMES = {value: datum.value for datum, value in DATUMS.items()}


@dataclass(frozen=True, slots=True)
class IdentityFields:
    """The native names of the five identity fields of one format, in the order written."""

    credit_code: str
    latitude: str
    longitude: str
    datum: str
    grid_account: str
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    name_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once: ``read_identity`` looks them up in every project record.
        names = (self.credit_code, self.latitude, self.longitude, self.datum, self.grid_account)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "name_set", frozenset(names))


SHANGHAI = IdentityFields(
    "owner_credit_code", "site_lat", "site_lon", "site_datum", "grid_account_no"
)
JIANGSU = IdentityFields("YZXYDM", "WD", "JD", "ZBX", "DWHH")
ZHEJIANG = IdentityFields("orgCreditCode", "latitude", "longitude", "coordSystem", "powerAccountNo")
ANHUI = IdentityFields("业主统一社会信用代码", "纬度", "经度", "坐标系", "电网户号")


def read_identity(f: Fields, fields: IdentityFields) -> IdentityValues | None:
    """The identity keys of the record read by ``f``; None when it has none (or they are invalid:
    every issue is reported to ``f`` under the native field's name)."""
    if fields.name_set.isdisjoint(f.values):
        return None  # the usual case: a format's record without any of the fields
    code = f.parsed(fields.credit_code, check_credit_code)
    account = f.parsed(fields.grid_account, check_grid_account)
    latitude = f.text(fields.latitude)
    longitude = f.text(fields.longitude)
    datum = f.text(fields.datum)
    valid = True
    for name, text, check in (
        (fields.latitude, latitude, check_latitude),
        (fields.longitude, longitude, check_longitude),
    ):
        if text is not None:
            try:
                check(text)
            except IdentityKeyError as exc:
                f.report(name, str(exc))
                valid = False
    if (latitude is None) != (longitude is None):
        given, missing = (
            (fields.latitude, fields.longitude)
            if longitude is None
            else (fields.longitude, fields.latitude)
        )
        f.report(
            missing,
            f"is missing: {given} is given, and a site needs both {fields.latitude} and"
            f" {fields.longitude}",
        )
        valid = False
    parsed_datum: Datum | None = None
    if datum is not None:
        try:
            parsed_datum = check_datum(datum)
        except IdentityKeyError as exc:
            f.report(fields.datum, str(exc))
            valid = False
        if latitude is None and longitude is None:
            f.report(
                fields.datum,
                f"is given without a site: {fields.latitude} and {fields.longitude} are absent",
            )
            valid = False
    if not valid or (code is None and account is None and latitude is None):
        return None
    return IdentityValues(
        code or "",
        latitude or "",
        longitude or "",
        DATUMS[parsed_datum or Datum.WGS84] if latitude else _CD.COORDINATE_DATUM_UNSPECIFIED,
        account or "",
    )


def identity_items(
    record: records_pb2.Project, check: CommonCheck, fields: IdentityFields
) -> list[tuple[str, str]] | None:
    """The identity fields of ``record`` to write, as (native name, text) pairs in the order of
    ``fields``; ``[]`` when it has none; None when a key is invalid (reported to ``check`` under
    its common field path)."""
    if not record.HasField("identity"):
        return []
    identity = record.identity
    before = len(check.issues.items)
    items: list[tuple[str, str]] = []
    if identity.owner_credit_code:
        try:
            items.append((fields.credit_code, check_credit_code(identity.owner_credit_code)))
        except IdentityKeyError as exc:
            check.add("identity.owner_credit_code", str(exc))
    if identity.HasField("site"):
        site = identity.site
        if site.latitude or site.longitude:
            for name, path, text, parse in (
                (fields.latitude, "identity.site.latitude", site.latitude, check_latitude),
                (fields.longitude, "identity.site.longitude", site.longitude, check_longitude),
            ):
                if not text:
                    check.add(path, "is required: a site needs both latitude and longitude")
                    continue
                try:
                    items.append((name, parse(text)))
                except IdentityKeyError as exc:
                    check.add(path, str(exc))
            datum = _DATUM_NAMES.get(site.datum)
            if site.datum and datum is None:
                check.add("identity.site.datum", f"{site.datum} is not a known datum")
            elif datum is not None and site.datum != _CD.COORDINATE_DATUM_WGS84:
                items.append((fields.datum, datum))
        elif site.datum:
            check.add("identity.site.datum", "is set without a latitude and longitude")
    if identity.grid_account:
        try:
            items.append((fields.grid_account, check_grid_account(identity.grid_account)))
        except IdentityKeyError as exc:
            check.add("identity.grid_account", str(exc))
    if len(check.issues.items) > before:
        return None
    return items
