"""Stored API model -> OpenAPI 3 or Swagger 2.0 document (``GET /apis/{id}?format=...``).

A model rendered in its own source format comes back as the imported document, minus
Portico's keys. Across formats the essentials are converted the way swagger-converter
does: servers <-> schemes/host/basePath, body and form parameters <-> requestBody,
response ``schema`` <-> ``content`` (via consumes/produces), definitions <->
components.schemas with ``$ref`` rewriting. What the target cannot express is dropped
(cookie parameters, callbacks and links, openIdConnect schemes in Swagger 2) or kept as an
``x-`` extension (``oneOf``/``anyOf``/``nullable`` in Swagger 2 schemas). OpenAPI 3.1
schemas are passed through, not downgraded.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from portico.specs.load import SpecError
from portico.specs.normalize import (
    HTTP_METHODS,
    PORTICO_PATH_KEYS,
    source_format_of,
    swagger_location,
    swagger_urls,
)

RENDER_FORMATS = ("openapi", "swagger")
DEFAULT_OPENAPI_VERSION = "3.0.3"

Json = dict[str, Any]

_JSON = "application/json"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

# Keywords a Swagger 2 non-body parameter, header or items object shares with JSON Schema.
_SIMPLE_SCHEMA_KEYS = (
    "type", "format", "items", "default", "maximum", "exclusiveMaximum", "minimum",
    "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
    "uniqueItems", "enum", "multipleOf",
)  # fmt: skip

# Everything a Swagger 2 Schema Object may hold; other keywords become x- extensions.
_SWAGGER_SCHEMA_KEYS = frozenset(
    {
        "$ref", "format", "title", "description", "default", "multipleOf", "maximum",
        "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
        "maxItems", "minItems", "uniqueItems", "maxProperties", "minProperties", "required",
        "enum", "additionalProperties", "type", "items", "allOf", "properties",
        "discriminator", "readOnly", "xml", "externalDocs", "example",
    }
)  # fmt: skip

# Swagger 2 collectionFormat <-> OpenAPI 3 (style, explode) for query parameters.
_QUERY_STYLES = {
    "csv": ("form", False),
    "ssv": ("spaceDelimited", False),
    "pipes": ("pipeDelimited", False),
    "multi": ("form", True),
}

# Swagger 2 oauth2 `flow` <-> OpenAPI 3 `flows` key.
_OAUTH_FLOWS = {
    "implicit": "implicit",
    "password": "password",
    "application": "clientCredentials",
    "accessCode": "authorizationCode",
}

_TO_OPENAPI_REFS = (
    ("#/definitions/", "#/components/schemas/"),
    ("#/parameters/", "#/components/parameters/"),
    ("#/responses/", "#/components/responses/"),
)
_TO_SWAGGER_REFS = tuple((new, old) for old, new in _TO_OPENAPI_REFS)

_OPERATION_ORDER = (
    "tags", "summary", "description", "externalDocs", "operationId", "consumes", "produces",
    "parameters", "requestBody", "responses", "callbacks", "deprecated", "security", "servers",
)  # fmt: skip


def render(definition: Json, fmt: str) -> Json:
    """The model as an ``fmt`` ("openapi" or "swagger") document; Portico-only keys are dropped."""
    if fmt not in RENDER_FORMATS:
        raise SpecError(f"format: unsupported format {fmt!r}; expected 'openapi' or 'swagger'")
    # Work on a private copy: conversions rewrite $refs in place.
    definition = copy.deepcopy(definition)
    source = source_format_of(definition)
    paths = _strip_paths(definition.get("paths") or {})
    if fmt == "openapi":
        return _openapi_document(definition, paths) if source == "openapi" else _to_openapi(definition, paths)
    return _swagger_document(definition, paths) if source == "swagger" else _to_swagger(definition, paths)


# --- same-format rendering -------------------------------------------------------------


def _openapi_document(definition: Json, paths: Json) -> Json:
    version = str(definition.get("sourceVersion") or "")
    doc: Json = {"openapi": version if version.startswith("3.") else DEFAULT_OPENAPI_VERSION}
    doc["info"] = copy.deepcopy(definition.get("info") or {})
    _copy(definition, doc, "jsonSchemaDialect")
    servers = definition.get("servers") or _servers_from_host(definition)
    if servers:
        doc["servers"] = copy.deepcopy(servers)
    _copy(definition, doc, "security", "tags")
    doc["paths"] = paths
    _copy(definition, doc, "webhooks", "components", "externalDocs")
    _copy_extensions(definition, doc)
    return doc


def _swagger_document(definition: Json, paths: Json) -> Json:
    doc: Json = {"swagger": "2.0", "info": copy.deepcopy(definition.get("info") or {})}
    doc.update(_swagger_location(definition, own=True))
    _copy(definition, doc, "consumes", "produces", "tags")
    doc["paths"] = paths
    _copy(definition, doc, "definitions", "parameters", "responses", "securityDefinitions")
    _copy(definition, doc, "security", "externalDocs")
    _copy_extensions(definition, doc)
    return doc


def _servers_from_host(definition: Json) -> list[Json]:
    if not definition.get("host"):
        return []
    urls = swagger_urls(
        definition["host"], definition.get("basePath") or "/", definition.get("schemes") or []
    )
    return [{"url": url} for url in urls]


def _swagger_location(definition: Json, own: bool = False) -> Json:
    """host, basePath and schemes: a Swagger 2 model's own (``own``), else from its servers."""
    servers = definition.get("servers") or []
    if own or definition.get("host") or not servers:
        host, base_path = definition.get("host") or "", definition.get("basePath") or "/"
        schemes = list(definition.get("schemes") or [])
    else:
        host, base_path, schemes = swagger_location(servers)
    location: Json = {"host": host} if host else {}
    location["basePath"] = base_path
    if schemes:
        location["schemes"] = schemes
    return location


