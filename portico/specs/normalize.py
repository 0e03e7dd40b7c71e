"""Parsed OpenAPI 3 / Swagger 2 document -> Portico's stored API model (``apiDefinition``).

The model follows webMethods' normalized ``apiDefinition`` (ENDPOINTS.md §17.1): a
Swagger-2-like top level (``host``, ``basePath``, ``schemes``, ``definitions``,
``securityDefinitions``) plus OpenAPI 3 ``servers`` and ``components``, with ``enabled``
and ``scopes`` on every path and operation. Operations keep the shape of the source
document (Swagger 2 body parameters, or OpenAPI 3 request bodies) so nothing is lost;
``sourceFormat`` records which shape that is, and ``render`` converts on the way out.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from portico.specs.load import SpecError

SourceFormat = Literal["openapi", "swagger"]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Keys Portico adds to paths and operations; never part of a rendered document.
PORTICO_PATH_KEYS = frozenset({"enabled", "scopes"})

# Top-level keys copied verbatim from the source document, besides x-* extensions.
_SWAGGER_TOP_KEYS = ("consumes", "produces", "parameters", "responses", "security", "tags", "externalDocs")
_OPENAPI_TOP_KEYS = ("security", "tags", "externalDocs", "webhooks", "jsonSchemaDialect")

_SERVER_VARIABLE = re.compile(r"\{([^{}]+)\}")


def normalize(doc: dict[str, Any], source_format: SourceFormat, spec_version: str) -> dict[str, Any]:
    """Build the stored model from a checked source document; ``doc`` is not modified."""
    definition: dict[str, Any] = {
        "type": "rest",
        "sourceFormat": source_format,
        "sourceVersion": spec_version,
        "info": copy.deepcopy(doc["info"]),
    }
    passthrough: tuple[str, ...]
    if source_format == "openapi":
        definition.update(_openapi_views(doc))
        passthrough = _OPENAPI_TOP_KEYS
    else:
        definition.update(_swagger_views(doc))
        passthrough = _SWAGGER_TOP_KEYS
    definition["paths"] = _normalize_paths(doc.get("paths") or {})
    for key, value in doc.items():
        if key in passthrough or key.startswith("x-"):
            definition[key] = copy.deepcopy(value)
    return definition


def _openapi_views(doc: dict[str, Any]) -> dict[str, Any]:
    servers = copy.deepcopy(doc.get("servers") or [])
    host, base_path, schemes = swagger_location(servers)
    return {
        "host": host,
        "basePath": base_path,
        "schemes": schemes,
        "servers": servers,
        "components": copy.deepcopy(doc.get("components") or {}),
        "definitions": {},
        "securityDefinitions": {},
    }


def _swagger_views(doc: dict[str, Any]) -> dict[str, Any]:
    host = doc.get("host") or ""
    base_path = doc.get("basePath") or "/"
    schemes = list(doc.get("schemes") or [])
    return {
        "host": host,
        "basePath": base_path,
        "schemes": schemes,
        "servers": [{"url": url} for url in swagger_urls(host, base_path, schemes)],
        "components": {},
        "definitions": copy.deepcopy(doc.get("definitions") or {}),
        "securityDefinitions": copy.deepcopy(doc.get("securityDefinitions") or {}),
    }


def swagger_urls(host: str, base_path: str, schemes: list[str]) -> list[str]:
    """Swagger 2 ``schemes`` x ``host`` + ``basePath`` as base URLs, in document order.

    Without ``host`` the API is served relative to wherever the document is, so only the
    base path is known. Without ``schemes`` Swagger means "the scheme the document was
    fetched with", which an uploaded file does not have: assume http, as swagger-parser does.
    """
    path = base_path.rstrip("/")
    if not host:
        return [path or "/"]
    return [f"{scheme}://{host}{path}" for scheme in (schemes or ["http"])]


def swagger_location(servers: list[Any]) -> tuple[str, str, list[str]]:
    """(host, basePath, schemes) of the first server, for the Swagger-2 view of an OpenAPI 3 API.

    ``schemes`` lists every scheme under which the first server's host and path are offered.
    """
    urls = [resolve_server_url(s) for s in servers if isinstance(s, dict)]
    if not urls:
        return "", "/", []
    first = urlsplit(urls[0])
    base_path = first.path.rstrip("/") or "/"
    if not (first.scheme and first.netloc):
        return "", base_path, []
    schemes: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        same_place = parts.netloc == first.netloc and (parts.path.rstrip("/") or "/") == base_path
        if same_place and parts.scheme and parts.scheme not in schemes:
            schemes.append(parts.scheme)
    return first.netloc, base_path, schemes


def resolve_server_url(server: dict[str, Any]) -> str:
    """The server URL with ``{variables}`` replaced by their defaults (unknown ones left as is)."""
    url = str(server.get("url") or "/")
    variables = server.get("variables") or {}

    def substitute(match: re.Match[str]) -> str:
        variable = variables.get(match.group(1))
        if isinstance(variable, dict) and "default" in variable:
            return str(variable["default"])
        return match.group(0)

    return _SERVER_VARIABLE.sub(substitute, url)


def native_endpoints(definition: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(all base URLs, the relative ones among them) from the model's ``servers``, in order."""
    endpoints: list[str] = []
    relative: list[str] = []
    for server in definition.get("servers") or []:
        if not isinstance(server, dict):
            continue
        url = resolve_server_url(server)
        parts = urlsplit(url)
        is_absolute = bool(parts.scheme and parts.netloc)
        url = url.rstrip("/") if is_absolute else (url.rstrip("/") or "/")
        if url in endpoints:
            continue
        endpoints.append(url)
        if not is_absolute:
            relative.append(url)
    return endpoints, relative


