"""Native documents of projects that carry identity keys, made from the regions' samples: what
the duplicate detection matches when a registry publishes them (tests of duplicate cases)."""

from __future__ import annotations

from yrd.interop.v1 import records_pb2

from adapters import default_registry
from gateway.samples import sample_documents

CREDIT_CODE = "91310115MA1K3YJ12G"
"""A unified social credit code whose check character is right (GB 32100-2015)."""
GRID_ACCOUNT = "3100123456789"


def identity(
    *,
    credit_code: str = CREDIT_CODE,
    grid_account: str = GRID_ACCOUNT,
    latitude: str = "31.105000",
    longitude: str = "121.050000",
) -> records_pb2.ProjectIdentity:
    """Identity keys of one rooftop plant near the Shanghai–Jiangsu border (WGS-84)."""
    return records_pb2.ProjectIdentity(
        owner_credit_code=credit_code,
        grid_account=grid_account,
        site=records_pb2.SiteLocation(
            latitude=latitude, longitude=longitude, datum=records_pb2.COORDINATE_DATUM_WGS84
        ),
    )


def sample_records(region: str) -> list[records_pb2.Record]:
    """The region's sample methodology, project and issuance as common records."""
    adapter = default_registry.get(region)
    out: list[records_pb2.Record] = []
    for content_type, data in sample_documents(region):
        (record,) = adapter.to_common(content_type, data)
        wrapped = records_pb2.Record()
        getattr(wrapped, record.DESCRIPTOR.name.lower()).CopyFrom(record)
        out.append(wrapped)
    return out


def documents(
    region: str,
    keys: records_pb2.ProjectIdentity | None,
    *,
    project_id: str = "",
    kinds: tuple[str, ...] = ("methodology", "project", "issuance"),
) -> list[tuple[str, bytes]]:
    """(content type, bytes) of the region's samples of ``kinds``, the project with identity
    ``keys`` (and renamed ``project_id``, the issuance following it, when given)."""
    adapter = default_registry.get(region)
    content_type = adapter.content_types[0]
    out: list[tuple[str, bytes]] = []
    for record in sample_records(region):
        kind = record.WhichOneof("kind")
        assert kind is not None
        if kind not in kinds:
            continue
        inner = getattr(record, kind)
        if kind == "project":
            if keys is not None:
                inner.identity.CopyFrom(keys)
            if project_id:
                inner.project_id = project_id
                inner.name = f"regions/{region}/projects/{project_id}"
        if kind == "issuance" and project_id:
            inner.project = f"regions/{region}/projects/{project_id}"
        out.append((content_type, adapter.from_common(inner)))
    return out
