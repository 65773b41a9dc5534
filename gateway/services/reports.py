"""The regulators' report pack: five reports over a period, each a table of typed columns with
its totals, read in one transaction. Rendering (XLSX, CSV, JSON) is in ``gateway.report_pack``."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal
from zoneinfo import ZoneInfo

from yrd.interop.v1 import reconciliation_pb2, transfer_pb2

import mutual_recognition as mr
from gateway import errors
from gateway.recognition_codec import loads
from gateway.services import Clock, utc_now
from gateway.services.retirements import EtsPolicy
from gateway.storage.db import Database
from gateway.storage.report_store import ReportStore

CHINA = ZoneInfo("Asia/Shanghai")
Kind = Literal["text", "int", "grams", "ratio", "time"]
"""grams: an integer quantity (rendered with its tonnes beside it); ratio: an exact fraction."""
Cell = str | int | Fraction | dt.datetime | None


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    kind: Kind = "text"


@dataclass
class Report:
    """One report of the pack: typed columns, rows, and the totals of its grams and counts."""

    name: str
    title_zh: str
    title_en: str
    since: dt.date
    until: dt.date
    columns: tuple[Column, ...]
    rows: list[tuple[Cell, ...]] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        """Sum of each integer and grams column."""
        out = {}
        for i, c in enumerate(self.columns):
            if c.kind in ("int", "grams"):
                out[c.key] = sum(v for r in self.rows if isinstance(v := r[i], int))
        return out


def period(since: dt.date, until: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The instants of a period of China civil days, both inclusive: [since 00:00 CST,
    the day after until 00:00 CST)."""
    if until < since:
        raise errors.InvalidArgument(
            f"--until {until} is before --since {since}", field_errors={"until": "before since"}
        )
    start = dt.datetime.combine(since, dt.time(), CHINA).astimezone(dt.UTC)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), CHINA).astimezone(dt.UTC)
    return start, end


def _purpose(value: int) -> str:
    return transfer_pb2.TransferPurpose.Name(value).removeprefix("TRANSFER_PURPOSE_")  # type: ignore[arg-type]


