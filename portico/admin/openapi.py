"""An OpenAPI 3 description of the management API, generated from its route table.

It lists every path and method with its parameters, so clients and fuzzers
(schemathesis) can drive the API; bodies are described as JSON objects."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Route

import portico
from portico.admin import access

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")
_QUERY: dict[tuple[str, str], list[str]] = {
    ("/apis", "get"): ["apiIds", "from", "size"],
    ("/apis", "delete"): ["apiIds", "forceDelete"],
    ("/apis/{apiId}", "get"): ["format"],
    ("/apis/{apiId}", "delete"): ["forceDelete"],
    ("/applications", "delete"): ["ids"],
    ("/transactionalEvents/_search", "get"): [
        "apiName", "apiVersion", "apiId", "applicationName", "applicationId", "packageId", "planId",
        "from", "size", "fromDate", "toDate",
    ],
    ("/transactionalEvents/_count", "get"): [
        "apiName", "apiVersion", "apiId", "applicationName", "applicationId", "fromDate", "toDate",
    ],
    # audit-log download (admin/audit.py); the audit columns filter too
    ("/apitransactions", "get"): [
        "eventType", "startDate", "endDate", "duration", "objectType", "action", "object", "user", "message",
        "sourceMachine", "clientIPAddress", "id",
    ],
    # purge of runtime data (admin/event_purge.py)
    ("/apitransactions", "delete"): ["eventType", "from", "until", "olderThan", "action"],
    ("/apitransactions/jobs", "get"): ["status", "action"],
}
_BODY_METHODS = {"post", "put", "patch"}
_ERROR = {"description": "error", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"errorDetails": {"type": "string"}}, "required": ["errorDetails"]}}}}


def _operation(path: str, method: str, route: Route) -> dict[str, Any]:
    doc = (route.endpoint.__doc__ or route.name or "").strip().splitlines()
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in _PARAM.findall(path)]
    params += [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
               for n in _QUERY.get((path, method), [])]
    op: dict[str, Any] = {
        "operationId": f"{method}_{route.name}_{abs(hash(path)) % 10_000}",
        "summary": doc[0] if doc else route.name,
        "parameters": params,
        "responses": {"200": {"description": "success", "content": {"application/json": {"schema": {}}}},
                      "400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR},
    }
    needed = access.required(method.upper(), path)
    if needed is access.PUBLIC:
        op["security"] = []
    else:
        # The functional privileges of which the caller needs one ([] = any signed-in user;
        # null = the route declares none and is refused).
        op["x-portico-privileges"] = None if needed is None else list(needed)
    if method in _BODY_METHODS:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}
    return op


def build_document(routes: list[Route], base: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not route.include_in_schema:  # between nodes, not for users (e.g. /integrations/{id}/relay)
            continue
        for method in sorted(m.lower() for m in (route.methods or ()) if m != "HEAD"):
            item = paths.setdefault(route.path, {})
            item[method] = _operation(route.path, method, route)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Portico management API", "version": portico.__version__},
        "servers": [{"url": base}],
        "components": {"securitySchemes": {
            "basic": {"type": "http", "scheme": "basic"},
            "bearer": {"type": "http", "scheme": "bearer", "description": "a personal access token"},
        }},
        "security": [{"basic": []}, {"bearer": []}],
        "paths": paths,
    }
