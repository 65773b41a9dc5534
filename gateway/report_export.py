"""Reconciliation reports as JSON and CSV documents (for downloads and the CLI)."""

from __future__ import annotations

import csv
import io
import json

from google.protobuf import json_format
from yrd.interop.v1 import reconciliation_pb2

from gateway.services.reconciliation import discrepancy_counts

CSV_COLUMNS = (
    "report",
    "region",
    "status",
    "kind",
    "origin_region",
    "range_start",
    "range_end",
    "transfer_id",
    "quantity_grams",
    "detail",
)


def short_status(report: reconciliation_pb2.ReconciliationReport) -> str:
    return reconciliation_pb2.ReconciliationStatus.Name(report.status).removeprefix(
        "RECONCILIATION_STATUS_"
    )


def short_kind(kind: reconciliation_pb2.DiscrepancyKind.ValueType) -> str:
    return reconciliation_pb2.DiscrepancyKind.Name(kind).removeprefix("DISCREPANCY_KIND_")


def report_json(report: reconciliation_pb2.ReconciliationReport) -> str:
    """The report in the proto's JSON mapping (what the signature covers), plus ``counts``."""
    body = json_format.MessageToDict(report, preserving_proto_field_name=True)
    body["counts"] = discrepancy_counts(report)
    return json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def report_csv(report: reconciliation_pb2.ReconciliationReport) -> str:
    """One row per discrepancy range or transfer (a discrepancy without either: one row); a
    report without discrepancies is one row with its status."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    head = (report.name, report.region, short_status(report))
    if not report.discrepancies:
        writer.writerow((*head, "", "", "", "", "", 0, ""))
    for d in report.discrepancies:
        kind = short_kind(d.kind)
        if d.ranges:
            for r in d.ranges:
                grams = r.end - r.start + 1
                writer.writerow((*head, kind, d.origin_region, r.start, r.end, "", grams, d.detail))
        elif d.transfer_ids:
            for t in d.transfer_ids:
                writer.writerow(
                    (*head, kind, d.origin_region, "", "", t, d.quantity_grams, d.detail)
                )
        else:
            writer.writerow((*head, kind, d.origin_region, "", "", "", d.quantity_grams, d.detail))
    return out.getvalue()
