"""The local authorization server's OAuth2 / OpenID Connect endpoints.

``/invoke/pub.apigateway.oauth2/getAccessToken`` (the reference's token path) and ``/oauth2/token``
are the same endpoint; ``.../authorize`` likewise. The authorize endpoint authenticates the resource
owner with HTTP basic against Portico users (a 401 challenge when absent) and approves at once:
there is no consent page. Clients authenticate with HTTP basic (``client_secret_basic``) or
``client_id``/``client_secret`` parameters (``client_secret_post``); public clients send only
``client_id``. Introspection (RFC 7662 4: the caller must be authorized) is for confidential clients
only; a token whose client was deleted is inactive.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portico.admin.auth import authenticate
from portico.admin.errors import ApiError
from portico.oauth.clients import Client
from portico.oauth.grants import Grants, OAuthError, find_client, granted_scope, pkce_method_error, pkce_required
from portico.oauth.signing import jwks
from portico.oauth.tokens import TokenStore
from portico.public.common import (
    NO_STORE,
    BadRequest,
    basic_credentials,
    box_of,
    context_of,
    json_out,
    local_key,
    local_server,
    read_params,
)
from portico.security.keystore.records import KeystoreUnavailable
from portico.store.db import now_ms

REFERENCE_BASE = "/invoke/pub.apigateway.oauth2"
GRANTS = ("authorization_code", "client_credentials", "refresh_token")


def _error(exc: OAuthError, basic: bool = False) -> Response:
    headers = dict(NO_STORE)
    if exc.status == 401 and basic:
        headers["WWW-Authenticate"] = 'Basic realm="Portico OAuth2"'
    return json_out(exc.body(), exc.status, headers)


async def _client(request: Request, params: dict[str, str]) -> Client:
    """The calling client, authenticated (RFC 6749 2.3)."""
    ctx = context_of(request)
    basic = basic_credentials(request)
    if basic is not None and "client_secret" in params:
        raise OAuthError("invalid_request", "use one client authentication method, not two")
    client_id, secret = basic if basic is not None else (params.get("client_id"), params.get("client_secret"))
    if not client_id:
        raise OAuthError("invalid_client", "client authentication is required", 401)
    if basic is not None and params.get("client_id") not in (None, client_id):
        raise OAuthError("invalid_request", "client_id differs from the authenticated client")
    async with ctx.store.read() as tx:
        client = await find_client(tx, client_id)
    if client is None or not client.enabled:
        raise OAuthError("invalid_client", "unknown client or wrong client secret", 401)
    if secret is None:
        if not client.public:
            raise OAuthError("invalid_client", "this confidential client must send its client secret", 401)
    elif not client.check_secret(box_of(ctx), secret):
        raise OAuthError("invalid_client", "unknown client or wrong client secret", 401)
    return client


async def _grants(request: Request) -> Grants:
    ctx = context_of(request)
    async with ctx.store.read() as tx:
        server, revision = await local_server(tx)
        try:
            key = await local_key(ctx, tx, server, revision)
        except KeystoreUnavailable:
            key = None
    return Grants(TokenStore(ctx.store), server, key)


async def token(request: Request) -> Response:
    """Token endpoint (RFC 6749 3.2)."""
    basic = False
    try:
        params = await read_params(request)
        basic = request.headers.get("authorization", "").lower().startswith("basic ")
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "'grant_type' is required")
        if grant_type not in GRANTS:
            raise OAuthError("unsupported_grant_type", f"grant type {grant_type!r} is not supported "
                             f"(supported: {', '.join(GRANTS)})")
        client = await _client(request, params)
        grants = await _grants(request)
        if grant_type not in grants.server.supportedGrantTypes:
            raise OAuthError("unsupported_grant_type", f"the local authorization server does not offer {grant_type}")
        if grant_type == "client_credentials":
            body = await grants.client_credentials(client, params.get("scope"))
        elif grant_type == "authorization_code":
            if not client.auth_code:
                raise OAuthError("unauthorized_client", "this client may not use the authorization_code grant")
            body = await grants.authorization_code(client, params.get("code"), params.get("redirect_uri"),
                                                   params.get("code_verifier"))
        else:
            body = await grants.refresh_token(client, params.get("refresh_token"), params.get("scope"))
    except OAuthError as exc:
        return _error(exc, basic)
    except BadRequest as exc:
        return _error(OAuthError("invalid_request" if exc.status != 401 else "invalid_client", exc.message,
                                 exc.status), basic)
    return json_out(body, headers=NO_STORE)


def _redirect(uri: str, params: dict[str, str]) -> Response:
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302, headers=NO_STORE)


async def authorize(request: Request) -> Response:
    """Authorization endpoint (RFC 6749 4.1.1): errors about the client or its redirect URI are
    answered here (never redirected to an unchecked URI); the others go back to the client."""
    ctx = context_of(request)
    try:
        params = await read_params(request)
    except BadRequest as exc:
        return json_out({"error": "invalid_request", "error_description": exc.message}, exc.status)
    client_id = params.get("client_id", "")
    async with ctx.store.read() as tx:
        client = await find_client(tx, client_id) if client_id else None
        server, _ = await local_server(tx)
    if client is None or not client.enabled:
        return json_out({"error": "invalid_request", "error_description": f"unknown client_id {client_id!r}"}, 400)
    sent_redirect = params.get("redirect_uri")
    redirect_uri = sent_redirect
    if redirect_uri is None and len(client.redirect_uris) == 1:
        redirect_uri = client.redirect_uris[0]
    if not redirect_uri or redirect_uri not in client.redirect_uris:
        return json_out({"error": "invalid_request",
                         "error_description": "redirect_uri is missing or not registered for this client"}, 400)
    state = {"state": params["state"]} if "state" in params else {}

    def back(error: str, description: str) -> Response:
        return _redirect(redirect_uri, {"error": error, "error_description": description, **state})

    if params.get("response_type") != "code":
        return back("unsupported_response_type", "only response_type=code is supported")
    if not client.auth_code:
        return back("unauthorized_client", "this client may not use the authorization_code grant")
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method", "plain" if challenge else None)
    refused = pkce_method_error(pkce_required(client, server), challenge, method)
    if refused:
        return back("invalid_request", refused)
    try:
        principal = await authenticate(request)
    except ApiError as exc:
        return json_out({"error": "access_denied", "error_description": exc.message}, 401,
                        {"WWW-Authenticate": 'Basic realm="Portico authorization"'})
    try:
        scope = granted_scope(params.get("scope"), client, server)
    except OAuthError as exc:
        return back(exc.error, exc.description)
    # the code remembers the redirect_uri only if it was sent: then the token request must repeat it
    code = await TokenStore(ctx.store).save_code(client.client_id, principal.login_id, sent_redirect or "", scope,
                                                 challenge, method, params.get("nonce"),
                                                 server.tokenGeneratorConfig.authCodeExpInterval)
    return _redirect(redirect_uri, {"code": code, **state})


async def introspect(request: Request) -> Response:
    """RFC 7662: a confidential client of the local server (a resource server) that authenticates
    may introspect; a public client cannot keep a secret, so it may not (401)."""
    ctx = context_of(request)
    basic = False
    try:
        params = await read_params(request)
        basic = request.headers.get("authorization", "").lower().startswith("basic ")
        caller = await _client(request, {k: v for k, v in params.items() if k in ("client_id", "client_secret")})
        if caller.public or caller.sealed_secret is None:
            raise OAuthError("invalid_client", "introspection needs a confidential client's credentials; public "
                             "clients may not introspect", 401)
        value = params.get("token")
        if not value:
            raise OAuthError("invalid_request", "'token' is required")
    except OAuthError as exc:
        return _error(exc, basic)
    except BadRequest as exc:
        return _error(OAuthError("invalid_request", exc.message, exc.status), basic)
    record = await TokenStore(ctx.store).find_access(value)
    if record is None or not record.active(now_ms()):
        return json_out({"active": False}, headers=NO_STORE)
    async with ctx.store.read() as tx:
        server, _ = await local_server(tx)
        owner = await find_client(tx, record.client_id)
    if owner is None or not owner.enabled:  # the client was deleted: its tokens died with it
        return json_out({"active": False}, headers=NO_STORE)
    body: dict[str, Any] = {"active": True, "client_id": record.client_id, "scope": record.scope,
                            "sub": record.owner_id, "username": record.owner_id, "token_type": "Bearer",
                            "iat": record.created_at // 1000, "iss": server.localIntrospectionConfig.issuer}
    if record.expires_at is not None:
        body["exp"] = record.expires_at // 1000
    if server.tokenGeneratorConfig.audience:
        body["aud"] = server.tokenGeneratorConfig.audience
    return json_out(body, headers=NO_STORE)


async def revoke(request: Request) -> Response:
    """RFC 7009: 200 whether or not the token was known; only the client's own tokens."""
    ctx = context_of(request)
    basic = False
    try:
        params = await read_params(request)
        basic = request.headers.get("authorization", "").lower().startswith("basic ")
        client = await _client(request, {k: v for k, v in params.items() if k in ("client_id", "client_secret")})
        value = params.get("token")
        if not value:
            raise OAuthError("invalid_request", "'token' is required")
    except OAuthError as exc:
        return _error(exc, basic)
    except BadRequest as exc:
        return _error(OAuthError("invalid_request", exc.message, exc.status), basic)
    await TokenStore(ctx.store).revoke_secret(value, client.client_id)
    return Response(status_code=200, headers=NO_STORE)


