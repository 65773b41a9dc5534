"""Identity keys in every region's format: read as filed, written back exactly, refused when
invalid (under the native field's name), carried by foreign records; the demo's Qingpu/Wujiang
pair of samples."""

from __future__ import annotations

import csv
import io
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from yrd.interop.v1 import records_pb2 as pb

from adapters import (
    AnhuiAdapter,
    CommonRecord,
    NativeFormatError,
    NotExpressibleError,
    RegionAdapter,
    build_default_registry,
)
from adapters._identity import ANHUI, JIANGSU, SHANGHAI, ZHEJIANG, IdentityFields
from adapters.base import render_checked, same_record
from tests.adapters.conftest import IDENTITY_SAMPLE_NAMES, find_samples_dir

REGISTRY = build_default_registry()
REGIONS = ("310000", "320000", "330000", "340000")
FIELDS: dict[str, IdentityFields] = {
    "310000": SHANGHAI,
    "320000": JIANGSU,
    "330000": ZHEJIANG,
    "340000": ANHUI,
}
SAMPLE = {name[:6]: name for name in IDENTITY_SAMPLE_NAMES}
W, G, B = pb.COORDINATE_DATUM_WGS84, pb.COORDINATE_DATUM_GCJ02, pb.COORDINATE_DATUM_BD09


def identity(
    code: str, lat: str, lon: str, datum: pb.CoordinateDatum.ValueType, account: str
) -> pb.ProjectIdentity:
    result = pb.ProjectIdentity(owner_credit_code=code, grid_account=account)
    if lat or lon:
        result.site.CopyFrom(pb.SiteLocation(latitude=lat, longitude=lon, datum=datum))
    return result


EXPECTED = {
    "310000": identity("91310115MA1FP2C43T", "31.221530", "121.544080", W, "3100123456789"),
    "320000": identity("91320506MA1MYQ7T7X", "31.262410", "120.636250", G, "3205060012345678"),
    "330000": identity("91330502MA2B3K4D3L", "30.875312", "120.102836", B, "3305021234567"),
    "340000": identity("91340104MA2TGH5N0K", "31.851200", "117.260600", W, "0551234567"),
}


def sample(name: str) -> bytes:
    return (find_samples_dir() / name).read_bytes()


def parse(region: str, data: bytes, *, foreign: bool = False) -> list[CommonRecord]:
    adapter = REGISTRY.get(region)
    return adapter.to_common(adapter.content_types[0], data, accept_foreign=foreign)


def project_of(region: str, data: bytes, *, foreign: bool = False) -> pb.Project:
    record = parse(region, data, foreign=foreign)[0]
    assert isinstance(record, pb.Project)
    return record


# -- editing a native document's identity fields (by key: credit_code, latitude, …) ----------


def edit(region: str, data: bytes, changes: dict[str, str | None]) -> bytes:
    """``data`` with identity fields set (a string) or removed (None); keys are the attribute
    names of ``IdentityFields``; for Anhui the first data row is edited."""
    names = {getattr(FIELDS[region], key): value for key, value in changes.items()}
    if region in ("310000", "330000"):
        doc = json.loads(data)
        holder = doc["dataInfo"] if region == "330000" else doc
        for name, value in names.items():
            if value is None:
                holder.pop(name, None)
            else:
                holder[name] = value
        return json.dumps(doc, ensure_ascii=False).encode()
    if region == "320000":
        root = ET.fromstring(data)
        for name, value in names.items():
            element = root.find(name)
            if element is not None:
                root.remove(element)
            if value is not None:
                ET.SubElement(root, name).text = value
        return ET.tostring(root, encoding="unicode").encode()
    rows = list(csv.reader(io.StringIO(data.decode("gb18030"), newline="")))
    header = rows[0]
    for name, value in names.items():
        rows[1][header.index(name)] = value or ""
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("gb18030")


# -- reading and writing ----------------------------------------------------------------------


@pytest.mark.parametrize("region", REGIONS)
def test_identity_samples_read_as_filed(region: str) -> None:
    project = project_of(region, sample(SAMPLE[region]))
    assert project.identity == EXPECTED[region]
    # Apart from the keys, the record is the shared sample's project.
    base = project_of(region, sample(SAMPLE[region].replace("-identity", "")))
    assert not base.HasField("identity")
    project.ClearField("identity")
    assert project == base


@pytest.mark.parametrize("region", REGIONS)
def test_identity_samples_rerender_byte_for_byte(region: str) -> None:
    adapter = REGISTRY.get(region)
    records = parse(region, sample(SAMPLE[region]))
    if isinstance(adapter, AnhuiAdapter):
        assert len(records) == 2 and not records[1].HasField("identity")  # type: ignore[union-attr]
        assert adapter.from_common_many(records) == sample(SAMPLE[region])
    else:
        assert adapter.from_common(records[0]) == sample(SAMPLE[region])


