"""Hypothesis strategies for hostile input: protobuf messages (malformed on the wire, or well formed
with hostile values) for any message type of the contract, and native documents for each region's
adapter (broken encodings, GB18030 edge cases, XML bombs, deep nesting, huge and impossible
numbers)."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from google.protobuf import message as pb_message
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import strategies as st

from gateway.samples import sample_documents

_EXT = {"310000": "json", "320000": "xml", "330000": "json", "340000": "csv"}


def corpus(region: str) -> list[tuple[str, bytes]]:
    """A region's samples: the shared three and its project with identity keys (whose fields
    the strategies below then mutate like any other)."""
    documents = sample_documents(region)
    content_type = documents[0][0]
    folder = resources.files("adapters") / "samples"
    extra = (folder / f"{region}-project-identity.{_EXT[region]}").read_bytes()
    return [*documents, (content_type, extra)]


# -- protobuf, on the wire --------------------------------------------------------------------


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative value (negative int64s are sent as their 2^64 form)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(number: int, data: bytes) -> bytes:
    return tag(number, 2) + varint(len(data)) + data


INVALID_UTF8 = (
    b"\xff",
    b"\xc0\xaf",  # overlong '/'
    b"\xed\xa0\x80",  # a UTF-16 surrogate
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    b"\xe4\xb8",  # truncated 3-byte sequence
    "上海".encode("gb18030"),  # GB18030 bytes where UTF-8 is due
    b"\x81\x30\x81",  # a GB18030 four-byte sequence cut short
)


def _field_numbers(descriptor: Descriptor) -> list[int]:
    return [f.number for f in descriptor.fields] or [1]


def _string_fields(descriptor: Descriptor) -> list[int]:
    return [f.number for f in descriptor.fields if f.type == FieldDescriptor.TYPE_STRING]


def malformed_bytes(
    descriptor: Descriptor, valid: st.SearchStrategy[bytes]
) -> st.SearchStrategy[bytes]:
    """Bytes that are not (or barely) a message of this type: random, truncated, wrong wire
    types, declared lengths beyond the end, groups nested past any parser's depth, invalid UTF-8
    in string fields, unknown fields, another type's bytes."""
    numbers = _field_numbers(descriptor)
    strings = _string_fields(descriptor)

    truncated = valid.filter(lambda b: len(b) > 1).flatmap(
        lambda b: st.integers(1, len(b) - 1).map(lambda n: b[:n])
    )
    wrong_wire = st.tuples(
        st.sampled_from(numbers), st.sampled_from([0, 1, 2, 5]), st.binary(max_size=12)
    ).map(lambda t: tag(t[0], t[1]) + t[2])
    beyond_end = st.tuples(
        st.sampled_from(numbers), st.integers(1, 2**35), st.binary(max_size=8)
    ).map(lambda t: tag(t[0], 2) + varint(t[1]) + t[2])
    deep_groups = st.tuples(st.sampled_from([*numbers, 99]), st.integers(50, 5_000)).map(
        lambda t: (tag(t[0], 3) * t[1]) + (tag(t[0], 4) * t[1])
    )
    deep_length = st.integers(50, 400).map(_nested_lengths)
    bad_utf8 = st.tuples(
        st.sampled_from(strings or numbers), st.sampled_from(INVALID_UTF8), st.text(max_size=8)
    ).map(lambda t: length_delimited(t[0], t[2].encode() + t[1]))
    unknown = st.tuples(st.integers(1000, 2**29 - 1), st.binary(max_size=32)).map(
        lambda t: length_delimited(t[0], t[1])
    )
    spliced = st.tuples(valid, st.binary(min_size=1, max_size=16), st.data()).map(_splice)
    return st.one_of(
        st.binary(max_size=200),
        truncated,
        wrong_wire,
        beyond_end,
        deep_groups,
        deep_length,
        bad_utf8,
        unknown,
        spliced,
        st.tuples(valid, unknown).map(lambda t: t[0] + t[1]),
    )


def _nested_lengths(depth: int) -> bytes:
    """A message field nested inside itself ``depth`` times (as field 1, length-delimited)."""
    data = b""
    for _ in range(depth):
        data = length_delimited(1, data)
    return data


def _splice(t: tuple[bytes, bytes, st.DataObject]) -> bytes:
    data, noise, draw = t
    at = draw.draw(st.integers(0, len(data)))
    return data[:at] + noise + data[at:]


