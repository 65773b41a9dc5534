"""Safety: XML attacks, size limits, encodings (GB18030 edge cases, UTF-8 Anhui files), content types."""

from __future__ import annotations

import json

import pytest
from yrd.interop.v1 import records_pb2 as pb

from adapters import (
    AnhuiAdapter,
    FieldIssue,
    NativeFormatError,
    RegionAdapter,
    UnknownContentTypeError,
    build_default_registry,
)
from adapters._common import MAX_DOCUMENT_BYTES
from tests.adapters.conftest import find_samples_dir

SAMPLES = find_samples_dir()
REGISTRY = build_default_registry()
SH, JS, ZJ, AH = (REGISTRY.get(r) for r in ("310000", "320000", "330000", "340000"))


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def issues_of(adapter: RegionAdapter, data: bytes) -> tuple[FieldIssue, ...]:
    with pytest.raises(NativeFormatError) as info:
        adapter.to_common(adapter.content_types[0], data)
    return info.value.issues


# -- XML ----------------------------------------------------------------------------------------

XML_ATTACKS = {
    "billion-laughs": b"""<?xml version="1.0"?>
<!DOCTYPE JSTPH [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<JSTPH LX="QF"><QFBH>&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;</QFBH></JSTPH>""",
    "external-entity": b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE JSTPH [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<JSTPH LX="QF"><QFBH>&xxe;</QFBH></JSTPH>""",
    "external-dtd": b"""<?xml version="1.0"?>
<!DOCTYPE JSTPH SYSTEM "http://example.invalid/jstph.dtd">
<JSTPH LX="QF"><QFBH>x</QFBH></JSTPH>""",
    "parameter-entity": b"""<?xml version="1.0"?>
<!DOCTYPE JSTPH [<!ENTITY % p SYSTEM "http://example.invalid/p.dtd"> %p;]>
<JSTPH LX="QF"/>""",
    "plain-doctype": b"""<?xml version="1.0"?>
<!DOCTYPE JSTPH>
<JSTPH LX="QF"/>""",
    "gbk-doctype": '<?xml version="1.0" encoding="GBK"?>\n<!DOCTYPE 江苏>\n<JSTPH LX="QF"/>'.encode(
        "gbk"
    ),
}


@pytest.mark.parametrize("attack", list(XML_ATTACKS))
def test_xml_with_a_doctype_is_rejected(attack: str) -> None:
    assert issues_of(JS, XML_ATTACKS[attack]) == (
        FieldIssue("DOCTYPE", "a document type declaration (DTD) is not allowed"),
    )


def test_undeclared_entity_is_a_parse_error_not_an_expansion() -> None:
    data = sample("320000-issuance.xml").replace(b"JS-QF-2025-0012", b"&xxe;")
    [issue] = issues_of(JS, data)
    assert issue.field == "document" and "not well-formed XML (line 3" in issue.reason


# -- size limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["310000", "320000", "330000"])
def test_documents_over_one_mebibyte_are_refused_before_parsing(region: str) -> None:
    adapter = REGISTRY.get(region)
    assert adapter.max_document_bytes == MAX_DOCUMENT_BYTES == 1024 * 1024
    data = b" " * (MAX_DOCUMENT_BYTES + 1)
    assert issues_of(adapter, data) == (
        FieldIssue("document", f"is {MAX_DOCUMENT_BYTES + 1} bytes; the limit is 1048576 bytes"),
    )


def test_anhui_file_limit_is_ten_mebibytes() -> None:
    assert AH.max_document_bytes == 10 * 1024 * 1024
    data = sample("340000-issuance.csv") + b" " * (10 * 1024 * 1024)
    [issue] = issues_of(AH, data)
    assert issue.field == "document" and "the limit is 10485760 bytes" in issue.reason


def test_anhui_row_cap() -> None:
    adapter = AnhuiAdapter()
    adapter.max_rows = 1
    [issue] = issues_of(adapter, sample("340000-issuance.csv"))
    assert issue == FieldIssue("file", "has more than 1 data rows")
    assert AnhuiAdapter.max_rows == 100_000


def test_deeply_nested_json_is_refused() -> None:
    [issue] = issues_of(SH, b"[" * 200_000 + b"]" * 200_000)
    assert issue.field == "document" and "JSON" in issue.reason


def test_huge_json_integer_is_refused() -> None:
    data = sample("310000-issuance.json").replace(b"1392700", b"1" + b"0" * 5000)
    [issue] = issues_of(SH, data)
    assert issue.field == "document" and "is not acceptable JSON" in issue.reason


def test_serial_beyond_int64_grams_is_refused() -> None:
    obj = json.loads(sample("310000-issuance.json"))
    obj["serial_end"] = 2**63 // 1000
    [issue] = issues_of(SH, json.dumps(obj).encode())
    assert issue.field == "serial_end" and "too large" in issue.reason


def test_empty_document() -> None:
    assert issues_of(SH, b"  \n") == (FieldIssue("document", "is empty"),)


# -- Jiangsu encodings ---------------------------------------------------------------------------


def _as(encoding: str, label: str) -> bytes:
    text = sample("320000-project.xml").decode("utf-8")
    return text.replace('encoding="UTF-8"', f'encoding="{label}"').encode(encoding)


@pytest.mark.parametrize(
    ("encoding", "label"),
    [
        ("gbk", "GBK"),
        ("gb2312", "GB2312"),
        ("gb18030", "GB18030"),
        ("gbk", "gbk"),
        ("utf-8", "utf8"),
    ],
)
def test_jiangsu_honours_the_declared_encoding(encoding: str, label: str) -> None:
    expected = JS.to_common(JS.content_types[0], sample("320000-project.xml"))
    data = _as(encoding, label)
    if encoding != "utf-8":
        assert data != sample("320000-project.xml").replace(b"UTF-8", label.encode())
    assert JS.to_common(JS.content_types[0], data) == expected


def test_jiangsu_gb18030_four_byte_characters() -> None:
    title = "𠀀𪚥镕碳普惠项目"  # two characters outside the BMP, one outside GB2312
    text = sample("320000-project.xml").decode("utf-8")
    text = text.replace("吴中区厂房屋顶分布式光伏项目", title).replace("UTF-8", "GB18030")
    data = text.encode("gb18030")
    assert "𠀀".encode("gb18030") in data and len("𠀀".encode("gb18030")) == 4
    [project] = JS.to_common(JS.content_types[0], data)
    assert isinstance(project, pb.Project) and project.title == title
    # Rendered back as UTF-8, then read again: the same record.
    assert JS.to_common(JS.content_types[0], JS.from_common(project)) == [project]


def test_jiangsu_gb2312_label_reads_gbk_characters() -> None:
    text = sample("320000-project.xml").decode("utf-8").replace("苏州某", "朱镕基路某")
    data = text.replace("UTF-8", "GB2312").encode("gbk")
    with pytest.raises(UnicodeEncodeError):
        "镕".encode("gb2312")
    [project] = JS.to_common(JS.content_types[0], data)
    assert isinstance(project, pb.Project) and project.owner.startswith("朱镕基路某")


def test_jiangsu_declared_gbk_with_invalid_bytes() -> None:
    data = _as("gbk", "GBK").replace("吴".encode("gbk"), b"\x81\x20")
    [issue] = issues_of(JS, data)
    assert issue.field == "encoding" and "is not valid GB18030" in issue.reason


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("gbk-bytes", "吴".encode("gbk")),
        ("surrogate", b"\xed\xa0\x80"),
        ("overlong", b"\xc0\xaf"),
        ("beyond-u10ffff", b"\xf4\x90\x80\x80"),
        ("truncated", b"\xe4\xb8"),
    ],
)
@pytest.mark.parametrize("also", ["", "doctype", "malformed"])
def test_jiangsu_invalid_utf8_is_an_encoding_error_first(name: str, bad: bytes, also: str) -> None:
    """UTF-8 documents reach the parser unchecked; whatever else is wrong, the encoding is
    reported (with its offset), as it was when the document was decoded before parsing."""
    data = sample("320000-issuance.xml").replace(b"JS-QF-2025-0012", b"JS-QF-" + bad)
    if also == "doctype":
        data = data.replace(b"<JSTPH", b"<!DOCTYPE JSTPH>\n<JSTPH", 1)
    elif also == "malformed":
        data = data.replace(b"</XLHZZ>", b"</XLHZ>")
    body = data.split(b"?>", 1)[1]  # offsets count from after the XML declaration
    offset = body.index(b"JS-QF-") + len(b"JS-QF-")
    assert issues_of(JS, data) == (
        FieldIssue("encoding", f"is not valid UTF-8 (byte offset {offset})"),
    )


def test_jiangsu_utf16_is_refused() -> None:
    data = sample("320000-project.xml").decode("utf-8").encode("utf-16")
    [issue] = issues_of(JS, data)
    assert issue.field == "document" and "UTF-16" in issue.reason


def test_jiangsu_utf8_bom_is_accepted() -> None:
    data = b"\xef\xbb\xbf" + sample("320000-issuance.xml")
    assert JS.to_common(JS.content_types[0], data) == JS.to_common(
        JS.content_types[0], sample("320000-issuance.xml")
    )


# -- Anhui encodings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["340000-methodology.csv", "340000-project.csv", "340000-issuance.csv"]
)
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_anhui_utf8_file_is_rejected_saying_gb18030(name: str, bom: bytes) -> None:
    data = bom + sample(name).decode("gb18030").encode("utf-8")
    [issue] = issues_of(AH, data)
    assert issue.field == "encoding"
    assert "UTF-8" in issue.reason and "must be GB18030" in issue.reason


def test_anhui_invalid_gb18030_bytes() -> None:
    data = sample("340000-project.csv") + b"\xff\xfe\xfd\r\n"
    [issue] = issues_of(AH, data)
    assert issue.field == "encoding" and "is not valid GB18030 (byte offset" in issue.reason


def test_anhui_four_byte_gb18030_characters_round_trip() -> None:
    title = "𠀀𪚥𫝀碳普惠场景€"
    text = (
        sample("340000-project.csv").decode("gb18030").replace("合肥市民绿色出行碳普惠场景", title)
    )
    data = text.encode("gb18030")
    assert sum(len(ch.encode("gb18030")) == 4 for ch in title) == 3
    _, scenario = AH.to_common(AH.content_types[0], data)
    assert isinstance(scenario, pb.Project) and scenario.title == title
    rendered = AH.from_common(scenario)
    assert "𠀀".encode("gb18030") in rendered
    assert AH.to_common(AH.content_types[0], rendered) == [scenario]


def test_anhui_quoted_fields_with_commas_quotes_and_newlines_round_trip() -> None:
    _, scenario = AH.to_common(AH.content_types[0], sample("340000-project.csv"))
    assert isinstance(scenario, pb.Project)
    scenario.owner = '合肥, "碳普惠"\n运营中心'
    rendered = AH.from_common(scenario)
    assert '"合肥, ""碳普惠""\n运营中心"'.encode("gb18030") in rendered
    assert AH.to_common(AH.content_types[0], rendered) == [scenario]


def test_anhui_text_is_nfc_normalised_and_stripped() -> None:
    text = sample("340000-project.csv").decode("gb18030")
    text = text.replace("合肥市碳普惠运营中心", "  Cafe\u0301 运营中心\u3000")
    _, scenario = AH.to_common(AH.content_types[0], text.encode("gb18030"))
    assert isinstance(scenario, pb.Project) and scenario.owner == "Caf\u00e9 运营中心"


# -- Zhejiang ids stay strings --------------------------------------------------------------------


def test_zhejiang_ids_beyond_int64_stay_exact_strings() -> None:
    obj = json.loads(sample("330000-issuance.json"))
    obj["dataInfo"]["certificationId"] = "9999999999999999999"  # > 2^63 - 1
    [issuance] = ZJ.to_common(ZJ.content_types[0], json.dumps(obj).encode())
    assert isinstance(issuance, pb.Issuance)
    assert issuance.issuance_id == "9999999999999999999"
    assert b'"certificationId": "9999999999999999999"' in ZJ.from_common(issuance)


# -- content types --------------------------------------------------------------------------------


def test_wrong_content_type_is_refused() -> None:
    with pytest.raises(UnknownContentTypeError) as info:
        SH.to_common("application/json", sample("310000-project.json"))
    assert info.value.region == "310000"


def test_content_type_parameters_and_case_are_ignored() -> None:
    data = sample("310000-project.json")
    assert SH.to_common("Application/VND.yrd.310000+JSON; charset=utf-8", data) == SH.to_common(
        SH.content_types[0], data
    )


def test_data_must_be_bytes() -> None:
    with pytest.raises(TypeError):
        SH.to_common(SH.content_types[0], sample("310000-project.json").decode())  # type: ignore[arg-type]


def test_bytearray_and_memoryview_are_accepted() -> None:
    data = sample("310000-project.json")
    expected = SH.to_common(SH.content_types[0], data)
    assert SH.to_common(SH.content_types[0], bytearray(data)) == expected
    assert SH.to_common(SH.content_types[0], memoryview(data)) == expected  # type: ignore[arg-type]
