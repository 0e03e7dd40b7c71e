"""Filling an EXTERNAL authorization server's fields from its metadata (OpenID Connect Discovery
1.0 / RFC 8414): what the body already gives wins; the rest comes from the document.

The document's ``issuer`` must be the one the discovery URL was made from (OpenID Connect Discovery
4.3, RFC 8414 3.3): ``{issuer}/.well-known/openid-configuration``, or RFC 8414's
``{scheme}://{host}/.well-known/oauth-authorization-server{path}`` (also ``openid-configuration``
inserted the same way). A document claiming another issuer is refused: it would make Portico trust
tokens of a server other than the one asked."""

from __future__ import annotations

import copy
import ssl
from typing import Any
from urllib.parse import urlsplit

import httpx

from portico.oauth.config import GRANT_TYPES, ConfigError, check_url

MAX_DOCUMENT = 512 * 1024
WELL_KNOWN = ("openid-configuration", "oauth-authorization-server")


def discovery_urls(issuer: str) -> set[str]:
    """The discovery URLs that belong to ``issuer``."""
    base = issuer.rstrip("/")
    urls = {f"{base}/.well-known/{name}" for name in WELL_KNOWN}
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    if path:
        urls |= {f"{parts.scheme}://{parts.netloc}/.well-known/{name}{path}" for name in WELL_KNOWN}
    return urls


def check_issuer(url: str, issuer: str) -> None:
    if url.split("?", 1)[0].rstrip("/") not in discovery_urls(issuer):
        raise ConfigError(f"field 'discoveryURL': the document at {url} names issuer {issuer!r}, which is not the "
                          "issuer this discovery URL belongs to ({issuer}/.well-known/openid-configuration or "
                          "RFC 8414's form); Portico does not trust it")


async def fetch_metadata(url: str, verify: ssl.SSLContext | bool = True) -> dict[str, Any]:
    try:
        check_url(url, "discoveryURL")
    except ValueError as exc:
        raise ConfigError(f"field {exc}") from None
    try:
        async with httpx.AsyncClient(verify=verify, timeout=10.0, follow_redirects=False) as client:
            response = await client.get(url, headers={"Accept": "application/json"})
            content = response.content
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise ConfigError(f"field 'discoveryURL': {url} cannot be reached: {exc}") from None
    if response.status_code != 200:
        raise ConfigError(f"field 'discoveryURL': {url} answered {response.status_code}")
    if len(content) > MAX_DOCUMENT:
        raise ConfigError(f"field 'discoveryURL': the document at {url} is larger than {MAX_DOCUMENT} bytes")
    try:
        document = response.json()
    except (ValueError, UnicodeError):
        raise ConfigError(f"field 'discoveryURL': {url} did not answer JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("issuer"), str) or not document["issuer"]:
        raise ConfigError(f"field 'discoveryURL': {url} is not authorization server metadata (no 'issuer')")
    check_issuer(url, document["issuer"])
    return document


def _text(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    return value if isinstance(value, str) and value else None


def fill_from_metadata(data: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the wire body ``data`` with the fields it leaves empty taken from ``document``."""
    out = copy.deepcopy(data)
    local = out.setdefault("localIntrospectionConfig", {})
    if isinstance(local, dict):
        if not local.get("issuer"):
            local["issuer"] = document["issuer"]
        if not local.get("jwksuri") and not local.get("certificateAlias") and _text(document, "jwks_uri"):
            local["jwksuri"] = document["jwks_uri"]
    remote = out.get("remoteIntrospectionConfig")
    if isinstance(remote, dict) and remote.get("clientId") and not remote.get("introspectionEndpoint"):
        endpoint = _text(document, "introspection_endpoint")
        if endpoint:
            remote["introspectionEndpoint"] = endpoint
    metadata = out.setdefault("metadata", {})
    if isinstance(metadata, dict):
        for field, name in (("accessTokenURL", "token_endpoint"), ("authorizeURL", "authorization_endpoint"),
                            ("refreshTokenURL", "token_endpoint")):
            if not metadata.get(field) and _text(document, name):
                metadata[field] = document[name]
    grants = document.get("grant_types_supported")
    if not out.get("supportedGrantTypes") and isinstance(grants, list):
        out["supportedGrantTypes"] = [g for g in grants if g in GRANT_TYPES]
    scopes = document.get("scopes_supported")
    if not out.get("scopes") and isinstance(scopes, list):
        out["scopes"] = [{"name": s, "description": ""} for s in scopes if isinstance(s, str) and s.strip()
                         and " " not in s]
    dcr = out.get("dcrEndpoint")
    if isinstance(dcr, dict) and _text(document, "registration_endpoint"):
        endpoint = dcr.setdefault("clientRegistrationEndpoint", {})
        if isinstance(endpoint, dict) and not endpoint.get("endpoint"):
            endpoint["endpoint"] = document["registration_endpoint"]
    return out
