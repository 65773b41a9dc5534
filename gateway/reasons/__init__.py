"""The reason catalogue: the one declaration of every ``ErrorInfo.reason`` the gateway can send,
with its gRPC code, meaning, the RPCs that return it, whether a retry helps and the numbered
check; and of CheckRecognized's answer reasons. Pure Python (the client SDK imports it).

``gateway.errors`` refuses to define an error class whose reason is not declared here (or whose
code differs), and ``gateway.rpc.status`` refuses to send one; ``docs/reasons.md`` is rendered
from it (``python -m gateway.tools.reasons``).
"""

from __future__ import annotations

from typing import TypeVar

from gateway.reasons import duplicates, general, recognition, transfers
from gateway.reasons.model import GROUPS, AnswerReason, Reason, Retry

__all__ = [
    "ANSWERS",
    "GROUPS",
    "REASONS",
    "AnswerReason",
    "Reason",
    "Retry",
    "UndeclaredReason",
    "answer_reason",
    "declared",
    "rpcs_of",
]


class UndeclaredReason(TypeError):
    """A reason that is not in the catalogue (or not with that code): a programming error."""


T = TypeVar("T", Reason, AnswerReason)


def _index(items: tuple[T, ...]) -> dict[str, T]:
    table: dict[str, T] = {}
    for item in items:
        if item.name in table:
            raise ValueError(f"reason {item.name} declared twice")
        table[item.name] = item
    return table


REASONS: dict[str, Reason] = _index(
    (*general.REASONS, *transfers.REASONS, *recognition.REASONS, *duplicates.REASONS)
)
"""Every error reason, by name, in catalogue order."""
ANSWERS: dict[str, AnswerReason] = _index(recognition.ANSWERS)
"""Every CheckRecognized answer reason, by name."""


def declared(name: str, code: str | None = None) -> Reason:
    """The catalogue entry of an error reason; :class:`UndeclaredReason` when there is none, or
    when ``code`` (a gRPC code name) is given and is not the declared one."""
    entry = REASONS.get(name)
    if entry is None:
        raise UndeclaredReason(f"reason {name!r} is not declared in gateway/reasons")
    if code is not None and entry.code != code:
        raise UndeclaredReason(f"reason {name} is declared with code {entry.code}, not {code}")
    return entry


def answer_reason(name: str) -> str:
    """``name`` when it is a declared CheckRecognized answer reason; else
    :class:`UndeclaredReason`."""
    if name not in ANSWERS:
        raise UndeclaredReason(f"answer reason {name!r} is not declared in gateway/reasons")
    return name


def rpcs_of(entry: Reason, every: frozenset[str]) -> frozenset[str]:
    """The RPC method names that can return ``entry``: groups expanded, ``*`` as ``every``."""
    names: set[str] = set()
    for rpc in entry.rpcs:
        if rpc == "*":
            names |= every
        else:
            names.update(GROUPS.get(rpc, (rpc,)))
    return frozenset(names)