def _strip_paths(paths: Json) -> Json:
    stripped: Json = {}
    for template, item in paths.items():
        if not isinstance(item, dict):
            continue
        clean = {k: v for k, v in item.items() if k not in PORTICO_PATH_KEYS}
        for method in HTTP_METHODS:
            if isinstance(clean.get(method), dict):
                clean[method] = {k: v for k, v in clean[method].items() if k not in PORTICO_PATH_KEYS}
        stripped[template] = clean
    return stripped


# --- Swagger 2 -> OpenAPI 3 ------------------------------------------------------------


class _SwaggerSource:
    """The document-wide defaults a Swagger 2 operation inherits."""

    def __init__(self, definition: Json) -> None:
        self.consumes: list[str] = list(definition.get("consumes") or [])
        self.produces: list[str] = list(definition.get("produces") or [])
        self.parameters: Json = definition.get("parameters") or {}

    def resolve_parameter(self, param: Json) -> Json:
        ref = param.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/parameters/"):
            return self.parameters.get(ref.removeprefix("#/parameters/")) or param
        return param


def _to_openapi(definition: Json, paths: Json) -> Json:
    source = _SwaggerSource(definition)
    doc: Json = {"openapi": DEFAULT_OPENAPI_VERSION, "info": copy.deepcopy(definition.get("info") or {})}
    host, base_path = definition.get("host") or "", definition.get("basePath") or "/"
    doc["servers"] = [{"url": url} for url in swagger_urls(host, base_path, definition.get("schemes") or [])]
    _copy(definition, doc, "security", "tags")
    doc["paths"] = {template: _path_to_openapi(item, source) for template, item in paths.items()}
    components = _components_to_openapi(definition, source)
    if components:
        doc["components"] = components
    _copy(definition, doc, "externalDocs")
    _copy_extensions(definition, doc)
    return _rewrite_refs(doc, _TO_OPENAPI_REFS)


