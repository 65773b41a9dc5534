"""Table-driven bad inputs across the four regions: each names the field (row, column) and why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from adapters import AdapterRegistry, FieldIssue, NativeFormatError, build_default_registry
from tests.adapters.conftest import find_samples_dir

SAMPLES = find_samples_dir()
DELETE = object()


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def sh(kind: str, **changes: Any) -> bytes:
    """The Shanghai sample with top-level fields changed (DELETE removes one)."""
    obj = json.loads(sample(f"310000-{kind}.json"))
    for key, value in changes.items():
        if value is DELETE:
            del obj[key]
        else:
            obj[key] = value
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def zj(kind: str, envelope: dict[str, Any] | None = None, **changes: Any) -> bytes:
    """The Zhejiang sample with dataInfo fields (or envelope fields) changed."""
    obj = json.loads(sample(f"330000-{kind}.json"))
    for key, value in changes.items():
        if value is DELETE:
            del obj["dataInfo"][key]
        else:
            obj["dataInfo"][key] = value
    for key, value in (envelope or {}).items():
        if value is DELETE:
            del obj[key]
        else:
            obj[key] = value
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def replaced(name: str, old: str, new: str, encoding: str = "utf-8") -> bytes:
    text = sample(name).decode(encoding)
    assert old in text, (name, old)
    return text.replace(old, new, 1).encode(encoding)


def js(kind: str, old: str, new: str) -> bytes:
    return replaced(f"320000-{kind}.xml", old, new)


def ah(kind: str, old: str, new: str) -> bytes:
    return replaced(f"340000-{kind}.csv", old, new, "gb18030")


@dataclass(frozen=True)
class Bad:
    region: str
    data: bytes
    field: str
    reason: str
    row: int | None = None
    column: str | None = None


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<JSTPH LX="QF"><QFBH>&lol3;</QFBH></JSTPH>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE JSTPH [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<JSTPH LX="QF"><QFBH>&xxe;</QFBH></JSTPH>
"""

