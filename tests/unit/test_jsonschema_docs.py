"""docs/schema and docs/data-dictionary.md: generated from the descriptors, never drifting, and
every sample record (converted by the adapters, written by ``json_format``) validates, while a
wrong type, an unknown member or a broken rule does not."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from jsonschema import Draft202012Validator
from yrd.interop.v1 import recognition_pb2, records_pb2, transfer_pb2
from yrd.interop.v1 import recognition_service_pb2 as rs
from yrd.interop.v1 import transfer_service_pb2 as ts

from adapters import default_registry
from gateway.tools import jsonschema as tool
from gateway.tools import schema_terms

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "docs" / "schema"
SAMPLES = REPO / "adapters" / "samples"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return tool.generate(REPO / "proto")


def validator(stem: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{stem}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors(stem: str, document: Any) -> list[str]:
    return [e.message for e in validator(stem).iter_errors(document)]


def as_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def sample_records() -> list[tuple[str, Message]]:
    out: list[tuple[str, Message]] = []
    for path in sorted(SAMPLES.iterdir()):
        # ``310000-project.json``, ``310000-project-identity.json``, ``demo-qingpu-310000-…``
        region = re.search(r"[0-9]{6}", path.name)
        assert region is not None, path.name
        adapter = default_registry.get(region.group())
        for record in adapter.to_common(adapter.content_types[0], path.read_bytes()):
            out.append((path.name, record))
    return out


SAMPLE_RECORDS = sample_records()


# -- generated, not edited ----------------------------------------------------------------------


def test_committed_files_equal_the_generator_output(generated: dict[str, str]) -> None:
    on_disk = {p.name for p in SCHEMAS.glob("*.schema.json")}
    assert on_disk == {f"{stem}.schema.json" for stem in schema_terms.ROOTS}
    for name, text in generated.items():
        path = (SCHEMAS / name).resolve()
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale; regenerate it"


def test_check_mode_reports_drift(tmp_path: Path, generated: dict[str, str]) -> None:
    target = tmp_path / "schema"
    assert tool.main([str(target)]) == 0
    assert tool.main(["--check", str(target)]) == 0
    (target / "issuance.schema.json").write_text("{}\n", encoding="utf-8")
    (target / "stray.schema.json").write_text("{}\n", encoding="utf-8")
    assert tool.main(["--check", str(target)]) == 1
    assert (tmp_path / "data-dictionary.md").read_text(encoding="utf-8") == generated[
        tool.DICTIONARY
    ]


def test_schema_properties_are_the_json_mapping_names() -> None:
    """Every property a schema allows is a name ``json_format`` writes and parses."""
    for stem, short in schema_terms.ROOTS.items():
        schema = json.loads((SCHEMAS / f"{stem}.schema.json").read_text(encoding="utf-8"))
        descriptor = tool.message(short)
        assert list(schema["properties"]) == [f.json_name for f in descriptor.fields]


def test_dictionary_lists_every_field_in_both_languages(generated: dict[str, str]) -> None:
    text = generated[tool.DICTIONARY]
    for short in schema_terms.ROOTS.values():
        descriptor = tool.message(short)
        assert f"### {short} {schema_terms.MESSAGE_ZH[short]}" in text
        for field in descriptor.fields:
            assert f"| `{field.json_name}` | `{field.name}` |" in text
    assert "| `quantityGrams` | `quantity_grams` | string (int64) | yes 是 | g CO2e |" in text


# -- the samples validate -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "record"),
    SAMPLE_RECORDS,
    ids=[f"{n}-{i}" for i, (n, _) in enumerate(SAMPLE_RECORDS)],
)
def test_every_sample_record_validates(sample: str, record: Message) -> None:
    kind = type(record).__name__.lower()
    assert errors(kind, as_json(record)) == [], sample
    wrapped = records_pb2.Record(envelope_hash="ab" * 32)
    wrapped.accepted_time.FromNanoseconds(1_735_787_045_123_456_789)
    getattr(wrapped, kind).CopyFrom(record)
    assert errors("record", as_json(wrapped)) == [], sample


def test_samples_cover_every_region_and_kind() -> None:
    kinds = {(r.region, type(r).__name__) for _, r in SAMPLE_RECORDS}  # type: ignore[attr-defined]
    assert len(kinds) == 12


def issuance() -> dict[str, Any]:
    [(_, record)] = [(n, r) for n, r in SAMPLE_RECORDS if n == "310000-issuance.json"]
    return as_json(record)


def methodology() -> dict[str, Any]:
    [(_, record)] = [(n, r) for n, r in SAMPLE_RECORDS if n == "310000-methodology.json"]
    return as_json(record)


# -- wrong documents fail -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(quantityGrams=392_700_000), "is not of type 'string'"),
        (lambda d: d.update(vintage="2024"), "is not of type 'integer'"),
        (lambda d: d.update(quantity_grams="1"), "Additional properties"),
        (lambda d: d.update(extra=1), "Additional properties"),
        (lambda d: d["serials"].update(first="1"), "Additional properties"),
        (lambda d: d.pop("serials"), "'serials' is a required property"),
        (lambda d: d.update(quantityGrams="0"), "does not match"),
        (lambda d: d.update(quantityGrams="1.5"), "does not match"),
        (lambda d: d.update(region="31000"), "does not match"),
        (lambda d: d.update(project="projects/x"), "does not match"),
        (lambda d: d["monitoringPeriod"]["start"].update(month=13), "greater than the maximum"),
    ],
)
def test_a_wrong_issuance_fails(change: Any, expected: str) -> None:
    document = issuance()
    change(document)
    found = errors("issuance", document)
    assert any(expected in e for e in found), found


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(category="PV"), "is not one of"),
        (lambda d: d.update(category=1), "is not of type 'string'"),
        (lambda d: d.update(status="METHODOLOGY_STATUS_UNSPECIFIED"), "should not be valid"),
        (lambda d: d["parameters"][0]["quantity"].update(value=4.2), "is not of type 'string'"),
        (lambda d: d["parameters"][0]["quantity"].update(value="4,2"), "does not match"),
        (lambda d: d["parameters"][0].update(unit="kW"), "Additional properties"),
        (lambda d: d.update(nativeIds={"n": 1}), "is not of type 'string'"),
        (lambda d: d.update(title=""), "should be non-empty"),
    ],
)
def test_a_wrong_methodology_fails(change: Any, expected: str) -> None:
    document = methodology()
    change(document)
    found = errors("methodology", document)
    assert any(expected in e for e in found), found


def project_with_identity() -> dict[str, Any]:
    name = "320000-project-identity.xml"
    [(_, record)] = [(n, r) for n, r in SAMPLE_RECORDS if n == name]
    return as_json(record)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda i: i.update(ownerCreditCode="91320506ma1myq7t7x"), "does not match"),
        (lambda i: i.update(ownerCreditCode="91320506MA1MYQ7T7"), "does not match"),
        (lambda i: i.update(ownerCreditCode="9I320506MA1MYQ7T7X"), "does not match"),
        (lambda i: i.update(gridAccount="123456789"), "does not match"),
        (lambda i: i.update(gridAccount=3205060012345678), "is not of type 'string'"),
        (lambda i: i["site"].update(latitude="90.5"), "does not match"),
        (lambda i: i["site"].update(latitude="31.1234567"), "does not match"),
        (lambda i: i["site"].update(longitude="180.000001"), "does not match"),
        (lambda i: i["site"].update(longitude="1.2e2"), "does not match"),
        (lambda i: i["site"].update(datum="WGS84"), "is not one of"),
    ],
)
def test_a_project_with_wrong_identity_keys_fails(change: Any, expected: str) -> None:
    document = project_with_identity()
    assert errors("project", document) == []
    change(document["identity"])
    found = errors("project", document)
    assert any(expected in e for e in found), found


def test_record_takes_exactly_one_kind() -> None:
    document = {"issuance": issuance(), "methodology": methodology()}
    assert errors("record", document)
    assert errors("record", {"acceptedTime": "2025-01-02T03:04:05Z"})
    assert errors("record", {"issuance": issuance(), "acceptedTime": "yesterday"})
    assert errors("record", {"issuance": issuance(), "acceptedTime": "2025-01-02T03:04:05Z"}) == []


# -- ledger blocks and signed bodies ----------------------------------------------------------------


def ranges() -> transfer_pb2.UnitSelection:
    return transfer_pb2.UnitSelection(
        ranges=transfer_pb2.SerialRanges(
            origin_region="340000",
            ranges=[records_pb2.SerialRange(start=0, end=999_999)],
        )
    )


VALID: list[tuple[str, Message]] = [
    (
        "unit-block",
        records_pb2.UnitBlock(
            name="regions/310000/blocks/7",
            origin_region="310000",
            issuance="regions/310000/issuances/SHCI-I-2025-0001",
            project="regions/310000/projects/SHCI-P-2024-0001",
            vintage=2024,
            serials=records_pb2.SerialRange(start=1_000_001_000, end=1_392_700_999),
            holder_region="340000",
            state=records_pb2.UNIT_BLOCK_STATE_IN_TRANSFER,
            reserved_by="t-1",
            parent="regions/310000/blocks/3",
        ),
    ),
    (
        "transfer-proposal",
        ts.TransferProposal(
            transfer_id="t-1",
            destination_region="310000",
            units=ranges(),
            purpose=transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
        ),
    ),
    (
        "transfer-proposal",
        ts.TransferProposal(
            transfer_id="t-2",
            destination_region="310000",
            units=transfer_pb2.UnitSelection(
                quantity=transfer_pb2.QuantityFromProject(
                    project="regions/340000/projects/AH-XM-2024-0031",
                    vintage=2024,
                    quantity_grams=2_000_000,
                )
            ),
            purpose=transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
        ),
    ),
    (
        "transfer-answer",
        ts.TransferAnswer(
            transfer="regions/340000/transfers/t-1", decision=ts.TRANSFER_DECISION_ACCEPT
        ),
    ),
    (
        "transfer-answer",
        ts.TransferAnswer(
            transfer="regions/340000/transfers/t-1",
            decision=ts.TRANSFER_DECISION_REJECT,
            reason="not recognised",
        ),
    ),
    (
        "retirement-order",
        ts.RetirementOrder(
            retirement_id="r-1",
            units=ranges(),
            purpose=transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
            beneficiary="上海某电厂",
            compliance_year=2025,
            declared_obligation_grams=10**12,
        ),
    ),
    (
        "retirement-order",
        ts.RetirementOrder(
            retirement_id="r-2",
            units=ranges(),
            purpose=transfer_pb2.TRANSFER_PURPOSE_CHARITABLE,
            beneficiary="公益",
        ),
    ),
    (
        "recognition-application",
        rs.RecognitionApplication(
            subject="regions/340000/methodologies/AH-FFX-PV-2024-02",
            version="1",
            recognising_regions=["310000"],
            conditions=recognition_pb2.RecognitionConditions(
                vintage_from=2024,
                ets_adjustment_ratio=recognition_pb2.Fraction(numerator=7, denominator=10),
                expire_date=records_pb2.CalendarDate(year=2030, month=12, day=31),
            ),
        ),
    ),
    (
        "recognition-application",
        rs.RecognitionApplication(subject="regions/340000/projects/AH-XM-2024-0031"),
    ),
    (
        "recognition-verdict",
        rs.RecognitionVerdict(
            recognition="recognitions/0123456789abcdef-310000",
            verdict=recognition_pb2.VERDICT_APPROVE,
            comment="同意",
        ),
    ),
    (
        "recognition-revocation",
        rs.RecognitionRevocation(
            recognition="recognitions/0123456789abcdef-310000", reason="methodology withdrawn"
        ),
    ),
]


@pytest.mark.parametrize(("stem", "body"), VALID, ids=[s for s, _ in VALID])
def test_valid_blocks_and_signed_bodies_validate(stem: str, body: Message) -> None:
    document = as_json(body)
    assert errors(stem, document) == []
    assert json_format.ParseDict(copy.deepcopy(document), type(body)()) == body


INVALID: list[tuple[str, Message, dict[str, Any]]] = [
    # a rejection or cancellation needs a reason
    (
        "transfer-answer",
        ts.TransferAnswer(
            transfer="regions/340000/transfers/t-1", decision=ts.TRANSFER_DECISION_CANCEL
        ),
        {},
    ),
    ("transfer-answer", ts.TransferAnswer(transfer="regions/340000/transfers/t-1"), {}),
    # an ETS offset names its compliance year and obligation
    (
        "retirement-order",
        ts.RetirementOrder(
            retirement_id="r-1",
            units=ranges(),
            purpose=transfer_pb2.TRANSFER_PURPOSE_ETS_OFFSET,
            beneficiary="x",
        ),
        {},
    ),
    # TRANSFER is not a retirement purpose
    (
        "retirement-order",
        ts.RetirementOrder(
            retirement_id="r-1",
            units=ranges(),
            purpose=transfer_pb2.TRANSFER_PURPOSE_TRANSFER,
            beneficiary="x",
        ),
        {},
    ),
    # a methodology is recognised by version
    (
        "recognition-application",
        rs.RecognitionApplication(subject="regions/340000/methodologies/AH-FFX-PV-2024-02"),
        {},
    ),
    ("recognition-application", rs.RecognitionApplication(subject="regions/340000/x/y"), {}),
    ("recognition-verdict", rs.RecognitionVerdict(recognition="recognitions/a"), {}),
    ("recognition-revocation", rs.RecognitionRevocation(recognition="recognitions/a"), {}),
    # a transfer id has no slash; the units are one selection, not both
    (
        "transfer-proposal",
        ts.TransferProposal(transfer_id="a/b", destination_region="310000", units=ranges()),
        {},
    ),
    (
        "transfer-proposal",
        ts.TransferProposal(transfer_id="t", destination_region="310000", units=ranges()),
        {"units": {"quantity": {"project": "regions/340000/projects/p", "vintage": 2024}}},
    ),
    (
        "transfer-proposal",
        ts.TransferProposal(transfer_id="t", destination_region="310000", units=ranges()),
        {"deadline": "2025-01-01T00:00:00Z"},
    ),
    (
        "unit-block",
        records_pb2.UnitBlock(name="regions/310000/blocks/x", origin_region="310000"),
        {},
    ),
]


@pytest.mark.parametrize(
    ("stem", "body", "extra"), INVALID, ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(INVALID)]
)
def test_invalid_signed_bodies_fail(stem: str, body: Message, extra: dict[str, Any]) -> None:
    document = as_json(body)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key].update(value)
        else:
            document[key] = value
    assert errors(stem, document)