def _components_to_openapi(definition: Json, source: _SwaggerSource) -> Json:
    components: Json = {}
    schemas = {name: _schema_to_openapi(s) for name, s in (definition.get("definitions") or {}).items()}
    parameters: Json = {}
    bodies: Json = {}
    for name, param in source.parameters.items():
        if param.get("in") == "body":
            bodies[name] = _body_to_request_body(param, source.consumes)
        elif param.get("in") != "formData":  # form fields are inlined where used
            parameters[name] = _parameter_to_openapi(param)
    responses = {
        name: _response_to_openapi(r, source.produces)
        for name, r in (definition.get("responses") or {}).items()
    }
    security = {
        name: _security_to_openapi(s) for name, s in (definition.get("securityDefinitions") or {}).items()
    }
    for key, value in (
        ("schemas", schemas),
        ("responses", responses),
        ("parameters", parameters),
        ("requestBodies", bodies),
        ("securitySchemes", security),
    ):
        if value:
            components[key] = value
    return components


def _path_to_openapi(item: Json, source: _SwaggerSource) -> Json:
    shared = item.get("parameters") or []
    # Path-level body/form parameters have no OpenAPI 3 equivalent: push them into
    # every operation's requestBody instead.
    inherited = [p for p in shared if source.resolve_parameter(p).get("in") in ("body", "formData")]
    out: Json = {}
    for key, value in item.items():
        if key in HTTP_METHODS:
            out[key] = _operation_to_openapi(value, inherited, source)
        elif key == "parameters":
            kept = [_parameter_to_openapi(p) for p in shared if p not in inherited]
            if kept:
                out["parameters"] = kept
        else:
            out[key] = value
    return out


def _operation_to_openapi(operation: Json, inherited: list[Json], source: _SwaggerSource) -> Json:
    consumes = operation.get("consumes") or source.consumes
    produces = operation.get("produces") or source.produces
    parameters: list[Json] = []
    form: list[Json] = []
    body: Json | None = None
    for param in [*(operation.get("parameters") or []), *inherited]:
        resolved = source.resolve_parameter(param)
        if resolved.get("in") == "body":
            body = _body_reference(param) or _body_to_request_body(resolved, consumes)
        elif resolved.get("in") == "formData":
            form.append(resolved)
        else:
            parameters.append(_parameter_to_openapi(param))
    converted: Json = {"parameters": parameters} if parameters else {}
    if body is not None:
        converted["requestBody"] = body
    elif form:
        converted["requestBody"] = _form_to_request_body(form, consumes)
    responses = operation.get("responses") or {}
    converted["responses"] = {code: _response_to_openapi(r, produces) for code, r in responses.items()}
    dropped = {"consumes", "produces", "schemes", "parameters", "responses"}
    return _ordered(operation, converted, dropped)


def _body_reference(param: Json) -> Json | None:
    ref = param.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/parameters/"):
        return {"$ref": "#/components/requestBodies/" + ref.removeprefix("#/parameters/")}
    return None


def _parameter_to_openapi(param: Json) -> Json:
    if "$ref" in param:
        return dict(param)
    out = {k: v for k, v in param.items() if k not in _SIMPLE_SCHEMA_KEYS and k != "collectionFormat"}
    schema = _items_to_schema(param)
    out["schema"] = schema
    if schema.get("type") == "array" and param.get("in") == "query":
        style = _QUERY_STYLES.get(param.get("collectionFormat", "csv"))
        if style:
            out["style"], out["explode"] = style
    return out


def _items_to_schema(items: Json) -> Json:
    """A Swagger 2 parameter/header/items object's type keywords as a JSON Schema."""
    schema = {k: items[k] for k in _SIMPLE_SCHEMA_KEYS if k in items}
    if isinstance(schema.get("items"), dict):
        schema["items"] = _items_to_schema(schema["items"])
    if schema.get("type") == "file":
        schema.update(type="string", format="binary")
    return schema


def _body_to_request_body(param: Json, consumes: list[str]) -> Json:
    schema = _schema_to_openapi(param.get("schema") or {})
    body: Json = {"description": param["description"]} if "description" in param else {}
    body["content"] = {media: {"schema": copy.deepcopy(schema)} for media in consumes or [_JSON]}
    if param.get("required"):
        body["required"] = True
    # Keeps the Swagger parameter name for the way back (swagger-converter's convention).
    if param.get("name") not in (None, "body"):
        body["x-codegen-request-body-name"] = param["name"]
    body.update(_extensions(param))
    return body


