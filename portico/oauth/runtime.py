"""What the gateway uses to validate tokens, compiled from the configuration.

:class:`OAuthRuntime` is long-lived (one per process, in ``Services``): it keeps verifiers, JWKS
key caches, introspection caches and outbound HTTP clients across configuration snapshots, reusing
each as long as its configuration is unchanged (a policy edit must not throw away the verified-token
cache or fetch every JWKS again). :class:`OAuthView` is one snapshot's read-only view: issuers,
authorization servers, and which application each client id / strategy belongs to.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from joserfc.jwk import ECKey, RSAKey

from portico.oauth.clients import Strategy
from portico.oauth.config import AuthServer, open_secret
from portico.oauth.tokens import TokenStore
from portico.oauth.validate import (
    MAX_TOKEN_BYTES,
    AnyKey,
    JwksKeys,
    JwtVerifier,
    RemoteIntrospector,
    StaticKeys,
    TokenError,
    VerifiedToken,
    b64json,
    import_jwks,
)
from portico.security.keystore import TRUSTSTORE, client_context_for, open_store
from portico.security.keystore.records import KeystoreUnavailable, unseal
from portico.security.secrets import SecretBox
from portico.store import Store, StoreTransaction

log = logging.getLogger("portico.oauth")
SERVICE = "oauth"
EXTRAS = "oauth"
LOCAL_CACHE_SECONDS = 5.0  # how long a local token lookup is trusted (revocation shows after this)


def jwks_min_refresh() -> float:
    return float(os.environ.get("PORTICO_JWKS_MIN_REFRESH_SECONDS", "30"))


async def trusted_certificate(tx: StoreTransaction, box: SecretBox, truststore: str, alias: str) -> x509.Certificate:
    row = await tx.get(TRUSTSTORE, truststore)
    if row is None:
        raise KeystoreUnavailable(f"truststore {truststore!r} does not exist")
    secrets = unseal(box, TRUSTSTORE, row.body)
    opened = open_store(secrets.data, row.body["keyStoreType"], secrets.password)
    for name, cert in opened.trusted.items():
        if name == alias or name.lower() == alias.lower():
            return cert
    raise KeystoreUnavailable(f"truststore {truststore!r} has no certificate {alias!r} "
                              f"(it has: {', '.join(opened.trusted) or 'none'})")


def key_of_certificate(cert: x509.Certificate) -> AnyKey:
    public = cert.public_key()
    try:
        return RSAKey.import_key(public)  # type: ignore[arg-type]
    except Exception:
        return ECKey.import_key(public)  # type: ignore[arg-type]


@dataclass
class ServerView:
    """One authorization server as the gateway sees it."""

    name: str
    local: bool
    verifier: JwtVerifier | None  # local introspection (JWTs)
    introspector: RemoteIntrospector | None  # remote introspection (opaque tokens)
    scopes: frozenset[str] = frozenset()


@dataclass
class Identified:
    """A validated token and the applications it identifies."""

    server: str
    token: VerifiedToken
    application_ids: tuple[str, ...]


@dataclass
class OAuthView:
    servers: dict[str, ServerView] = field(default_factory=dict)
    by_issuer: dict[str, ServerView] = field(default_factory=dict)
    # (server name, client id) -> application ids whose strategies use that client
    client_apps: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    # server name -> application ids with a JWT/OpenID strategy on that server
    jwt_apps: dict[str, tuple[str, ...]] = field(default_factory=dict)
    local_tokens: LocalTokens | None = None

    async def verify_jwt(self, token: str) -> tuple[ServerView, VerifiedToken]:
        """A JWT from any configured issuer with local introspection (chosen by its ``iss``)."""
        issuer = _unverified_issuer(token)
        server = self.by_issuer.get(issuer or "")
        if server is None or server.verifier is None:
            raise TokenError("issuer", f"no authorization server is configured for issuer {issuer!r}")
        return server, await server.verifier.verify(token)

    async def identify_oauth2(self, token: str) -> Identified:
        """An OAuth2 access token: a JWT checked locally, a local opaque token looked up, or an
        external opaque token introspected remotely; then its client id mapped to applications."""
        if token.count(".") == 2:
            try:
                server, jwt_token = await self.verify_jwt(token)
                return self._identified(server.name, jwt_token)
            except TokenError as exc:
                if exc.key != "issuer":
                    raise
        if self.local_tokens is not None:
            local = await self.local_tokens.lookup(token)
            if local is not None:
                return self._identified("local", local)
        last: TokenError | None = None
        for server in self.servers.values():
            if server.introspector is None:
                continue
            try:
                return self._identified(server.name, await server.introspector.introspect(token))
            except TokenError as exc:
                last = exc
        raise last or TokenError("inactive", "the access token is not known to any authorization server")

    def _identified(self, server: str, verified: VerifiedToken) -> Identified:
        apps = self.client_apps.get((server, verified.client_id or ""), ())
        return Identified(server, verified, apps)


def _unverified_issuer(token: str) -> str | None:
    """The ``iss`` claim before any check: only to choose the verifier that then checks everything."""
    if len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
        return None
    try:
        claims = b64json(token.split(".")[1])
    except Exception:
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss if isinstance(iss, str) else None


class LocalTokens:
    """Opaque access tokens of the local server, looked up in the token table (briefly cached)."""

    def __init__(self, tokens: TokenStore, issuer: str) -> None:
        self.tokens = tokens
        self.issuer = issuer
        self._cache: dict[str, tuple[float, VerifiedToken | None]] = {}

    async def lookup(self, token: str) -> VerifiedToken | None:
        now = time.time()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return _still_valid(hit[1], now)
        record = await self.tokens.find_access(token)
        verified: VerifiedToken | None = None
        if record is not None:
            if not record.active(int(now * 1000)):
                raise TokenError("expired" if not record.revoked else "inactive",
                                 "the access token was revoked" if record.revoked else "the access token has expired")
            exp = record.expires_at / 1000 if record.expires_at is not None else None
            claims = {"active": True, "client_id": record.client_id, "sub": record.owner_id, "scope": record.scope,
                      "iss": self.issuer, "exp": int(exp) if exp else None, "token_type": "Bearer"}
            verified = VerifiedToken(claims=claims, issuer=self.issuer, subject=record.owner_id,
                                     client_id=record.client_id, scopes=frozenset(record.scope.split()),
                                     expires_at=exp)
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[token] = (now + LOCAL_CACHE_SECONDS, verified)
        return verified


def _still_valid(verified: VerifiedToken | None, now: float) -> VerifiedToken | None:
    if verified is not None and verified.expires_at is not None and verified.expires_at <= now:
        raise TokenError("expired", "the access token has expired")
    return verified


class OAuthRuntime:
    """Long-lived validators, reused while their configuration is unchanged."""

    def __init__(self, store: Store | None, box: SecretBox | None) -> None:
        self.store = store
        self.box = box
        self._verifiers: dict[Any, JwtVerifier] = {}
        self._jwks: dict[Any, JwksKeys] = {}
        self._introspectors: dict[Any, RemoteIntrospector] = {}
        self._clients: dict[Any, httpx.AsyncClient] = {}
        self.local_tokens = LocalTokens(TokenStore(store), "") if store is not None else None

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def http_client(self, server: AuthServer) -> httpx.AsyncClient:
        ssl_cfg = server.sslConfig
        key = (ssl_cfg.trustStoreAlias, ssl_cfg.keyStoreAlias, ssl_cfg.keyAlias)
        client = self._clients.get(key)
        if client is None:
            verify: ssl.SSLContext | bool = True
            if self.store is not None and self.box is not None and any(key):
                verify = await client_context_for(self.store, self.box, ssl_cfg.trustStoreAlias,
                                                  ssl_cfg.keyStoreAlias, ssl_cfg.keyAlias)
            client = self._clients[key] = httpx.AsyncClient(verify=verify, timeout=10.0, follow_redirects=False)
        return client

    def _fetcher(self, client: httpx.AsyncClient) -> Any:
        async def fetch(url: str) -> Any:
            response = await client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()

        return fetch

    async def local_view(self, tx: StoreTransaction, server: AuthServer) -> ServerView:
        from portico.oauth.signing import jwks

        if self.box is None:  # a snapshot built without the node's secrets (tests): no local keys
            return ServerView(server.name, True, None, None)
        document = await jwks(tx, self.box)
        keys = import_jwks(document)
        issuer = server.localIntrospectionConfig.issuer
        fingerprint = ("local", issuer, tuple(sorted(keys)), server.clock_skew)
        verifier = self._verifiers.get(fingerprint)
        if verifier is None:
            verifier = self._verifiers[fingerprint] = JwtVerifier(issuer=issuer, keys=StaticKeys(keys),
                                                                  leeway=server.clock_skew)
        if self.local_tokens is not None:
            self.local_tokens.issuer = issuer
        return ServerView(server.name, True, verifier, None, frozenset(s.name for s in server.scopes))

    async def external_view(self, tx: StoreTransaction, server: AuthServer) -> ServerView:
        local = server.localIntrospectionConfig
        verifier: JwtVerifier | None = None
        fingerprint: tuple[Any, ...]
        if local.jwksuri:
            client = await self.http_client(server)
            jwks_key = (local.jwksuri, server.sslConfig.trustStoreAlias)
            keys = self._jwks.get(jwks_key)
            if keys is None:
                keys = self._jwks[jwks_key] = JwksKeys(local.jwksuri, self._fetcher(client),
                                                       min_refresh=jwks_min_refresh())
            fingerprint = ("jwks", server.name, local.issuer, jwks_key, local.clockSkew)
            verifier = self._verifiers.get(fingerprint)
            if verifier is None:
                verifier = self._verifiers[fingerprint] = JwtVerifier(issuer=local.issuer, keys=keys,
                                                                      leeway=local.clockSkew)
        elif local.trustStoreAlias and local.certificateAlias and self.box is not None:
            cert = await trusted_certificate(tx, self.box, local.trustStoreAlias, local.certificateAlias)
            fingerprint = ("cert", server.name, local.issuer, cert.fingerprint(hashes.SHA256()), local.clockSkew)
            verifier = self._verifiers.get(fingerprint)
            if verifier is None:
                verifier = self._verifiers[fingerprint] = JwtVerifier(
                    issuer=local.issuer, keys=StaticKeys(default=key_of_certificate(cert)), leeway=local.clockSkew)
        introspector: RemoteIntrospector | None = None
        remote = server.remoteIntrospectionConfig
        if remote.introspectionEndpoint and self.box is not None:
            secret = open_secret(self.box, server, "introspectionSecret", remote.clientSecret) or ""
            fingerprint = (server.name, remote.introspectionEndpoint, remote.clientId, secret,
                           server.sslConfig.trustStoreAlias)
            introspector = self._introspectors.get(fingerprint)
            if introspector is None:
                introspector = self._introspectors[fingerprint] = RemoteIntrospector(
                    remote.introspectionEndpoint, remote.clientId, secret, await self.http_client(server))
        return ServerView(server.name, False, verifier, introspector, frozenset(s.name for s in server.scopes))

    async def compile(self, tx: StoreTransaction, servers: list[AuthServer], strategies: list[Strategy],
                      apps: list[tuple[str, list[str]]]) -> OAuthView:
        view = OAuthView(local_tokens=self.local_tokens)
        for server in servers:
            try:
                sv = await (self.local_view(tx, server) if server.is_local else self.external_view(tx, server))
            except Exception as exc:  # one unusable server must not stop the others
                log.error("authorization server %s cannot validate tokens: %s", server.name, exc)
                continue
            view.servers[server.name] = sv
            if sv.verifier is not None:
                view.by_issuer.setdefault(sv.verifier.issuer, sv)
        by_strategy = {s.id: s for s in strategies}
        clients: dict[tuple[str, str], list[str]] = {}
        jwt_apps: dict[str, list[str]] = {}
        for app_id, strategy_ids in apps:
            for sid in strategy_ids:
                strategy = by_strategy.get(sid)
                if strategy is None:
                    continue
                if strategy.client_id:
                    clients.setdefault((strategy.authServerAlias, strategy.client_id), []).append(app_id)
                if strategy.type in ("JWT_RSA", "OPENID_CONNECT_RSA"):
                    jwt_apps.setdefault(strategy.authServerAlias, []).append(app_id)
        view.client_apps = {k: tuple(dict.fromkeys(v)) for k, v in clients.items()}
        view.jwt_apps = {k: tuple(dict.fromkeys(v)) for k, v in jwt_apps.items()}
        return view