# -- protobuf, well formed with hostile values -------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "regions/310000/transfers/x",
            "regions/../../etc/passwd",
            "recognitions/%s" % ("a" * 200),
            "'; DROP TABLE transfers; --",
            "9" * 25,
            "-1",
            "上海市碳普惠",
            "\U00020000\U0002a6d6",  # CJK Extension B: four bytes in GB18030
            "\u202e\u200b",
            "ＡＢＣ１２３",
        ]
    ),
    st.integers(1_000, 300_000).map(lambda n: "x" * n),
)
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [v for v in (low, high, 0, -1, 1, 2**31 - 1, 2**53 + 1, 2**63 - 1) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t in _INT_RANGES:
        return _integers(*_INT_RANGES[t])
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_STRING:
        return HOSTILE_TEXT
    if t == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.binary(max_size=80), st.sampled_from([b"\x00" * 32, b"\xff" * 64]))
    if t == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), _integers(-(2**31), 2**31 - 1))
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(
            allow_nan=True, allow_infinity=True, width=32 if t == FieldDescriptor.TYPE_FLOAT else 64
        )
    raise AssertionError(f"unexpected field type {t}")


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[pb_message.Message]:
    """Well-formed messages of this type whose every field may be set to a hostile value."""
    cls = message_factory.GetMessageClass(descriptor)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                key_field, value_field = field.message_type.fields
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    continue
                value: st.SearchStrategy[Any] = st.dictionaries(
                    _scalar(key_field), _scalar(value_field), max_size=3
                )
            elif depth >= 3:
                continue
            else:
                value = st.deferred(lambda f=field: messages(f.message_type, depth + 1))
        else:
            value = _scalar(field)
        if field.is_repeated and not (
            field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry
        ):
            value = st.lists(value, max_size=3)
        parts[field.name] = st.one_of(st.none(), value)
    return st.fixed_dictionaries(parts).map(lambda chosen: _build(cls, descriptor, chosen))


def _build(
    cls: Callable[[], pb_message.Message], descriptor: Descriptor, chosen: dict[str, Any]
) -> pb_message.Message:
    msg = cls()
    for name, value in chosen.items():
        if value is None:
            continue
        field = descriptor.fields_by_name[name]
        target = (
            getattr(msg, name)
            if field.is_repeated or field.type == FieldDescriptor.TYPE_MESSAGE
            else None
        )
        if isinstance(value, dict):
            target.update(value)  # type: ignore[union-attr]
        elif isinstance(value, list):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in value:
                    target.add().CopyFrom(item)  # type: ignore[union-attr]
            else:
                target.extend(value)  # type: ignore[union-attr]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(value)  # type: ignore[union-attr]
        else:
            setattr(msg, name, value)
    return msg


# -- native documents -------------------------------------------------------------------------

NASTY_VALUES: list[Any] = [
    None,
    True,
    "",
    " ",
    -1,
    0,
    10**30,
    -(10**30),
    2**63,
    2**64 + 1,
    1e308,
    "1e999",
    "-0",
    "NaN",
    "Infinity",
    "392.7000000000000000000001",
    "-392.700",
    "０.５",
    "三百九十二",
    "2024-02-30",
    "2024-13-01",
    "9999-12-31",
    "\x00",
    "\ud7ff\ue000",
    "\U0001f600" * 50,
    "x" * 70_000,
    [],
    {},
    [[[[[[[[[[]]]]]]]]]],
    {"a": {"b": {"c": {}}}},
]


def _json_special(value: float) -> bytes:
    return json.dumps(value).encode()  # NaN / Infinity / -Infinity literals