CASES: dict[str, Bad] = {
    # ---- Shanghai (JSON) ---------------------------------------------------------------------
    "sh-decimal-as-number": Bad(
        "310000", sh("issuance", reduction_tco2e=392.7), "reduction_tco2e", "must be a JSON string"
    ),
    "sh-sub-gram-tonnes": Bad(
        "310000",
        sh("issuance", reduction_tco2e="0.0000005"),
        "reduction_tco2e",
        "is not a whole number of grams",
    ),
    "sh-too-many-decimals": Bad(
        "310000",
        sh("issuance", reduction_tco2e="392.7000000"),
        "reduction_tco2e",
        "has 7 decimal places; t allows at most 6",
    ),
    "sh-quantity-not-serial-size": Bad(
        "310000",
        sh("issuance", reduction_tco2e="392.701"),
        "reduction_tco2e",
        "does not equal the serial range size 392700 kg",
    ),
    "sh-serial-as-string": Bad(
        "310000", sh("issuance", serial_start="1000001"), "serial_start", "must be a JSON integer"
    ),
    "sh-serials-reversed": Bad(
        "310000",
        sh("issuance", serial_start=1392700, serial_end=1000001),
        "serial_end",
        "before it starts",
    ),
    "sh-vintage-boolean": Bad(
        "310000", sh("issuance", vintage=True), "vintage", "must be a JSON integer, not a boolean"
    ),
    "sh-monitoring-out-of-order": Bad(
        "310000",
        sh("issuance", monitoring_end="2023-12-31"),
        "monitoring_end",
        "must not be before 2024-01-01",
    ),
    "sh-county-of-other-province": Bad(
        "310000",
        sh("project", district_code="320115"),
        "district_code",
        "is not in Shanghai (must start with 31)",
    ),
    "sh-county-not-six-digits": Bad(
        "310000", sh("project", district_code="31011"), "district_code", "not a 6-digit county code"
    ),
    "sh-crediting-out-of-order": Bad(
        "310000",
        sh("project", crediting_end="2023-07-01"),
        "crediting_end",
        "must be after 2023-07-01",
    ),
    "sh-capacity-exponent": Bad(
        "310000", sh("project", capacity_mw="8.5e-1"), "capacity_mw", "is not a decimal number"
    ),
    "sh-impossible-date": Bad(
        "310000",
        sh("methodology", effective_date="2023-02-29"),
        "effective_date",
        "is not a real calendar date",
    ),
    "sh-date-wrong-shape": Bad(
        "310000",
        sh("methodology", effective_date="2024/3/1"),
        "effective_date",
        "is not a date written YYYY-MM-DD",
    ),
    "sh-methodology-no-pattern": Bad(
        "310000", sh("methodology", methodology_no="SH-PV-001"), "methodology_no", "does not match"
    ),
    "sh-empty-required": Bad(
        "310000", sh("methodology", name_zh="  \u3000 "), "name_zh", "is required but missing"
    ),
    "sh-missing-required": Bad(
        "310000", sh("project", project_no=DELETE), "project_no", "is required but missing"
    ),
    "sh-unknown-category": Bad(
        "310000", sh("methodology", category="绿色出行"), "category", "is not one of: 分布式光伏"
    ),
    "sh-version-shape": Bad(
        "310000", sh("methodology", version="V01"), "version", "is not a version number like 1.0"
    ),
    "sh-param-value-number": Bad(
        "310000",
        sh(
            "methodology",
            parameters=[{"code": "EF_grid", "value": 4.2, "unit": "tCO2/10^4kWh"}],
        ),
        "parameters[0].value",
        "must be a JSON string, not a decimal number",
    ),
    "sh-unknown-field": Bad(
        "310000", sh("project", capacity_kw="850"), "capacity_kw", "is not a field of this record"
    ),
    "sh-duplicate-key": Bad(
        "310000",
        sample("310000-project.json").replace(
            b'"status": "registered"', b'"status": "registered", "status": "closed"'
        ),
        "status",
        "appears more than once",
    ),
    "sh-full-width-digits": Bad(
        "310000",
        sh("issuance", reduction_tco2e="３９２.７"),
        "reduction_tco2e",
        "is not a non-negative decimal number",
    ),
    "sh-bom": Bad(
        "310000", b"\xef\xbb\xbf" + sample("310000-project.json"), "document", "byte order mark"
    ),
    "sh-not-json": Bad("310000", b"{'record_type': 'project'}", "document", "is not valid JSON"),
    "sh-nan": Bad(
        "310000", sh("issuance").replace(b'"vintage": 2024', b'"vintage": NaN'), "document", "NaN"
    ),
    "sh-bad-utf8": Bad(
        "310000",
        sample("310000-project.json").decode("utf-8").encode("gb18030"),
        "document",
        "is not valid UTF-8",
    ),
    "sh-record-type": Bad(
        "310000", sh("project", record_type="transfer"), "record_type", "is not one of"
    ),
    "sh-control-character": Bad(
        "310000",
        sh("project", owner_name="上海\x00某公司"),
        "owner_name",
        "control or non-character U+0000",
    ),
    # ---- Jiangsu (XML) -----------------------------------------------------------------------
    "js-doctype": Bad(
        "320000",
        js("issuance", '<JSTPH LX="QF">', '<!DOCTYPE JSTPH>\n<JSTPH LX="QF">'),
        "DOCTYPE",
        "(DTD) is not allowed",
    ),
    "js-billion-laughs": Bad("320000", BILLION_LAUGHS, "DOCTYPE", "is not allowed"),
    "js-external-entity": Bad("320000", EXTERNAL_ENTITY, "DOCTYPE", "is not allowed"),
    "js-separators-wrong-place": Bad(
        "320000",
        js("issuance", "<JPL>502 tCO2e</JPL>", "<JPL>5,02 tCO2e</JPL>"),
        "JPL",
        "thousands separators in the wrong place",
    ),
    "js-fractional-tonnes": Bad(
        "320000",
        js("issuance", "<JPL>502 tCO2e</JPL>", "<JPL>501.5 tCO2e</JPL>"),
        "JPL",
        "is not a whole number of tonnes",
    ),
    "js-quantity-not-serial-size": Bad(
        "320000",
        js("issuance", "<JPL>502 tCO2e</JPL>", "<JPL>1,502 tCO2e</JPL>"),
        "JPL",
        "1502 t does not equal the serial range size 502 t",
    ),
    "js-serial-not-integer": Bad(
        "320000",
        js("issuance", "<XLHQS>20001</XLHQS>", "<XLHQS>20,001</XLHQS>"),
        "XLHQS",
        "is not a serial number",
    ),
    "js-county-of-other-province": Bad(
        "320000",
        js("project", "<XZQH>320506</XZQH>", "<XZQH>330506</XZQH>"),
        "XZQH",
        "is not in Jiangsu (must start with 32)",
    ),
    "js-version-shape": Bad(
        "320000",
        js("project", "<BBH>V01</BBH>", "<BBH>1.0</BBH>"),
        "BBH",
        "is not a version like V01",
    ),
    "js-impossible-date": Bad(
        "320000",
        js("methodology", "<SXRQ>20240101</SXRQ>", "<SXRQ>20240431</SXRQ>"),
        "SXRQ",
        "is not a real calendar date",
    ),
    "js-crediting-out-of-order": Bad(
        "320000",
        js("project", "<JRQJS>20330930</JRQJS>", "<JRQJS>20230930</JRQJS>"),
        "JRQJS",
        "must be after 2023-10-01",
    ),
    "js-empty-required": Bad(
        "320000",
        js("project", "<XMMC>吴中区厂房屋顶分布式光伏项目</XMMC>", "<XMMC> </XMMC>"),
        "XMMC",
        "is required but missing or empty",
    ),
    "js-unknown-element": Bad(
        "320000",
        js("issuance", "<ND>2024</ND>", "<ND>2024</ND><BZ>备注</BZ>"),
        "BZ",
        "is not an element of this record",
    ),
    "js-repeated-element": Bad(
        "320000",
        js("issuance", "<ND>2024</ND>", "<ND>2024</ND><ND>2025</ND>"),
        "ND",
        "appears more than once",
    ),
    "js-parameter-value": Bad(
        "320000",
        js("methodology", "<Z>0.5978</Z>", "<Z>0,5978</Z>"),
        "CS[1]/Z",
        "is not a decimal number",
    ),
    "js-unknown-kind": Bad(
        "320000", js("issuance", 'LX="QF"', 'LX="ZR"'), "LX", "is not one of: FFX, XM, QF"
    ),
    "js-wrong-root": Bad(
        "320000",
        js("issuance", '<JSTPH LX="QF">', '<ROOT LX="QF">').replace(b"</JSTPH>", b"</ROOT>"),
        "JSTPH",
        "not <JSTPH>",
    ),
    "js-unsupported-encoding": Bad(
        "320000",
        js("issuance", 'encoding="UTF-8"', 'encoding="ISO-8859-1"'),
        "encoding",
        "names 'iso-8859-1'",
    ),
    "js-gbk-without-declaration": Bad(
        "320000",
        sample("320000-project.xml")
        .decode("utf-8")
        .replace('<?xml version="1.0" encoding="UTF-8"?>\n', "")
        .encode("gbk"),
        "encoding",
        "is not valid UTF-8",
    ),
    "js-malformed": Bad(
        "320000", js("issuance", "</XLHZZ>", "</XLHZ>"), "document", "is not well-formed XML"
    ),
    "js-unknown-category": Bad(
        "320000",
        js("methodology", "<CJLB>01</CJLB>", "<CJLB>06</CJLB>"),
        "CJLB",
        "is not one of: 01, 02, 03, 04, 05, 99",
    ),
    # ---- Zhejiang (JSON envelope) --------------------------------------------------------------
    "zj-id-as-number": Bad(
        "330000",
        zj("methodology", methodologyId=1526163848812433408),
        "dataInfo.methodologyId",
        "must be a JSON string, not an integer number",
    ),
    "zj-id-not-19-digits": Bad(
        "330000",
        zj("project", projectInfoId="162616384881243399"),
        "dataInfo.projectInfoId",
        "is not a 19-digit identifier",
    ),
    "zj-unsuccessful": Bad(
        "330000",
        zj("issuance", envelope={"successful": False, "msg": "签发记录不存在", "dataInfo": None}),
        "successful",
        "the platform reported a failure: 签发记录不存在",
    ),
    "zj-successful-not-boolean": Bad(
        "330000",
        zj("issuance", envelope={"successful": "true"}),
        "successful",
        "must be a JSON boolean",
    ),
    "zj-sub-gram-kg": Bad(
        "330000",
        zj("issuance", certifiedKg="309180.0005"),
        "dataInfo.certifiedKg",
        "is not a whole number of grams",
    ),
    "zj-quantity-not-serial-size": Bad(
        "330000",
        zj("issuance", certifiedKg="309180.001"),
        "dataInfo.certifiedKg",
        "does not equal the serial range size 309180000 g",
    ),
    "zj-date-without-time": Bad(
        "330000",
        zj("issuance", periodEnd="2024-12-31"),
        "dataInfo.periodEnd",
        "is not a date-time written YYYY-MM-DD HH:mm:ss",
    ),
    "zj-impossible-time": Bad(
        "330000",
        zj("issuance", periodEnd="2024-12-31 24:00:00"),
        "dataInfo.periodEnd",
        "is not a real time of day",
    ),
    "zj-status-as-number": Bad(
        "330000",
        zj("project", statusCode=2),
        "dataInfo.statusCode",
        "must be a JSON string code",
    ),
    "zj-unknown-scene": Bad(
        "330000",
        zj("methodology", sceneType="SOLAR"),
        "dataInfo.sceneType",
        "is not one of: PV, EV_CHARGING",
    ),
    "zj-county-of-other-province": Bad(
        "330000",
        zj("project", areaCode="340502"),
        "dataInfo.areaCode",
        "is not in Zhejiang (must start with 33)",
    ),
    "zj-version-as-string": Bad(
        "330000",
        zj("methodology", methodologyVersion="1"),
        "dataInfo.methodologyVersion",
        "must be a JSON integer, not a string",
    ),
    "zj-crediting-out-of-order": Bad(
        "330000",
        zj("project", creditEnd="2023-12-31 23:59:59"),
        "dataInfo.creditEnd",
        "must be after 2024-01-01",
    ),
    "zj-unknown-data-type": Bad(
        "330000",
        zj("issuance", envelope={"dataType": "transfer"}),
        "dataType",
        "is not one of: methodology, project, issuance",
    ),
    "zj-missing-data-info": Bad(
        "330000",
        zj("issuance", envelope={"dataInfo": DELETE}),
        "dataInfo",
        "is required but missing",
    ),
    "zj-unknown-envelope-field": Bad(
        "330000",
        zj("issuance", envelope={"code": 200}),
        "code",
        "is not a field of this record",
    ),
    # ---- Anhui (CSV, GB18030) ------------------------------------------------------------------
    "ah-utf8-file": Bad(
        "340000",
        sample("340000-issuance.csv").decode("gb18030").encode("utf-8"),
        "encoding",
        "the file is UTF-8",
    ),
    "ah-utf8-bom": Bad(
        "340000",
        b"\xef\xbb\xbf" + sample("340000-issuance.csv").decode("gb18030").encode("utf-8"),
        "encoding",
        "Anhui files must be GB18030",
    ),
    "ah-missing-column": Bad(
        "340000",
        ah("issuance", ",373011,385355", ",373011"),
        "序列号止",
        "is missing: the row has 9 fields, the header has 10",
        3,
        "序列号止",
    ),
    "ah-quantity-not-serial-size": Bad(
        "340000",
        ah("issuance", "12345000,克", "12345001,克"),
        "减排量",
        "(12345001 g) does not equal the serial range size 12345 千克",
        3,
        "减排量",
    ),
    "ah-sub-gram": Bad(
        "340000",
        ah("issuance", "373.01,吨", "373.0100005,吨"),
        "减排量",
        "is not a whole number of grams",
        2,
        "减排量",
    ),
    "ah-unknown-unit": Bad(
        "340000", ah("issuance", "12345000,克", "12.345,公斤"), "单位", "is not one of: 吨, 千克, 克", 3, "单位"
    ),
    "ah-date-wrong-shape": Bad(
        "340000",
        ah("issuance", "2024/6/1", "2024-6-1"),
        "监测期开始",
        "is not a date written YYYY/M/D",
        3,
        "监测期开始",
    ),
    "ah-impossible-date": Bad(
        "340000",
        ah("project", "2024/2/28", "2023/2/29"),
        "并网日期",
        "is not a real calendar date",
        2,
        "并网日期",
    ),
    "ah-county-of-other-province": Bad(
        "340000",
        ah("project", "340100", "320100"),
        "行政区划代码",
        "is not in Anhui (must start with 34)",
        3,
        "行政区划代码",
    ),
    "ah-methodology-rows-disagree": Bad(
        "340000",
        ah("methodology", "骑行减排量,40,gCO2/km,合肥市交通运输局,2023,2024/6/1", "骑行减排量,40,gCO2/km,合肥市交通运输局,2023,2024/7/1"),
        "生效日期",
        "disagrees with row 3 of methodology AH-FFX-LX-2024-01 version 1",
        4,
        "生效日期",
    ),
    "ah-duplicate-parameter": Bad(
        "340000",
        ah("methodology", "EF_bike", "EF_metro"),
        "参数代码",
        "'EF_metro' already appears in row 3 of this methodology",
        4,
        "参数代码",
    ),
    "ah-unknown-status": Bad(
        "340000", ah("project", "2027/5/31,已登记", "2027/5/31,有效"), "状态", "is not one of: 已登记", 3, "状态"
    ),
    "ah-mixed-kinds": Bad(
        "340000",
        ah("issuance", "\r\n签发,AH-QF-2025-0102", "\r\n项目,AH-QF-2025-0102"),
        "记录类型",
        "differs from the file's record kind '签发'",
        3,
        "记录类型",
    ),
    "ah-header-missing-column": Bad(
        "340000",
        ah("issuance", "减排量,单位,", "减排量,"),
        "单位",
        "is missing from the 签发 header",
        1,
        "单位",
    ),
    "ah-duplicate-id": Bad(
        "340000",
        ah("issuance", "AH-QF-2025-0102", "AH-QF-2025-0101"),
        "签发编号",
        "'AH-QF-2025-0101' already appears in row 2",
        3,
        "签发编号",
    ),
    "ah-overlapping-serials": Bad(
        "340000",
        ah("issuance", "克,373011,385355", "克,373010,385354"),
        "序列号起",
        "overlaps the serial range of row 2",
        3,
        "序列号起",
    ),
    "ah-empty-required": Bad(
        "340000",
        ah("project", "蜀山区产业园屋顶光伏项目", ""),
        "项目名称",
        "is required but missing or empty",
        2,
        "项目名称",
    ),
    "ah-bad-quoting": Bad(
        "340000",
        ah("project", "合肥某能源科技有限公司", '"合肥某"能源'),
        "file",
        "row 2 is not valid CSV",
    ),
    "ah-scene-of-other-region": Bad(
        "340000",
        ah("methodology", "绿色出行,EF_metro", "骑行步行,EF_metro"),
        "场景类别",
        "is not one of: 分布式光伏, 充电桩, 公共交通, 绿色出行",
        3,
        "场景类别",
    ),
    "ah-bad-version": Bad(
        "340000", ah("project", "AH-FFX-PV-2024-02,1,", "AH-FFX-PV-2024-02,V1,"), "方法学版本", "is not a version number", 2, "方法学版本"
    ),
}  # fmt: skip


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert {case.region for case in CASES.values()} == {"310000", "320000", "330000", "340000"}


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input_is_rejected_with_field_and_reason(case_id: str) -> None:
    case = CASES[case_id]
    registry: AdapterRegistry = build_default_registry()
    adapter = registry.get(case.region)
    with pytest.raises(NativeFormatError) as info:
        adapter.to_common(adapter.content_types[0], case.data)
    issues = info.value.issues
    matching = [i for i in issues if i.field == case.field and case.reason in i.reason]
    assert matching, f"no issue on {case.field!r} with {case.reason!r}; got {issues}"
    assert matching[0].row == case.row
    assert matching[0].column == case.column
    assert info.value.region == case.region


