"""Every adapter, fed hostile documents: it answers records or its typed error (NativeFormatError)
and nothing else — no other exception, whatever the bytes. Rendering hostile common records answers
a native document (which parses back) or NotExpressibleError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yrd.interop.v1 import records_pb2

from adapters import NativeFormatError, NotExpressibleError, default_registry
from adapters.base import CommonRecord
from tests.fuzz.conftest import fuzz_settings
from tests.fuzz.strategies import NATIVE_DOCUMENTS, messages

REGIONS = ("310000", "320000", "330000", "340000")
RECORDS = st.one_of(
    messages(records_pb2.Methodology.DESCRIPTOR),
    messages(records_pb2.Project.DESCRIPTOR),
    messages(records_pb2.Issuance.DESCRIPTOR),
)


def parse(
    region: str, document: bytes, *, accept_foreign: bool = False
) -> list[CommonRecord] | NativeFormatError:
    """The adapter's answer: records, or the typed error it raised."""
    adapter = default_registry.get(region)
    try:
        records = adapter.to_common(
            adapter.content_types[0], document, accept_foreign=accept_foreign
        )
    except NativeFormatError as exc:
        assert exc.region == region and exc.issues
        return exc
    assert records and all(
        isinstance(r, records_pb2.Methodology | records_pb2.Project | records_pb2.Issuance)
        for r in records
    )
    return records


@pytest.mark.parametrize("region", REGIONS)
@fuzz_settings(examples=120)
@given(data=st.data())
def test_parser_answers_records_or_its_typed_error(region: str, data: st.DataObject) -> None:
    document = data.draw(NATIVE_DOCUMENTS[region](), label="document")
    parse(region, document)


@pytest.mark.parametrize("region", REGIONS)
@fuzz_settings(examples=40)
@given(record=RECORDS)
def test_renderer_answers_a_document_or_not_expressible(region: str, record: CommonRecord) -> None:
    adapter = default_registry.get(region)
    try:
        document = adapter.from_common(record)
    except NotExpressibleError as exc:
        assert exc.region == region and exc.issues
        return
    # A rendering is a valid native document of this region (another region's record as a
    # foreign record of the format).
    assert not isinstance(parse(region, document, accept_foreign=True), NativeFormatError)
