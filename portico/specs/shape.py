"""The shape of a document that Portico relies on, checked on every import.

Full schema validation (``openAPIImporterValidation``) is off by default, as in the reference.
Without it a document may still be imported, stored and rendered back only if each part that
normalization and rendering read is of the expected kind: a ``basePath`` that is a number or
``definitions`` that are a string would otherwise be stored and break every later read of the
API. The checks stop at the objects Portico walks; what a schema says inside is not judged.
"""

from __future__ import annotations

from typing import Any

from portico.specs.load import SpecError

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_COMPONENTS = ("schemas", "responses", "parameters", "examples", "requestBodies", "headers", "securitySchemes",
               "links", "callbacks", "pathItems")
_KINDS: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}


def check_shape(doc: dict[str, Any], source_format: str) -> None:
    """Raise SpecError naming the first part of ``doc`` that is of the wrong kind."""
    _list_of(doc, "servers", "servers", _server)
    _list_of(doc, "security", "security", _mapping)
    if source_format == "swagger":
        for key in ("host", "basePath"):
            _kind(doc, key, str, key)
        for key in ("schemes", "consumes", "produces"):
            _list_of(doc, key, key, _string)
        for key in ("definitions", "securityDefinitions", "parameters", "responses"):
            _map_of(doc, key, key, _schema if key == "definitions" else _mapping)
        for name, param in (doc.get("parameters") or {}).items():
            _parameter(param, f"parameters.{name}")
        for name, scheme in (doc.get("securityDefinitions") or {}).items():
            _map_of(scheme, "scopes", f"securityDefinitions.{name}.scopes", lambda _v, _w: None)
        for name, response in (doc.get("responses") or {}).items():
            _response(response, f"responses.{name}")
    else:
        _kind(doc, "components", dict, "components")
        components = doc.get("components") or {}
        for key in _COMPONENTS:
            _map_of(components, key, f"components.{key}", _schema if key == "schemas" else _mapping)
        for name, response in (components.get("responses") or {}).items():
            _response(response, f"components.responses.{name}")
        for name, body in (components.get("requestBodies") or {}).items():
            _map_of(body, "content", f"components.requestBodies.{name}.content", _media)
        for name, param in (components.get("parameters") or {}).items():
            _parameter(param, f"components.parameters.{name}")
        for name, scheme in (components.get("securitySchemes") or {}).items():
            _map_of(scheme, "flows", f"components.securitySchemes.{name}.flows", _mapping)
        _map_of(doc, "webhooks", "webhooks", _mapping)
    for template, item in (doc.get("paths") or {}).items():
        if template.startswith("/"):
            _path_item(item, f"paths.{template}")


def _path_item(item: Any, where: str) -> None:
    _mapping(item, where)
    _list_of(item, "parameters", f"{where}.parameters", _parameter)
    for method in _METHODS:
        if method in item:
            _operation(item[method], f"{where}.{method}")


def _operation(operation: Any, where: str) -> None:
    if not isinstance(operation, dict):
        raise SpecError(f"{where}: expected an operation mapping, got {_name(operation)}")
    _list_of(operation, "parameters", f"{where}.parameters", _parameter)
    _map_of(operation, "responses", f"{where}.responses", _response_or_extension)
    if "requestBody" in operation:
        _mapping(operation["requestBody"], f"{where}.requestBody")
    _map_of(operation.get("requestBody") or {}, "content", f"{where}.requestBody.content", _media)
    for key in ("consumes", "produces"):
        _list_of(operation, key, f"{where}.{key}", _string)
    _list_of(operation, "security", f"{where}.security", _mapping)


def _parameter(param: Any, where: str) -> None:
    _mapping(param, where)
    if "$ref" not in param:
        # a Swagger 2 body parameter's name is only a label; every other parameter is found by name
        for key in ("in",) if param.get("in") == "body" else ("in", "name"):
            if not isinstance(param.get(key), str):
                raise SpecError(f"{where}.{key}: required string missing")
        _kind(param, "name", str, f"{where}.name")
    _schema_at(param, "schema", f"{where}.schema")
    _kind(param, "items", dict, f"{where}.items")
    _map_of(param, "content", f"{where}.content", _media)


def _response_or_extension(response: Any, where: str) -> None:
    if not where.rpartition(".")[2].startswith("x-"):
        _response(response, where)


def _response(response: Any, where: str) -> None:
    _mapping(response, where)
    _schema_at(response, "schema", f"{where}.schema")
    _map_of(response, "content", f"{where}.content", _media)
    _map_of(response, "headers", f"{where}.headers", _mapping)
    _map_of(response, "examples", f"{where}.examples", lambda _v, _w: None)


def _media(media: Any, where: str) -> None:
    _mapping(media, where)
    _schema_at(media, "schema", f"{where}.schema")
    _map_of(media, "examples", f"{where}.examples", lambda _v, _w: None)


def _server(server: Any, where: str) -> None:
    _mapping(server, where)
    _kind(server, "url", str, f"{where}.url")
    _map_of(server, "variables", f"{where}.variables", _mapping)


def _schema_at(node: dict[str, Any], key: str, where: str) -> None:
    if key in node:
        _schema(node[key], where)


def _schema(value: Any, where: str) -> None:
    # OpenAPI 3.1 schemas may be booleans (true: anything, false: nothing)
    if not isinstance(value, dict | bool):
        raise SpecError(f"{where}: expected a schema (a mapping), got {_name(value)}")


def _mapping(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected a mapping, got {_name(value)}")


def _string(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise SpecError(f"{where}: expected a string, got {_name(value)}")


def _kind(node: dict[str, Any], key: str, kind: type, where: str) -> None:
    value = node.get(key)
    if value is not None and not isinstance(value, kind):
        raise SpecError(f"{where}: expected {_KINDS[kind]}, got {_name(value)}")


def _list_of(node: dict[str, Any], key: str, where: str, check: Any) -> None:
    _kind(node, key, list, where)
    for i, value in enumerate(node.get(key) or []):
        check(value, f"{where}[{i}]")


def _map_of(node: dict[str, Any], key: str, where: str, check: Any) -> None:
    _kind(node, key, dict, where)
    for name, value in (node.get(key) or {}).items():
        check(value, f"{where}.{name}")


def _name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)
