"""The local authorization server's token endpoint logic (RFC 6749, RFC 7636, OpenID Connect).

Grant types: ``client_credentials``, ``authorization_code`` (PKCE ``S256``, or ``plain`` where PKCE
is optional; an ID token when ``openid`` was asked for) and ``refresh_token`` (rotated; a replayed
old refresh token revokes the grant). HTTP parsing and client authentication live in
``portico/public/oauth2.py``; this module decides and issues. Failures are :class:`OAuthError` with
the RFC 6749 error code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

from portico.oauth.clients import KIND as STRATEGY
from portico.oauth.clients import Client, Strategy, client_of
from portico.oauth.config import LOCAL_ID, AuthServer
from portico.oauth.signing import ID_TOKEN_USE, SigningKey, at_hash, now_seconds
from portico.oauth.tokens import CodeRecord, Issued, Lifetimes, RefreshReplayed, TokenStore
from portico.store import StoreTransaction
from portico.store.db import now_ms

OPENID = "openid"


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


async def find_client(tx: StoreTransaction, client_id: str) -> Client | None:
    """The local server's client ``client_id`` (a strategy on ``local`` with credentials)."""
    for row in await tx.list(STRATEGY):
        if row.body.get("authServerAlias") != LOCAL_ID:
            continue
        reg = row.body.get("clientRegistration") or {}
        if reg.get("clientId") == client_id:
            return client_of(Strategy.model_validate(row.body))
    return None


def granted_scope(requested: str | None, client: Client, server: AuthServer) -> str:
    """The scope to grant: what was asked for, each one allowed for the client (its scopes, else
    the server's; ``openid`` always), or by default the client's own scopes."""
    if requested is None or not requested.strip():
        return " ".join(client.scopes)
    allowed = set(client.scopes) or {s.name for s in server.scopes}
    asked = list(dict.fromkeys(requested.split()))
    for scope in asked:
        if scope != OPENID and scope not in allowed:
            raise OAuthError("invalid_scope", f"scope {scope!r} is not available to client {client.client_id!r}")
    return " ".join(asked)


def pkce_method_error(required: bool, challenge: str | None, method: str | None) -> str | None:
    """Why an authorization request's PKCE parameters are refused, or None. Where PKCE is required
    only S256 is accepted (``plain`` protects nothing against a leaked authorization request)."""
    if challenge is None:
        return "PKCE is required: send code_challenge with code_challenge_method S256" if required else None
    if required and method != "S256":
        return "PKCE is required with code_challenge_method S256 (plain is not accepted for this client)"
    if method not in ("S256", "plain") or not 43 <= len(challenge) <= 128:
        return "code_challenge must be 43-128 characters and code_challenge_method S256 or plain"
    return None


def pkce_required(client: Client, server: AuthServer) -> bool:
    if client.pkce == "ENFORCED":
        return True
    if client.pkce == "NOT_ENFORCED":
        return False
    return server.tokenGeneratorConfig.enforcePKCE and client.public


def check_pkce(challenge: str | None, method: str | None, verifier: str | None) -> None:
    if challenge is None:
        if verifier:
            raise OAuthError("invalid_grant", "a code_verifier was sent but the authorization had no code_challenge")
        return
    if not verifier or not 43 <= len(verifier) <= 128:
        raise OAuthError("invalid_grant", "code_verifier is required (43 to 128 characters) for this code")
    if method == "S256":
        computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    else:
        computed = verifier
    if not hmac.compare_digest(computed.encode(), challenge.encode()):
        raise OAuthError("invalid_grant", "the code_verifier does not match the code_challenge")


def lifetimes(client: Client, server: AuthServer) -> Lifetimes:
    cfg = server.tokenGeneratorConfig
    value = client.lifetime if client.lifetime is not None else cfg.accessTokenExpInterval
    refresh = cfg.refreshTokenExpInterval
    return Lifetimes(None if value == -1 else value, None if refresh == -1 else refresh)


def token_response(issued: Issued, id_token: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"access_token": issued.access_token, "token_type": "Bearer"}
    if issued.expires_in is not None:
        body["expires_in"] = issued.expires_in
    if issued.refresh_token:
        body["refresh_token"] = issued.refresh_token
    body["scope"] = issued.scope
    if id_token:
        body["id_token"] = id_token
    return body


def jwt_claims(server: AuthServer, subject: str, audience: str | None = None, extra: dict[str, Any] | None = None,
               ) -> dict[str, Any]:
    now = now_seconds()
    cfg = server.tokenGeneratorConfig
    claims: dict[str, Any] = {"iss": server.localIntrospectionConfig.issuer, "sub": subject, "iat": now,
                              "nbf": now, "exp": now + cfg.expiry * 60, "jti": uuid.uuid4().hex}
    aud = audience if audience is not None else cfg.audience
    if aud:
        claims["aud"] = aud
    claims.update(extra or {})
    return claims