@pytest.mark.parametrize("region", REGIONS)
def test_absent_datum_is_wgs84_and_an_explicit_one_reads_the_same(region: str) -> None:
    data = sample(SAMPLE[region])
    absent = project_of(region, edit(region, data, {"datum": None}))
    explicit = project_of(region, edit(region, data, {"datum": "WGS84"}))
    assert absent.identity.site.datum == explicit.identity.site.datum == W
    assert absent == explicit
    # Written back without a datum (the formats' default).
    assert FIELDS[region].datum.encode() not in REGISTRY.get(region).from_common(explicit)


@pytest.mark.parametrize("region", REGIONS)
def test_each_key_alone(region: str) -> None:
    data = sample(SAMPLE[region])
    none = {"credit_code": None, "latitude": None, "longitude": None, "datum": None}
    account_only = project_of(region, edit(region, data, {**none}))
    assert account_only.identity == pb.ProjectIdentity(grid_account=EXPECTED[region].grid_account)
    code_only = project_of(region, edit(region, data, {**none, "credit_code": "91350100M000100Y43", "grid_account": None}))  # fmt: skip
    assert code_only.identity == pb.ProjectIdentity(owner_credit_code="91350100M000100Y43")
    nothing = edit(region, data, {**none, "grid_account": None})
    assert not project_of(region, nothing).HasField("identity")


# -- invalid keys are refused under the native field's name -----------------------------------

INVALID: list[tuple[str, dict[str, str | None], str, str]] = [
    ("bad check character", {"credit_code": "91350100M000100Y44"}, "credit_code", "check character '4'"),
    ("lower case code", {"credit_code": "91350100m000100Y43"}, "credit_code", "upper case"),
    ("short code", {"credit_code": "9135010"}, "credit_code", "has 7 characters"),
    ("latitude out of range", {"latitude": "90.5"}, "latitude", "outside [-90, 90]"),
    ("longitude out of range", {"longitude": "-180.000001"}, "longitude", "outside [-180, 180]"),
    ("seven decimals", {"longitude": "121.1234567"}, "longitude", "has 7 decimals"),
    ("exponent", {"latitude": "3.1e1"}, "latitude", "not a plain decimal number"),
    ("NaN", {"longitude": "NaN"}, "longitude", "not a plain decimal number"),
    ("latitude only", {"longitude": None}, "longitude", "is missing"),
    ("longitude only", {"latitude": None}, "latitude", "is missing"),
    ("datum without a site", {"latitude": None, "longitude": None, "datum": "GCJ02"}, "datum", "without a site"),
    ("unknown datum", {"datum": "CGCS2000"}, "datum", "is not one of: WGS84, GCJ02, BD09"),
    ("short account", {"grid_account": "12345"}, "grid_account", "has 5 digits"),
    ("account with a dash", {"grid_account": "3100-123456"}, "grid_account", "10 to 20 digits"),
]  # fmt: skip


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize(
    ("case", "changes", "key", "message"), INVALID, ids=[c[0] for c in INVALID]
)
def test_invalid_keys_are_refused_naming_the_field(
    region: str, case: str, changes: dict[str, str | None], key: str, message: str
) -> None:
    bad = edit(region, sample(SAMPLE[region]), changes)
    with pytest.raises(NativeFormatError) as info:
        parse(region, bad)
    field = getattr(FIELDS[region], key)
    [issue] = info.value.issues
    if region == "330000":
        assert issue.field == f"dataInfo.{field}"
    else:
        assert issue.field == field
    assert message in issue.reason
    if region == "340000":
        assert (issue.row, issue.column) == (2, field)
    assert f"{issue.field if region != '340000' else 'row 2, ' + field}: " in str(info.value)


@pytest.mark.parametrize("region", REGIONS)
def test_every_bad_key_of_a_document_is_listed(region: str) -> None:
    bad = edit(
        region,
        sample(SAMPLE[region]),
        {"credit_code": "91350100M000100Y44", "latitude": "-91", "grid_account": "1"},
    )
    with pytest.raises(NativeFormatError) as info:
        parse(region, bad)
    fields = FIELDS[region]
    assert {i.column or i.field.removeprefix("dataInfo.") for i in info.value.issues} == {
        fields.credit_code,
        fields.latitude,
        fields.grid_account,
    }


