"""How the command line says a failure: the server's whole explanation, once, as text."""

from __future__ import annotations

import pytest

from gateway.cli.errors import ExitCode, UserError, explain, mask
from gateway.cli.options import gateway_target
from gateway.errors import InvalidArgument, NotFound


def test_a_refusal_shows_its_reason_once_with_fields_metadata_and_a_hint() -> None:
    err = InvalidArgument(
        "invalid retirement order: ranges must match ^[0-9]+-[0-9]+$",
        metadata={"transfer": "regions/310000/transfers/t-1"},
        field_errors={"ranges[1].end": "must be at least start"},
    )
    said = explain(err)
    assert said.message == (
        "INVALID_ARGUMENT: invalid retirement order: ranges must match ^[0-9]+-[0-9]+$"
    )
    assert said.details == [
        "ranges[1].end: must be at least start",
        "transfer = regions/310000/transfers/t-1",
    ]
    assert said.code is ExitCode.ERROR


def test_a_reason_with_a_next_step_names_it() -> None:
    assert (
        "yrdgw transfer list"
        in explain(type("T", (NotFound,), {"reason": "TRANSFER_NOT_FOUND"})("x")).hint
    )


def test_user_errors_keep_their_code_and_unknown_errors_say_they_are_bugs() -> None:
    assert explain(UserError("m", "h", ExitCode.USAGE)).code is ExitCode.USAGE
    bug = explain(ZeroDivisionError("x"))
    assert bug.code is ExitCode.ERROR and "bug" in bug.hint and "--debug" in bug.hint


def test_passwords_are_masked() -> None:
    assert (
        mask("postgresql+psycopg://yrd:s3[c]r@t@db:5432/x")
        == "postgresql+psycopg://yrd:***@db:5432/x"
    )
    assert mask("sqlite:///var/x.db") == "sqlite:///var/x.db"


@pytest.mark.parametrize(
    ("given", "target"),
    [
        ("127.0.0.1", "127.0.0.1:50051"),
        ("gw.example", "gw.example:50051"),
        ("gw.example:443", "gw.example:443"),
        ("::1", "[::1]:50051"),
        ("[::1]", "[::1]:50051"),
        ("[::1]:7000", "[::1]:7000"),
        ("unix:/run/yrdgw.sock", "unix:/run/yrdgw.sock"),
    ],
)
def test_a_gateway_without_a_port_gets_the_default_port(given: str, target: str) -> None:
    assert gateway_target(given) == target


def test_not_recognised_names_the_project_to_ask_recognition_for() -> None:
    from gateway.errors import NotRecognised

    said = explain(
        NotRecognised("not recognised", metadata={"project": "regions/340000/projects/P"})
    )
    assert "`yrdgw recognition request regions/340000/projects/P --to DESTINATION`" in said.hint
