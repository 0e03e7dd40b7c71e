"""An API definition -> per-operation validators, built once per configuration snapshot.

Schemas are validated with ``jsonschema``: the whole ``apiDefinition`` is registered as one
resource, and each body or parameter schema becomes a validator whose root is a ``$ref`` to its
JSON pointer inside that document, so ``#/components/schemas/...`` and ``#/definitions/...``
references resolve as written. OpenAPI 3.0 ``nullable`` is rewritten to a JSON-schema type
union first. XML bodies are checked against an XSD when the media type (OpenAPI 3) or the
operation (Swagger 2) carries one in ``x-xsd`` (XSD text), compiled with lxml."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import jsonschema
from jsonschema.protocols import Validator
from lxml import etree
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

from portico.policies._spec.media import XML_PARSER

log = logging.getLogger("portico.policies")

_BASE_URI = "urn:portico:api-definition"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Keywords of a Swagger 2 non-body parameter that are JSON-schema keywords.
_SWAGGER_SCHEMA_KEYS = (
    "type", "format", "items", "enum", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "multipleOf",
)


@dataclass(frozen=True, slots=True)
class BodySchema:
    """What a body of one media type must satisfy (either may be absent)."""

    validator: Validator | None = None
    xsd: etree.XMLSchema | None = None


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str  # query, path, header, cookie
    required: bool
    kind: str  # the schema's type, for turning the text into a value: string, integer, ...
    validator: Validator | None
    lookup: str  # path: the router's group name; header: the lower-cased name
    item_kind: str = "string"  # arrays: the items' type


@dataclass(slots=True)
class Operation:
    parameters: list[Parameter] = field(default_factory=list)
    body_required: bool = False
    request: dict[str, BodySchema] = field(default_factory=dict)  # media type -> schema
    responses: dict[str, dict[str, BodySchema]] = field(default_factory=dict)  # status key -> media


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _nullable_to_union(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` means the type also admits null."""
    if isinstance(node, dict):
        out = {k: _nullable_to_union(v) for k, v in node.items()}
        if out.get("nullable") is True and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(node, list):
        return [_nullable_to_union(v) for v in node]
    return node


def normalize_path(template: str) -> str:
    if not template.startswith("/"):
        template = "/" + template
    return template.rstrip("/") or "/"