@pytest.mark.parametrize(("region", "key"), [("310000", "site_lat"), ("310000", "grid_account_no"), ("330000", "latitude"), ("330000", "powerAccountNo")])  # fmt: skip
def test_json_formats_want_strings_not_numbers(region: str, key: str) -> None:
    doc = json.loads(sample(SAMPLE[region]))
    holder = doc.get("dataInfo", doc)
    holder[key] = 31 if "ccount" in key else 31.5
    with pytest.raises(NativeFormatError, match=f"{key}: must be a JSON string, not an? "):
        parse(region, json.dumps(doc).encode())


def test_anhui_identity_columns_belong_to_project_files_in_any_order() -> None:
    text = sample(SAMPLE["340000"]).decode("gb18030")
    header, first, second = (line.split(",") for line in text.split("\r\n")[:3])
    order = [*range(12), 16, 14, 13, 15, 12]  # the identity columns shuffled
    shuffled = "\r\n".join(
        ",".join(row[i] for i in order) for row in (header, first, second)
    ).encode("gb18030")
    assert parse("340000", shuffled) == parse("340000", sample(SAMPLE["340000"]))
    before = [*range(12, 17), *range(12)]  # identity columns first: not trailing
    with pytest.raises(NativeFormatError, match="must come after the standard columns"):
        parse("340000", ",".join(header[i] for i in before).encode("gb18030") + b"\r\n")
    methodology = sample("340000-methodology.csv").decode("gb18030").split("\r\n")
    methodology[0] += ",电网户号"
    methodology[1] += ",3100123456789"
    with pytest.raises(NativeFormatError, match="电网户号: is not a column of the 方法学 header"):
        parse("340000", "\r\n".join(methodology[:2]).encode("gb18030"))


# -- common → native ----------------------------------------------------------------------------


@pytest.mark.parametrize("region", REGIONS)
def test_an_unspecified_datum_of_a_site_is_written_as_wgs84(region: str) -> None:
    project = project_of(region, sample(SAMPLE[region]))
    project.identity.site.datum = pb.COORDINATE_DATUM_UNSPECIFIED
    adapter = REGISTRY.get(region)
    back = project_of(region, render_checked(adapter, project))
    assert back.identity.site.datum == W
    assert same_record(back, project)


@pytest.mark.parametrize("region", REGIONS)
def test_an_empty_identity_is_no_identity(region: str) -> None:
    project = project_of(region, sample(SAMPLE[region].replace("-identity", "")))
    project.identity.SetInParent()
    project.identity.site.SetInParent()
    back = project_of(region, render_checked(REGISTRY.get(region), project))
    assert not back.HasField("identity") and same_record(back, project)


COMMON_INVALID: list[tuple[Callable[[pb.ProjectIdentity], None], str, str]] = [
    (lambda i: setattr(i, "owner_credit_code", "91350100M000100Y44"), "identity.owner_credit_code", "check character"),
    (lambda i: setattr(i, "owner_credit_code", " 91350100M000100Y43"), "identity.owner_credit_code", "has 19 characters"),
    (lambda i: setattr(i.site, "longitude", ""), "identity.site.longitude", "needs both"),
    (lambda i: setattr(i.site, "latitude", "31.2e0"), "identity.site.latitude", "plain decimal"),
    (lambda i: setattr(i.site, "datum", 7), "identity.site.datum", "not a known datum"),
    (lambda i: (i.site.ClearField("latitude"), i.site.ClearField("longitude")), "identity.site.datum", "without a latitude"),
    (lambda i: setattr(i, "grid_account", "０５５１２３４５６７"), "identity.grid_account", "10 to 20 digits"),
]  # fmt: skip


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize(("change", "field", "message"), COMMON_INVALID)
def test_invalid_common_keys_cannot_be_rendered(
    region: str, change: Callable[[pb.ProjectIdentity], None], field: str, message: str
) -> None:
    project = project_of("320000", sample(SAMPLE["320000"]))  # GCJ02: the datum is written
    change(project.identity)
    with pytest.raises(NotExpressibleError) as info:
        REGISTRY.get(region).from_common(project)
    [issue] = info.value.issues
    assert issue.field == field and message in issue.reason


# -- foreign records carry the keys -----------------------------------------------------------


def deliver(target: RegionAdapter, record: CommonRecord) -> CommonRecord:
    [back] = target.to_common(
        target.content_types[0], render_checked(target, record), accept_foreign=True
    )
    return back


@pytest.mark.parametrize("source", REGIONS)
@pytest.mark.parametrize("target", REGIONS)
def test_foreign_records_carry_the_keys(source: str, target: str) -> None:
    project = project_of(source, sample(SAMPLE[source]))
    back = deliver(REGISTRY.get(target), project)
    assert isinstance(back, pb.Project)
    assert back.identity == EXPECTED[source]
    assert same_record(back, project)