def json_documents(region: str) -> st.SearchStrategy[bytes]:
    """Shanghai's or Zhejiang's JSON samples with hostile values, keys removed or added, raw
    literals (NaN, huge exponents), nesting deep enough to exhaust a recursive parser, broken
    encodings."""
    samples = [json.loads(doc) for _, doc in corpus(region)]

    def mutate(t: tuple[int, Any, int, bool]) -> bytes:
        which, value, position, drop = t
        doc = json.loads(json.dumps(samples[which]))
        holder = doc.get("dataInfo", doc)
        keys = sorted(holder)
        key = keys[position % len(keys)]
        if drop:
            del holder[key]
        else:
            holder[key] = value
        return json.dumps(doc, ensure_ascii=False).encode()

    def raw_literal(t: tuple[int, int, bytes]) -> bytes:
        which, position, literal = t
        doc = samples[which]
        holder = doc.get("dataInfo", doc)
        key = sorted(holder)[position % len(holder)]
        text = json.dumps(doc, ensure_ascii=False).encode()
        marker = json.dumps(key, ensure_ascii=False).encode() + b": "
        at = text.find(marker)
        if at < 0:
            return text
        end = at + len(marker)
        stop = text.find(b",", end)
        stop = stop if stop >= 0 else text.find(b"}", end)
        return text[:end] + literal + text[stop:]

    literals = st.sampled_from(
        [
            b"NaN",
            b"Infinity",
            b"-Infinity",
            b"1e999999",
            b"-1e-999999",
            b"9" * 5000,
            b"0x10",
            b"01",
            b'"\\ud800"',
            b'"\\u0000"',
            b"tru",
            b'"' + b"\xff\xfe" + b'"',
        ]
    )
    deep = st.integers(100, 200_000).map(lambda n: b"[" * n + b"]" * n)
    deep_objects = st.integers(100, 50_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)
    duplicated = st.sampled_from(range(len(samples))).map(
        lambda i: (
            json.dumps(samples[i], ensure_ascii=False).encode()[:-2]
            + b', "record_type": "issuance"}'
        )
    )
    encoded = st.tuples(
        st.sampled_from(range(len(samples))),
        st.sampled_from(["gb18030", "utf-16", "utf-8-sig", "utf-32"]),
    ).map(lambda t: json.dumps(samples[t[0]], ensure_ascii=False).encode(t[1]))
    return st.one_of(
        st.tuples(
            st.integers(0, len(samples) - 1),
            st.sampled_from(NASTY_VALUES),
            st.integers(0, 50),
            st.booleans(),
        ).map(mutate),
        st.tuples(st.integers(0, len(samples) - 1), st.integers(0, 50), literals).map(raw_literal),
        deep,
        deep_objects,
        duplicated,
        encoded,
        _byte_level(region),
    )


XML_BOMBS = [
    b'<?xml version="1.0"?><!DOCTYPE JSTPH [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><JSTPH LX="QF"><QFBH>&d;&d;&d;</QFBH></JSTPH>',
    b'<?xml version="1.0"?><!DOCTYPE JSTPH [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><JSTPH LX="QF"><QFBH>&xxe;</QFBH></JSTPH>',
    b'<?xml version="1.0"?><!DOCTYPE JSTPH SYSTEM "http://127.0.0.1:1/x.dtd"><JSTPH LX="QF"/>',
    b'<?xml version="1.0"?><!DOCTYPE JSTPH [<!ENTITY % p SYSTEM "http://127.0.0.1:1/p.dtd"> %p;]><JSTPH/>',
    b'<?xml version="1.0"?><JSTPH LX="QF" xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="/etc/passwd" parse="text"/></JSTPH>',
    b'<?xml version="1.0" encoding="x-unknown-charset"?><JSTPH LX="QF"/>',
    b'<?xml version="1.0" encoding="GB18030"?><JSTPH LX="QF"><QFBH>\x81\x30</QFBH></JSTPH>',
    b'<?xml version="1.0" encoding="UTF-16"?><JSTPH LX="QF"/>',
    b"<?xml version='1.0'?><JSTPH LX='QF'><![CDATA[<QFBH>x</QFBH>]]></JSTPH>",
    b'<JSTPH LX="QF"><QFBH>a</QFBH><QFBH>b</QFBH></JSTPH>',
    b'<JSTPH LX="QF"><undeclared:QFBH>x</undeclared:QFBH></JSTPH>',
    b'<?xml-stylesheet href="http://127.0.0.1:1/x.xsl"?><JSTPH LX="QF"/>',
    # A second declaration (found by atheris): it must not choose the parser's encoding.
    b'<?xml version="1.0" encoding="UTF-8"?><?xml version="1.0" encoding="UTF-0"?><JSTPH/>',
    b'<?xml version="1.0"?>\n<?xml version="1.0" encoding="GB18030"?><JSTPH LX="QF"/>',
    b'<?xml version="1.0"?><?xml version="1.0" encoding="ISO-8859-1"?><JSTPH LX="QF"/>',
]


