"""Every domain error has a unique UPPER_SNAKE_CASE reason and a kind the gateway maps."""

from __future__ import annotations

import re

import mutual_recognition
from mutual_recognition import RecognitionError, all_error_classes
from mutual_recognition.errors import ERROR_KINDS


def test_reasons_are_unique_upper_snake_case_and_kinds_known() -> None:
    classes = all_error_classes()
    assert classes[-1] is RecognitionError
    reasons = [cls.reason for cls in classes]
    assert len(reasons) == len(set(reasons))
    for cls in classes:
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*", cls.reason), cls
        assert cls.kind in ERROR_KINDS, cls
    # Every error class is exported from the package, for one mapping table in the gateway.
    exported = {getattr(mutual_recognition, name) for name in mutual_recognition.__all__}
    assert set(classes) <= exported
    assert {cls.kind for cls in classes} == ERROR_KINDS


def test_error_carries_message_and_metadata() -> None:
    err = mutual_recognition.UnknownUnit("unknown unit 'x'", metadata={"unit": "x"})
    assert str(err) == err.message == "unknown unit 'x'"
    assert err.metadata == {"unit": "x"}
    assert (err.reason, err.kind) == ("UNKNOWN_UNIT", "invalid_argument")
