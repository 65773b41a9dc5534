"""Jiangsu's XML documents: declared encodings, safe parsing, leaf elements, rendering.

``adapters.r320000_jiangsu`` maps the elements to the common schema and back with these.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import defusedxml
import defusedxml.ElementTree

from adapters._common import Issues, fail

__all__ = ["NO_TAGS", "check_utf8", "decode", "leaves", "parse_xml", "render_document"]

# The XML declaration, read on the raw bytes (ASCII-compatible in every accepted encoding).
_ANOTHER_DECLARATION = re.compile(rb"\s*<\?xml[\s?]")
_DECLARATION = re.compile(
    rb"<\?xml\s+version\s*=\s*([\"'])1\.[0-9]+\1"
    rb"(?:\s+encoding\s*=\s*([\"'])([A-Za-z][A-Za-z0-9._-]*)\2)?"
    rb"(?:\s+standalone\s*=\s*([\"'])(?:yes|no)\4)?\s*\?>"
)
_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "gb2312": "gb18030", "gbk": "gb18030"}
_ENCODINGS["gb18030"] = "gb18030"
# The declaration ``render_document`` writes (and most documents carry): UTF-8, nothing to decode.
_USUAL_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


def decode(data: bytes, region: str) -> bytes:
    """The document for ``parse_xml`` per its XML declaration, declaration removed (GB18030
    re-encoded as UTF-8; UTF-8 as it is, its validity checked by ``parse_xml``)."""
    if data.startswith(_USUAL_DECLARATION):
        # What the reading below makes of it, without the pattern: no BOM, UTF-8 declared.
        data = data[len(_USUAL_DECLARATION) :]
        if _ANOTHER_DECLARATION.match(data):
            fail(region, "document", "has more than one XML declaration")
        return data
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        bom = True
    else:
        bom = False
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or data[:2] in (b"<\x00", b"\x00<"):
        fail(region, "document", "is UTF-16; Jiangsu documents are UTF-8 (or GB2312/GBK/GB18030)")
    declared = "utf-8"
    match = _DECLARATION.match(data)
    if match is not None:
        label = (match.group(3) or b"utf-8").decode("ascii").lower()
        if label not in _ENCODINGS:
            fail(
                region,
                "encoding",
                f"the XML declaration names {label!r}; Jiangsu documents are UTF-8, GB2312, GBK"
                " or GB18030",
            )
        declared = _ENCODINGS[label]
        if bom and declared != "utf-8":
            fail(region, "encoding", f"a UTF-8 byte order mark contradicts the declared {label!r}")
        data = data[match.end() :]
        if _ANOTHER_DECLARATION.match(data):
            # Handed on without the first, a second declaration would name the encoding the
            # XML parser decodes with (an unknown or multi-byte one makes it raise, not refuse).
            fail(region, "document", "has more than one XML declaration")
    elif data.lstrip().startswith(b"<?xml"):
        fail(region, "document", "has a malformed XML declaration")
    if declared == "utf-8":
        # Expat refuses every byte sequence that is not UTF-8 (and more), so a parsed document
        # is valid UTF-8: ``parse_xml`` checks the encoding only before refusing one.
        return data
    try:
        text = data.decode(declared)
    except UnicodeDecodeError as exc:
        fail(region, "encoding", f"is not valid GB18030 (byte offset {exc.start})")
    return text.encode("utf-8")


def check_utf8(data: bytes, region: str) -> None:
    """Refuse ``data`` (as ``decode`` returned it) if it is not UTF-8, saying where."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(region, "encoding", f"is not valid UTF-8 (byte offset {exc.start})")


def parse_xml(data: bytes, region: str) -> ET.Element:
    """The root of ``data`` (UTF-8 from ``decode``) parsed safely; a DTD is refused.

    A document refused for any reason is first checked to be UTF-8: an encoding error is
    reported before what the parser or the DTD check would say.
    """
    if b"<!" in data and (b"<!DOCTYPE" in data or b"<!ENTITY" in data):
        check_utf8(data, region)
        fail(region, "DOCTYPE", "a document type declaration (DTD) is not allowed")
    try:
        root: ET.Element = defusedxml.ElementTree.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DTDForbidden:
        check_utf8(data, region)
        fail(region, "DOCTYPE", "a document type declaration (DTD) is not allowed")
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden):
        check_utf8(data, region)
        fail(region, "DOCTYPE", "entity declarations and external references are not allowed")
    except ET.ParseError as exc:
        check_utf8(data, region)
        line, column = exc.position
        fail(region, "document", f"is not well-formed XML (line {line}, column {column + 1})")
    return root


NO_TAGS: frozenset[str] = frozenset()


def leaves(
    parent: ET.Element,
    allowed: frozenset[str],
    issues: Issues,
    prefix: str,
    repeatable: frozenset[str] = NO_TAGS,
) -> tuple[dict[str, str], list[ET.Element]]:
    """Texts of the leaf children of ``parent`` and the repeatable children, checking shape."""
    values: dict[str, str] = {}
    repeated: list[ET.Element] = []
    # "Blank" is ``not text.strip()``: empty, or Unicode blanks only (``isspace``, no copy).
    text = parent.text
    if text and not text.isspace():
        issues.add(prefix.rstrip("/") or parent.tag, "contains text outside the child elements")
    for child in parent:
        # A comment or processing instruction has a function for its tag: not an allowed tag,
        # it is reported under its name as formatted (``str(tag)``).
        tag = child.tag
        tail = child.tail
        if tail and not tail.isspace():
            issues.add(prefix.rstrip("/") or parent.tag, "contains text outside the child elements")
        if tag not in allowed:
            issues.add(f"{prefix}{tag}", "is not an element of this record")
            continue
        if tag in repeatable:
            repeated.append(child)
            continue
        if tag in values:
            issues.add(f"{prefix}{tag}", "appears more than once")
            continue
        if child.attrib:
            issues.add(
                f"{prefix}{tag}", f"has attributes ({', '.join(child.attrib)}); none are allowed"
            )
        if len(child):
            issues.add(f"{prefix}{tag}", "must contain text, not elements")
            values[tag] = ""
            continue
        values[tag] = child.text or ""
    return values, repeated


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def render_document(kind: str, elements: list[tuple[str, str | list[tuple[str, str]]]]) -> bytes:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<JSTPH LX="{kind}">']
    for tag, value in elements:
        if isinstance(value, str):
            lines.append(f"  <{tag}>{_escape(value)}</{tag}>")
        else:
            inner = "".join(f"<{t}>{_escape(v)}</{t}>" for t, v in value)
            lines.append(f"  <{tag}>{inner}</{tag}>")
    lines.append("</JSTPH>")
    return ("\n".join(lines) + "\n").encode("utf-8")
