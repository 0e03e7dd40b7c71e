"""What the gateway uses to validate tokens, compiled from the configuration.

:class:`OAuthRuntime` is long-lived (one per process, in ``Services``): it keeps verifiers, JWKS
key caches, introspection caches and outbound HTTP clients across configuration snapshots, reusing
each as long as its configuration is unchanged (a policy edit must not throw away the verified-token
cache or fetch every JWKS again). Outbound clients are keyed by the revisions of the keystore and
truststore they were built from, so replacing a store is seen at the next snapshot. Every cache is
bounded (least recently used go first). :class:`OAuthView` is one snapshot's read-only view:
issuers, authorization servers, and which application each client id / strategy belongs to.

Which tokens go where (so a token is shown only to the server that issued it):

- a JWT is routed by its ``iss``: the server with that issuer verifies it (or introspects it, when
  it has no local introspection); an unknown issuer is refused without any outbound call;
- an opaque token is looked up in the local token table, then introspected by the EXTERNAL servers
  that can identify an application (one of its strategies names a client of that server), or only
  by the servers the caller names; in name order, each negative answer cached for
  ``PORTICO_OAUTH_INACTIVE_CACHE_SECONDS`` (default 30 s).
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

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
    audiences,
    b64json,
    import_jwks,
    is_access_type,
    is_id_token,
)
from portico.security.keystore import KEYSTORE, TRUSTSTORE, client_context_for, open_store
from portico.security.keystore.records import KeystoreUnavailable, unseal
from portico.security.secrets import SecretBox
from portico.store import Store, StoreTransaction

log = logging.getLogger("portico.oauth")
SERVICE = "oauth"
EXTRAS = "oauth"
LOCAL_CACHE_SECONDS = 5.0  # how long a local token lookup is trusted (revocation shows after this)
CACHE_CAPACITY = 64  # verifiers, JWKS sources, introspectors, clients kept across snapshots
LOOKUP_CAPACITY = 50_000  # local token lookups remembered
RETIRED_CLIENT_GRACE = 120.0  # seconds an outbound client replaced by a new one stays open
JWT_TYPES = ("JWT_RSA", "OPENID_CONNECT_RSA")
K = TypeVar("K")
V = TypeVar("V")


def jwks_min_refresh() -> float:
    return float(os.environ.get("PORTICO_JWKS_MIN_REFRESH_SECONDS", "30"))


def jwks_max_age() -> float:
    return float(os.environ.get("PORTICO_JWKS_MAX_AGE_SECONDS", "3600"))


def inactive_cache_seconds() -> float:
    return float(os.environ.get("PORTICO_OAUTH_INACTIVE_CACHE_SECONDS", "30"))


class Lru(Generic[K, V]):
    """A bounded mapping; the least recently used entry goes first (``evicted`` collects them)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()
        self.evicted: list[V] = []

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self.evicted.append(self._items.popitem(last=False)[1])
        return value

    def values(self) -> list[V]:
        return list(self._items.values())

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


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
    issuer: str = ""


