"""Report downloads in the console: the report pack read from the gateway's database (a console
on the gateway's host started with ``--database-url``), under the ETS policies the gateway
serves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from yrd.interop.v1 import gateway_info_service_pb2

if TYPE_CHECKING:
    from gateway.storage.db import Database

ReportSource = Callable[[str, dt.date, dt.date, str], tuple[bytes, str, str]]
"""(report name, first day, last day, format) → (bytes, media type, file name)."""
REPORT_NAMES = ("ets-offsets", "flows", "retirements", "discrepancies", "recognitions")


class _Policy:
    """An ETS offset policy as GetGatewayInfo serves it (what the cap needs of it)."""

    def __init__(self, p: gateway_info_service_pb2.EtsOffsetPolicy) -> None:
        self.max_share = Decimal(p.max_share)
        self.max_outside_share = Decimal(p.max_outside_share) if p.max_outside_share else None
        self.vintage_window_years = (
            p.vintage_window_years if p.HasField("vintage_window_years") else None
        )


def pack_reports(
    db: Database, info: gateway_info_service_pb2.GetGatewayInfoResponse
) -> ReportSource:
    """A report source over DB, with the ETS policies of INFO."""
    from gateway.report_pack import MEDIA_TYPES, file_name, render
    from gateway.services.reports import ReportPack

    policies = {p.region: _Policy(p) for p in info.policies.ets_offset_policies}
    pack = ReportPack(db, policies)

    def source(name: str, since: dt.date, until: dt.date, fmt: str) -> tuple[bytes, str, str]:
        report = pack.build(name, since, until)
        return render(report, fmt), MEDIA_TYPES[fmt], file_name(report, fmt)

    return source


def database_reports(
    database_url: str, info: gateway_info_service_pb2.GetGatewayInfoResponse
) -> tuple[ReportSource, Callable[[], None]]:
    """A report source over the database at DATABASE_URL, and the function that closes it."""
    from gateway.storage.db import Database

    db = Database.from_url(database_url)
    return pack_reports(db, info), db.dispose
