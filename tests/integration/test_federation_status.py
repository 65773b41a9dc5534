"""The federation status over real mTLS, on SQLite and PostgreSQL: per region the feed lag of its
registry, pending transfers, snapshots, keys, certificates and refusals; who may ask."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from yrd.interop.v1 import status_service_pb2

from gateway.client import GatewayClient
from gateway.errors import DomainError
from gateway.samples import sample_documents
from gateway.security.identity import Role
from gateway.server import GatewayServer
from tests.integration.conftest import REGIONS, publish_samples

TOTAL_SAMPLE_RECORDS = 3 * 3 + 6


def _by_region(
    reply: status_service_pb2.GetFederationStatusResponse,
) -> dict[str, status_service_pb2.RegionStatus]:
    return {r.region: r for r in reply.regions}


def test_after_every_region_read_the_feed_every_lag_is_zero(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    publish_samples(client_for)
    for region in REGIONS:
        assert len(list(client_for(region).subscribe(native=True))) == TOTAL_SAMPLE_RECORDS
    reply = client_for("310000", Role.ADMIN, "admin-a").federation_status()
    regions = _by_region(reply)
    assert list(regions) == list(REGIONS)
    assert reply.feed_head_cursor == str(TOTAL_SAMPLE_RECORDS)
    for region, status in regions.items():
        assert status.HasField("subscriber")
        assert status.subscriber.cursor == reply.feed_head_cursor
        assert (status.subscriber.lag_records, status.subscriber.lag_seconds) == (0, 0)
        assert status.last_record.name.startswith(f"regions/{region}/")
        assert "registry" in [k.owner for k in status.signing_keys]
        days = {c.identity: c.days_left for c in status.certificates}
        assert f"spiffe://yrd-interop/region/{region}/registry" in days
        assert all(d > 30 for d in days.values())
        assert status.pending_out.count == status.pending_in.count == 0
    assert {c.identity for c in reply.certificates} >= {"ca", "spiffe://yrd-interop/gateway"}


def test_a_subscriber_that_stopped_early_lags_by_the_records_it_missed(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    for region in ("310000", "320000"):
        assert all(r.accepted for r in client_for(region).publish(sample_documents(region)))
    for region in REGIONS:
        assert len(list(client_for(region).subscribe())) == 6
    # Zhejiang and Anhui publish 3 + 6 more; only Shanghai and Zhejiang read on.
    for region in ("330000", "340000"):
        assert all(r.accepted for r in client_for(region).publish(sample_documents(region)))
    assert len(list(client_for("310000").subscribe(cursor="6"))) == 9
    assert len(list(client_for("330000").subscribe(regions=["340000"]))) == 6
    regions = _by_region(client_for("340000", Role.ADMIN, "admin-a").federation_status())
    lags = {r: (s.subscriber.cursor, s.subscriber.lag_records) for r, s in regions.items()}
    # Zhejiang read only Anhui's records, yet it read to the head: its filter left out the rest.
    assert lags == {
        "310000": ("15", 0),
        "320000": ("6", 9),
        "330000": ("15", 0),
        "340000": ("6", 9),
    }
    assert regions["320000"].subscriber.lag_seconds >= 0
    assert regions["330000"].last_record.cursor == "9"


def test_registries_may_not_read_the_federation_status(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    with pytest.raises(DomainError) as refused:
        client_for("310000").federation_status()
    assert refused.value.reason == "ROLE_NOT_ALLOWED"
    # The refusal itself is counted for the caller's region.
    regions = _by_region(client_for("310000", Role.ADMIN, "admin-a").federation_status())
    refusals = {r.reason: r.count for r in regions["310000"].refusals_last_hour}
    assert refusals == {"ROLE_NOT_ALLOWED": 1}
    assert not regions["320000"].HasField("subscriber")


def test_open_duplicate_cases_and_held_grams_per_region(
    server: GatewayServer, client_for: Callable[..., GatewayClient]
) -> None:
    from yrd.interop.v1 import duplicates_pb2

    from gateway.samples import QINGPU_PROJECT, duplicate_pair_documents

    pair = duplicate_pair_documents()
    for region in ("310000", "320000"):
        assert all(r.accepted for r in client_for(region).publish(sample_documents(region)))
        assert all(r.accepted for r in client_for(region).publish(pair[region]))
    (case,) = client_for("330000").list_duplicate_cases()
    admin = client_for("330000", Role.ADMIN, "admin-a")
    regions = _by_region(admin.federation_status())
    counts = {r: (s.open_duplicate_cases, s.held_grams) for r, s in regions.items()}
    # Both issuances of the plant are held whole; the regions' own samples are not.
    assert counts == {
        "310000": (1, 310_500_000),
        "320000": (1, 310_000_000),
        "330000": (0, 0),
        "340000": (0, 0),
    }
    assert regions["320000"].oldest_open_case_time == case.open_time
    assert not regions["330000"].HasField("oldest_open_case_time")

    deciders = [("310000", "admin-a"), ("310000", "admin-b"), ("320000", "admin-a")]
    for region, name in deciders:
        case = client_for(region, Role.ADMIN, name).resolve_duplicate_case(
            case.name, "DUPLICATE", "同一电站", standing=QINGPU_PROJECT
        )
    assert case.state == duplicates_pb2.DUPLICATE_CASE_STATE_DUPLICATE
    regions = _by_region(admin.federation_status())
    for status in regions.values():
        assert (status.open_duplicate_cases, status.held_grams) == (0, 0)
        assert not status.HasField("oldest_open_case_time")
