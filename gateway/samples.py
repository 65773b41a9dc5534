"""The four regions' sample documents (``adapters/samples``, described in docs/regions.md), and
the demo's plant filed twice: in Qingpu (Shanghai) and in Wujiang (Jiangsu)."""

from __future__ import annotations

from importlib import resources

from adapters import default_registry

KINDS = ("methodology", "project", "issuance")
_EXT = {"310000": "json", "320000": "xml", "330000": "json", "340000": "csv"}


def sample_documents(region: str) -> list[tuple[str, bytes]]:
    """(content type, bytes) of a region's sample methodology, project and issuance."""
    content_type = default_registry.get(region).content_types[0]
    folder = resources.files("adapters") / "samples"
    return [
        (content_type, (folder / f"{region}-{kind}.{_EXT[region]}").read_bytes()) for kind in KINDS
    ]


QINGPU_PROJECT = "regions/310000/projects/SHCI-P-2024-000518"
"""The rooftop PV plant as Shanghai's Qingpu district (310118) filed it (WGS-84)."""
WUJIANG_PROJECT = "regions/320000/projects/JS-XM-2024-0517"
"""The same plant as Jiangsu's Wujiang district (320509) filed it (site in GCJ-02)."""
QINGPU_ISSUANCE = "regions/310000/issuances/SHCI-I-2025-000518"
WUJIANG_ISSUANCE = "regions/320000/issuances/JS-QF-2025-0517"

# Both registries issue the plant's 2024 output (May to December), each in its own serial space
# and format; the serials lie beyond those of the regions' other samples.
_QINGPU_ISSUANCE = b"""{
  "record_type": "issuance",
  "issuance_no": "SHCI-I-2025-000518",
  "project_no": "SHCI-P-2024-000518",
  "vintage": 2024,
  "monitoring_start": "2024-05-01",
  "monitoring_end": "2024-12-31",
  "reduction_tco2e": "310.500",
  "serial_start": 5000001,
  "serial_end": 5310500
}
"""
_WUJIANG_ISSUANCE = b"""<?xml version="1.0" encoding="UTF-8"?>
<JSTPH LX="QF">
  <QFBH>JS-QF-2025-0517</QFBH>
  <XMBH>JS-XM-2024-0517</XMBH>
  <ND>2024</ND>
  <JCKS>20240501</JCKS>
  <JCJS>20241231</JCJS>
  <JPL>310 tCO2e</JPL>
  <XLHQS>30001</XLHQS>
  <XLHZZ>30310</XLHZZ>
</JSTPH>
"""


def duplicate_pair_documents() -> dict[str, list[tuple[str, bytes]]]:
    """By region (310000, 320000): (content type, bytes) of the demo plant's project (the
    ``adapters/samples/demo-*`` files, with identity keys) and of an issuance of its 2024 output.
    Each region's sample methodology must be published first."""
    folder = resources.files("adapters") / "samples"
    files = {
        "310000": "demo-qingpu-310000-project.json",
        "320000": "demo-wujiang-320000-project.xml",
    }
    issuances = {"310000": _QINGPU_ISSUANCE, "320000": _WUJIANG_ISSUANCE}
    out = {}
    for region, name in files.items():
        content_type = default_registry.get(region).content_types[0]
        out[region] = [
            (content_type, (folder / name).read_bytes()),
            (content_type, issuances[region]),
        ]
    return out
