"""JSON Schemas (draft 2020-12) of ``yrd.interop.v1`` messages, built from the descriptors.

The JSON is the proto3 JSON mapping as ``google.protobuf.json_format`` writes it: lowerCamelCase
names, 64-bit integers as decimal strings, enums by name, Timestamps as RFC 3339 strings; unknown
members are refused. Structure comes from the generated modules' ``DESCRIPTOR``; descriptions from
the ``.proto`` comments (read by protoc with source info, which the generated modules lack);
required fields and value rules from ``schema_terms``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib import resources
from itertools import combinations
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from yrd.interop.v1 import (
    recognition_service_pb2,
    records_pb2,
    transfer_pb2,
    transfer_service_pb2,
)

from gateway.tools import schema_terms as terms

PACKAGE = "yrd.interop.v1"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
TIMESTAMP = "google.protobuf.Timestamp"
_MODULES = (records_pb2, transfer_pb2, transfer_service_pb2, recognition_service_pb2)
_FD = FieldDescriptor
_INT32 = {_FD.TYPE_INT32, _FD.TYPE_SINT32, _FD.TYPE_SFIXED32}
_UINT32 = {_FD.TYPE_UINT32, _FD.TYPE_FIXED32}
_INT64 = {_FD.TYPE_INT64, _FD.TYPE_SINT64, _FD.TYPE_SFIXED64}
_UINT64 = {_FD.TYPE_UINT64, _FD.TYPE_FIXED64}
RFC3339 = (
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?"
    "(Z|[+-][0-9]{2}:[0-9]{2})$"
)


def message(short: str) -> Descriptor:
    """The descriptor of ``yrd.interop.v1.<short>`` from the generated modules."""
    for module in _MODULES:
        found: Descriptor | None = module.DESCRIPTOR.message_types_by_name.get(short)
        if found is not None:
            return found
    raise KeyError(f"{PACKAGE}.{short} is in none of the generated modules")


# -- comments ---------------------------------------------------------------------------------


def proto_comments(proto_root: Path) -> dict[str, str]:
    """Leading comments of every message, field, oneof, enum and enum value, by full name.

    Enum values are keyed ``<enum full name>.<VALUE>``. protoc (``grpc_tools``) compiles the
    ``.proto`` files with source info; the generated modules carry none.
    """
    sources = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.binpb"
        args = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{resources.files('grpc_tools') / '_proto'}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *sources,
        ]
        result = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise SystemExit(f"protoc failed:\n{result.stdout}{result.stderr}")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    comments: dict[str, str] = {}
    for file in files.file:
        names = dict(_paths(file))
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            if name is not None and location.leading_comments.strip():
                comments[name] = " ".join(location.leading_comments.split())
    return comments


def _paths(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[tuple[int, ...], str]]:
    """(source-info path, full name) of the top-level messages and enums and their members."""
    prefix = f"{file.package}."
    for i, msg in enumerate(file.message_type):
        yield (4, i), prefix + msg.name
        for j, field in enumerate(msg.field):
            yield (4, i, 2, j), f"{prefix}{msg.name}.{field.name}"
        for j, oneof in enumerate(msg.oneof_decl):
            yield (4, i, 8, j), f"{prefix}{msg.name}.{oneof.name}"
    for i, enum in enumerate(file.enum_type):
        yield (5, i), prefix + enum.name
        for j, value in enumerate(enum.value):
            yield (5, i, 2, j), f"{prefix}{enum.name}.{value.name}"


def comment(comments: dict[str, str], full_name: str) -> str:
    """The comment of ``full_name``; a missing one is an error (buf lint requires them)."""
    try:
        return comments[full_name]
    except KeyError:
        raise SystemExit(f"{full_name} has no comment in the .proto files") from None


# -- schemas ----------------------------------------------------------------------------------


def is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def map_value(field: FieldDescriptor) -> FieldDescriptor:
    """The value field of a map field's entry message."""
    return message_of(field).fields_by_name["value"]


def message_of(field: FieldDescriptor) -> Descriptor:
    """The message type of a message (or map) field."""
    assert field.message_type is not None, field.full_name
    return field.message_type


def enum_of(field: FieldDescriptor) -> EnumDescriptor:
    """The enum type of an enum field."""
    assert field.enum_type is not None, field.full_name
    return field.enum_type


def required_fields(msg: Descriptor) -> tuple[str, ...]:
    """Proto names of the fields and oneofs ``msg`` requires (``schema_terms.REQUIRED``)."""
    names = terms.REQUIRED.get(msg.name, ())
    known = set(msg.fields_by_name) | {o.name for o in msg.oneofs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"schema_terms.REQUIRED[{msg.name!r}] names no field: {unknown}")
    return names


