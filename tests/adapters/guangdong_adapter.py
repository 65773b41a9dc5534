"""A test-only adapter for a fifth region, Guangdong (440000).

It shows what adding a region takes: one module like this one (an ``AdapterBase`` subclass, or any
class implementing ``adapters.RegionAdapter``) and one ``registry.register(GuangdongAdapter())``.
The invented native format is the common schema as protobuf JSON inside a small envelope
(``{"kind": "issuance", "record": {...}}``), counting grams (k = 1).
"""

from __future__ import annotations

import json

from google.protobuf import json_format
from yrd.interop.v1 import records_pb2

from adapters import AdapterBase, CommonRecord
from adapters._common import Issues, fail, load_json_object

KINDS: dict[str, type[CommonRecord]] = {
    "methodology": records_pb2.Methodology,
    "project": records_pb2.Project,
    "issuance": records_pb2.Issuance,
}


class GuangdongAdapter(AdapterBase):
    region = "440000"
    region_label = "Guangdong"
    content_types = ("application/vnd.yrd.440000+json",)
    serial_unit_grams = 1

    def _parse(self, data: bytes) -> list[CommonRecord]:
        obj = load_json_object(data, self.region, allow_bom=False)
        kind = obj.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            fail(self.region, "kind", f"{kind!r} is not one of: {', '.join(KINDS)}")
        body = obj.get("record")
        if not isinstance(body, dict):
            fail(self.region, "record", "must be a JSON object")
        record = KINDS[kind]()
        try:
            json_format.ParseDict(body, record)
        except json_format.ParseError as exc:
            fail(self.region, "record", str(exc))
        if record.region != self.region:
            fail(self.region, "record.region", f"must be {self.region}")
        return [record]

    def _render(self, kind: str, record: CommonRecord, issues: Issues) -> bytes | None:
        if record.region != self.region:
            issues.add("region", "the Guangdong format only carries Guangdong records")
            return None
        body = json_format.MessageToDict(record, preserving_proto_field_name=True)
        return json.dumps({"kind": kind, "record": body}, ensure_ascii=False).encode()

    def _render_methodology(self, record: records_pb2.Methodology, issues: Issues) -> bytes | None:
        return self._render("methodology", record, issues)

    def _render_project(self, record: records_pb2.Project, issues: Issues) -> bytes | None:
        return self._render("project", record, issues)

    def _render_issuance(self, record: records_pb2.Issuance, issues: Issues) -> bytes | None:
        return self._render("issuance", record, issues)
