"""What ``audit verify`` reports: a stored row (or an entry) that differs from what the audit log
says, and how values are compared and shown. See docs/protocol.md §8.3."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.security.audit_chain import StoredEntry


class Unchecked:
    """A value an entry written under rule 1 does not commit to."""

    def __repr__(self) -> str:
        return "UNCHECKED"


UNCHECKED: Any = Unchecked()


class Tampered(Exception):
    """A stored row that differs from what the audit log says."""

    def __init__(
        self, table: str, key: str, problem: str, entry: StoredEntry | None = None
    ) -> None:
        super().__init__(f"{table} {key}: {problem}")
        self.table, self.key, self.problem = table, key, problem
        self.entry = entry
        """The audit entry at fault, when the fault is an entry's (not a stored row's)."""


def bad_entry(entry: StoredEntry, problem: str) -> Tampered:
    """A finding on the entry itself (``audit_entries sequence=N``)."""
    return Tampered("audit_entries", f"sequence={entry.sequence}", problem, entry)


def show(value: Any) -> str:
    """A value for a finding's message (bytes in hex, shortened)."""
    if isinstance(value, bytes):
        text = value.hex()
        return text if len(text) <= 24 else f"{text[:20]}…({len(value)} bytes)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def compare(table: str, key: str, expected: Mapping[str, Any], actual: Mapping[str, Any]) -> None:
    """Raise ``Tampered`` naming the first column (in ``expected``'s order) whose stored value
    differs from the expected one (``UNCHECKED`` values are skipped)."""
    for column, want in expected.items():
        if want is UNCHECKED:
            continue
        got = actual.get(column)
        if got != want:
            raise Tampered(
                table, key, f"{column} is {show(got)} but the audit log says {show(want)}"
            )