@dataclass(frozen=True)
class Binding:
    """An application's strategy on a server: the application and the audience it requires."""

    app_id: str
    audience: str = ""

    def accepts(self, verified: VerifiedToken) -> bool:
        return not self.audience or self.audience in audiences(verified.claims)


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
    # (server name, client id) -> the applications whose strategies use that client
    bindings: dict[tuple[str, str], tuple[Binding, ...]] = field(default_factory=dict)
    # server name -> the applications with a JWT/OpenID strategy on that server
    jwt_bindings: dict[str, tuple[Binding, ...]] = field(default_factory=dict)
    local_clients: frozenset[str] = frozenset()  # client ids of the local server's strategies
    local_tokens: LocalTokens | None = None

    @property
    def client_apps(self) -> dict[tuple[str, str], tuple[str, ...]]:
        return {key: tuple(b.app_id for b in value) for key, value in self.bindings.items()}

    def _server_for(self, token: str) -> ServerView:
        issuer = _unverified_issuer(token)
        server = self.by_issuer.get(issuer or "")
        if server is None:
            raise TokenError("issuer", f"no authorization server is configured for issuer {issuer!r}")
        return server

    async def _verify(self, server: ServerView, token: str) -> VerifiedToken:
        if server.verifier is None:
            raise TokenError("issuer", f"authorization server {server.name!r} does not verify JWTs locally")
        return await server.verifier.verify(token)

    async def verify_jwt(self, token: str) -> tuple[ServerView, VerifiedToken]:
        """A JWT access token from any configured issuer with local introspection (chosen by its
        ``iss``). ID tokens are refused (``token_type``): they prove a login to a client, they do
        not grant API access. The local server issues access JWTs with the ``at+jwt`` type only."""
        server = self._server_for(token)
        verified = await self._verify(server, token)
        _require_access_token(server, verified)
        return server, verified

    async def identify_oauth2(self, token: str, servers: Iterable[str] | None = None) -> Identified:
        """An OAuth2 access token: a JWT checked by its issuer, a local opaque token looked up, or an
        external opaque token introspected remotely (see the module docstring for which servers
        see it); then its client id mapped to applications (whose strategy audience it must carry)."""
        if _unverified_issuer(token) is not None:
            server = self._server_for(token)
            if server.verifier is None and server.introspector is not None:
                return self._identified(server.name, await server.introspector.introspect(token))
            _, verified = await self.verify_jwt(token)
            return self._identified(server.name, verified)
        if self.local_tokens is not None:
            local = await self.local_tokens.lookup(token)
            if local is not None:
                if local.client_id not in self.local_clients:
                    raise TokenError("inactive", "the access token's client no longer exists")
                return self._identified("local", local)
        names = set(servers) if servers is not None else {server for server, _ in self.bindings}
        last: TokenError | None = None
        for name in sorted(names):
            remote = self.servers.get(name)
            if remote is None or remote.introspector is None:
                continue
            try:
                return self._identified(remote.name, await remote.introspector.introspect(token))
            except TokenError as exc:
                last = exc
        raise last or TokenError("inactive", "the access token is not known to any authorization server")

    async def identify_id_token(self, token: str) -> Identified:
        """An OpenID Connect ID token (OpenID identification): verified by its issuer, its ``aud``
        (or ``azp``) a client of an application's strategy on that server. A local ID token's grant
        (``sid``) must not be revoked (seen within the local lookup cache's bound)."""
        server = self._server_for(token)
        verified = await self._verify(server, token)
        # an external ID token may carry none of the claims that mark one; a local one always does
        not_id = is_access_type(verified) or (server.local and not is_id_token(verified))
        if not_id:
            raise TokenError("token_type", "the token is not an ID token")
        clients = [*audiences(verified.claims), verified.claims.get("azp")]
        for client in dict.fromkeys(c for c in clients if isinstance(c, str) and c):
            bound = self.bindings.get((server.name, client))
            if bound:
                if server.local:
                    await self._check_local_grant(client, verified)
                return Identified(server.name, verified, tuple(b.app_id for b in bound))
        return Identified(server.name, verified, ())

    async def _check_local_grant(self, client: str, verified: VerifiedToken) -> None:
        if client not in self.local_clients:
            raise TokenError("inactive", "the ID token's client no longer exists")
        sid = verified.claims.get("sid")
        if self.local_tokens is not None and isinstance(sid, str) and not await self.local_tokens.grant_active(sid):
            raise TokenError("inactive", "the ID token's grant was revoked")

    def _identified(self, server: str, verified: VerifiedToken) -> Identified:
        bound = self.bindings.get((server, verified.client_id or ""), ())
        return Identified(server, verified, tuple(b.app_id for b in bound if b.accepts(verified)))

    def jwt_applications(self, server: str, verified: VerifiedToken) -> tuple[str, ...]:
        """Applications with a JWT/OpenID strategy on ``server`` whose audience ``verified`` carries."""
        return tuple(b.app_id for b in self.jwt_bindings.get(server, ()) if b.accepts(verified))


