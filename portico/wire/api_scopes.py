"""API scopes -> the reference's ``ScopeReferences`` (``GET /apis/{apiId}/scopes[/{scopeName}]``).

The Swagger file's schema names the list ``scopes`` but its example, the answer a client is written
against, ``scopeReferences``; Portico answers the example's key. A reference lists a resource with the
methods the scope covers on it, or with no methods when it covers the whole resource.
"""

from __future__ import annotations

from typing import Any

from portico.domain.api import Api

WHOLE = "*"


def scope_references(api: Api, coverage: dict[str, set[tuple[str, str]]], only: str | None = None) -> dict[str, Any]:
    out = []
    for scope in api.scopes:
        if not isinstance(scope, dict) or (only is not None and scope.get("name") != only):
            continue
        by_path: dict[str, list[str]] = {}
        for path, method in sorted(coverage.get(scope["name"], ())):
            by_path.setdefault(path, [])
            if method != WHOLE:
                by_path[path].append(method)
        whole = {p for p, m in coverage.get(scope["name"], ()) if m == WHOLE}
        references = [{"resourcePath": p, "supportedOperations": [] if p in whole else methods}
                      for p, methods in by_path.items()]
        body = {"name": scope["name"], "description": scope.get("description", ""),
                "policies": list(scope.get("policies") or [])}
        out.append({"references": references, "scope": body})
    return {"scopeReferences": out}