def _form_to_request_body(form: list[Json], consumes: list[str]) -> Json:
    properties: Json = {}
    required: list[str] = []
    for param in form:
        schema = _items_to_schema(param)
        if "description" in param:
            schema["description"] = param["description"]
        properties[param["name"]] = schema
        if param.get("required"):
            required.append(param["name"])
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    has_file = any(p.get("type") == "file" for p in form)
    media_types = [m for m in consumes if m in _FORM_TYPES] or [
        _FORM_TYPES[1] if has_file else _FORM_TYPES[0]
    ]
    body: Json = {"content": {media: {"schema": copy.deepcopy(schema)} for media in media_types}}
    if required:
        body["required"] = True
    return body


def _response_to_openapi(response: Json, produces: list[str]) -> Json:
    if "$ref" in response:
        return dict(response)
    out: Json = {"description": response.get("description", "")}
    if "headers" in response:
        out["headers"] = {name: _header_to_openapi(h) for name, h in response["headers"].items()}
    content: Json = {}
    if "schema" in response:
        schema = _schema_to_openapi(response["schema"])
        content = {media: {"schema": copy.deepcopy(schema)} for media in produces or [_JSON]}
    for media, example in (response.get("examples") or {}).items():
        content.setdefault(media, {})["example"] = example
    if content:
        out["content"] = content
    out.update(_extensions(response))
    return out


def _header_to_openapi(header: Json) -> Json:
    out: Json = {"description": header["description"]} if "description" in header else {}
    out["schema"] = _items_to_schema(header)
    out.update(_extensions(header))
    return out


def _schema_to_openapi(schema: Any) -> Any:
    def convert(node: Json) -> Json:
        if "x-nullable" in node:
            node["nullable"] = node.pop("x-nullable")
        if isinstance(node.get("discriminator"), str):
            node["discriminator"] = {"propertyName": node["discriminator"]}
        if node.get("type") == "file":
            node.update(type="string", format="binary")
        return node

    return _map_schema(copy.deepcopy(schema), convert)


def _security_to_openapi(scheme: Json) -> Json:
    kind = scheme.get("type")
    out: Json
    if kind == "basic":
        out = {"type": "http", "scheme": "basic"}
    elif kind == "oauth2":
        flow: Json = {k: scheme[k] for k in ("authorizationUrl", "tokenUrl") if k in scheme}
        flow["scopes"] = scheme.get("scopes") or {}
        legacy = scheme.get("flow")
        out = {"type": "oauth2", "flows": {_OAUTH_FLOWS.get(legacy if isinstance(legacy, str) else "", "implicit"):
                                           flow}}
    else:
        out = {k: v for k, v in scheme.items() if k in ("type", "name", "in")}
    if "description" in scheme:
        out["description"] = scheme["description"]
    out.update(_extensions(scheme))
    return out


# --- OpenAPI 3 -> Swagger 2 ------------------------------------------------------------


class _OpenAPISource:
    """Looks up reusable components, which Swagger 2 sometimes needs inlined."""

    def __init__(self, definition: Json) -> None:
        self.components: Json = definition.get("components") or {}
        self.dropped_schemes: set[str] = set()

    def resolve(self, node: Any, kind: str) -> Any:
        """Follow ``#/components/<kind>/...`` references (a few hops; cycles stop)."""
        prefix = f"#/components/{kind}/"
        for _ in range(8):
            ref = node.get("$ref") if isinstance(node, dict) else None
            if not (isinstance(ref, str) and ref.startswith(prefix)):
                return node
            node = (self.components.get(kind) or {}).get(ref.removeprefix(prefix), {})
        return node


