"""Dynamic client registration (RFC 7591) at an EXTERNAL authorization server, through its
provider's field mapping (``implNames``), extra request parameters (``extendedValuesV2``) and the
server's ``dcrEndpoint`` authentication (none, basic, a token, or a token obtained first with
client credentials or a refresh token).

Errors name the endpoint, the status and its reason phrase only: a remote server's answer body may
hold anything (its own secrets, markup) and is never copied into Portico's answers."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx

from portico.oauth.clients import DcrConfig, Strategy
from portico.oauth.config import AuthServer, ConfigError, Provider, dcr_headers, open_secret
from portico.security.secrets import SecretBox

# What can go wrong talking to a remote server, short of a programming error.
REMOTE_ERRORS = (httpx.HTTPError, httpx.InvalidURL, ValueError, UnicodeError)


def _status(response: httpx.Response) -> str:
    reason = response.reason_phrase or ""
    return f"{response.status_code} {reason}".strip()[:80]


def _why(exc: Exception) -> str:
    """A transport failure, in short (raised here, not sent by the remote server)."""
    return (str(exc) or type(exc).__name__)[:200]


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except (ValueError, UnicodeError):
        return None
    return body if isinstance(body, dict) else None


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
        try:
            response = await client.post(url, data=form, auth=(info.clientId, secret))
        except REMOTE_ERRORS as exc:
            raise ConfigError(f"obtaining a token for client registration at {url} failed: "
                              f"{_why(exc)}") from None
        if response.status_code != 200:
            raise ConfigError(f"obtaining a token for client registration at {url} failed ({_status(response)})")
        answer = _json_object(response)
        token = answer.get("access_token") if answer is not None else None
        if not isinstance(token, str) or not token:
            raise ConfigError(f"obtaining a token for client registration at {url} failed: the answer is not a "
                              "JSON object with an access_token")
        return {"Authorization": f"Bearer {token}"}, None
    return {}, None


async def register(server: AuthServer, provider: Provider, strategy: Strategy, box: SecretBox,
                   client: httpx.AsyncClient) -> tuple[str, str | None]:
    """Register ``strategy``'s client; its client id and secret (None for a public client)."""
    assert server.dcrEndpoint is not None
    endpoint = server.dcrEndpoint.clientRegistrationEndpoint
    generated = (str(uuid.uuid4()), secrets.token_urlsafe(32)) if provider.generateCredentials else None
    body = registration_request(provider, strategy, generated)
    headers, auth = await _auth(server, box, client)
    try:
        response = await client.post(endpoint.endpoint, json=body, headers={**dcr_headers(box, server), **headers},
                                     auth=auth)
    except REMOTE_ERRORS as exc:
        raise ConfigError(f"client registration at {endpoint.endpoint} failed: {_why(exc)}") from None
    if response.status_code not in (200, 201):
        raise ConfigError(f"client registration at {endpoint.endpoint} answered {_status(response)}")
    answer = _json_object(response)
    if answer is None:
        raise ConfigError(f"client registration at {endpoint.endpoint} did not answer a JSON object")
    client_id = answer.get(provider.impl("client_id"))
    secret = answer.get(provider.impl("client_secret"))
    if generated is not None:
        client_id = client_id or generated[0]
        secret = secret or generated[1]
    if not isinstance(client_id, str) or not client_id:
        raise ConfigError(f"client registration at {endpoint.endpoint} answered no "
                          f"{provider.impl('client_id')!r}")
    return client_id, secret if isinstance(secret, str) and secret else None


async def update(server: AuthServer, provider: Provider, strategy: Strategy, box: SecretBox, client_id: str,
                 client: httpx.AsyncClient) -> None:
    """RFC 7592-style update of a registered client (``PUT {endpoint}/{client_id}`` with the
    registration body and the client id): what the strategy changed reaches the server."""
    assert server.dcrEndpoint is not None
    endpoint = server.dcrEndpoint.clientRegistrationEndpoint
    body = registration_request(provider, strategy, None)
    body[provider.impl("client_id")] = client_id
    url = f"{endpoint.endpoint.rstrip('/')}/{client_id}"
    headers, auth = await _auth(server, box, client)
    try:
        response = await client.put(url, json=body, headers={**dcr_headers(box, server), **headers}, auth=auth)
    except REMOTE_ERRORS as exc:
        raise ConfigError(f"updating the client at {url} failed: {_why(exc)}") from None
    if response.status_code not in (200, 201, 204):
        raise ConfigError(f"updating the client at {url} answered {_status(response)}")


async def unregister(server: AuthServer, box: SecretBox, client_id: str, client: httpx.AsyncClient) -> str | None:
    """RFC 7592-style delete of a registered client; None when done, else why it failed."""
    if server.dcrEndpoint is None:
        return "the authorization server has no dcrEndpoint"
    endpoint = server.dcrEndpoint.clientRegistrationEndpoint
    url = f"{endpoint.endpoint.rstrip('/')}/{client_id}"
    try:
        headers, auth = await _auth(server, box, client)
        response = await client.delete(url, headers={**dcr_headers(box, server), **headers}, auth=auth)
    except ConfigError as exc:
        return str(exc)
    except REMOTE_ERRORS as exc:
        return f"deleting the client at {url} failed: {_why(exc)}"
    if response.status_code in (200, 204, 404):
        return None
    return f"deleting the client at {url} answered {_status(response)}"