def _require_access_token(server: ServerView, verified: VerifiedToken) -> None:
    if is_id_token(verified):
        raise TokenError("token_type", "an ID token is not an access token; send the access token")
    if server.local and not is_access_type(verified):
        raise TokenError("token_type", "the local server's access JWTs have the header type at+jwt; this token "
                                       "is not one")


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

    def __init__(self, tokens: TokenStore, issuer: str, audience: str = "") -> None:
        self.tokens = tokens
        self.issuer = issuer
        self.audience = audience
        self._cache: Lru[str, tuple[float, VerifiedToken | None]] = Lru(LOOKUP_CAPACITY)
        self._grants: Lru[str, tuple[float, bool]] = Lru(LOOKUP_CAPACITY)

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
            claims: dict[str, Any] = {"active": True, "client_id": record.client_id, "sub": record.owner_id,
                                      "scope": record.scope, "iss": self.issuer, "exp": int(exp) if exp else None,
                                      "token_type": "Bearer"}
            if self.audience:
                claims["aud"] = self.audience
            verified = VerifiedToken(claims=claims, issuer=self.issuer, subject=record.owner_id,
                                     client_id=record.client_id, scopes=frozenset(record.scope.split()),
                                     expires_at=exp)
        self._cache.put(token, (now + LOCAL_CACHE_SECONDS, verified))
        self._cache.evicted.clear()
        return verified

    async def grant_active(self, grant_id: str) -> bool:
        """Whether the grant ``grant_id`` exists and is not revoked (cached like lookups)."""
        now = time.time()
        hit = self._grants.get(grant_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        record = await self.tokens.get(grant_id)
        active = record is not None and not record.revoked
        self._grants.put(grant_id, (now + LOCAL_CACHE_SECONDS, active))
        self._grants.evicted.clear()
        return active


def _still_valid(verified: VerifiedToken | None, now: float) -> VerifiedToken | None:
    if verified is not None and verified.expires_at is not None and verified.expires_at <= now:
        raise TokenError("expired", "the access token has expired")
    return verified


class OAuthRuntime:
    """Long-lived validators, reused while their configuration is unchanged."""

    def __init__(self, store: Store | None, box: SecretBox | None) -> None:
        self.store = store
        self.box = box
        self._verifiers: Lru[Any, JwtVerifier] = Lru(CACHE_CAPACITY)
        self._jwks: Lru[Any, JwksKeys] = Lru(CACHE_CAPACITY)
        self._introspectors: Lru[Any, RemoteIntrospector] = Lru(CACHE_CAPACITY)
        self._clients: Lru[Any, httpx.AsyncClient] = Lru(CACHE_CAPACITY)
        self._retired: list[tuple[float, httpx.AsyncClient]] = []
        self.local_tokens = LocalTokens(TokenStore(store), "") if store is not None else None

    async def close(self) -> None:
        for client in [*self._clients.values(), *(c for _, c in self._retired), *self._clients.evicted]:
            await client.aclose()
        self._clients.clear()
        self._clients.evicted.clear()
        self._retired.clear()

    async def _client_key(self, server: AuthServer, tx: StoreTransaction) -> tuple[Any, ...]:
        """The outbound client's identity: the stores it uses and their revisions (a replaced
        truststore or keystore makes a new client)."""
        ssl_cfg = server.sslConfig
        key: list[Any] = []
        for kind, name in ((TRUSTSTORE, ssl_cfg.trustStoreAlias), (KEYSTORE, ssl_cfg.keyStoreAlias)):
            row = await tx.get(kind, name) if name else None
            key += [name, row.revision if row is not None else None]
        return (*key, ssl_cfg.keyAlias)

    async def http_client(self, server: AuthServer, tx: StoreTransaction | None = None) -> httpx.AsyncClient:
        if tx is None and self.store is not None:
            async with self.store.read() as read_tx:
                return await self.http_client(server, read_tx)
        key = await self._client_key(server, tx) if tx is not None else ("default",)
        client = self._clients.get(key)
        if client is None:
            ssl_cfg = server.sslConfig
            verify: ssl.SSLContext | bool = True
            if self.store is not None and self.box is not None and (ssl_cfg.trustStoreAlias or ssl_cfg.keyStoreAlias):
                verify = await client_context_for(self.store, self.box, ssl_cfg.trustStoreAlias,
                                                  ssl_cfg.keyStoreAlias, ssl_cfg.keyAlias)
            client = self._clients.put(key, httpx.AsyncClient(verify=verify, timeout=10.0, follow_redirects=False))
            await self._close_retired()
        return client

    async def _close_retired(self) -> None:
        now = time.monotonic()
        self._retired += [(now, c) for c in self._clients.evicted]
        self._clients.evicted.clear()
        keep: list[tuple[float, httpx.AsyncClient]] = []
        for since, client in self._retired:
            if now - since > RETIRED_CLIENT_GRACE:
                await client.aclose()
            else:
                keep.append((since, client))
        self._retired = keep

    def _fetcher(self, client: httpx.AsyncClient) -> Any:
        async def fetch(url: str) -> Any:
            response = await client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()

        return fetch

    def _verifier(self, fingerprint: Any, make: Any) -> JwtVerifier:
        verifier = self._verifiers.get(fingerprint)
        if verifier is None:
            verifier = self._verifiers.put(fingerprint, make())
        self._verifiers.evicted.clear()
        return verifier

    async def local_view(self, tx: StoreTransaction, server: AuthServer) -> ServerView:
        from portico.oauth.signing import jwks

        issuer = server.localIntrospectionConfig.issuer
        audience = server.tokenGeneratorConfig.audience
        if self.local_tokens is not None:
            self.local_tokens.issuer = issuer
            self.local_tokens.audience = audience
        if self.box is None:  # a snapshot built without the node's secrets (tests): no local keys
            return ServerView(server.name, True, None, None, issuer=issuer)
        keys = import_jwks(await jwks(tx, self.box))
        fingerprint = ("local", issuer, tuple(sorted(keys)), server.clock_skew, audience)
        verifier = self._verifier(fingerprint, lambda: JwtVerifier(
            issuer=issuer, keys=StaticKeys(keys), leeway=server.clock_skew, audience=audience or None))
        return ServerView(server.name, True, verifier, None, frozenset(s.name for s in server.scopes), issuer)

    async def external_view(self, tx: StoreTransaction, server: AuthServer) -> ServerView:
        local = server.localIntrospectionConfig
        audience = server.audience or None
        verifier: JwtVerifier | None = None
        if local.jwksuri:
            client_key = await self._client_key(server, tx)
            client = await self.http_client(server, tx)
            jwks_key = (local.jwksuri, client_key)
            keys = self._jwks.get(jwks_key)
            if keys is None:
                keys = self._jwks.put(jwks_key, JwksKeys(local.jwksuri, self._fetcher(client),
                                                         min_refresh=jwks_min_refresh(), max_age=jwks_max_age()))
            self._jwks.evicted.clear()
            jwks_source = keys
            verifier = self._verifier(("jwks", server.name, local.issuer, jwks_key, local.clockSkew, audience),
                                      lambda: JwtVerifier(issuer=local.issuer, keys=jwks_source,
                                                          leeway=local.clockSkew, audience=audience))
        elif local.trustStoreAlias and local.certificateAlias and self.box is not None:
            cert = await trusted_certificate(tx, self.box, local.trustStoreAlias, local.certificateAlias)
            cert_key = ("cert", server.name, local.issuer, cert.fingerprint(hashes.SHA256()), local.clockSkew,
                        audience)
            verifier = self._verifier(cert_key, lambda: JwtVerifier(
                issuer=local.issuer, keys=StaticKeys(default=key_of_certificate(cert)), leeway=local.clockSkew,
                audience=audience))
        introspector: RemoteIntrospector | None = None
        remote = server.remoteIntrospectionConfig
        if remote.introspectionEndpoint and self.box is not None:
            secret = open_secret(self.box, server, "introspectionSecret", remote.clientSecret) or ""
            remote_key = (server.name, remote.introspectionEndpoint, remote.clientId, secret,
                          await self._client_key(server, tx), audience)
            introspector = self._introspectors.get(remote_key)
            if introspector is None:
                introspector = self._introspectors.put(remote_key, RemoteIntrospector(
                    remote.introspectionEndpoint, remote.clientId, secret, await self.http_client(server, tx),
                    inactive_seconds=inactive_cache_seconds(), audience=audience))
            self._introspectors.evicted.clear()
        return ServerView(server.name, False, verifier, introspector, frozenset(s.name for s in server.scopes),
                          local.issuer)

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
            if sv.issuer and (sv.verifier is not None or sv.introspector is not None):
                view.by_issuer.setdefault(sv.issuer, sv)
        by_strategy = {s.id: s for s in strategies}
        view.local_clients = frozenset(s.client_id for s in strategies
                                       if s.authServerAlias == "local" and s.client_id)
        clients: dict[tuple[str, str], list[Binding]] = {}
        jwt_apps: dict[str, list[Binding]] = {}
        for app_id, strategy_ids in apps:
            for sid in strategy_ids:
                strategy = by_strategy.get(sid)
                if strategy is None:
                    continue
                binding = Binding(app_id, strategy.audience)
                if strategy.client_id:
                    clients.setdefault((strategy.authServerAlias, strategy.client_id), []).append(binding)
                if strategy.type in JWT_TYPES:
                    jwt_apps.setdefault(strategy.authServerAlias, []).append(binding)
        view.bindings = {k: tuple(dict.fromkeys(v)) for k, v in clients.items()}
        view.jwt_bindings = {k: tuple(dict.fromkeys(v)) for k, v in jwt_apps.items()}
        return view


__all__ = ["EXTRAS", "SERVICE", "Binding", "Identified", "LocalTokens", "OAuthRuntime", "OAuthView", "ServerView",
           "key_of_certificate", "trusted_certificate"]