def _to_swagger(definition: Json, paths: Json) -> Json:
    source = _OpenAPISource(definition)
    doc: Json = {"swagger": "2.0", "info": _info_to_swagger(definition.get("info") or {})}
    doc.update(_swagger_location(definition))
    _copy(definition, doc, "tags")
    security_definitions = _security_definitions(source)
    doc["paths"] = {template: _path_to_swagger(item, source) for template, item in paths.items()}
    components = source.components
    if components.get("schemas"):
        doc["definitions"] = {n: _schema_to_swagger(s) for n, s in components["schemas"].items()}
    parameters = {
        n: _parameter_to_swagger(p, source) for n, p in (components.get("parameters") or {}).items()
    }
    if any(parameters.values()):
        doc["parameters"] = {n: p for n, p in parameters.items() if p}
    if components.get("responses"):
        doc["responses"] = {n: _response_to_swagger(r, source)[0] for n, r in components["responses"].items()}
    if security_definitions:
        doc["securityDefinitions"] = security_definitions
    if "security" in definition:
        doc["security"] = _security_requirements(definition["security"], source)
    _copy(definition, doc, "externalDocs")
    _copy_extensions(definition, doc)
    return _rewrite_refs(doc, _TO_SWAGGER_REFS)


def _info_to_swagger(info: Json) -> Json:
    # OpenAPI 3.1 added info.summary and license.identifier; keep them as extensions.
    out = _as_extensions(info, {"title", "description", "termsOfService", "contact", "license", "version"})
    if isinstance(out.get("license"), dict):
        out["license"] = _as_extensions(out["license"], {"name", "url"})
    return out


def _as_extensions(node: Json, allowed: set[str] | frozenset[str]) -> Json:
    """``node`` with every key outside ``allowed`` renamed to an ``x-`` extension."""
    return {k if k in allowed or k.startswith("x-") else f"x-{k}": copy.deepcopy(v) for k, v in node.items()}


def _security_definitions(source: _OpenAPISource) -> Json:
    converted: Json = {}
    for name, scheme in (source.components.get("securitySchemes") or {}).items():
        result = _security_to_swagger(source.resolve(scheme, "securitySchemes"))
        if result is None:
            source.dropped_schemes.add(name)
        else:
            converted[name] = result
    return converted


def _security_requirements(requirements: list[Json] | None, source: _OpenAPISource) -> list[Json]:
    # A requirement naming a scheme Swagger 2 cannot express is dropped with it.
    return [r for r in requirements or [] if not source.dropped_schemes.intersection(r)]


def _path_to_swagger(item: Json, source: _OpenAPISource) -> Json:
    out: Json = {}
    for key, value in item.items():
        if key in HTTP_METHODS:
            out[key] = _operation_to_swagger(value, source)
        elif key == "parameters":
            kept = [p for p in (_parameter_to_swagger(p, source) for p in value) if p]
            if kept:
                out["parameters"] = kept
        elif key == "$ref" or key.startswith("x-"):
            out[key] = value  # summary, description and servers have no Swagger 2 place
    return out


def _operation_to_swagger(operation: Json, source: _OpenAPISource) -> Json:
    converted: Json = {}
    parameters = [
        p for p in (_parameter_to_swagger(p, source) for p in operation.get("parameters") or []) if p
    ]
    if "requestBody" in operation:
        body_params, consumes = _request_body_to_swagger(
            source.resolve(operation["requestBody"], "requestBodies"), source
        )
        parameters.extend(body_params)
        if consumes:
            converted["consumes"] = consumes
    produces: list[str] = []
    responses: Json = {}
    for code, response in (operation.get("responses") or {}).items():
        responses[code], media_types = _response_to_swagger(response, source)
        produces.extend(m for m in media_types if m not in produces)
    if produces:
        converted["produces"] = produces
    if parameters:
        converted["parameters"] = parameters
    converted["responses"] = responses
    if "security" in operation:
        converted["security"] = _security_requirements(operation["security"], source)
    dropped = {"requestBody", "callbacks", "servers", "parameters", "responses", "consumes", "produces"}
    return _ordered(operation, converted, dropped)