def _normalize_paths(paths: dict[str, Any]) -> dict[str, Any]:
    normalized: dict[str, Any] = {}
    for template, item in paths.items():
        # Extensions on the Paths object (x-...) are not resources; they are dropped.
        if not template.startswith("/"):
            continue
        if not isinstance(item, dict):
            raise SpecError(f"paths.{template}: expected a mapping of operations")
        normalized[template] = _normalize_path_item(template, item)
    return normalized


def _normalize_path_item(template: str, item: dict[str, Any]) -> dict[str, Any]:
    normalized: dict[str, Any] = {}
    for key, value in item.items():
        if key in PORTICO_PATH_KEYS:
            continue
        if key in HTTP_METHODS:
            if not isinstance(value, dict):
                raise SpecError(f"paths.{template}.{key}: expected an operation mapping")
            operation = {k: copy.deepcopy(v) for k, v in value.items() if k not in PORTICO_PATH_KEYS}
            normalized[key] = {**operation, "enabled": True, "scopes": []}
        else:
            normalized[key] = copy.deepcopy(value)
    normalized["enabled"] = True
    return normalized


def carry_exposure(
    definition: dict[str, Any], submitted: dict[str, Any] | None, previous: dict[str, Any] | None
) -> None:
    """Set ``enabled`` ("Expose to consumers") on every path and operation of a new ``definition``.

    A flag the ``submitted`` inline definition states is taken (a definition read back from
    ``GET /apis/{id}``, edited and sent back); otherwise the ``previous`` stored definition's flag
    for the same path or method is kept (a re-import by file or URL keeps them, as the reference
    does); a path or method new to the API is enabled. Raises SpecError for a flag that is not
    a boolean.
    """
    sent_paths = _paths_of(submitted)
    old_paths = _paths_of(previous)
    for template, item in (definition.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        sent, old = sent_paths.get(template), old_paths.get(template)
        item["enabled"] = _flag(sent, old, f"paths[{template!r}].enabled")
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                operation["enabled"] = _flag(
                    _mapping(sent, method), _mapping(old, method), f"paths[{template!r}].{method}.enabled"
                )


def _paths_of(definition: dict[str, Any] | None) -> dict[str, Any]:
    paths = (definition or {}).get("paths")
    return paths if isinstance(paths, dict) else {}


def _mapping(item: Any, key: str) -> dict[str, Any] | None:
    value = item.get(key) if isinstance(item, dict) else None
    return value if isinstance(value, dict) else None


def _flag(sent: Any, old: Any, where: str) -> bool:
    if isinstance(sent, dict) and "enabled" in sent:
        if not isinstance(sent["enabled"], bool):
            raise SpecError(f"apiDefinition.{where}: must be true or false, got {sent['enabled']!r}")
        return sent["enabled"]
    if isinstance(old, dict):
        return old.get("enabled") is not False
    return True


def operations(definition: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(path template, lower-case method, operation) of every enabled operation, in order.

    An operation is enabled unless it, or its path, has ``"enabled": false``.
    """
    found: list[tuple[str, str, dict[str, Any]]] = []
    for template, item in (definition.get("paths") or {}).items():
        if not isinstance(item, dict) or item.get("enabled") is False:
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict) and operation.get("enabled") is not False:
                found.append((template, method, operation))
    return found


def source_format_of(definition: dict[str, Any]) -> SourceFormat:
    """Which operation shape ``definition`` uses.

    Models built by the importer say so in ``sourceFormat``; for hand-written ones (an
    inline ``apiDefinition``) look for Swagger-only constructs and default to OpenAPI 3.
    """
    declared = definition.get("sourceFormat")
    if declared == "openapi" or declared == "swagger":
        return cast(SourceFormat, declared)
    for _, _, operation in operations(definition):
        if "requestBody" in operation:
            return "openapi"
        params = operation.get("parameters") or []
        if any(isinstance(p, dict) and p.get("in") in ("body", "formData") for p in params):
            return "swagger"
    if definition.get("components"):
        return "openapi"
    if definition.get("definitions") or definition.get("securityDefinitions"):
        return "swagger"
    return "openapi"
