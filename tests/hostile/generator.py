"""A deterministic generator over the descriptors: from a well-formed message, every message that
differs from it in one field, set to each hostile value of that field's type (bounds, zero,
negatives, huge, unknown enum values, empty, control characters, wrong-region names), or unset.

It walks every field of the message's descriptor, nested messages included (set or not: a member
of another oneof is tried too), to a fixed depth. ``full`` (``make hostile``) tries every value
of the lists below; the default tries the first ones of each, which cover each kind once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

_F = FieldDescriptor
MAX_DEPTH = 5

STRINGS: tuple[str, ...] = (
    "",
    "a\x00b",
    "999999",
    " ",
    "x" * 121,
    "\x7f",
    "regions/320000/transfers/t\x00",
    "３１００００",
    "\u0085",
    "31000",
    "x" * 5000,
    "a/b",
    "\t\n",
    "regions/999999/projects/x",
    "recognitions/../../x",
    "😀" * 30,
    "\u202e310000",
    "%00",
    "320000",
    "regions/320000/methodologies/x",
    "duplicateCases/../x",
    "schemes/ccer/projects/x",
    "duplicateCases/dc-000000000000",
)
"""Hostile strings, the most telling first: empty, NUL, a served-looking region nobody serves,
blank, one past the id limit, DEL, a name with a NUL, full-width digits, C1, a short region, huge,
a slash, whitespace controls, an unserved region's name, a path, astral characters, a
right-to-left override, an escape that is not one, another region, another region's name, a
duplicate case name that climbs, an external project of a scheme in lower case, a duplicate case
that does not exist."""
INT32 = (0, -1, 2**31 - 1, -(2**31), 1, 1899, 10000)
INT64 = (0, -1, 2**63 - 1, -(2**63), 1, 2**53 + 1)
UINT32 = (0, 2**32 - 1, 1)
UINT64 = (0, 2**64 - 1, 2**63, 2**63 - 1, 1)
BYTES = (b"", b"\x00" * 32, b"\xff" * 33, b"\x00", b"\x01" * 64, b"\x00" * 31)
ENUM_EXTRA = (99, -1, 2**31 - 1)
"""Enum numbers no enum of the protocol declares (with every declared value, zero included)."""

DEFAULT_TAKE = {"string": 9, "int": 4, "bytes": 3, "enum_extra": 2}
"""How many of each list the default (``make test``) run tries."""


def _values(f: FieldDescriptor, full: bool) -> tuple[Any, ...]:
    take = (lambda xs, kind: xs) if full else (lambda xs, kind: xs[: DEFAULT_TAKE[kind]])
    t = f.type
    if t == _F.TYPE_STRING:
        return tuple(take(STRINGS, "string"))
    if t == _F.TYPE_BYTES:
        return tuple(take(BYTES, "bytes"))
    if t == _F.TYPE_BOOL:
        return (True, False)
    if t == _F.TYPE_ENUM:
        assert f.enum_type is not None
        declared = tuple(v.number for v in f.enum_type.values)
        return declared + tuple(take(ENUM_EXTRA, "enum_extra"))
    if t in (_F.TYPE_INT32, _F.TYPE_SINT32, _F.TYPE_SFIXED32):
        return tuple(take(INT32, "int"))
    if t in (_F.TYPE_INT64, _F.TYPE_SINT64, _F.TYPE_SFIXED64):
        return tuple(take(INT64, "int"))
    if t in (_F.TYPE_UINT32, _F.TYPE_FIXED32):
        return tuple(take(UINT32, "int"))
    if t in (_F.TYPE_UINT64, _F.TYPE_FIXED64):
        return tuple(take(UINT64, "int"))
    return ()  # floats: no protocol message has one


def _copy(message: Message) -> Message:
    out = type(message)()
    out.CopyFrom(message)
    return out


def _message_class(f: FieldDescriptor) -> type[Message]:
    assert f.message_type is not None
    return cast(type[Message], message_factory.GetMessageClass(f.message_type))


def variants(
    message: Message, *, full: bool = False, depth: int = 0, skip: frozenset[str] = frozenset()
) -> Iterator[tuple[str, Message]]:
    """(what was changed, the changed message) for every single-field change of ``message``.
    ``skip`` names fields (by name, at any depth) left as they are."""
    if depth > MAX_DEPTH:
        return
    for f in message.DESCRIPTOR.fields:
        if f.name in skip:
            continue
        name = f.name
        if f.type == _F.TYPE_MESSAGE:
            if f.is_repeated:
                items = getattr(message, name)
                if items:
                    cleared = _copy(message)
                    cleared.ClearField(name)
                    yield f"{name}=[]", cleared
                sample = items[0] if items else _message_class(f)()
                for path, changed in variants(sample, full=full, depth=depth + 1, skip=skip):
                    out = _copy(message)
                    target = getattr(out, name)
                    (target[0] if items else target.add()).CopyFrom(changed)
                    yield f"{name}[0].{path}", out
                if items:
                    many = _copy(message)
                    for _ in range(3):
                        getattr(many, name).add().CopyFrom(items[0])
                    yield f"{name}=4 copies", many
                continue
            present = message.HasField(name)
            if present:
                cleared = _copy(message)
                cleared.ClearField(name)
                yield f"{name}=unset", cleared
            sub = getattr(message, name) if present else _message_class(f)()
            for path, changed in variants(sub, full=full, depth=depth + 1, skip=skip):
                out = _copy(message)
                getattr(out, name).CopyFrom(changed)
                yield f"{name}.{path}", out
            continue
        for value in _values(f, full):
            out = _copy(message)
            if f.is_repeated:
                target = getattr(out, name)
                keep = list(target)
                del target[:]
                target.extend([value] if not keep else [*keep, value])
                yield f"{name}+={value!r:.40}", out
            else:
                try:
                    setattr(out, name, value)
                except ValueError:
                    continue  # an open enum refuses nothing; a closed one would
                yield f"{name}={value!r:.40}", out
