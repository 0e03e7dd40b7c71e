"""API scopes (issue 5): named sets of an API's resources and methods, which ``/scopes`` mappings
(``<apiId>:<scopeName>``, ``admin/scopes.py``) require authorization-server scopes for.

Stored as the reference stores them (``GatewayAPI``): the API's top-level ``scopes`` declares them
(``{name, description, policies}``), and each path (the whole resource) or operation (one method)
of ``apiDefinition.paths`` names in its own ``scopes`` the API scopes covering it. They are written
with the API (``POST /apis``, ``PUT /apis/{id}``; the reference has no other write endpoint):

- ``scopes`` in the body replaces the declarations; absent, they are kept;
- coverage comes from the ``scopes`` lists of the submitted ``apiDefinition`` when it carries any
  (a definition read back from ``GET /apis/{id}``); otherwise it is kept from the stored definition
  for the resources and methods that still exist (a re-import by file or URL keeps the scopes, as
  the reference does);
- a declaration may carry ``references`` (the ``GET /apis/{id}/scopes`` shape:
  ``[{resourcePath, supportedOperations}]``, no operations meaning the whole resource), which then
  is its whole coverage -- a Portico convenience to scope an imported API without resending it.

``GET /apis/{apiId}/scopes[/{scopeName}]`` answer the reference's ``scopeReferences``. Removing an
API scope that a mapping uses is refused (400 naming the mapping), as an authorization server or
one of its scopes in use is: dropping it would silently change what the mapping's tokens reach.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import teams
from portico.admin.api_assets import load_api
from portico.admin.common import json_response
from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.domain.api import Api
from portico.store import StoreTransaction
from portico.wire.api_scopes import WHOLE, scope_references

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
DECLARATION_KEYS = frozenset({"name", "description", "policies", "references"})
# Read-only fields of the reference's Scope, accepted (and ignored) when a read API is sent back.
IGNORED_KEYS = frozenset({"getoAuth2ScopeName", "mashedUpAPI"})

Coverage = dict[str, set[tuple[str, str]]]  # scope name -> {(path, METHOD or WHOLE: the whole resource)}


def submitted_definition(fields: dict[str, Any]) -> dict[str, Any] | None:
    """The inline ``apiDefinition`` the API was created or updated from (not when a URL was given)."""
    definition = fields.get("apiDefinition")
    return definition if isinstance(definition, dict) and fields.get("url") is None else None


def coverage_of(definition: dict[str, Any]) -> Coverage:
    """The resources and methods each scope name covers in a stored (or submitted) definition."""
    found: Coverage = {}
    for path, item in (definition.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for name in _names(item.get("scopes"), f"apiDefinition.paths[{path!r}].scopes"):
            found.setdefault(name, set()).add((path, WHOLE))
        for method in METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                where = f"apiDefinition.paths[{path!r}].{method}.scopes"
                for name in _names(operation.get("scopes"), where):
                    found.setdefault(name, set()).add((path, method.upper()))
    return found


def _names(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, f"field '{where}' must be a list of API scope names")
    return value


def _carries_scopes(definition: dict[str, Any]) -> bool:
    for item in (definition.get("paths") or {}).values():
        if isinstance(item, dict) and ("scopes" in item or any(
                isinstance(item.get(m), dict) and "scopes" in item[m] for m in METHODS)):
            return True
    return False


def _exists(definition: dict[str, Any], path: str, method: str) -> bool:
    item = (definition.get("paths") or {}).get(path)
    if not isinstance(item, dict):
        return False
    return method == WHOLE or isinstance(item.get(method.lower()), dict)


def _declarations(value: Any) -> tuple[list[dict[str, Any]], dict[str, list[Any]]]:
    """Checked declarations, and the ``references`` of those that carry them (by name)."""
    if isinstance(value, str):  # a multipart form field
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ApiError(400, "field 'scopes' must be a JSON list of API scopes") from None
    if not isinstance(value, list):
        raise ApiError(400, "field 'scopes' must be a list of {\"name\", \"description\"} objects")
    out: list[dict[str, Any]] = []
    references: dict[str, list[Any]] = {}
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ApiError(400, f"field 'scopes[{i}]' must be an object")
        unknown = sorted(set(entry) - DECLARATION_KEYS - IGNORED_KEYS)
        if unknown:
            raise ApiError(400, f"field 'scopes[{i}]': unknown key(s) {unknown}; expected {sorted(DECLARATION_KEYS)}")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, f"field 'scopes[{i}].name' is required and must be a non-empty string")
        name = name.strip()
        if any(d["name"] == name for d in out):
            raise ApiError(400, f"field 'scopes[{i}].name': duplicate API scope name {name!r}")
        description = entry.get("description") or ""
        if not isinstance(description, str):
            raise ApiError(400, f"field 'scopes[{i}].description' must be a string")
        if entry.get("policies"):
            raise ApiError(400, f"field 'scopes[{i}].policies': policies attached to an API scope are not "
                                "supported; attach them to the API or use a RESOURCE/METHOD policy")
        out.append({"name": name, "description": description, "policies": []})
        if "references" in entry:
            refs = entry["references"]
            if not isinstance(refs, list):
                raise ApiError(400, f"field 'scopes[{i}].references' must be a list of "
                                    "{\"resourcePath\", \"supportedOperations\"} objects")
            references[name] = refs
    return out, references


def _covered_by_references(definition: dict[str, Any], name: str, refs: list[Any]) -> set[tuple[str, str]]:
    covered: set[tuple[str, str]] = set()
    for j, ref in enumerate(refs):
        where = f"scopes[{name!r}].references[{j}]"
        if not isinstance(ref, dict) or not isinstance(ref.get("resourcePath"), str):
            raise ApiError(400, f"field '{where}' must be an object with a string 'resourcePath'")
        path = ref["resourcePath"]
        if not _exists(definition, path, WHOLE):
            raise ApiError(400, f"field '{where}.resourcePath': the API has no resource {path!r}")
        methods = ref.get("supportedOperations") or []
        if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
            raise ApiError(400, f"field '{where}.supportedOperations' must be a list of HTTP methods")
        if not methods:
            covered.add((path, WHOLE))
        for method in methods:
            if not _exists(definition, path, method.upper()):
                raise ApiError(400, f"field '{where}.supportedOperations': resource {path!r} has no method "
                                    f"{method.upper()!r}")
            covered.add((path, method.upper()))
    return covered


def _apply(definition: dict[str, Any], names: list[str], coverage: Coverage) -> None:
    """Write coverage into the definition: every operation lists its scopes (in declaration order);
    a path lists the scopes covering it whole, and has no ``scopes`` key when none does."""
    for path, item in (definition.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        whole = [n for n in names if (path, WHOLE) in coverage.get(n, ())]
        if whole:
            item["scopes"] = whole
        else:
            item.pop("scopes", None)
        for method in METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                operation["scopes"] = [n for n in names if (path, method.upper()) in coverage.get(n, ())]


def settle_scopes(fields: dict[str, Any], submitted: dict[str, Any] | None, definition: dict[str, Any],
                  previous: Api | None) -> list[dict[str, Any]]:
    """The API's scope declarations after a create or update, with their coverage written into
    ``definition`` (the new stored definition). ``submitted`` is the request's inline
    ``apiDefinition``, if the definition was sent inline; ``previous`` the stored API, on update."""
    if fields.get("scopes") is not None:
        declared, references = _declarations(fields["scopes"])
    else:
        declared, references = [dict(s) for s in (previous.scopes if previous else []) if isinstance(s, dict)], {}
    names = [d["name"] for d in declared]
    if submitted is not None and _carries_scopes(submitted):
        coverage = coverage_of(submitted)
        for name, pairs in coverage.items():
            if name not in names and name not in references:
                path, method = sorted(pairs)[0]
                where = f"resource {path!r}" if method == WHOLE else f"method {method} of resource {path!r}"
                raise ApiError(400, f"apiDefinition: {where} names API scope {name!r}, which field 'scopes' "
                                    "does not declare")
            for path, method in pairs:
                if not _exists(definition, path, method):
                    raise ApiError(400, f"apiDefinition: API scope {name!r} names an unknown resource or "
                                        f"method {method} {path}")
    elif previous is not None:
        # kept from the stored definition: scopes no longer declared, and resources gone, drop out
        coverage = {n: {pm for pm in pairs if _exists(definition, *pm)}
                    for n, pairs in coverage_of(previous.apiDefinition).items() if n in names}
    else:
        coverage = {}
    for name, refs in references.items():
        coverage[name] = _covered_by_references(definition, name, refs)
    _apply(definition, names, coverage)
    return declared


async def check_removed(tx: StoreTransaction, api: Api, before: list[Any], after: list[dict[str, Any]]) -> None:
    """Refuse to drop an API scope a ``/scopes`` mapping refers to (400 naming the mapping)."""
    from portico.admin.scopes import mapping_using_api_scope

    kept = {d["name"] for d in after}
    gone = [s["name"] for s in before if isinstance(s, dict) and s.get("name") not in kept]
    if not gone:
        return
    used = await mapping_using_api_scope(tx, api.id, set(gone))
    if used is not None:
        mapping, scope = used
        raise ApiError(400, f"API scope {scope!r} of API {api.apiName} is used by scope mapping {mapping!r}; "
                            "remove it from the mapping first")


async def _visible_api(request: Request) -> Api:
    async with context_of(request).store.read() as tx:
        api, _ = await load_api(tx, request.path_params["apiId"])
        await teams.require_visible(request, tx, api, "API", api.id)
    return api


async def get_scopes(request: Request) -> Response:
    """The API's scopes with the resources and methods each covers (``scopeReferences``)."""
    api = await _visible_api(request)
    return json_response(scope_references(api, coverage_of(api.apiDefinition)))


async def get_scope(request: Request) -> Response:
    """One API scope by name, in the same shape; 404 when the API declares no such scope."""
    api = await _visible_api(request)
    name = request.path_params["scopeName"]
    if not any(isinstance(s, dict) and s.get("name") == name for s in api.scopes):
        raise ApiError(404, f"API {api.apiName} {api.apiVersion} has no API scope {name!r}")
    return json_response(scope_references(api, coverage_of(api.apiDefinition), only=name))


routes = [
    Route("/apis/{apiId}/scopes", get_scopes, methods=["GET"]),
    Route("/apis/{apiId}/scopes/{scopeName}", get_scope, methods=["GET"]),
]
