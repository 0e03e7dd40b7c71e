"""Snapshot part: scope mappings (``/scopes``, issue 5) compiled per API, as
``snap.extras["scopes"]`` (a :class:`ScopeIndex`), enforced for ``oAuth2Token`` identification.

An API that no mapping names is open to every valid token. Once a mapping names an API (whole, or
one of its API scopes), a token may call a resource and method of it only when some mapping covering
that resource and method requires a scope the token carries, on the server that issued it (and,
when the mapping has an ``audience``, the token's ``aud`` names it). A resource no mapping covers is
closed to tokens (the guide's example: a ``readonly`` scope mapped to the GET operations does not
reach the POST ones)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from portico.gateway.snapshot import Snapshot, snapshot_part
from portico.oauth.validate import VerifiedToken, audiences
from portico.policies._identify.tokens import SCOPES
from portico.store import StoreTransaction

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@dataclass(frozen=True)
class ScopeRule:
    covers: frozenset[tuple[str, str]] | None  # (resource, METHOD or "*"); None: the whole API
    required: frozenset[tuple[str, str]]  # (authorization server, scope name)
    audience: str = ""

    def applies(self, resource: str, method: str) -> bool:
        return self.covers is None or (resource, method) in self.covers or (resource, "*") in self.covers

    def satisfied(self, server: str, verified: VerifiedToken) -> bool:
        if self.audience and self.audience not in audiences(verified.claims):
            return False
        return any((server, scope) in self.required for scope in verified.scopes)


@dataclass
class ScopeIndex:
    by_api: dict[str, list[ScopeRule]] = field(default_factory=dict)

    def allows(self, api_id: str, resource: str, method: str, server: str, verified: VerifiedToken) -> bool:
        rules = self.by_api.get(api_id)
        if not rules:
            return True
        if method == "HEAD":
            method = "GET"
        return any(r.applies(resource, method) and r.satisfied(server, verified) for r in rules)


def _names(value: Any) -> set[str]:
    out: set[str] = set()
    for item in value or ():
        if isinstance(item, str):
            out.add(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            out.add(item["name"])
    return out


def scope_operations(api: dict[str, Any], scope: str) -> frozenset[tuple[str, str]]:
    """The (resource, METHOD) pairs of an API scope: operations (or whole paths, METHOD "*") naming
    it in ``apiDefinition.paths``, as ``admin/api_scopes.py`` writes them; none when the API's own
    ``scopes`` does not declare it."""
    if scope not in _names(api.get("scopes")):
        return frozenset()
    paths = (api.get("apiDefinition") or {}).get("paths") or {}
    covered: set[tuple[str, str]] = set()
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        if scope in _names(item.get("scopes")):
            covered.add((path, "*"))
        for method in METHODS:
            operation = item.get(method)
            if isinstance(operation, dict) and scope in _names(operation.get("scopes")):
                covered.add((path, method.upper()))
    return frozenset(covered)


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    mappings = [r.body for r in await tx.list("scopeMapping")]
    if not mappings:
        return
    apis: dict[str, dict[str, Any] | None] = {}
    index = ScopeIndex()
    for mapping in mappings:
        required = frozenset((a.get("authServerAlias", ""), a.get("scopeName", ""))
                             for a in mapping.get("requiredAuthScopes") or () if isinstance(a, dict))
        audience = mapping.get("audience") or ""
        for ref in mapping.get("apiScopes") or ():
            api_id, sep, scope = str(ref).partition(":")
            if api_id not in apis:
                row = await tx.get("api", api_id)
                apis[api_id] = row.body if row is not None else None
            api = apis[api_id]
            if api is None:
                continue
            covers = scope_operations(api, scope) if sep else None
            index.by_api.setdefault(api_id, []).append(ScopeRule(covers, required, audience))
    snap.extras[SCOPES] = index