@dataclass
class Grants:
    tokens: TokenStore
    server: AuthServer
    key: SigningKey | None  # None: ID tokens cannot be signed (the signing key is unusable)

    async def client_credentials(self, client: Client, scope: str | None) -> dict[str, Any]:
        if not client.client_credentials:
            raise OAuthError("unauthorized_client", "this client may not use the client_credentials grant")
        granted = granted_scope(scope, client, self.server)
        # RFC 6749 4.4.3: no refresh token for client credentials
        issued = await self.tokens.issue(client.client_id, client.client_id, granted, "client_credentials",
                                         lifetimes(client, self.server), 0)
        return token_response(issued)

    async def authorization_code(self, client: Client, code: str | None, redirect_uri: str | None,
                                 verifier: str | None) -> dict[str, Any]:
        if not code:
            raise OAuthError("invalid_request", "'code' is required for the authorization_code grant")

        def check(record: CodeRecord | None) -> None:
            if record is None or record.client_id != client.client_id:
                raise OAuthError("invalid_grant", "the authorization code is unknown, used or issued to another "
                                                  "client")
            if record.expires_at <= now_ms():
                raise OAuthError("invalid_grant", "the authorization code has expired")
            check_redirect(record, client, redirect_uri)
            check_pkce(record.challenge, record.challenge_method, verifier)
            if OPENID in record.scope.split() and self.key is None:
                raise OAuthError("server_error", "the authorization server's signing key cannot be used", 500)

        record, issued = await self.tokens.exchange_code(code, check, "authorization_code",
                                                         lifetimes(client, self.server), client.refresh_limit)
        id_token = None
        if OPENID in record.scope.split():
            id_token = self.id_token(client, record.owner_id, record.nonce, issued)
        return token_response(issued, id_token)

    def id_token(self, client: Client, subject: str, nonce: str | None, issued: Issued) -> str:
        """An OpenID Connect ID token. ``token_use: id`` and the ``JWT`` header type tell it apart
        from an access token (the gateway refuses it as one); ``sid`` is its grant, so revoking the
        grant also ends the ID token's use for identification; ``scope`` is the grant's, for the
        gateway's scope mappings."""
        if self.key is None:
            raise OAuthError("server_error", "the authorization server's signing key cannot be used", 500)
        extra: dict[str, Any] = {"auth_time": now_seconds(), "azp": client.client_id,
                                 "at_hash": at_hash(issued.access_token, self.key.algorithm),
                                 "token_use": ID_TOKEN_USE, "sid": issued.id,
                                 # the grant's scope: scope mappings apply to OpenID identification too
                                 "scope": issued.scope}
        if nonce:
            extra["nonce"] = nonce
        return self.key.sign(jwt_claims(self.server, subject, client.client_id, extra))

    async def refresh_token(self, client: Client, refresh: str | None, scope: str | None) -> dict[str, Any]:
        if not client.refresh_allowed:
            raise OAuthError("unauthorized_client", "this client may not use the refresh_token grant")
        if not refresh:
            raise OAuthError("invalid_request", "'refresh_token' is required for the refresh_token grant")
        try:
            record = await self.tokens.find_refresh(refresh)
        except RefreshReplayed:
            raise OAuthError("invalid_grant", "the refresh token was already used; its grant is revoked") from None
        if record is None or record.client_id != client.client_id or record.revoked:
            raise OAuthError("invalid_grant", "the refresh token is unknown, revoked or issued to another client")
        if not record.refreshable(now_ms()):
            raise OAuthError("invalid_grant", "the refresh token has expired or has no refreshes left")
        granted = record.scope
        if scope:
            asked = scope.split()
            if not set(asked) <= set(record.scope.split()):
                raise OAuthError("invalid_scope", "a refresh may only narrow the scope originally granted")
            granted = " ".join(asked)
        issued = await self.tokens.refresh(record, refresh, lifetimes(client, self.server), granted)
        if issued is None:
            raise OAuthError("invalid_grant", "the refresh token was used already or has expired")
        return token_response(issued)


def check_redirect(record: CodeRecord, client: Client, redirect_uri: str | None) -> None:
    """RFC 6749 4.1.3: redirect_uri is required when the authorization request sent one, and must
    be the same; when it did not (the client's only registered URI was used), it may be left out."""
    if record.redirect_uri:
        if redirect_uri is None:
            raise OAuthError("invalid_grant", "redirect_uri is required: the authorization request sent one")
        if redirect_uri != record.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the one of the authorization request")
    elif redirect_uri is not None and redirect_uri not in client.redirect_uris[:1]:
        raise OAuthError("invalid_grant", "redirect_uri differs from the one the code was issued for")
