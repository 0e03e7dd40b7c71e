"""JSON and XML message bodies: parse, query, edit, serialize; JSONPath, XPath and XSLT compiled once.

Compilation functions are cached, so validating a configuration and building its handlers
compile each expression once. XML is parsed without network access, without loading DTDs and
without expanding entities; a document that declares a DOCTYPE is refused outright (that is
where entity bombs and external entities live)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal

import orjson
from jsonpath_ng import JSONPath
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext import parse as parse_jsonpath
from lxml import etree

from portico.policies.payload import PayloadError

Kind = Literal["json", "xml", "text"]


def kind_of(content_type: bytes | None, body: bytes) -> Kind:
    """The media kind of a body: from its content type, else sniffed from its first byte."""
    if content_type:
        ct = content_type.split(b";", 1)[0].strip().lower()
        if b"json" in ct:
            return "json"
        if b"xml" in ct:
            return "xml"
        return "text"
    head = body.lstrip()[:1]
    if head in (b"{", b"["):
        return "json"
    if head == b"<":
        return "xml"
    return "text"


# -- JSON ----------------------------------------------------------------------------------------


def load_json(body: bytes, empty: Any = None) -> Any:
    if not body.strip() and empty is not None:
        return empty
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"the payload is not valid JSON: {exc}") from None


def dump_json(value: Any) -> bytes:
    return orjson.dumps(value)


@lru_cache(maxsize=512)
def compile_jsonpath(expression: str) -> JSONPath:
    """Raise ValueError with a readable reason when ``expression`` is not a JSONPath."""
    text = expression.strip()
    if not text.startswith("$"):
        raise ValueError(f"invalid JSONPath {expression!r}: it must start with '$'")
    try:
        return parse_jsonpath(text)
    except (JSONPathError, Exception) as exc:  # the PLY parser raises plain Exceptions too
        raise ValueError(f"invalid JSONPath {expression!r}: {exc}") from None


def json_first(path: JSONPath, doc: Any) -> Any:
    found = path.find(doc)
    return found[0].value if found else None


def json_set(path: JSONPath, doc: Any, value: Any) -> Any:
    """Set every match of ``path`` (creating a missing simple path); returns the new document."""
    if path.find(doc):
        return path.update(doc, value)
    try:
        return path.update_or_create(doc, value)
    except Exception as exc:  # filters and wildcards cannot be created
        raise PayloadError(f"cannot create {path} in the payload: {exc}") from None


def json_remove(path: JSONPath, doc: Any) -> Any:
    if str(path) == "$":
        return None
    return path.filter(lambda _v: True, doc)


def as_text(value: Any) -> str:
    """A JSON value as a variable's string: strings as they are, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


# -- XML -----------------------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=False)


def load_xml(body: bytes) -> etree._ElementTree:
    if not body.strip():
        raise PayloadError("the payload is empty, not XML")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise PayloadError(f"the payload is not well-formed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype:
        raise PayloadError("XML payloads with a DOCTYPE declaration are not accepted")
    return tree


def has_declaration(body: bytes) -> bool:
    return body.lstrip()[:5] == b"<?xml"


def dump_xml(tree: etree._ElementTree, declaration: bool) -> bytes:
    """Serialize as UTF-8, with an XML declaration when the original body had one."""
    return etree.tostring(tree, encoding="UTF-8", xml_declaration=declaration)


@lru_cache(maxsize=512)
def compile_xpath(expression: str) -> etree.XPath:
    try:
        return etree.XPath(expression.strip())
    except etree.XPathSyntaxError as exc:
        raise ValueError(f"invalid XPath {expression!r}: {exc}") from None


def _evaluate(path: etree.XPath, tree: etree._ElementTree) -> list[Any]:
    try:
        result = path(tree)
    except etree.XPathEvalError as exc:
        raise PayloadError(f"XPath {path.path!r} failed: {exc}") from None
    return result if isinstance(result, list) else [result]


def xml_first(path: etree.XPath, tree: etree._ElementTree) -> str:
    for item in _evaluate(path, tree):
        if isinstance(item, etree._Element):
            return "".join(item.itertext())
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, float) and item.is_integer():
            return str(int(item))
        return str(item)
    return ""


def xml_set(path: etree.XPath, tree: etree._ElementTree, value: str) -> None:
    """Replace the content of every matched element, attribute or text node with ``value``."""
    for item in _evaluate(path, tree):
        if isinstance(item, etree._Element):
            for child in list(item):
                item.remove(child)
            item.text = value
        elif isinstance(item, etree._ElementUnicodeResult):
            parent = item.getparent()
            if parent is None:
                continue
            if item.is_attribute:
                parent.set(item.attrname, value)
            elif item.is_tail:
                parent.tail = value
            else:
                parent.text = value


def xml_remove(path: etree.XPath, tree: etree._ElementTree) -> None:
    for item in _evaluate(path, tree):
        if isinstance(item, etree._Element):
            parent = item.getparent()
            if parent is None:
                raise PayloadError("the root element of an XML payload cannot be removed")
            if item.tail:  # keep the text that followed the removed element
                prev = item.getprevious()
                if prev is not None:
                    prev.tail = (prev.tail or "") + item.tail
                else:
                    parent.text = (parent.text or "") + item.tail
            parent.remove(item)
        elif isinstance(item, etree._ElementUnicodeResult):
            parent = item.getparent()
            if parent is None:
                continue
            if item.is_attribute:
                del parent.attrib[item.attrname]
            elif item.is_tail:
                parent.tail = None
            else:
                parent.text = None


# -- XSLT ----------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def compile_xslt(stylesheet: str) -> etree.XSLT:
    """Compile a stylesheet that may read nothing and write nothing (no document(), no includes)."""
    try:
        tree = load_xml(stylesheet.encode())
    except PayloadError as exc:
        raise ValueError(f"invalid XSLT stylesheet: {exc}") from None
    try:
        return etree.XSLT(tree, access_control=etree.XSLTAccessControl.DENY_ALL)
    except etree.XSLTParseError as exc:
        raise ValueError(f"invalid XSLT stylesheet: {exc}") from None


def run_xslt(xslt: etree.XSLT, body: bytes) -> bytes:
    tree = load_xml(body)
    try:
        result = xslt(tree)
    except etree.XSLTApplyError as exc:
        raise PayloadError(f"the XSLT transformation failed: {exc}") from None
    return bytes(result)


_XSLT_MEDIA = re.compile(rb"""<xsl:output[^>]*\bmethod\s*=\s*["'](\w+)["']""")


def xslt_output_media(stylesheet: str) -> bytes | None:
    """The content type an ``<xsl:output method=...>`` declares (text, html, xml), if any."""
    m = _XSLT_MEDIA.search(stylesheet.encode())
    if m is None:
        return None
    return {b"text": b"text/plain", b"html": b"text/html", b"xml": b"application/xml"}.get(m.group(1))
