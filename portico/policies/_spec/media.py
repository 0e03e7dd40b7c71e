"""Content types: parsing, the base types JSON/XML/Text, custom mappings, and body decoding.

The custom content-type mapping (``/configurations/customContentTypes``) maps a content type
such as ``application/myorg+json`` to a base type (``application/json``, ``application/xml``
or ``text/xml``/``text/plain``): a body in the custom type is validated as its base type."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from lxml import etree

BaseKind = Literal["json", "xml", "text"]

JSON_BASE = "application/json"
XML_BASES = ("application/xml", "text/xml")
TEXT_BASE = "text/plain"
ALLOWED_BASES = (JSON_BASE, *XML_BASES, TEXT_BASE)

# A hardened parser: no entity expansion, no network, no DTD (XML bombs and XXE).
XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def media_type(header: bytes | str | None) -> str:
    """``application/JSON; charset=utf-8`` -> ``application/json`` ('' when absent)."""
    if header is None:
        return ""
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    return text.split(";", 1)[0].strip().lower()


def kind_of(mt: str) -> BaseKind:
    if mt == JSON_BASE or mt.endswith("+json") or mt == "application/json/badgerfish":
        return "json"
    if mt in XML_BASES or mt.endswith("+xml") or mt == "text/html":
        return "xml"
    return "text"


def base_type(mt: str, custom: dict[str, str]) -> str:
    """The base type a content type is processed as: its custom mapping, else itself."""
    return custom.get(mt, mt)


def find_declared(mt: str, declared: dict[str, Any], custom: dict[str, str]) -> str | None:
    """The key of ``declared`` (media types of the spec) that covers ``mt``: exact, then the
    custom base type, then ``type/*`` and ``*/*`` ranges. None when nothing covers it."""
    if mt in declared:
        return mt
    base = custom.get(mt)
    if base is not None and base in declared:
        return base
    major = mt.split("/", 1)[0]
    for candidate in (f"{major}/*", "*/*"):
        if candidate in declared:
            return candidate
    return None


class BodyError(ValueError):
    """The body cannot be decoded as its content type says."""


def decode_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"the body is not valid JSON: {exc}") from None


def decode_xml(body: bytes) -> Any:
    try:
        return etree.fromstring(body, XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise BodyError(f"the body is not well-formed XML: {exc}") from None
