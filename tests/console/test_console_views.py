"""The console's pure parts: labels in both languages, exact number formatting, the plain
messages for the gateway's refusals."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import grpc
import pytest
from yrd.interop.v1 import recognition_pb2, reconciliation_pb2, transfer_pb2

from gateway import errors
from gateway.client import TransportError
from gateway.console.app import _ratio_decimal, _tonnes
from gateway.console.backend import relative_difference
from gateway.console.i18n import MESSAGES, describe_error, region_name, translate

TEMPLATES = Path(__file__).parents[2] / "gateway" / "console" / "templates"


def test_every_label_exists_in_both_languages_with_the_same_placeholders() -> None:
    assert MESSAGES["zh"].keys() == MESSAGES["en"].keys()
    for key, zh in MESSAGES["zh"].items():
        fields = set(re.findall(r"\{(\w+)\}", zh))
        assert fields == set(re.findall(r"\{(\w+)\}", MESSAGES["en"][key])), key


def test_every_label_the_templates_use_is_defined() -> None:
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z_]+)'\s*[,)]", template.read_text()))
    assert used and used <= MESSAGES["zh"].keys(), used - MESSAGES["zh"].keys()


@pytest.mark.parametrize(
    ("enum", "prefix", "key"),
    [
        (recognition_pb2.RecognitionState, "RECOGNITION_STATE_", "state_"),
        (recognition_pb2.Verdict, "VERDICT_", "verdict_"),
        (transfer_pb2.TransferState, "TRANSFER_STATE_", "tstate_"),
        (transfer_pb2.TransferPurpose, "TRANSFER_PURPOSE_", "purpose_"),
        (reconciliation_pb2.ReconciliationStatus, "RECONCILIATION_STATUS_", "rstatus_"),
        (reconciliation_pb2.DiscrepancyKind, "DISCREPANCY_KIND_", "kind_"),
    ],
)
def test_every_enum_value_the_pages_show_has_a_label(enum: Any, prefix: str, key: str) -> None:
    for name in (v.name for v in enum.DESCRIPTOR.values):
        value = name.removeprefix(prefix).lower()
        if key == "verdict_" and value == "unspecified":
            continue  # a decision always has a verdict
        assert f"{key}{value}" in MESSAGES["zh"], name


@pytest.mark.parametrize(
    ("grams", "shown"),
    [
        (0, "0 t"),
        (1_500_000, "1.5 t"),
        (1_000_000, "1 t"),
        (373_010_000, "373.01 t"),
        (1, "0.000001 t"),
    ],
)
def test_tonnes_are_exact(grams: int, shown: str) -> None:
    assert _tonnes(grams) == shown


def test_ratio_and_difference_are_computed_on_exact_values() -> None:
    assert _ratio_decimal((300, 427)) == "0.7026"
    assert _ratio_decimal((1, 1)) == "1.0000"
    assert _ratio_decimal((2, 3)) == "0.6667"
    assert _ratio_decimal(None) == ""
    assert relative_difference("0.5978", "0.42") == "+42.33 %"
    assert relative_difference("0.5978", "0.6782") == "-11.85 %"
    assert relative_difference("0.5978", "0") == ""


def test_refusals_read_as_sentences_in_the_reader_language() -> None:
    wrong = errors.RECOGNITION_ERRORS["WRONG_REGION"](
        "admin cannot approve", metadata={"recognising_region": "310000"}
    )
    assert describe_error("zh", wrong) == (
        "只有上海市（310000）的管理员可以对此作出决定，网关拒绝了您的决定。"
    )
    assert describe_error("en", wrong).startswith("Only administrators of Shanghai (310000)")
    closed = errors.RECOGNITION_ERRORS["INVALID_STATE_TRANSITION"](
        "cannot approve", metadata={"state": "approved"}
    )
    assert "「生效」" in describe_error("zh", closed)
    assert "quorum" in describe_error("en", closed)
    expired = errors.RECOGNITION_ERRORS["RECOGNITION_EXPIRED"](
        "cannot approve", metadata={"expire_date": "2025-12-31"}
    )
    assert describe_error("zh", expired) == "此互认已于 2025-12-31 到期，无法再作出决定。"
    other = errors.SequenceGap("sequence 7 expected 5")
    assert describe_error("en", other) == (
        "The gateway refused the request (SEQUENCE_GAP): sequence 7 expected 5"
    )
    down = TransportError(grpc.StatusCode.UNAVAILABLE, "connection refused")
    assert describe_error("zh", down) == "无法连接网关：connection refused"


def test_unknown_labels_and_regions_show_as_themselves() -> None:
    assert translate("en", "no_such_label") == "no_such_label"
    assert translate("fr", "approve") == "批准"  # unsupported languages fall back to Chinese
    assert region_name("en", "440000") == "440000"
