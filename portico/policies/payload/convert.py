"""XML <-> JSON conversion of message bodies.

XML -> JSON: ``{"Root": {...}}``; child elements become keys (repeated ones a list), attributes
``"@name"`` keys, mixed text ``"#text"``; a leaf element is its text. With
``xmlToJSONConversion_keepString`` true every value stays a string (the reference's default); with
false, integers, decimals and true/false become JSON numbers and booleans.

JSON -> XML is the inverse: an object with one key names the root element, anything else is
wrapped in ``<root>``; lists repeat their element, ``"@name"`` keys become attributes and
``"#text"`` the element's text."""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from portico.policies.payload import PayloadError
from portico.policies.payload.documents import dump_json, load_json, load_xml

_INT = re.compile(r"-?(?:0|[1-9]\d*)")
_DEC = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _typed(text: str, keep_string: bool) -> Any:
    if keep_string:
        return text
    stripped = text.strip()
    if _INT.fullmatch(stripped):
        return int(stripped)
    if _DEC.fullmatch(stripped):
        return float(stripped)
    if stripped in ("true", "false"):
        return stripped == "true"
    return text


def _name(el: etree._Element) -> str:
    local = etree.QName(el).localname
    return f"{el.prefix}:{local}" if el.prefix else local


def _element(el: etree._Element, keep_string: bool) -> Any:
    children = [c for c in el if isinstance(c.tag, str)]
    # Mixed content: the element's text plus the text after each child (comments included).
    text = ((el.text or "") + "".join(c.tail or "" for c in el)).strip()
    if not children and not el.attrib:
        return _typed(el.text or "", keep_string)
    obj: dict[str, Any] = {f"@{etree.QName(k).localname}": _typed(v, keep_string) for k, v in el.attrib.items()}
    for child in children:
        key, value = _name(child), _element(child, keep_string)
        if key in obj:
            prior = obj[key]
            obj[key] = [*prior, value] if isinstance(prior, list) else [prior, value]
        else:
            obj[key] = value
    if text:
        obj["#text"] = _typed(text, keep_string)
    return obj


def xml_to_json(body: bytes, keep_string: bool) -> bytes:
    root = load_xml(body).getroot()
    return dump_json({_name(root): _element(root, keep_string)})


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(el: etree._Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("@"):
                el.set(key[1:], _scalar(item))
            elif key == "#text":
                el.text = _scalar(item)
            else:
                _append(el, key, item)
    elif isinstance(value, list):
        raise PayloadError("a JSON array inside an array cannot be expressed in XML")
    else:
        el.text = _scalar(value)


def _new(parent: etree._Element | None, key: str) -> etree._Element:
    try:
        return etree.Element(key) if parent is None else etree.SubElement(parent, key)
    except ValueError:
        raise PayloadError(f"the JSON key {key!r} is not a valid XML element name") from None


def _append(parent: etree._Element, key: str, value: Any) -> None:
    for item in value if isinstance(value, list) else [value]:
        _fill(_new(parent, key), item)


def json_to_xml(body: bytes) -> bytes:
    doc = load_json(body)
    if isinstance(doc, dict) and len(doc) == 1:
        (key, value), = doc.items()
        if not isinstance(value, list) and not key.startswith(("@", "#")):
            root = _new(None, key)
            _fill(root, value)
            return etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    root = _new(None, "root")
    if isinstance(doc, list):
        _append(root, "item", doc)
    else:
        _fill(root, doc)
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)
