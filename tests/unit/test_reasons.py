"""The reason catalogue (gateway/reasons): one declaration per reason, nothing undeclared can be
defined or sent, every reason the sources use is declared, and docs/reasons.md is its rendering."""

from __future__ import annotations

import ast
import gc
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from yrd.interop.v1 import (
    audit_service_pb2,
    duplicate_service_pb2,
    key_service_pb2,
    recognition_service_pb2,
    reconciliation_service_pb2,
    registry_service_pb2,
    transfer_service_pb2,
)

import mutual_recognition.check as recognition_check
import mutual_recognition.errors as recognition_errors
from gateway import errors, reasons
from gateway.client.errors import _BY_REASON, error_from_rpc
from gateway.rpc import status
from gateway.rpc.convert import envelope_result
from gateway.rpc.interceptor import GatewayInterceptor
from gateway.services.exchange import PublishOutcome
from gateway.tools import reasons as render_tool

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reasons.md"
UPPER = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^[A-Z]{4,}$")

# == the rendered document ======================================================================


def test_docs_reasons_md_is_the_rendering_of_the_catalogue() -> None:
    assert DOC.read_text(encoding="utf-8") == render_tool.render(), (
        "run: python -m gateway.tools.reasons docs/reasons.md"
    )


def test_check_command_fails_on_drift(tmp_path: Path) -> None:
    copy = tmp_path / "reasons.md"
    assert render_tool.main([str(copy)]) == 0
    assert render_tool.main(["--check", str(copy)]) == 0
    copy.write_text(copy.read_text().replace("SEQUENCE_GAP", "SEQUENCE_HOLE", 1))
    assert render_tool.main(["--check", str(copy)]) == 1


# == nothing undeclared can be defined, constructed or sent =====================================


def test_an_error_class_with_an_undeclared_reason_cannot_be_defined() -> None:
    with pytest.raises(reasons.UndeclaredReason):

        class Invented(errors.FailedPrecondition):
            reason = "DESTINATION_DOES_NOT_RECOGNISE"  # the proto's old example, never declared

    gc.collect()  # the half-made class must not linger among DomainError's subclasses


def test_an_error_class_with_a_declared_reason_but_another_code_cannot_be_defined() -> None:
    with pytest.raises(reasons.UndeclaredReason, match="FAILED_PRECONDITION"):

        class Recoded(errors.InvalidArgument):
            reason = "SEQUENCE_GAP"

    gc.collect()


def test_an_error_whose_reason_was_changed_cannot_be_constructed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(errors.SequenceGap, "reason", "SEQUENCE_HOLE")
    with pytest.raises(reasons.UndeclaredReason):
        errors.SequenceGap("gap")


def _undeclared() -> errors.DomainError:
    err = errors.SequenceGap("gap")
    err.reason = "SEQUENCE_HOLE"  # type: ignore[misc]
    return err


def test_the_status_mapping_refuses_an_undeclared_reason() -> None:
    err = _undeclared()
    assert not status.sendable(err)
    with pytest.raises(reasons.UndeclaredReason):
        status.status_proto(err)
    with pytest.raises(reasons.UndeclaredReason):
        status.to_grpc_status(err)
    assert status.sendable(errors.SequenceGap("gap"))
    assert (
        status.status_proto(errors.SequenceGap("gap")).code
        == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    )


def test_publish_results_carry_only_declared_in_band_reasons() -> None:
    assert envelope_result(PublishOutcome(b"\x01", error=errors.SequenceGap("gap"))).reason == (
        "SEQUENCE_GAP"
    )
    with pytest.raises(reasons.UndeclaredReason):
        envelope_result(PublishOutcome(b"\x01", error=_undeclared()))
    with pytest.raises(reasons.UndeclaredReason, match="Publish result"):
        envelope_result(PublishOutcome(b"\x01", error=errors.TransferNotFound("no such")))


def test_check_recognized_answers_only_declared_answer_reasons() -> None:
    assert reasons.answer_reason("RECOGNITION_PENDING") == "RECOGNITION_PENDING"
    with pytest.raises(reasons.UndeclaredReason):
        reasons.answer_reason("DESTINATION_DOES_NOT_RECOGNISE")


def test_the_interceptor_answers_an_undeclared_reason_as_internal() -> None:
    interceptor = GatewayInterceptor(
        revocations=None,  # type: ignore[arg-type]
        metrics=None,  # type: ignore[arg-type]
        is_transient=lambda exc: False,
    )
    context: Any = SimpleNamespace(is_active=lambda: True, code=lambda: None)
    code, reason, _ = interceptor._outcome(context, errors.SequenceGap("gap"))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "SEQUENCE_GAP")
    code, reason, sent = interceptor._outcome(context, _undeclared())
    assert (code, reason) == (grpc.StatusCode.INTERNAL, "INTERNAL")
    assert sent is not None and sent.code == grpc.StatusCode.INTERNAL


# == every reason in use is declared, and every declaration is in use ===========================


def test_every_error_class_is_declared_with_its_code() -> None:
    for cls in errors.all_error_classes():
        assert reasons.declared(cls.reason, cls.code.name).name == cls.reason
    for domain in recognition_errors.all_error_classes():
        assert reasons.declared(domain.reason, domain.kind.upper())
        assert domain.reason in errors.RECOGNITION_ERRORS