@pytest.mark.parametrize("target", ["310000", "320000", "330000", "340000"])
def test_foreign_documents_with_bad_keys_are_refused(target: str) -> None:
    # A Zhejiang project (BD-09 site) in the target's format, its longitude then broken.
    project = project_of("330000", sample(SAMPLE["330000"]))
    adapter = REGISTRY.get(target)
    data = adapter.from_common(project) if target != "330000" else sample(SAMPLE["330000"])
    assert project_of(target, data, foreign=True).identity == EXPECTED["330000"]
    bad = edit(target, data, {"longitude": "181"})
    with pytest.raises(NativeFormatError, match="longitude '181' is outside"):
        parse(target, bad, foreign=True)


def test_the_keys_never_travel_in_the_extension_object() -> None:
    # Every format has fields of its own for the keys: the extension may not carry them.
    ext = json.dumps({"identity": {"gridAccount": "3100123456789"}})
    doc = sample("320000-project.xml").decode().replace("<BBH>V01</BBH>", "<BBH>1</BBH>")
    doc = doc.replace("<XMBH>", f"<LYSF>310000</LYSF><KZ>{ext}</KZ><XMBH>")
    assert not project_of(
        "320000", doc.replace(ext, "{}").encode(), foreign=True
    ).identity.ListFields()
    with pytest.raises(NativeFormatError, match="'identity' is not a field the extension carries"):
        parse("320000", doc.encode(), foreign=True)


# -- the demo pair: one plant filed in Qingpu and in Wujiang ----------------------------------

QINGPU, WUJIANG = "demo-qingpu-310000-project.json", "demo-wujiang-320000-project.xml"


def _gcj02_from_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """The published GCJ-02 obfuscation (forward only; the gateway inverts it for matching)."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    common = (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    d_lat += common + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
    d_lat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3
    d_lon += common + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
    d_lon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    rad = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(rad) ** 2
    d_lat = d_lat * 180.0 / ((a * (1 - ee)) / (magic * math.sqrt(magic)) * math.pi)
    d_lon = d_lon * 180.0 / (a / math.sqrt(magic) * math.cos(rad) * math.pi)
    return lat + d_lat, lon + d_lon


def _haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    h = math.sin((p2 - p1) / 2) ** 2
    h += math.cos(p1) * math.cos(p2) * math.sin(math.radians(b[1] - a[1]) / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(h))


def test_demo_pair_is_one_plant_filed_twice() -> None:
    qingpu, wujiang = project_of("310000", sample(QINGPU)), project_of("320000", sample(WUJIANG))
    assert (qingpu.county_code, wujiang.county_code) == ("310118", "320509")
    assert qingpu.identity.owner_credit_code == wujiang.identity.owner_credit_code
    assert qingpu.identity.grid_account == wujiang.identity.grid_account
    assert (qingpu.identity.site.datum, wujiang.identity.site.datum) == (W, G)
    # The methodologies are the regions' sample methodologies (distributed PV both).
    for project, region, name in ((qingpu, "310000", "310000-methodology.json"), (wujiang, "320000", "320000-methodology.xml")):  # fmt: skip
        [methodology] = parse(region, sample(name))
        assert isinstance(methodology, pb.Methodology)
        assert project.methodology == REGISTRY.get(region).methodology_ref(methodology)
        assert methodology.category == pb.SCENARIO_CATEGORY_DISTRIBUTED_PV
    # Wujiang's GCJ-02 site, brought back to WGS-84 (fixed-point iteration), is ~30 m from
    # Qingpu's; compared as filed (without conversion) the two would look ~450 m apart.
    target = (float(wujiang.identity.site.latitude), float(wujiang.identity.site.longitude))
    lat, lon = target
    for _ in range(30):
        got = _gcj02_from_wgs84(lat, lon)
        lat, lon = lat + target[0] - got[0], lon + target[1] - got[1]
    site = (float(qingpu.identity.site.latitude), float(qingpu.identity.site.longitude))
    assert 25 < _haversine_m(site, (lat, lon)) < 40
    assert _haversine_m(site, target) > 400
    # Both render back byte for byte, and each converts cleanly in the other's format.
    assert REGISTRY.get("310000").from_common(qingpu) == sample(QINGPU)
    assert REGISTRY.get("320000").from_common(wujiang) == sample(WUJIANG)
    assert same_record(deliver(REGISTRY.get("320000"), qingpu), qingpu)
    assert same_record(deliver(REGISTRY.get("310000"), wujiang), wujiang)
