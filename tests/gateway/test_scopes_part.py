"""The compiled scope mappings (``gateway/parts/scopes.py``) for API scopes on resources and
methods: the index alone (``tests/policies/test_token_scopes.py`` drives it through HTTP)."""

from __future__ import annotations

from typing import Any

from portico.gateway.parts.scopes import ScopeIndex, ScopeRule, scope_operations
from portico.oauth.validate import VerifiedToken, scopes_of


def token(**claims: Any) -> VerifiedToken:
    return VerifiedToken(claims=claims, issuer="i", subject=None, client_id=None, scopes=scopes_of(claims),
                         expires_at=None)


API: dict[str, Any] = {"scopes": [{"name": "readonly"}, {"name": "admin"}], "apiDefinition": {"paths": {
    "/echo": {"get": {"scopes": ["readonly"]}, "post": {"scopes": []}},
    "/echo/{id}": {"scopes": [{"name": "readonly"}], "get": {}, "delete": {}},
    "/other": {"get": {"scopes": ["admin"]}},
}}}


def test_api_scope_covers_its_operations_and_whole_paths() -> None:
    assert scope_operations(API, "readonly") == {("/echo", "GET"), ("/echo/{id}", "*")}
    assert scope_operations(API, "nothing") == frozenset()
    # a name the API does not declare covers nothing, whatever its operations say
    assert scope_operations({**API, "scopes": [{"name": "admin"}]}, "readonly") == frozenset()


def test_index_allows_only_covered_operations_with_the_servers_scope() -> None:
    index = ScopeIndex({"a": [ScopeRule(scope_operations(API, "readonly"), frozenset({("ext", "read")})),
                              ScopeRule(None, frozenset({("ext", "all")}), audience="portico")]})
    reader, scp_reader = token(scope="read other"), token(scp=["read"])
    assert index.allows("a", "/echo", "GET", "ext", reader)
    assert index.allows("a", "/echo", "HEAD", "ext", scp_reader)  # HEAD is GET's
    assert index.allows("a", "/echo/{id}", "DELETE", "ext", reader)  # the whole path
    assert not index.allows("a", "/echo", "POST", "ext", reader)  # not in the API scope
    assert not index.allows("a", "/echo", "GET", "local", reader)  # the same name on another server
    assert not index.allows("a", "/echo", "GET", "ext", token(scope="write"))
    # the whole-API mapping, with its audience
    assert index.allows("a", "/echo", "POST", "ext", token(scope="all", aud=["x", "portico"]))
    assert not index.allows("a", "/echo", "POST", "ext", token(scope="all", aud="x"))
    assert index.allows("b", "/anything", "PUT", "ext", token())  # an API no mapping names is open