def test_all_errors_of_a_document_are_reported_together() -> None:
    data = sh(
        "issuance",
        issuance_no="",
        vintage="2024",
        monitoring_start="2024-13-01",
        reduction_tco2e=1,
        serial_end="x",
    )
    adapter = build_default_registry().get("310000")
    with pytest.raises(NativeFormatError) as info:
        adapter.to_common(adapter.content_types[0], data)
    assert [(i.field, i.reason) for i in info.value.issues] == [
        ("issuance_no", "is required but missing or empty"),
        ("vintage", "must be a JSON integer, not a string"),
        ("monitoring_start", "'2024-13-01' is not a real calendar date"),
        ("reduction_tco2e", "must be a JSON string, not an integer number"),
        ("serial_end", "must be a JSON integer, not a string"),
    ]


def test_every_bad_row_of_a_csv_file_is_listed_and_the_file_rejected() -> None:
    text = sample("340000-issuance.csv").decode("gb18030")
    text = text.replace("373.01,吨", "373.01,公斤").replace("2024/6/1", "2024/6/31")
    text += "签发,AH-QF-2025-0103,AH-XM-2024-0088,2024,2024/6/1,2024/12/31,1,吨,900000,900999\r\n"
    adapter = build_default_registry().get("340000")
    with pytest.raises(NativeFormatError) as info:
        adapter.to_common(adapter.content_types[0], text.encode("gb18030"))
    assert info.value.issues == (
        FieldIssue("单位", "'公斤' is not one of: 吨, 千克, 克", 2, "单位"),
        FieldIssue("监测期开始", "'2024/6/31' is not a real calendar date", 3, "监测期开始"),
    )
    # Row 4 is valid, yet nothing of the file is returned: one bad row rejects the file.


def test_zhejiang_failure_carries_msg_even_without_data() -> None:
    data = json.dumps({"successful": False, "msg": "token expired"}).encode()
    adapter = build_default_registry().get("330000")
    with pytest.raises(NativeFormatError) as info:
        adapter.to_common(adapter.content_types[0], data)
    assert info.value.issues == (
        FieldIssue("successful", "the platform reported a failure: token expired"),
    )
    assert "token expired" in str(info.value)