def xml_documents(region: str = "320000") -> st.SearchStrategy[bytes]:
    """Jiangsu's XML samples with hostile element texts, bombs and external entities, elements
    nested far too deep, broken and lying encoding declarations."""
    samples = [doc.decode("utf-8") for _, doc in corpus(region)]

    def replace_text(t: tuple[int, int, Any]) -> bytes:
        which, position, value = t
        doc = samples[which]
        starts = [i for i in range(len(doc)) if doc.startswith("</", i)]
        if not starts:
            return doc.encode()
        end = starts[position % len(starts)]
        begin = doc.rfind(">", 0, end) + 1
        text = value if isinstance(value, str) else json.dumps(value)
        return (doc[:begin] + text + doc[end:]).encode("utf-8", "surrogatepass")

    deep = st.integers(100, 100_000).map(
        lambda n: b'<JSTPH LX="QF">' + b"<a>" * n + b"</a>" * n + b"</JSTPH>"
    )
    wide_attribute = st.integers(1, 200).map(lambda n: b'<JSTPH LX="' + b"Q" * (n * 4096) + b'"/>')
    declared = st.tuples(
        st.sampled_from(range(len(samples))),
        st.sampled_from(["GB18030", "GBK", "UTF-16", "ISO-8859-1", "big5", "nonsense"]),
    ).map(lambda t: samples[t[0]].replace('encoding="UTF-8"', f'encoding="{t[1]}"').encode("utf-8"))
    return st.one_of(
        st.tuples(
            st.integers(0, len(samples) - 1),
            st.integers(0, 20),
            st.sampled_from([*NASTY_VALUES, "&amp;", "&#0;", "&#xD800;", "<b>x</b>", "]]>"]),
        ).map(replace_text),
        st.sampled_from(XML_BOMBS),
        deep,
        wide_attribute,
        declared,
        _byte_level(region),
    )


def csv_documents(region: str = "340000") -> st.SearchStrategy[bytes]:
    """Anhui's GB18030 CSV samples with hostile cells, fields past the csv module's limit, NUL
    bytes, unbalanced quotes, GB18030 sequences cut short, UTF-8 and GB18030 mixed."""
    samples = [doc.decode("gb18030") for _, doc in corpus(region)]

    def replace_cell(t: tuple[int, int, int, Any]) -> bytes:
        which, row, column, value = t
        lines = samples[which].split("\r\n" if "\r\n" in samples[which] else "\n")
        lines = [line for line in lines if line]
        r = row % len(lines)
        cells = lines[r].split(",")
        cells[column % len(cells)] = value if isinstance(value, str) else json.dumps(value)
        lines[r] = ",".join(cells)
        try:
            return "\r\n".join(lines).encode("gb18030")
        except UnicodeEncodeError:
            return "\r\n".join(lines).encode("utf-8", "surrogatepass")

    cells = st.sampled_from(
        [
            *NASTY_VALUES,
            '"unbalanced',
            'a"b',
            "\x00",
            "１２３",
            "-373.01",
            "373.01吨",
            "1e400",
            "1" * 200,
            "\r",
            "\n新行",
            "x" * 140000,
        ]
    )
    cut = st.tuples(
        st.sampled_from(range(len(samples))),
        st.sampled_from([b"\x81", b"\x81\x30", b"\x81\x30\x81", b"\xff\xff", b"\x80"]),
    ).map(lambda t: samples[t[0]].encode("gb18030") + t[1])
    mixed = st.sampled_from(range(len(samples))).map(
        lambda i: samples[i].encode("utf-8") + "签发".encode("gb18030")
    )
    return st.one_of(
        st.tuples(
            st.integers(0, len(samples) - 1), st.integers(0, 5), st.integers(0, 17), cells
        ).map(replace_cell),
        cut,
        mixed,
        _byte_level(region),
    )


def _byte_level(region: str) -> st.SearchStrategy[bytes]:
    """Samples with random bytes flipped, cut short, or with noise spliced in; random bytes."""
    docs = [doc for _, doc in corpus(region)]

    def flip(t: tuple[int, int, int]) -> bytes:
        which, position, byte = t
        doc = bytearray(docs[which])
        doc[position % len(doc)] = byte
        return bytes(doc)

    return st.one_of(
        st.binary(max_size=300),
        st.tuples(st.integers(0, len(docs) - 1), st.integers(0, 10_000), st.integers(0, 255)).map(
            flip
        ),
        st.tuples(st.integers(0, len(docs) - 1), st.integers(0, 10_000)).map(
            lambda t: docs[t[0]][: t[1] % len(docs[t[0]])]
        ),
        st.tuples(
            st.integers(0, len(docs) - 1), st.integers(0, 10_000), st.sampled_from(INVALID_UTF8)
        ).map(
            lambda t: (
                docs[t[0]][: t[1] % len(docs[t[0]])] + t[2] + docs[t[0]][t[1] % len(docs[t[0]]) :]
            )
        ),
    )


NATIVE_DOCUMENTS: dict[str, Callable[[], st.SearchStrategy[bytes]]] = {
    "310000": lambda: json_documents("310000"),
    "320000": lambda: xml_documents("320000"),
    "330000": lambda: json_documents("330000"),
    "340000": lambda: csv_documents("340000"),
}
"""Hostile documents for each region's native format."""