class SpecIndex:
    """Per-operation validators of one API, keyed by (resource template, METHOD)."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self._openapi31 = str(definition.get("sourceVersion", "")).startswith("3.1")
        self._swagger = definition.get("sourceFormat") == "swagger"
        root = definition if self._openapi31 else _nullable_to_union(definition)
        self._root: dict[str, Any] = root
        spec = DRAFT202012 if self._openapi31 else DRAFT4
        self._cls: Any = jsonschema.Draft202012Validator if self._openapi31 else jsonschema.Draft4Validator
        self._registry: Registry[Any] = Registry().with_resource(
            _BASE_URI, Resource.from_contents(root, default_specification=spec))
        self.operations: dict[tuple[str, str], Operation] = {}
        for template, item in (root.get("paths") or {}).items():
            if isinstance(item, dict):
                for method in _METHODS:
                    op = item.get(method)
                    if isinstance(op, dict):
                        key = (normalize_path(template), method.upper())
                        self.operations[key] = self._operation(template, item, method, op)

    def operation(self, template: str, method: str) -> Operation | None:
        op = self.operations.get((template, method))
        if op is None and method == "HEAD":
            op = self.operations.get((template, "GET"))
        return op

    # -- building --------------------------------------------------------------------------------

    def _validator(self, pointer: str) -> Validator | None:
        try:
            target = self._resolve_pointer(pointer)
        except (KeyError, IndexError, TypeError):
            return None
        if not target:
            return None
        validator: Validator = self._cls({"$ref": _BASE_URI + "#" + quote(pointer, safe="/~")},
                                         registry=self._registry)
        return validator

    def _resolve_pointer(self, pointer: str) -> Any:
        node: Any = self._root
        for raw in pointer.split("/")[1:]:
            part = raw.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def _deref(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow local ``$ref``s of parameters, request bodies and responses (not schemas)."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            pointer = node["$ref"][1:]
            try:
                node = self._resolve_pointer(pointer)
            except (KeyError, IndexError, TypeError):
                return None, pointer
            seen += 1
            if seen > 20:
                return None, pointer
        return node, pointer

    def _operation(self, template: str, item: dict[str, Any], method: str, op: dict[str, Any]) -> Operation:
        out = Operation()
        base = _pointer("paths", template)
        params: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        for where, raw_list in ((base, item.get("parameters")), (base + _pointer(method), op.get("parameters"))):
            for i, raw in enumerate(raw_list or []):
                param, ptr = self._deref(raw, f"{where}/parameters/{i}")
                if isinstance(param, dict) and isinstance(param.get("name"), str):
                    params[(param["name"], str(param.get("in")))] = (param, ptr)  # operation level wins
        for param, ptr in params.values():
            self._add_parameter(out, param, ptr, op)
        if not self._swagger:
            self._add_request_body(out, op, base + _pointer(method))
        self._add_responses(out, op, base + _pointer(method))
        return out

    def _add_parameter(self, out: Operation, p: dict[str, Any], ptr: str, op: dict[str, Any]) -> None:
        location = str(p.get("in"))
        if location == "body":  # Swagger 2
            out.body_required = bool(p.get("required"))
            consumes = op.get("consumes") or self._root.get("consumes") or ["application/json"]
            schema = BodySchema(self._validator(ptr + "/schema"), _xsd(op.get("x-xsd")))
            out.request = {str(mt).lower(): schema for mt in consumes}
            return
        if location not in ("query", "path", "header", "cookie"):
            return
        validator: Validator | None
        if "schema" in p:
            validator = self._validator(ptr + "/schema")
            kind, item_kind = _schema_types(p.get("schema"), self)
        else:  # Swagger 2 keeps the schema keywords on the parameter itself
            inline = {k: p[k] for k in _SWAGGER_SCHEMA_KEYS if k in p}
            kind = str(inline.get("type", "string"))
            items = inline.get("items")
            item_kind = str(items.get("type", "string")) if isinstance(items, dict) else "string"
            validator = self._cls(inline) if inline else None
        name = p["name"]
        lookup = re.sub(r"\W", "_", name) if location == "path" else name.lower() if location == "header" else name
        out.parameters.append(Parameter(
            name=name, location=location, required=bool(p.get("required")) or location == "path", kind=kind,
            validator=validator, lookup=lookup, item_kind=item_kind))

    def _add_request_body(self, out: Operation, op: dict[str, Any], op_ptr: str) -> None:
        body, ptr = self._deref(op.get("requestBody"), op_ptr + "/requestBody")
        if not isinstance(body, dict):
            return
        out.body_required = bool(body.get("required"))
        out.request = self._content(body.get("content"), ptr + "/content")

    def _content(self, content: Any, ptr: str) -> dict[str, BodySchema]:
        result: dict[str, BodySchema] = {}
        for mt, media in (content or {}).items():
            if isinstance(media, dict):
                validator = self._validator(ptr + _pointer(mt, "schema")) if "schema" in media else None
                result[str(mt).lower()] = BodySchema(validator, _xsd(media.get("x-xsd")))
        return result

    def _add_responses(self, out: Operation, op: dict[str, Any], op_ptr: str) -> None:
        produces = op.get("produces") or self._root.get("produces") or ["application/json"]
        for code, raw in (op.get("responses") or {}).items():
            resp, ptr = self._deref(raw, op_ptr + _pointer("responses", str(code)))
            if not isinstance(resp, dict):
                continue
            if self._swagger:
                schema = BodySchema(self._validator(ptr + "/schema") if "schema" in resp else None, None)
                out.responses[str(code).upper()] = {str(mt).lower(): schema for mt in produces}
            else:
                out.responses[str(code).upper()] = self._content(resp.get("content"), ptr + "/content")


def _type_of(node: Any) -> str:
    t = node.get("type") if isinstance(node, dict) else None
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    return t if isinstance(t, str) else "string"


def _schema_types(schema: Any, index: SpecIndex) -> tuple[str, str]:
    """The schema's type and, for arrays, its items' type (local ``$ref``s followed)."""
    node, _ = index._deref(schema, "")
    items, _ = index._deref(node.get("items") if isinstance(node, dict) else None, "")
    return _type_of(node), _type_of(items)


def _xsd(text: Any) -> etree.XMLSchema | None:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return etree.XMLSchema(etree.fromstring(text.encode(), XML_PARSER))
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        log.error("ignoring an x-xsd that does not compile: %s", exc)
        return None
