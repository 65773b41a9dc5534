"""The one validation layer (docs/protocol.md §7.3): every request message and every signed body
is checked against its descriptor and its rules (:mod:`gateway.validation.rules`) before any
arithmetic or storage. The interceptor checks each request message of the ``yrd.interop.v1``
package; the services check each signed body where its payload is parsed (after the signature).

A leaf: imports the generated code, the errors and the contract, nothing of the layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway import errors
from gateway.validation.rules import RULES, Enum, ErrorClass, Required, Rule, Rules, Str

PACKAGE = "yrd.interop.v1."
_NO_RULES = Rules()
_DEFAULT_STRING = Str()
_DEFAULT_ENUM = Enum()


@dataclass(frozen=True, slots=True)
class Violation:
    """One field at fault: its path (``units.ranges.ranges[1].end``), what is wrong, and the
    error class its refusal takes."""

    path: str
    description: str
    error: ErrorClass


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _enum_problem(rule: Enum, f: FieldDescriptor, value: int) -> str | None:
    if rule.by_rpc:
        return None
    known = f.enum_type.values_by_number if f.enum_type is not None else {}
    if value not in known:
        return f"unknown value {value}"
    if value == 0 and not rule.zero_ok:
        return f"required ({known[0].name} is not a value)"
    if rule.allowed and value != 0 and value not in rule.allowed:
        names = ", ".join(known[v].name for v in rule.allowed)
        return f"{known[value].name} is not allowed here (one of {names})"
    return None


def _field_problem(rule: Rule | None, f: FieldDescriptor, value: object) -> str | None:
    if f.type == FieldDescriptor.TYPE_ENUM:
        assert isinstance(value, int)
        return _enum_problem(rule if isinstance(rule, Enum) else _DEFAULT_ENUM, f, value)
    if f.type == FieldDescriptor.TYPE_STRING:
        if rule is None:
            rule = _DEFAULT_STRING
        elif not isinstance(rule, Str):
            # Any string rule also refuses control characters (a region or id rule implies it).
            found = _DEFAULT_STRING.problem(value)
            if found is not None:
                return found
        return rule.problem(value)
    if rule is None or isinstance(rule, Required):
        return None
    return rule.problem(value)


def violations(
    message: Message, prefix: str = "", error: ErrorClass = errors.InvalidArgument
) -> list[Violation]:
    """Every violation of ``message`` and the messages under it, in field order."""
    descriptor = message.DESCRIPTOR
    rules = RULES.get(descriptor.full_name, _NO_RULES)
    if rules.skip:
        return []
    error = rules.error or error
    found: list[Violation] = []
    for f in cast("list[FieldDescriptor]", descriptor.fields):
        rule = rules.fields.get(f.name)
        path = _join(prefix, f.name)
        fail = rule.error if rule is not None and rule.error is not None else error
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if f.message_type is not None and f.message_type.GetOptions().map_entry:
                continue  # no request carries a map
            if f.is_repeated:
                for i, item in enumerate(getattr(message, f.name)):
                    found.extend(violations(item, f"{path}[{i}]", error))
            elif message.HasField(f.name):
                if f.message_type is not None and f.message_type.full_name.startswith(PACKAGE):
                    found.extend(violations(getattr(message, f.name), path, error))
            elif isinstance(rule, Required):
                found.append(Violation(path, "required", fail))
            continue
        if f.is_repeated:
            for i, item in enumerate(getattr(message, f.name)):
                problem = _field_problem(rule, f, item)
                if problem is not None:
                    found.append(Violation(f"{path}[{i}]", problem, fail))
            continue
        problem = _field_problem(rule, f, getattr(message, f.name))
        if problem is not None:
            found.append(Violation(path, problem, fail))
    for oneof in rules.oneofs:
        if message.WhichOneof(oneof) is None:
            names = " or ".join(f.name for f in descriptor.oneofs_by_name[oneof].fields)
            found.append(Violation(_join(prefix, oneof), f"one of {names} is required", error))
    if rules.check is not None and not found:
        for name, problem in rules.check(message).items():
            found.append(Violation(_join(prefix, name), problem, error))
    return found


def refusal(message: Message, what: str | None = None) -> errors.DomainError | None:
    """The refusal of ``message`` (None: it passes): the error class of its first violation,
    every violation in ``field_errors`` (the status's ``BadRequest``)."""
    found = violations(message)
    if not found:
        return None
    first = found[0]
    name = what or message.DESCRIPTOR.name
    text = f"invalid {name}: {first.path}: {first.description}"
    if len(found) > 1:
        text += f" (and {len(found) - 1} more)"
    return first.error(text, field_errors={v.path: v.description for v in found})


def check(message: Message, what: str | None = None) -> None:
    """Raise the refusal of ``message``, if any (see :func:`refusal`)."""
    err = refusal(message, what)
    if err is not None:
        raise err


def applies_to(message: object) -> bool:
    """Whether ``message`` is one of this protocol's (health and reflection are not)."""
    return isinstance(message, Message) and message.DESCRIPTOR.full_name.startswith(PACKAGE)
