"""from_common refuses, with the reason, every record a native format cannot express exactly."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from yrd.interop.v1 import records_pb2 as pb

from adapters import CommonRecord, NotExpressibleError, ShanghaiAdapter, build_default_registry
from adapters._common import Issues
from tests.adapters.conftest import find_samples_dir

SAMPLES = find_samples_dir()
REGISTRY = build_default_registry()


def record(name: str, index: int = 0) -> CommonRecord:
    adapter = REGISTRY.get(name[:6])
    return adapter.to_common(adapter.content_types[0], (SAMPLES / name).read_bytes())[index]


def changed(name: str, change: Callable[[CommonRecord], None], index: int = 0) -> CommonRecord:
    value = record(name, index)
    change(value)
    return value


def _set(field: str, value: object) -> Callable[[CommonRecord], None]:
    return lambda r: setattr(r, field, value)


def _serials(start: int, end: int, grams: int) -> Callable[[CommonRecord], None]:
    def change(r: CommonRecord) -> None:
        assert isinstance(r, pb.Issuance)
        r.serials.start, r.serials.end, r.quantity_grams = start, end, grams

    return change


def _native(key: str, value: str) -> Callable[[CommonRecord], None]:
    return lambda r: r.native_ids.__setitem__(key, value)


def _ref_version(version: str) -> Callable[[CommonRecord], None]:
    def change(r: CommonRecord) -> None:
        assert isinstance(r, pb.Project)
        r.methodology.version = version

    return change


def _end_before_start(r: CommonRecord) -> None:
    assert isinstance(r, pb.Project)
    r.crediting_period.end.CopyFrom(r.crediting_period.start)


def _bad_date(r: CommonRecord) -> None:
    assert isinstance(r, pb.Issuance)
    r.monitoring_period.end.day = 31
    r.monitoring_period.end.month = 2


CASES: dict[str, tuple[str, CommonRecord, str, str]] = {
    # target region, record, common field, reason fragment
    "gram-serials-in-kg-format": (
        "310000",
        changed("310000-issuance.json", _serials(1, 1_000, 1_000)),
        "serials",
        "Shanghai serial numbers count kilograms",
    ),
    "kg-serials-in-tonne-format": (
        "320000",
        changed("320000-issuance.xml", _serials(1_000, 1_999, 1_000)),
        "serials",
        "Jiangsu serial numbers count tonnes",
    ),
    "quantity-not-serial-size": (
        "310000",
        changed("310000-issuance.json", _set("quantity_grams", 392_700_001)),
        "quantity_grams",
        "does not equal the size of the serial range",
    ),
    "dotted-version-in-jiangsu": (
        "320000",
        changed("320000-methodology.xml", _set("version", "1.2")),
        "version",
        "has no Jiangsu form",
    ),
    "dotted-version-in-zhejiang": (
        "330000",
        changed("330000-methodology.json", _set("version", "1.2")),
        "version",
        "has no Zhejiang form",
    ),
    "non-normalised-version": (
        "310000",
        changed("310000-methodology.json", _set("version", "1.0")),
        "version",
        "is not a normalised common version",
    ),
    "zhejiang-ref-with-version": (
        "330000",
        changed("330000-project.json", _ref_version("1")),
        "methodology.version",
        "must be empty",
    ),
    "zhejiang-missing-number": (
        "330000",
        changed("330000-methodology.json", lambda r: r.native_ids.clear()),
        "native_ids['methodologyNum']",
        "is required",
    ),
    "zhejiang-kept-time-on-other-day": (
        "330000",
        changed("330000-issuance.json", _native("periodEnd", "2025-01-01 08:00:00")),
        "native_ids['periodEnd']",
        "is not on the day of monitoring_period.end",
    ),
    "zhejiang-kept-usual-time": (
        "330000",
        changed("330000-issuance.json", _native("periodEnd", "2024-12-31 23:59:59")),
        "native_ids['periodEnd']",
        "holds the usual time",
    ),
    "unknown-native-id": (
        "310000",
        changed("310000-project.json", _native("legacyId", "42")),
        "native_ids['legacyId']",
        "has no field in the Shanghai format",
    ),
    "field-the-format-lacks": (
        "340000",
        changed("340000-methodology.csv", _set("formula", "ER = EG × EF")),
        "formula",
        "the Anhui format has no field for it",
    ),
    "crediting-rule-nowhere": (
        "310000",
        changed("310000-methodology.json", _set("crediting_period_rule", "10 years")),
        "crediting_period_rule",
        "has no field for it",
    ),
    "text-not-nfc": (
        "310000",
        changed("310000-project.json", _set("title", "Cafe\u0301")),
        "title",
        "is not normalised text",
    ),
    "text-with-blanks": (
        "340000",
        changed("340000-project.csv", _set("owner", " 合肥 ")),
        "owner",
        "is not normalised text",
    ),
    "name-mismatch": (
        "320000",
        changed("320000-project.xml", _set("name", "regions/320000/projects/OTHER")),
        "name",
        "does not match the record's identity",
    ),
    "own-record-with-another-province-county": (
        "340000",
        changed("340000-project.csv", _set("county_code", "320506")),
        "county_code",
        "is not in Anhui (must start with 34)",
    ),
    "dates-out-of-order": (
        "320000",
        changed("320000-project.xml", _end_before_start),
        "crediting_period.end",
        "must be after",
    ),
    "impossible-date": (
        "340000",
        changed("340000-issuance.csv", _bad_date),
        "monitoring_period.end",
        "is not a real calendar date",
    ),
    "missing-status": (
        "310000",
        changed("310000-project.json", _set("status", pb.PROJECT_STATUS_UNSPECIFIED)),
        "status",
        "is not set",
    ),
    "foreign-project-reference": (
        "310000",
        changed("310000-issuance.json", _set("project", "regions/320000/projects/X")),
        "project",
        "names a project of region 320000",
    ),
    "id-not-19-digits": (
        "330000",
        changed("330000-issuance.json", _set("issuance_id", "ZJ-QF-1")),
        "issuance_id",
        "is not a 19-digit identifier",
    ),
    "id-with-slash": (
        "340000",
        changed("340000-project.csv", _set("project_id", "AH/1")),
        "project_id",
        "contains '/'",
    ),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_not_expressible(case_id: str) -> None:
    target, value, field, reason = CASES[case_id]
    with pytest.raises(NotExpressibleError) as info:
        REGISTRY.get(target).from_common(value)
    matching = [i for i in info.value.issues if i.field == field and reason in i.reason]
    assert matching, f"no issue on {field!r} with {reason!r}; got {info.value.issues}"
    assert info.value.region == target


def test_jiangsu_issuance_renders_in_shanghai_format_in_tonnes() -> None:
    # A foreign record keeps its origin's serial unit (Jiangsu: tonnes) and exact tonnes.
    rendered = REGISTRY.get("310000").from_common(record("320000-issuance.xml"))
    assert b'"origin_region": "320000"' in rendered
    assert b'"reduction_tco2e": "502"' in rendered and b'"serial_unit": "t"' in rendered
    assert b'"serial_start": 20001' in rendered and b'"serial_end": 20502' in rendered


def test_capacity_is_converted_exactly_for_another_unit() -> None:
    # A Jiangsu project (800 kW) rendered for Anhui keeps kW; an Anhui one shows its county only.
    project = record("320000-project.xml")
    assert isinstance(project, pb.Project)
    project.capacity.CopyFrom(pb.ExactQuantity(value="0.8", unit="MW"))
    rendered = REGISTRY.get("320000").from_common(project)
    assert b"<ZJRL>800</ZJRL>" in rendered


def test_not_a_record_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        REGISTRY.get("310000").from_common(pb.UnitBlock())  # type: ignore[arg-type]


def test_rendering_that_would_not_parse_back_is_refused() -> None:
    issuance = record("330000-issuance.json")
    assert isinstance(issuance, pb.Issuance)
    issuance.monitoring_period.start.CopyFrom(issuance.monitoring_period.end)
    issuance.native_ids["periodStart"] = "2024-12-31 12:00:00"
    issuance.native_ids["periodEnd"] = "2024-12-31 06:00:00"
    with pytest.raises(NotExpressibleError) as info:
        REGISTRY.get("330000").from_common(issuance)
    [issue] = info.value.issues
    assert issue.field == "dataInfo.periodEnd"
    assert issue.reason.startswith("the rendering would be invalid: must not be before")


class _LossyShanghai(ShanghaiAdapter):
    """A deliberately broken renderer: forgets the capacity."""

    def _render_project(self, record: pb.Project, issues: Issues) -> bytes | None:
        copy = pb.Project()
        copy.CopyFrom(record)
        copy.ClearField("capacity")
        return super()._render_project(copy, issues)


def test_renderings_are_verified_by_parsing_them_back() -> None:
    with pytest.raises(NotExpressibleError) as info:
        _LossyShanghai().from_common(record("310000-project.json"))
    assert [(i.field, i.reason) for i in info.value.issues] == [
        ("capacity", "cannot be rendered exactly in the Shanghai format")
    ]