def test_every_declaration_is_carried_by_an_error_class_or_is_internal() -> None:
    carried = {cls.reason for cls in errors.all_error_classes()}
    assert set(reasons.REASONS) == carried | {"INTERNAL"}


def test_answer_reasons_are_exactly_the_recognition_checks_constants() -> None:
    constants = {
        value
        for name, value in vars(recognition_check).items()
        if name.isupper() and isinstance(value, str) and value == name
    }
    assert constants == set(reasons.ANSWERS)


def _sources() -> list[Path]:
    return sorted([*(ROOT / "gateway").rglob("*.py"), *(ROOT / "mutual_recognition").rglob("*.py")])


def _reason_literals() -> dict[str, list[str]]:
    """Reason-like string literals the sources use as a reason: ``reason = "X"`` in a class,
    ``reason="X"`` in a call, ``x.reason = "X"``, ``RECOGNITION_ERRORS["X"]``."""
    found: dict[str, list[str]] = {}

    def note(node: ast.AST, where: Path) -> None:
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and UPPER.match(node.value)
        ):
            found.setdefault(node.value, []).append(f"{where.relative_to(ROOT)}:{node.lineno}")

    for path in _sources():
        if "reasons" in path.relative_to(ROOT).parts:
            continue  # the catalogue itself
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else []
                    if any(isinstance(t, ast.Name) and t.id == "reason" for t in targets):
                        note(stmt.value, path)  # type: ignore[attr-defined]
            elif isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "reason":
                        note(kw.value, path)
            elif isinstance(node, ast.Assign):
                if any(isinstance(t, ast.Attribute) and t.attr == "reason" for t in node.targets):
                    note(node.value, path)
            elif isinstance(node, ast.Subscript):
                name = node.value
                label = name.attr if isinstance(name, ast.Attribute) else getattr(name, "id", "")
                if label == "RECOGNITION_ERRORS":
                    note(node.slice, path)
    return found


def test_every_reason_literal_in_the_sources_is_declared() -> None:
    found = _reason_literals()
    # the scan sees what it must: class attributes, ErrorInfo(reason=...), dict lookups
    assert {"SEQUENCE_GAP", "INTERNAL", "RECOGNITION_NOT_FOUND", "NOT_YET_EXPIRED"} <= set(found)
    undeclared = {
        reason: where
        for reason, where in found.items()
        if reason not in reasons.REASONS and reason not in reasons.ANSWERS
    }
    assert undeclared == {}


def _called_names() -> set[str]:
    names = set()
    for path in (ROOT / "gateway").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                names.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return names


HOST_ONLY = frozenset({"EXTERNAL_LIST_INVALID"})
"""Reasons raised only by a host command (never on an RPC): declared without RPCs, yet raised."""


def test_gateway_reasons_declared_as_never_sent_are_never_raised() -> None:
    called = _called_names()
    for cls in errors.all_error_classes():
        entry = reasons.REASONS[cls.reason]
        if (
            entry.domain == "gateway"
            and not entry.sent
            and cls.reason == cls.__dict__.get("reason")
            and cls.reason not in HOST_ONLY
        ):
            assert cls.__name__ not in called, f"{cls.__name__} is raised; declare its RPCs"


# == the declarations themselves ===============================================================

_SERVICES = [
    registry_service_pb2,
    transfer_service_pb2,
    recognition_service_pb2,
    reconciliation_service_pb2,
    key_service_pb2,
    audit_service_pb2,
    duplicate_service_pb2,
]
EVERY_RPC = frozenset(
    method.name
    for module in _SERVICES
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
)


@pytest.mark.parametrize("entry", list(reasons.REASONS.values()), ids=lambda e: e.name)
def test_declaration_is_well_formed(entry: reasons.Reason) -> None:
    assert UPPER.match(entry.name)
    assert entry.code in grpc.StatusCode.__members__
    assert entry.meaning.strip() and entry.meaning.endswith((".", ")"))
    assert reasons.rpcs_of(entry, EVERY_RPC) <= EVERY_RPC
    assert (entry.retry is None) == (not entry.sent)
    assert entry.check is None or 1 <= entry.check <= 7
    assert not entry.in_band or reasons.rpcs_of(entry, EVERY_RPC) & {"Publish", "PublishEnvelope"}
    assert entry.domain in ("gateway", "recognition")


def test_the_client_turns_every_sent_reason_back_into_its_class() -> None:
    for cls in errors.all_error_classes():
        if not reasons.REASONS[cls.reason].sent:
            continue
        err = cls("refused", metadata={"check": "4"})
        rpc_error: Any = _FailedCall(status.to_grpc_status(err))
        back = error_from_rpc(rpc_error)
        assert type(back) is _BY_REASON[cls.reason]
        assert isinstance(back, errors.DomainError)
        assert (back.reason, back.code, back.metadata) == (cls.reason, cls.code, {"check": "4"})


class _FailedCall(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """A failed call as the client sees it, from a status the gateway would send."""

    def __init__(self, sent: grpc.Status) -> None:
        self._status = sent

    def code(self) -> grpc.StatusCode:
        return self._status.code

    def details(self) -> str:
        return self._status.details

    def trailing_metadata(self) -> Any:
        return self._status.trailing_metadata

    def initial_metadata(self) -> Any:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False
