"""Jiangsu's one-pass reading of usual own records (``adapters._jiangsu_clean``) against the full
reading: for each document, the same record or the same issues, in the same order.

The documents are the samples and variants of them with one thing changed each (a field padded,
emptied, absent, reordered, out of range or in other characters, an attribute, text between the
elements, a comment, foreign-record fields). Each is read twice, with and without the one-pass
reader.
"""

from __future__ import annotations

import itertools

import pytest

from adapters import NativeFormatError, build_default_registry
from adapters._jiangsu_clean import read_clean
from tests.adapters.conftest import find_samples_dir

CT = "application/vnd.yrd.320000+xml"
SAMPLES = find_samples_dir()
BASE = {
    kind: (SAMPLES / f"320000-{kind}.xml").read_text(encoding="utf-8")
    for kind in ("methodology", "project", "issuance")
}
BASE["identity"] = (SAMPLES / "320000-project-identity.xml").read_text(encoding="utf-8")

# (kind, old, new): each replaces one part of a sample.
EDITS: list[tuple[str, str, str]] = [
    ("issuance", "<ND>2024</ND>", "<ND>0000</ND>"),
    ("issuance", "<ND>2024</ND>", "<ND> 2024 </ND>"),
    ("issuance", "<ND>2024</ND>", "<ND>２０２４</ND>"),
    ("issuance", "<ND>2024</ND>", "<ND/>"),
    ("issuance", "<ND>2024</ND>", ""),
    ("issuance", "<ND>2024</ND>", "<ND>2024</ND><ND>2024</ND>"),
    ("issuance", "<ND>2024</ND>", '<ND X="1">2024</ND>'),
    ("issuance", "<ND>2024</ND>", "<ND>2024</ND>x"),
    ("issuance", "<ND>2024</ND>", "<ND>2024</ND><!-- c -->"),
    ("issuance", "<ND>2024</ND>", "<ND><Y>2024</Y></ND>"),
    ("issuance", "<ND>2024</ND>", "<ND>20&#50;4</ND>"),
    ("issuance", "<JCJS>20241231</JCJS>", "<JCJS>20231231</JCJS>"),
    ("issuance", "<JCJS>20241231</JCJS>", "<JCJS>20240101</JCJS>"),
    ("issuance", "<JCJS>20241231</JCJS>", "<JCJS>20240231</JCJS>"),
    ("issuance", "<JPL>502 tCO2e</JPL>", "<JPL>502</JPL>"),
    ("issuance", "<JPL>502 tCO2e</JPL>", "<JPL>502tCO2e</JPL>"),
    ("issuance", "<JPL>502 tCO2e</JPL>", "<JPL>502  tCO2e</JPL>"),
    ("issuance", "<JPL>502 tCO2e</JPL>", "<JPL>502.000 tCO2e</JPL>"),
    ("issuance", "<JPL>502 tCO2e</JPL>", "<JPL>0,502 tCO2e</JPL>"),
    ("issuance", "<JPL>502 tCO2e</JPL>", "<JPL>5,02 tCO2e</JPL>"),
    ("issuance", "<JPL>502 tCO2e</JPL>", "<JPL>503 tCO2e</JPL>"),
    ("issuance", "<JPL>502 tCO2e</JPL>", "<JPL>502 tCO2e\t</JPL>"),
    ("issuance", "<JPL>502 tCO2e</JPL>", "<JPL>502\x0btCO2e</JPL>"),
    ("issuance", "<XLHZZ>20502</XLHZZ>", "<XLHZZ>20000</XLHZZ>"),
    ("issuance", "<XLHZZ>20502</XLHZZ>", "<XLHZZ>9999999999999999999</XLHZZ>"),
    ("issuance", "<QFBH>JS-QF-2025-0012</QFBH>", "<QFBH>JS QF</QFBH>"),
    ("issuance", "<QFBH>JS-QF-2025-0012</QFBH>", "<QFBH>JS/QF</QFBH>"),
    ("issuance", "<QFBH>JS-QF-2025-0012</QFBH>", "<QFBH>JS-签发-1</QFBH>"),
    ("issuance", "<QFBH>JS-QF-2025-0012</QFBH>", f"<QFBH>{'Q' * 129}</QFBH>"),
    ("issuance", "<QFBH>JS-QF-2025-0012</QFBH>", f"<QFBH>{'Q' * 128}</QFBH>"),
    ("issuance", "<QFBH>JS-QF-2025-0012</QFBH>", "<QFBH>\n  JS-QF-2025-0012\n</QFBH>"),
    ("issuance", '<JSTPH LX="QF">', '<JSTPH LX="QF" Y="1">'),
    ("issuance", '<JSTPH LX="QF">', '<JSTPH LX="QF">text'),
    ("issuance", '<JSTPH LX="QF">', '<JSTPH LX="QF"><LYSF>320000</LYSF>'),
    ("issuance", '<JSTPH LX="QF">', '<JSTPH LX="QF"><LYSF>310000</LYSF><XLHDW>千克</XLHDW>'),
    ("issuance", '<JSTPH LX="QF">', '<JSTPH LX="QF"><XLHDW>吨</XLHDW>'),
    ("issuance", '<JSTPH LX="QF">', '<JSTPH LX="QF"><KZ>{}</KZ>'),
    (
        "issuance",
        "<XLHQS>20001</XLHQS>\n  <XLHZZ>20502</XLHZZ>",
        "<XLHZZ>20502</XLHZZ><XLHQS>20001</XLHQS>",
    ),
    ("project", "<ZJRL>800</ZJRL>", ""),
    ("project", "<ZJRL>800</ZJRL>", "<ZJRL/>"),
    ("project", "<ZJRL>800</ZJRL>", "<ZJRL> </ZJRL>"),
    ("project", "<ZJRL>800</ZJRL>", "<ZJRL>0</ZJRL>"),
    ("project", "<ZJRL>800</ZJRL>", "<ZJRL>-8</ZJRL>"),
    ("project", "<ZJRL>800</ZJRL>", "<ZJRL>800.50</ZJRL>"),
    ("project", "<BWRQ>20230915</BWRQ>", ""),
    ("project", "<BWRQ>20230915</BWRQ>", "<BWRQ/>"),
    ("project", "<ZJRL>800</ZJRL>\n  <BWRQ>20230915</BWRQ>", ""),
    ("project", "<XZQH>320506</XZQH>", "<XZQH>310101</XZQH>"),
    ("project", "<XZQH>320506</XZQH>", "<XZQH>32050</XZQH>"),
    ("project", "<BBH>V01</BBH>", "<BBH>V1.2</BBH>"),
    ("project", "<BBH>V01</BBH>", "<BBH>V12</BBH>"),
    ("project", "<BBH>V01</BBH>", ""),
    ("project", "<ZT>1</ZT>", "<ZT>4</ZT>"),
    ("project", "<ZT>1</ZT>", "<ZT> 1</ZT>"),
    ("project", "<JRQJS>20330930</JRQJS>", "<JRQJS>20231001</JRQJS>"),
    ("project", "<XMMC>吴中区厂房屋顶分布式光伏项目</XMMC>", "<XMMC>  </XMMC>"),
    ("project", "<XMMC>吴中区厂房屋顶分布式光伏项目</XMMC>", "<XMMC>\u3000标题\u3000</XMMC>"),
    ("project", "<XMMC>吴中区厂房屋顶分布式光伏项目</XMMC>", "<XMMC>Cafe\u0301</XMMC>"),
    ("project", "<XMMC>吴中区厂房屋顶分布式光伏项目</XMMC>", "<XMMC>a\x7fb</XMMC>"),
    ("project", "<XMMC>吴中区厂房屋顶分布式光伏项目</XMMC>", "<XMMC>a\ufffeb</XMMC>"),
    ("project", "<XMMC>吴中区厂房屋顶分布式光伏项目</XMMC>", f"<XMMC>{'标' * 20001}</XMMC>"),
    ("project", "<XMMC>吴中区厂房屋顶分布式光伏项目</XMMC>", f"<XMMC>{'t' * 20001}</XMMC>"),
    ("project", "<YZMC>苏州某光伏电力有限公司</YZMC>", "<YZMC>A &amp; B</YZMC>"),
    ("project", "<ZT>1</ZT>", "<ZT>1</ZT><WD>31.2</WD>"),
    ("methodology", "<SXJZRQ>20281231</SXJZRQ>", ""),
    ("methodology", "<SXJZRQ>20281231</SXJZRQ>", "<SXJZRQ/>"),
    ("methodology", "<SXJZRQ>20281231</SXJZRQ>", "<SXJZRQ>20240101</SXJZRQ>"),
    ("methodology", "<CJLB>01</CJLB>", "<CJLB>1</CJLB>"),
    ("methodology", "<ZT>2</ZT>", "<ZT>3</ZT>"),
    ("methodology", "<BBH>V01</BBH>", "<BBH>1.0</BBH>"),
    ("methodology", "<Z>0.5978</Z>", "<Z>-0.5978</Z>"),
    ("methodology", "<Z>0.5978</Z>", "<Z>.5978</Z>"),
    ("methodology", "<Z>0.5978</Z>", ""),
    ("methodology", "<ND>2022</ND>", ""),
    ("methodology", "<ND>2022</ND>", "<ND/>"),
    ("methodology", "<ND>2022</ND>", "<ND>22</ND>"),
    ("methodology", "<DM>EF_grid</DM>", "<DM> </DM>"),
    ("methodology", "<DM>EF_grid</DM>", "<DM> EF_grid </DM>"),
    ("methodology", "<DM>EF_grid</DM>", "<DM>EF_grid</DM>x"),
    ("methodology", "<DM>EF_grid</DM>", '<DM Q="1">EF_grid</DM>'),
    ("methodology", "<MC>江苏省电网排放因子</MC>", ""),
    ("methodology", "<MC>江苏省电网排放因子</MC>", "<MC/>"),
    ("methodology", "<CS>", '<CS A="b">'),
    ("methodology", "<CS>", "<CS>t"),
    ("methodology", "<CS>", "<CS><CS/>"),
    ("methodology", "</CS>", "</CS>t"),
    ("methodology", "</CS>", "</CS><CS><DM>EF_grid</DM><Z>1</Z></CS>"),
    ("methodology", "</CS>", "</CS><CS><DM>EF_2</DM><Z>1</Z></CS>"),
    ("methodology", "</CS>", "</CS>\n  <CS>\n    <DM>EF_2</DM>\n    <Z>1</Z>\n  </CS>"),
    ("methodology", "<ZT>2</ZT>", "<ZT>2</ZT><CS><DM>EF_2</DM><Z>1</Z></CS>"),
    ("methodology", "<CJLB>01</CJLB>", "<CJLB>01</CJLB><CS><DM>EF_2</DM><Z>1</Z></CS>"),
    ("methodology", "<CS>", "<SXJZRQ>20281231</SXJZRQ><CS>"),
    ("methodology", "<ZT>2</ZT>", ""),
    ("identity", "<ZBX>GCJ02</ZBX>", ""),
]


