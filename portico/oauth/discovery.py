"""Filling an EXTERNAL authorization server's fields from its metadata (OpenID Connect Discovery
1.0 / RFC 8414): what the body already gives wins; the rest comes from the document."""

from __future__ import annotations

import copy
import ssl
from typing import Any

import httpx

from portico.oauth.config import GRANT_TYPES, ConfigError

MAX_DOCUMENT = 512 * 1024


async def fetch_metadata(url: str, verify: ssl.SSLContext | bool = True) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(verify=verify, timeout=10.0, follow_redirects=False) as client:
            response = await client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ConfigError(f"field 'discoveryURL': {url} cannot be reached: {exc}") from None
    if response.status_code != 200:
        raise ConfigError(f"field 'discoveryURL': {url} answered {response.status_code}")
    if len(response.content) > MAX_DOCUMENT:
        raise ConfigError(f"field 'discoveryURL': the document at {url} is larger than {MAX_DOCUMENT} bytes")
    try:
        document = response.json()
    except ValueError:
        raise ConfigError(f"field 'discoveryURL': {url} did not answer JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("issuer"), str):
        raise ConfigError(f"field 'discoveryURL': {url} is not authorization server metadata (no 'issuer')")
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