def _parameter_to_swagger(param: Json, source: _OpenAPISource) -> Json | None:
    resolved = source.resolve(param, "parameters")
    if resolved.get("in") == "cookie":
        return None  # Swagger 2 has no cookie parameters
    if "$ref" in param:
        return dict(param)
    out: Json = {
        k: param[k] for k in ("name", "in", "description", "required", "allowEmptyValue") if k in param
    }
    schema = param.get("schema")
    if not isinstance(schema, dict):
        media: Any = next(iter((param.get("content") or {}).values()), {})
        schema = media.get("schema") if isinstance(media, dict) else None
    out.update(_schema_to_items(schema if isinstance(schema, dict) else {}, source))
    if out.get("type") == "array":
        fmt = _collection_format(param)
        if fmt:
            out["collectionFormat"] = fmt
    out.update(_extensions(param))
    return out


def _collection_format(param: Json) -> str | None:
    if param.get("in") != "query":
        return None  # path and header arrays are comma-separated in both versions
    style = param.get("style", "form")
    explode = param.get("explode", style == "form")
    for fmt, (candidate_style, candidate_explode) in _QUERY_STYLES.items():
        if style == candidate_style and explode == candidate_explode:
            return fmt
    return None


def _schema_to_items(schema: Json, source: _OpenAPISource) -> Json:
    """A JSON Schema as Swagger 2 parameter keywords; what they cannot say becomes a string."""
    schema = source.resolve(schema, "schemas")
    if not isinstance(schema, dict):
        return {"type": "string"}  # a boolean schema (OpenAPI 3.1)
    items = {k: copy.deepcopy(schema[k]) for k in _SIMPLE_SCHEMA_KEYS if k in schema}
    kind = items.get("type")
    if isinstance(kind, list):  # OpenAPI 3.1: ["string", "null"]
        kind = items["type"] = next((t for t in kind if t != "null"), "string")
    if kind not in ("string", "number", "integer", "boolean", "array"):
        return {"type": "string"}
    if kind == "array":
        items["items"] = _schema_to_items(schema.get("items") or {}, source)
    return items


def _request_body_to_swagger(body: Json, source: _OpenAPISource) -> tuple[list[Json], list[str]]:
    content: Json = body.get("content") or {}
    form_types = [m for m in content if m in _FORM_TYPES]
    if form_types:
        schema = source.resolve(content[form_types[0]].get("schema") or {}, "schemas")
        return _form_parameters(schema, source), form_types
    media: Json = content.get(_JSON) or next(iter(content.values()), {})
    param: Json = {"name": body.get("x-codegen-request-body-name", "body"), "in": "body"}
    if "description" in body:
        param["description"] = body["description"]
    if body.get("required"):
        param["required"] = True
    param["schema"] = _schema_to_swagger(media.get("schema") or {})
    return [param], list(content)


def _form_parameters(schema: Json, source: _OpenAPISource) -> list[Json]:
    required = {r for r in schema.get("required") or [] if isinstance(r, str)}
    properties = schema.get("properties")
    params: list[Json] = []
    for name, prop in (properties if isinstance(properties, dict) else {}).items():
        prop = source.resolve(prop, "schemas")
        if not isinstance(prop, dict):
            prop = {}  # a boolean schema (OpenAPI 3.1): any value
        param: Json = {"name": name, "in": "formData"}
        if "description" in prop:
            param["description"] = prop["description"]
        if name in required:
            param["required"] = True
        if prop.get("format") == "binary":
            param["type"] = "file"
        else:
            param.update(_schema_to_items(prop, source))
        params.append(param)
    return params


def _response_to_swagger(response: Json, source: _OpenAPISource) -> tuple[Json, list[str]]:
    """(Swagger response, media types it produces)."""
    if "$ref" in response:
        resolved = source.resolve(response, "responses")
        return dict(response), list(resolved.get("content") or {})
    out: Json = {"description": response.get("description", "")}
    content: Json = response.get("content") or {}
    media: Any = content.get(_JSON) or next(iter(content.values()), {})
    if isinstance(media, dict) and "schema" in media:
        out["schema"] = _schema_to_swagger(media["schema"])
    examples = {m: v["example"] for m, v in content.items() if isinstance(v, dict) and "example" in v}
    if examples:
        out["examples"] = examples
    if response.get("headers"):
        out["headers"] = {
            name: _header_to_swagger(source.resolve(h, "headers"), source)
            for name, h in response["headers"].items()
        }
    out.update(_extensions(response))
    return out, list(content)