class ReportPack:
    """Builds the reports from the ledger, the audit log and the reconciliation reports."""

    def __init__(
        self,
        db: Database,
        ets_policies: Mapping[str, EtsPolicy],
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.ets_policies = ets_policies
        self.clock = clock
        self.builders: dict[str, Callable[[dt.date, dt.date], Report]] = {
            "ets-offsets": self.ets_offsets,
            "flows": self.flows,
            "retirements": self.retirements,
            "discrepancies": self.discrepancies,
            "recognitions": self.recognitions,
        }

    @property
    def names(self) -> Sequence[str]:
        return tuple(self.builders)

    def build(self, name: str, since: dt.date, until: dt.date) -> Report:
        if name not in self.builders:
            raise errors.InvalidArgument(
                f"no report {name!r}; reports: {', '.join(self.builders)}",
                field_errors={"name": "unknown"},
            )
        return self.builders[name](since, until)

    def ets_offsets(self, since: dt.date, until: dt.date) -> Report:
        """ETS offsets by ETS region, compliance year and beneficiary, with the cap and the share
        of it the period's offsets used."""
        report = Report(
            "ets-offsets",
            "ETS 抵消（按履约年度与受益主体）",
            "ETS offsets by compliance year and beneficiary",
            since,
            until,
            (
                Column("region", "ETS 地区", "ETS region"),
                Column("compliance_year", "履约年度", "Compliance year", "int"),
                Column("beneficiary", "受益主体", "Beneficiary"),
                Column("orders", "注销笔数", "Retirements", "int"),
                Column("obligation_grams", "申报履约量（克）", "Declared obligation (g)", "grams"),
                Column("retired_grams", "注销量（克）", "Retired (g)", "grams"),
                Column(
                    "outside_grams", "其中外地签发（克）", "Of which issued outside (g)", "grams"
                ),
                Column("credited_grams", "抵消量（克）", "Credited (g)", "grams"),
                Column("cap_grams", "抵消上限（克）", "Cap (g)", "grams"),
                Column("cap_used", "上限使用比例", "Share of cap used", "ratio"),
            ),
        )
        start, end = period(since, until)
        with self.db.transaction() as session:
            found = ReportStore(session).retirements(start, end)
        groups: dict[tuple[str, int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for r in found:
            if r.purpose != transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET:
                continue
            g = groups[(r.holder_region, r.compliance_year, r.beneficiary.strip())]
            g[0] += 1
            g[1] = r.declared_obligation_grams  # the newest order's declaration is the one in force
            g[2] += r.quantity_grams
            g[3] += r.outside_grams
            g[4] += r.credited_grams
        for (region, year, beneficiary), (n, obligation, grams, outside, credited) in sorted(
            groups.items()
        ):
            policy = self.ets_policies.get(region)
            cap = math.floor(Fraction(policy.max_share) * obligation) if policy else 0
            used = Fraction(credited, cap) if cap else None
            report.rows.append(
                (region, year, beneficiary, n, obligation, grams, outside, credited, cap, used)
            )
        return report

    def flows(self, since: dt.date, until: dt.date) -> Report:
        """Completed cross-region transfers by origin of the units, sending and receiving
        holder: grams and transfer counts."""
        report = Report(
            "flows",
            "跨地区流转（按签发地与持有地）",
            "Cross-region flows by origin and holder",
            since,
            until,
            (
                Column("origin_region", "签发地区", "Origin region"),
                Column("from_region", "转出地区", "From holder"),
                Column("to_region", "转入地区（持有地）", "To holder"),
                Column("transfers", "转让笔数", "Transfers", "int"),
                Column("grams", "数量（克）", "Quantity (g)", "grams"),
            ),
        )
        start, end = period(since, until)
        cells: dict[tuple[str, str, str], tuple[set[str], int]] = {}
        with self.db.transaction() as session:
            for t in ReportStore(session).completed_transfers(start, end):
                for origin, first, last in t.ranges:
                    key = (origin, t.source_region, t.destination_region)
                    names, grams = cells.get(key, (set(), 0))
                    names.add(t.name)
                    cells[key] = (names, grams + last - first + 1)
        for (origin, src, dst), (names, grams) in sorted(cells.items()):
            report.rows.append((origin, src, dst, len(names), grams))
        return report

    def retirements(self, since: dt.date, until: dt.date) -> Report:
        """Retirements by holder region and purpose."""
        report = Report(
            "retirements",
            "注销（按地区与用途）",
            "Retirements by region and purpose",
            since,
            until,
            (
                Column("holder_region", "持有地区", "Holder region"),
                Column("purpose", "用途", "Purpose"),
                Column("retirements", "注销笔数", "Retirements", "int"),
                Column("grams", "注销量（克）", "Retired (g)", "grams"),
                Column("credited_grams", "抵消量（克）", "Credited (g)", "grams"),
            ),
        )
        start, end = period(since, until)
        with self.db.transaction() as session:
            found = ReportStore(session).retirements(start, end)
        groups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for r in found:
            g = groups[(r.holder_region, _purpose(r.purpose))]
            g[0] += 1
            g[1] += r.quantity_grams
            g[2] += r.credited_grams
        for (region, purpose), (n, grams, credited) in sorted(groups.items()):
            report.rows.append((region, purpose, n, grams, credited))
        return report

    def discrepancies(self, since: dt.date, until: dt.date) -> Report:
        """Discrepancies of the reconciliation reports finished in the period: open while the
        region's newest report up to the period's end still lists them, else resolved (by the
        first later report that does not)."""
        report = Report(
            "discrepancies",
            "对账差异（未解决与已解决）",
            "Reconciliation discrepancies, open and resolved",
            since,
            until,
            (
                Column("report", "对账报告", "Report"),
                Column("region", "地区", "Region"),
                Column("finished_at", "对账时间", "Finished", "time"),
                Column("kind", "差异类型", "Kind"),
                Column("origin_region", "签发地区", "Origin region"),
                Column("ranges", "序列号区间", "Serial ranges"),
                Column("transfers", "转让", "Transfers"),
                Column("grams", "数量（克）", "Quantity (g)", "grams"),
                Column("state", "状态", "State"),
                Column("resolved_by", "解决于报告", "Resolved by"),
                Column("detail", "说明", "Detail"),
            ),
        )
        start, end = period(since, until)
        with self.db.transaction() as session:
            found = ReportStore(session).reports_until(end)
        by_region: dict[str, list[tuple[str, dt.datetime, list[_Found]]]] = {}
        for name, region, at, body in found:
            parsed = reconciliation_pb2.ReconciliationReport.FromString(body)
            items = [_discrepancy(d) for d in parsed.discrepancies]
            by_region.setdefault(region, []).append((name, at, items))
        for region, runs in sorted(by_region.items()):
            for i, (name, at, items) in enumerate(runs):
                if not start <= at < end:
                    continue
                for key, row in items:
                    later = [r for r in runs[i + 1 :] if key not in {k for k, _ in r[2]}]
                    resolved = later[0][0] if later else ""
                    state = "RESOLVED" if resolved else "OPEN"
                    report.rows.append(
                        (name, region, at, *row[:5], state, resolved, row[5])  # type: ignore[arg-type]
                    )
        return report

    def recognitions(self, since: dt.date, until: dt.date) -> Report:
        """Recognitions in force at the end of the period."""
        report = Report(
            "recognitions",
            "生效互认（期末）",
            "Recognitions in force at the end of the period",
            since,
            until,
            (
                Column("recognition", "互认编号", "Recognition"),
                Column("subject", "互认对象", "Subject"),
                Column("version", "版本", "Version"),
                Column("requesting_region", "申请地区", "Requesting region"),
                Column("recognising_region", "认可地区", "Recognising region"),
                Column("approved_at", "批准时间", "Approved", "time"),
                Column("vintages", "减排量年份", "Vintages"),
                Column("ets_ratio", "ETS 调整系数", "ETS adjustment ratio", "ratio"),
                Column("expires", "到期日", "Expires"),
            ),
        )
        _, end = period(since, until)
        at = end - dt.timedelta(microseconds=1)
        with self.db.transaction() as session:
            bodies = ReportStore(session).recognition_bodies()
        for rec in (loads(b) for b in bodies):
            approved = _quorum_time(rec)
            if not _in_force_at(rec, approved, at):
                continue
            c = rec.conditions
            vintages = (
                f"{c.vintage_from or ''}–{c.vintage_to or ''}"
                if c.vintage_from or c.vintage_to
                else ""
            )
            report.rows.append(
                (
                    rec.name,
                    rec.subject.name,
                    rec.subject.version or "",
                    rec.requesting_region,
                    rec.recognising_region,
                    approved,
                    vintages,
                    c.ets_adjustment_ratio,
                    c.expire_date.isoformat() if c.expire_date else "",
                )
            )
        report.rows.sort(key=lambda r: (str(r[4]), str(r[1]), str(r[0])))
        return report


_Found = tuple[tuple[object, ...], tuple[object, ...]]
"""A discrepancy: (identity key, row cells)."""


def _quorum_time(rec: mr.Recognition) -> dt.datetime | None:
    """When the recognising region's approvals reached the quorum (None: never)."""
    seen: set[str] = set()
    for d in sorted(rec.approvals, key=lambda d: d.decided_at):
        seen.add(d.admin)
        if len(seen) >= rec.required_approvals:
            return d.decided_at
    return None


def _in_force_at(rec: mr.Recognition, approved: dt.datetime | None, at: dt.datetime) -> bool:
    """Whether the recognition was in force at AT: approved by then, not revoked by then, not
    expired (a recognition revoked since counts for the periods it was in force)."""
    if approved is None or approved > at:
        return False
    if rec.state is mr.RecognitionState.REVOKED:
        if rec.revoked_at is None or rec.revoked_at <= at:
            return False
    elif rec.state is not mr.RecognitionState.APPROVED:
        return False
    expires = rec.expires_at
    return expires is None or at < expires


def _discrepancy(d: reconciliation_pb2.Discrepancy) -> _Found:
    """(identity key, row cells: kind, origin, ranges, transfers, grams, detail)."""
    kind = reconciliation_pb2.DiscrepancyKind.Name(d.kind).removeprefix("DISCREPANCY_KIND_")
    ranges = tuple((r.start, r.end) for r in d.ranges)
    transfers = tuple(d.transfer_ids)
    grams = sum(e - s + 1 for s, e in ranges) if ranges else d.quantity_grams
    text = ", ".join(f"{s}..{e}" for s, e in ranges)
    return (kind, d.origin_region, ranges, transfers), (
        kind,
        d.origin_region,
        text,
        ", ".join(transfers),
        grams,
        d.detail,
    )