def _scalar(field: FieldDescriptor) -> dict[str, Any]:
    kind = field.type
    if kind in _INT32:
        return {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
    if kind in _UINT32:
        return {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
    if kind in _INT64:
        return {"type": "string", "pattern": "^-?(0|[1-9][0-9]{0,18})$"}
    if kind in _UINT64:
        return {"type": "string", "pattern": "^(0|[1-9][0-9]{0,19})$"}
    if kind in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT):
        return {"type": "number"}
    if kind == _FD.TYPE_BOOL:
        return {"type": "boolean"}
    if kind == _FD.TYPE_STRING:
        return {"type": "string"}
    if kind == _FD.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    if kind == _FD.TYPE_ENUM:
        return {"$ref": f"#/$defs/{enum_of(field).full_name}"}
    if message_of(field).full_name == TIMESTAMP:
        return {"type": "string", "format": "date-time", "pattern": RFC3339}
    return {"$ref": f"#/$defs/{message_of(field).full_name}"}


def _value(field: FieldDescriptor) -> dict[str, Any]:
    if is_map(field):
        keys = _scalar(message_of(field).fields_by_name["key"])
        schema: dict[str, Any] = {
            "type": "object",
            "additionalProperties": _scalar(map_value(field)),
        }
        if keys != {"type": "string"}:
            schema["propertyNames"] = keys
        return schema
    if field.is_repeated:
        return {"type": "array", "items": _scalar(field)}
    return _scalar(field)


#: Generated keywords a rule may replace with a narrower one (a range, a digit pattern).
_NARROWABLE = frozenset({"minimum", "maximum", "minLength", "pattern"})


def _merge(target: dict[str, Any], extra: dict[str, Any], where: str) -> None:
    for key, value in extra.items():
        if key == "items" and isinstance(target.get("items"), dict):
            _merge(target["items"], value, where)
        elif key in target and key not in _NARROWABLE:
            raise SystemExit(f"{where}: rule {key!r} collides with the generated schema")
        else:
            target[key] = value


def field_schema(
    msg: Descriptor, field: FieldDescriptor, comments: dict[str, str]
) -> dict[str, Any]:
    """The JSON Schema of one field: type from the descriptor, rules and required-ness added."""
    schema: dict[str, Any] = {"description": comment(comments, field.full_name)}
    schema.update(_value(field))
    if field.name in required_fields(msg) and not field.is_repeated:
        if field.type == _FD.TYPE_STRING:
            schema["minLength"] = 1
        elif field.type == _FD.TYPE_ENUM:
            schema["not"] = {"const": enum_of(field).values[0].name}
    _merge(schema, terms.FIELD_RULES.get((msg.name, field.name), {}), f"{msg.name}.{field.name}")
    return schema


def message_schema(msg: Descriptor, comments: dict[str, str]) -> dict[str, Any]:
    """The object schema of ``msg``: its fields, required members, oneofs, no unknown members."""
    required = required_fields(msg)
    schema: dict[str, Any] = {
        "title": msg.full_name,
        "description": comment(comments, msg.full_name),
        "type": "object",
        "properties": {f.json_name: field_schema(msg, f, comments) for f in msg.fields},
    }
    plain = [f.json_name for f in msg.fields if f.name in required and f.containing_oneof is None]
    if plain:
        schema["required"] = plain
    schema["additionalProperties"] = False
    rules: list[dict[str, Any]] = []
    for oneof in msg.oneofs:
        members = [f.json_name for f in oneof.fields]
        if oneof.name in required:
            rules.append({"oneOf": [{"required": [m]} for m in members]})
        elif len(members) > 1:
            pairs = [{"required": list(p)} for p in combinations(members, 2)]
            rules.append({"not": {"anyOf": pairs}})
    rules += terms.MESSAGE_RULES.get(msg.name, [])
    if rules:
        schema["allOf"] = rules
    return schema


def enum_schema(enum: EnumDescriptor, comments: dict[str, str]) -> dict[str, Any]:
    return {
        "title": enum.full_name,
        "description": comment(comments, enum.full_name),
        "type": "string",
        "enum": [v.name for v in enum.values],
    }


def referenced(root: Descriptor) -> tuple[list[Descriptor], list[EnumDescriptor]]:
    """Messages (root first) and enums reachable from ``root``, in order of first use."""
    messages: list[Descriptor] = []
    enums: list[EnumDescriptor] = []

    def visit(msg: Descriptor) -> None:
        if msg in messages:
            return
        messages.append(msg)
        for field in msg.fields:
            target = field.message_type
            if is_map(field):
                target = map_value(field).message_type
            if field.enum_type is not None and field.enum_type not in enums:
                enums.append(field.enum_type)
            if target is not None and target.full_name != TIMESTAMP:
                visit(target)

    visit(root)
    return messages, enums


def root_schema(stem: str, root: Descriptor, comments: dict[str, str]) -> dict[str, Any]:
    """The self-contained schema file of ``root``: its object schema and ``$defs`` of the rest."""
    messages, enums = referenced(root)
    defs: dict[str, Any] = {m.full_name: message_schema(m, comments) for m in messages[1:]}
    defs.update({e.full_name: enum_schema(e, comments) for e in enums})
    schema: dict[str, Any] = {"$schema": DRAFT, "$id": f"{stem}.schema.json"}
    schema.update(message_schema(root, comments))
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


def render(schema: dict[str, Any]) -> str:
    """The file text: two-space indentation, UTF-8 kept (no \\u escapes), final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