async def certs(request: Request) -> Response:
    """The JWKS of the local server (also ``/rest/pub/apigateway/jwt/certs``)."""
    ctx = context_of(request)
    async with ctx.store.read() as tx:
        document = await jwks(tx, box_of(ctx))
    return json_out(document)


async def discovery(request: Request) -> Response:
    """OpenID Connect discovery / RFC 8414 metadata of the local server."""
    ctx = context_of(request)
    async with ctx.store.read() as tx:
        server, _ = await local_server(tx)
    base = str(request.base_url).rstrip("/")
    algorithm = server.tokenGeneratorConfig.algorithm
    return json_out({
        "issuer": server.localIntrospectionConfig.issuer,
        "authorization_endpoint": f"{base}/oauth2/authorize",
        "token_endpoint": f"{base}/oauth2/token",
        "introspection_endpoint": f"{base}/oauth2/introspect",
        "revocation_endpoint": f"{base}/oauth2/revoke",
        "jwks_uri": f"{base}/oauth2/jwks",
        "response_types_supported": ["code"],
        "grant_types_supported": [g for g in server.supportedGrantTypes if g in GRANTS],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [algorithm],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256", "plain"],  # plain only where PKCE is optional
        "scopes_supported": ["openid", *[s.name for s in server.scopes if s.name != "openid"]],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash"],
    })