def _documents() -> list[bytes]:
    docs = [text.encode("utf-8") for text in BASE.values()]
    for kind, old, new in EDITS:
        assert old in BASE[kind], (kind, old)
        docs.append(BASE[kind].replace(old, new, 1).encode("utf-8"))
    # Two edits at once, and the documents without their pretty-printing.
    for (k1, o1, n1), (k2, o2, n2) in itertools.combinations(EDITS[:40], 2):
        if k1 == k2 and o1 != o2 and o2 in BASE[k1].replace(o1, n1, 1):
            docs.append(BASE[k1].replace(o1, n1, 1).replace(o2, n2, 1).encode("utf-8"))
    docs += [b"".join(line.strip() for line in doc.splitlines()) for doc in docs[:40]]
    return docs


def _read(data: bytes) -> object:
    adapter = build_default_registry().get("320000")
    try:
        return adapter.to_common(CT, data, accept_foreign=True)
    except NativeFormatError as exc:
        return exc.issues


def test_clean_reading_is_the_full_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _documents()
    assert len(docs) > 400
    taken: list[bool] = []

    def counted(*args: object) -> object:
        record = read_clean(*args)  # type: ignore[arg-type]
        taken.append(record is not None)
        return record

    monkeypatch.setattr("adapters.r320000_jiangsu.read_clean", counted)
    fast = [_read(doc) for doc in docs]
    monkeypatch.setattr("adapters.r320000_jiangsu.read_clean", lambda *args: None)
    full = [_read(doc) for doc in docs]
    for doc, got, expected in zip(docs, fast, full, strict=True):
        assert got == expected, doc.decode("utf-8", "replace")
    # Both readings are compared: the samples and many variants take the one-pass reading.
    assert taken[:3] == [True, True, True]
    assert 40 < sum(taken) < len(docs) - 200
