"""Records of other regions in every region's format: exact round trips on every pair of regions.

Any common record of any region, rendered in any region's native format, parses back (with
``accept_foreign``) to the same record: quantities, serials, dates, versions and ids exactly
(capacities by exact value in watts). Own records keep each format's strict rules, and a document
naming another origin is never taken as a publishing region's own.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yrd.interop.v1 import records_pb2 as pb

from adapters import (
    AdapterBase,
    AnhuiAdapter,
    CommonRecord,
    NativeFormatError,
    NotExpressibleError,
    RegionAdapter,
    build_default_registry,
)
from adapters.base import comparable_record, render_checked, same_record
from adapters.quantities import capacity_watts
from tests.adapters.conftest import SAMPLE_NAMES, find_samples_dir
from tests.adapters.identity_strategies import optional_identities
from tests.adapters.test_adapters_roundtrip import (
    SETTINGS,
    cal,
    categories,
    decimals,
    identifiers,
    methodology_statuses,
    optional_texts,
    parameters,
    project_statuses,
    ranges,
    records_of,
    texts,
    versions,
    years,
)

REGISTRY = build_default_registry()
REGIONS = ("310000", "320000", "330000", "340000")
PAIRS = [(source, target) for source in REGIONS for target in REGIONS]
KIND = {pb.Methodology: "methodology", pb.Project: "project", pb.Issuance: "issuance"}


def deliver(target: RegionAdapter, record: CommonRecord) -> CommonRecord:
    """Render ``record`` in ``target``'s format and read it back as a subscriber's importer would."""
    data = target.from_common(record)
    [back] = target.to_common(target.content_types[0], data, accept_foreign=True)
    return back


def assert_exact(back: CommonRecord, record: CommonRecord) -> None:
    if isinstance(record, pb.Project) and record.HasField("capacity"):
        assert isinstance(back, pb.Project)
        assert capacity_watts(back.capacity) == capacity_watts(record.capacity)
        assert comparable_record(back) == comparable_record(record)
    elif isinstance(record, pb.Methodology) and record.eligibility.HasField("max_capacity"):
        assert comparable_record(back) == comparable_record(record)
    else:
        assert back == record  # every field, byte for byte


# -- records as each region files them, through every region's format ------------------------


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_records_of_every_region_round_trip_through_every_format(source: str, target: str) -> None:
    adapter = REGISTRY.get(target)

    @SETTINGS
    @given(records_of(source))
    def check(record: CommonRecord) -> None:
        back = deliver(adapter, record)
        assert_exact(back, record)
        # Rendering is deterministic: the record read back renders to the same bytes.
        assert adapter.from_common(back) == adapter.from_common(record)

    check()


# -- any common record of any origin (including regions without an adapter) -----------------

CAPACITY_UNITS = ("W", "kW", "MW", "GW", "千瓦", "兆瓦")
ORIGINS = ("310000", "320000", "330000", "340000", "440000")
native_ids = st.dictionaries(texts, texts, max_size=3)
common_versions = versions("310000")


@st.composite
def capacities(draw: st.DrawFn) -> pb.ExactQuantity:
    return pb.ExactQuantity(
        value=draw(decimals(positive=True, negative=False)),
        unit=draw(st.sampled_from(CAPACITY_UNITS)),
    )


@st.composite
def any_methodology(draw: st.DrawFn, region: str) -> pb.Methodology:
    mid = draw(identifiers)
    record = pb.Methodology(
        name=f"regions/{region}/methodologies/{mid}",
        region=region,
        methodology_id=mid,
        version=draw(common_versions),
        title=draw(texts),
        category=draw(categories),
        formula=draw(optional_texts),
        parameters=draw(parameters()),
        crediting_period_rule=draw(optional_texts),
        effective=draw(ranges(strict=True, open_end=True)),
        status=draw(methodology_statuses),
        filing_document=draw(optional_texts),
        document_sha256=draw(
            st.one_of(st.just(""), st.from_regex(r"[0-9a-f]{64}", fullmatch=True))
        ),
        native_ids=draw(native_ids),
    )
    if draw(st.booleans()):
        record.eligibility.max_capacity.CopyFrom(draw(capacities()))
    lifetime = draw(st.integers(0, 1000))
    if lifetime:
        record.eligibility.max_lifetime_years = lifetime
    return record


@st.composite
def any_project(draw: st.DrawFn, region: str) -> pb.Project:
    pid = draw(identifiers)
    record = pb.Project(
        name=f"regions/{region}/projects/{pid}",
        region=region,
        project_id=pid,
        methodology=pb.MethodologyRef(
            region=region,
            methodology_id=draw(identifiers),
            version=draw(st.one_of(st.just(""), common_versions)),
        ),
        title=draw(texts),
        owner=draw(texts),
        county_code=draw(st.from_regex(r"[0-9]{6}", fullmatch=True)),
        crediting_period=draw(ranges(strict=True, open_end=False)),
        status=draw(project_statuses),
        native_ids=draw(native_ids),
    )
    if draw(st.booleans()):
        record.capacity.CopyFrom(draw(capacities()))
    if draw(st.booleans()):
        record.start_date.CopyFrom(cal(draw(st.dates(date(1, 1, 1), date(9999, 12, 31)))))
    identity = draw(optional_identities)
    if identity is not None:
        record.identity.CopyFrom(identity)
    return record


@st.composite
def any_issuance(draw: st.DrawFn, region: str) -> pb.Issuance:
    iid = draw(identifiers)
    first = draw(st.integers(0, 2**62))
    size = draw(st.integers(1, 2**40))
    return pb.Issuance(
        name=f"regions/{region}/issuances/{iid}",
        region=region,
        issuance_id=iid,
        project=f"regions/{region}/projects/{draw(identifiers)}",
        vintage=draw(years),
        monitoring_period=draw(ranges(strict=False, open_end=False)),
        quantity_grams=size,
        serials=pb.SerialRange(start=first, end=first + size - 1),
        native_ids=draw(native_ids),
    )


@st.composite
def foreign_pairs(draw: st.DrawFn, target: str) -> CommonRecord:
    origin = draw(st.sampled_from([o for o in ORIGINS if o != target]))
    return draw(st.one_of(any_methodology(origin), any_project(origin), any_issuance(origin)))


@pytest.mark.parametrize("target", REGIONS)
def test_any_common_record_of_another_region_round_trips_exactly(target: str) -> None:
    adapter = REGISTRY.get(target)

    @SETTINGS
    @given(foreign_pairs(target))
    def check(record: CommonRecord) -> None:
        assert_exact(deliver(adapter, record), record)

    check()


# -- the shared samples: every record in every format ----------------------------------------


def sample_records() -> list[CommonRecord]:
    records: list[CommonRecord] = []
    for name in SAMPLE_NAMES:
        adapter = REGISTRY.get(name[:6])
        records += adapter.to_common(
            adapter.content_types[0], (find_samples_dir() / name).read_bytes()
        )
    return records


def test_every_sample_record_is_native_in_every_format_and_converts_back_exactly() -> None:
    records = sample_records()
    assert len(records) == 15
    table: dict[tuple[str, str], list[int]] = {}
    for target in REGIONS:
        adapter = REGISTRY.get(target)
        for record in records:
            back = deliver(adapter, record)
            cell = table.setdefault((target, KIND[type(record)]), [0, 0])
            cell[0] += record.region != target
            cell[1] += record.region != target and same_record(back, record)
            assert same_record(back, record)
    # Foreign records per region and kind: Anhui's samples carry two of each kind.
    for (target, _kind), (foreign, exact) in table.items():
        assert foreign == exact == (3 if target == "340000" else 4)


# -- own records keep the strict rules; foreign ones are not published as own ----------------


def _shanghai(obj: dict[str, object]) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


SH_PROJECT = json.loads((find_samples_dir() / "310000-project.json").read_text("utf-8"))


def test_own_records_still_match_the_format_patterns() -> None:
    sh = REGISTRY.get("310000")
    own = dict(SH_PROJECT, origin_region="310000", methodology_no="JS-FFX-GF-001")
    with pytest.raises(NativeFormatError) as info:
        sh.to_common(sh.content_types[0], _shanghai(own), accept_foreign=True)
    assert [i.field for i in info.value.issues] == ["methodology_no"]
    county = dict(SH_PROJECT, district_code="320506")
    with pytest.raises(NativeFormatError) as info:
        sh.to_common(sh.content_types[0], _shanghai(county), accept_foreign=True)
    assert [i.field for i in info.value.issues] == ["district_code"]
    # The same values are fine in a record that says it comes from Jiangsu.
    foreign = dict(own, origin_region="320000", district_code="320506")
    [record] = sh.to_common(sh.content_types[0], _shanghai(foreign), accept_foreign=True)
    assert record.name == "regions/320000/projects/SHCI-P-2024-000123"


def test_extension_is_only_for_foreign_records_and_only_for_fields_without_a_place() -> None:
    sh = REGISTRY.get("310000")
    with pytest.raises(NativeFormatError) as info:
        sh.to_common(sh.content_types[0], _shanghai(dict(SH_PROJECT, ext={"nativeIds": {}})))
    assert [
        (i.field, "only for records of other regions" in i.reason) for i in info.value.issues
    ] == [("ext", True)]
    foreign = dict(SH_PROJECT, origin_region="320000", ext={"title": "x", "owner": "y"})
    with pytest.raises(NativeFormatError) as info:
        sh.to_common(sh.content_types[0], _shanghai(foreign), accept_foreign=True)
    assert {i.field for i in info.value.issues} == {"ext"}
    assert len(info.value.issues) == 2


@pytest.mark.parametrize("target", REGIONS)
def test_a_foreign_record_is_not_published_as_the_regions_own(target: str) -> None:
    adapter = REGISTRY.get(target)
    origin = "330000" if target != "330000" else "310000"
    record = next(r for r in sample_records() if r.region == origin)
    data = adapter.from_common(record)
    with pytest.raises(NativeFormatError) as info:
        adapter.to_common(adapter.content_types[0], data)
    [issue] = info.value.issues
    assert isinstance(adapter, AdapterBase)
    assert issue.field == adapter.origin_field
    assert origin in issue.reason


# -- Anhui: one CSV document per foreign record, with the trailing columns -------------------


def test_anhui_delivers_a_foreign_methodology_as_one_document_of_its_parameter_rows() -> None:
    adapter = REGISTRY.get("340000")
    record = next(r for r in sample_records() if r.name.startswith("regions/310000/method"))
    assert isinstance(record, pb.Methodology)
    record.parameters.add(
        code="EF_2", name="第二参数", quantity=pb.ExactQuantity(value="-0.5", unit="t")
    )
    text = adapter.from_common(record).decode("gb18030")
    header, *rows = text.rstrip("\r\n").split("\r\n")
    assert header.endswith(",状态,来源地区,扩展")
    assert len(rows) == 2 and all(",310000," in row for row in rows)
    assert deliver(adapter, record) == record


def test_anhui_file_mixing_own_and_foreign_rows() -> None:
    adapter = REGISTRY.get("340000")
    assert isinstance(adapter, AnhuiAdapter)
    records = [r for r in sample_records() if isinstance(r, pb.Issuance)]
    # Serials are per origin: Zhejiang's grams 5,000,000,001… do not clash with Anhui's kilograms.
    data = adapter.from_common_many(records)
    header = data.decode("gb18030").split("\r\n", 1)[0]
    assert header.endswith(",序列号止,来源地区,序列号单位,扩展")
    back = adapter.to_common(adapter.content_types[0], data, accept_foreign=True)
    assert back == records
    with pytest.raises(NativeFormatError):
        adapter.to_common(adapter.content_types[0], data)  # a registry publishes its own only


# -- the extension object is checked as the fields' own values -------------------------------

JS_FOREIGN = (
    (find_samples_dir() / "320000-methodology.xml")
    .read_text("utf-8")
    .replace("<BBH>V01</BBH>", "<BBH>1</BBH>")
    .replace("<ZT>2</ZT>", "<ZT>2</ZT><LYSF>310000</LYSF><KZ>{}</KZ>")
)


@pytest.mark.parametrize(
    ("ext", "reason"),
    [
        ('{"eligibility": {"maxLifetimeYears": 1.5}}', "holds the number 1.5"),
        ('{"eligibility": {"maxLifetimeYears": true}}', "holds a boolean"),
        ('{"eligibility": {"maxLifetimeYears": -1}}', "cannot be negative"),
        ('{"eligibility": {"maxCapacity": {"value": "1e3", "unit": "MW"}}}', "is not a decimal"),
        ('{"eligibility": {"maxCapacity": {"value": "3", "unit": "hp"}}}', "not a capacity unit"),
        ('{"formula": "x", "formula": "y"}', "formula appears more than once"),
        ('{"title": "x"}', "'title' is not a field the extension carries"),
        ('{"formula": " x"}', "is not normalised text"),
        ('{"nativeIds": {"k": 1}}', "is not a valid extension"),
        ("[1]", "must be a JSON object"),
        ("NaN", "NaN is not allowed"),
    ],
)
def test_bad_extension_values_reject_the_document(ext: str, reason: str) -> None:
    js = REGISTRY.get("320000")
    doc = JS_FOREIGN.replace("<KZ>{}</KZ>", f"<KZ>{ext}</KZ>").encode()
    with pytest.raises(NativeFormatError) as info:
        js.to_common(js.content_types[0], doc, accept_foreign=True)
    assert [i.field for i in info.value.issues] == ["KZ"]
    assert reason in info.value.issues[0].reason


def test_extension_values_are_merged_into_the_record() -> None:
    js = REGISTRY.get("320000")
    ext = '{"eligibility": {"maxLifetimeYears": 25}, "nativeIds": {"k": "v"}, "formula": "ER"}'
    doc = JS_FOREIGN.replace("<KZ>{}</KZ>", f"<KZ>{ext}</KZ>").encode()
    [record] = js.to_common(js.content_types[0], doc, accept_foreign=True)
    assert isinstance(record, pb.Methodology)
    assert record.region == "310000" and record.name.startswith("regions/310000/")
    assert record.eligibility.max_lifetime_years == 25
    assert dict(record.native_ids) == {"k": "v"} and record.formula == "ER"


# -- delivery checks adapters that do not check themselves -----------------------------------


class _Forgetful:
    """An adapter implementing ``RegionAdapter`` directly whose rendering loses the title."""

    def __init__(self, inner: RegionAdapter) -> None:
        self.inner = inner
        self.region = inner.region
        self.content_types = inner.content_types
        self.serial_unit_grams = inner.serial_unit_grams
        self.max_document_bytes = inner.max_document_bytes

    def to_common(
        self, content_type: str, data: bytes, *, accept_foreign: bool = False
    ) -> list[CommonRecord]:
        return self.inner.to_common(content_type, data, accept_foreign=accept_foreign)

    def from_common(self, record: CommonRecord) -> bytes:
        copy = type(record)()
        copy.CopyFrom(record)
        if isinstance(copy, pb.Project):
            copy.title = "something else"
        return self.inner.from_common(copy)

    def methodology_ref(self, methodology: pb.Methodology) -> pb.MethodologyRef:
        return self.inner.methodology_ref(methodology)


def test_render_checked_serves_only_bytes_that_read_back_as_the_record() -> None:
    adapter = _Forgetful(REGISTRY.get("330000"))
    assert isinstance(adapter, RegionAdapter)
    records = sample_records()
    issuance = next(r for r in records if isinstance(r, pb.Issuance))
    assert render_checked(adapter, issuance) == REGISTRY.get("330000").from_common(issuance)
    project = next(r for r in records if isinstance(r, pb.Project))
    with pytest.raises(NotExpressibleError) as info:
        render_checked(adapter, project)
    assert "does not read back as the same record" in str(info.value)