def _header_to_swagger(header: Json, source: _OpenAPISource) -> Json:
    out: Json = {"description": header["description"]} if "description" in header else {}
    out.update(_schema_to_items(header.get("schema") or {}, source))
    out.update(_extensions(header))
    return out


def _schema_to_swagger(schema: Any) -> Any:
    def convert(node: Json) -> Json:
        if isinstance(node.get("discriminator"), dict):
            node["discriminator"] = node["discriminator"].get("propertyName", "")
        return _as_extensions(node, _SWAGGER_SCHEMA_KEYS)  # nullable, oneOf, anyOf, writeOnly...

    return _map_schema(copy.deepcopy(schema), convert)


def _security_to_swagger(scheme: Json) -> Json | None:
    kind = scheme.get("type")
    out: Json | None = None
    if kind == "http" and str(scheme.get("scheme", "")).lower() == "basic":
        out = {"type": "basic"}
    elif kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
        # Swagger 2 has no bearer scheme; the usual stand-in is an Authorization header.
        out = {"type": "apiKey", "name": "Authorization", "in": "header"}
    elif kind == "apiKey" and scheme.get("in") in ("header", "query"):
        out = {"type": "apiKey", "name": scheme.get("name"), "in": scheme["in"]}
    elif kind == "oauth2" and scheme.get("flows"):
        name, flow = next(iter(scheme["flows"].items()))
        legacy = {v: k for k, v in _OAUTH_FLOWS.items()}.get(name, "implicit")
        out = {"type": "oauth2", "flow": legacy}
        out.update({k: flow[k] for k in ("authorizationUrl", "tokenUrl") if k in flow})
        out["scopes"] = flow.get("scopes") or {}
    if out is None:
        return None  # openIdConnect, cookie API keys, other HTTP schemes
    if "description" in scheme:
        out["description"] = scheme["description"]
    out.update(_extensions(scheme))
    return out


# --- shared helpers --------------------------------------------------------------------


def _map_schema(schema: Any, convert: Callable[[Json], Json]) -> Any:
    """Apply ``convert`` to a schema and every subschema (in place on a copy)."""
    if not isinstance(schema, dict):
        return schema
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            schema[key] = _map_schema(schema[key], convert)
    for key in ("properties", "patternProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = {name: _map_schema(s, convert) for name, s in schema[key].items()}
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            schema[key] = [_map_schema(s, convert) for s in schema[key]]
    return convert(schema)


def _rewrite_refs(node: Any, table: tuple[tuple[str, str], ...]) -> Any:
    """Rewrite every ``$ref`` prefix per ``table``, in place; returns ``node``."""
    if isinstance(node, list):
        for child in node:
            _rewrite_refs(child, table)
    elif isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            for old, new in table:
                if ref.startswith(old):
                    node["$ref"] = new + ref.removeprefix(old)
                    break
        for key, child in node.items():
            if key != "$ref":
                _rewrite_refs(child, table)
    return node


def _ordered(original: Json, converted: Json, dropped: set[str]) -> Json:
    """Merge converted fields into an operation in the usual key order, extensions last."""
    merged = {k: v for k, v in original.items() if k not in dropped and k not in converted}
    merged.update(converted)
    rank = {key: i for i, key in enumerate(_OPERATION_ORDER)}
    return dict(sorted(merged.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def _copy(source: Json, target: Json, *keys: str) -> None:
    for key in keys:
        value = source.get(key)
        if value is not None and value != {}:
            target[key] = copy.deepcopy(value)


def _extensions(node: Json) -> Json:
    return {k: copy.deepcopy(v) for k, v in node.items() if k.startswith("x-")}


def _copy_extensions(source: Json, target: Json) -> None:
    target.update(_extensions(source))
