"""Native delivery over real mTLS, on SQLite and PostgreSQL: with the 12 shared samples published,
every region's native feed carries every other region's records in its own format (none "not
expressible"), and each converts back to exactly the record delivered. A registry cannot publish
another region's record as its own."""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf import json_format

from adapters import default_registry
from adapters.base import same_record
from gateway.client import GatewayClient
from gateway.server import GatewayServer
from tests.integration.conftest import publish_samples

REGIONS = ("310000", "320000", "330000", "340000")
KINDS = ("methodology", "project", "issuance")
# Foreign sample records a region receives per kind: 3 regions x 1, Anhui's CSV files 2 each.
EXPECTED = {region: {kind: 4 if region != "340000" else 3 for kind in KINDS} for region in REGIONS}


def native_table(client_for: Callable[..., GatewayClient]) -> dict[str, dict[str, str]]:
    """Per subscriber and kind: 'native/foreign, exact' counts from its native feed."""
    table: dict[str, dict[str, str]] = {}
    for region in REGIONS:
        adapter = default_registry.get(region)
        counts = {kind: [0, 0, 0] for kind in KINDS}  # foreign, native, converts back exactly
        for event in client_for(region).subscribe(native=True):
            kind = event.record.WhichOneof("kind")
            assert kind is not None
            record = getattr(event.record, kind)
            if record.region == region:
                assert event.native_payload  # own records, as always
                continue
            cell = counts[kind]
            cell[0] += 1
            if not event.native_payload:
                continue
            cell[1] += 1
            assert event.native_content_type == adapter.content_types[0]
            [back] = adapter.to_common(
                event.native_content_type, event.native_payload, accept_foreign=True
            )
            cell[2] += same_record(back, record)
        table[region] = {k: f"{n}/{f} native, {x} exact" for k, (f, n, x) in counts.items()}
    return table


def test_every_native_feed_carries_all_other_regions_records_exactly(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    publish_samples(client_for)
    table = native_table(client_for)
    print("\nforeign sample records in each subscriber's native feed (region x kind):")
    print(f"{'region':<8}" + "".join(f"{kind:>28}" for kind in KINDS))
    for region, row in table.items():
        print(f"{region:<8}" + "".join(f"{row[kind]:>28}" for kind in KINDS))
    assert table == {
        region: {kind: f"{n}/{n} native, {n} exact" for kind, n in row.items()}
        for region, row in EXPECTED.items()
    }


def test_a_registry_cannot_publish_another_regions_record_in_its_format(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    publish_samples(client_for)
    jiangsu = client_for("320000")
    [event] = [
        e
        for e in jiangsu.subscribe(native=True)
        if e.record.WhichOneof("kind") == "issuance" and e.record.issuance.region == "310000"
    ]
    # Jiangsu signs the Shanghai issuance it received in its own format and publishes it.
    [result] = jiangsu.publish([(event.native_content_type, event.native_payload)])
    assert not result.accepted
    assert result.reason == "NATIVE_RECORD_INVALID"
    assert "LYSF" in result.field_errors and "310000" in result.field_errors["LYSF"]
    names = [json_format.MessageToDict(e.record) for e in jiangsu.subscribe()]
    assert len(names) == 15  # nothing stored
