"""Dynamic client registration (RFC 7591) at an EXTERNAL authorization server, through its
provider's field mapping (``implNames``), extra request parameters (``extendedValuesV2``) and the
server's ``dcrEndpoint`` authentication (none, basic, a token, or a token obtained first with
client credentials or a refresh token)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx

from portico.oauth.clients import DcrConfig, Strategy
from portico.oauth.config import AuthServer, ConfigError, Provider, open_secret
from portico.security.secrets import SecretBox


def _typed(value: str) -> Any:
    return {"true": True, "false": False}.get(value.lower(), value)


def registration_request(provider: Provider, strategy: Strategy, generated: tuple[str, str] | None) -> dict[str, Any]:
    dcr = strategy.dcrConfig or DcrConfig()
    grants = list(dcr.allowedGrantTypes)
    spec: dict[str, Any] = {
        "client_name": dcr.clientName or strategy.name,
        "redirect_uris": list(dcr.redirectUris),
        "grant_types": grants,
        "response_types": ["code"] if "authorization_code" in grants else [],
        "application_type": dcr.applicationType.lower(),
        "token_endpoint_auth_method": "none" if dcr.clientType == "PUBLIC" else "client_secret_basic",
    }
    if dcr.scopes:
        spec["scope"] = " ".join(dcr.scopes)
    if generated is not None:
        spec["client_id"], spec["client_secret"] = generated
    body = {provider.impl(name): value for name, value in spec.items()}
    for extra in provider.extendedValuesV2:
        if extra.endpointType == "CLIENT_REGISTRATION":
            body[extra.key] = _typed(extra.value)
    return body


async def _auth(server: AuthServer, box: SecretBox, client: httpx.AsyncClient) -> tuple[dict[str, str], Any]:
    """Headers and httpx ``auth`` for the registration endpoint."""
    assert server.dcrEndpoint is not None
    info = server.dcrEndpoint.authInfo
    if info.type == "BASIC":
        return {}, (info.username, open_secret(box, server, "dcr.password", info.password) or "")
    if info.type == "TOKEN":
        return {"Authorization": f"{info.tokenType} {open_secret(box, server, 'dcr.token', info.token) or ''}"}, None
    if info.type in ("CLIENT_CREDENTIALS", "REFRESH_TOKEN"):
        url = server.metadata.accessTokenURL if info.type == "CLIENT_CREDENTIALS" else \
            (server.metadata.refreshTokenURL or server.metadata.accessTokenURL)
        if not url:
            raise ConfigError("the authorization server has no metadata.accessTokenURL to obtain a token for DCR")
        form = {"grant_type": "client_credentials"} if info.type == "CLIENT_CREDENTIALS" else \
            {"grant_type": "refresh_token", "refresh_token": open_secret(box, server, "dcr.token", info.token) or ""}
        if info.scope:
            form["scope"] = info.scope
        secret = open_secret(box, server, "dcr.clientSecret", info.clientSecret) or ""
        response = await client.post(url, data=form, auth=(info.clientId, secret))
        if response.status_code != 200 or not isinstance(response.json().get("access_token"), str):
            raise ConfigError(f"obtaining a token for client registration at {url} failed ({response.status_code})")
        return {"Authorization": f"Bearer {response.json()['access_token']}"}, None
    return {}, None


async def register(server: AuthServer, provider: Provider, strategy: Strategy, box: SecretBox,
                   client: httpx.AsyncClient) -> tuple[str, str | None]:
    """Register ``strategy``'s client; its client id and secret (None for a public client)."""
    assert server.dcrEndpoint is not None
    endpoint = server.dcrEndpoint.clientRegistrationEndpoint
    generated = (str(uuid.uuid4()), secrets.token_urlsafe(32)) if provider.generateCredentials else None
    body = registration_request(provider, strategy, generated)
    try:
        headers, auth = await _auth(server, box, client)
        response = await client.post(endpoint.endpoint, json=body, headers={**endpoint.headers, **headers}, auth=auth)
    except httpx.HTTPError as exc:
        raise ConfigError(f"client registration at {endpoint.endpoint} failed: {exc}") from None
    if response.status_code not in (200, 201):
        raise ConfigError(f"client registration at {endpoint.endpoint} answered {response.status_code}: "
                          f"{response.text[:300]}")
    try:
        answer = response.json()
    except ValueError:
        raise ConfigError(f"client registration at {endpoint.endpoint} did not answer JSON") from None
    client_id = answer.get(provider.impl("client_id")) if isinstance(answer, dict) else None
    secret = answer.get(provider.impl("client_secret")) if isinstance(answer, dict) else None
    if generated is not None:
        client_id = client_id or generated[0]
        secret = secret or generated[1]
    if not isinstance(client_id, str) or not client_id:
        raise ConfigError(f"client registration at {endpoint.endpoint} answered no "
                          f"{provider.impl('client_id')!r}")
    return client_id, secret if isinstance(secret, str) and secret else None


async def unregister(server: AuthServer, box: SecretBox, client_id: str, client: httpx.AsyncClient) -> bool:
    """RFC 7592-style delete of a registered client; False when the server refused or failed."""
    if server.dcrEndpoint is None:
        return False
    endpoint = server.dcrEndpoint.clientRegistrationEndpoint
    try:
        headers, auth = await _auth(server, box, client)
        response = await client.delete(f"{endpoint.endpoint.rstrip('/')}/{client_id}",
                                       headers={**endpoint.headers, **headers}, auth=auth)
    except (httpx.HTTPError, ConfigError):
        return False
    return response.status_code in (200, 204, 404)
