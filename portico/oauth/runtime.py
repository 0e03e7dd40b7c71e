"""What the gateway uses to validate tokens, compiled from the configuration.

:class:`OAuthRuntime` is long-lived (one per process, in ``Services``): it keeps verifiers, JWKS
key caches, introspection caches and outbound HTTP clients across configuration snapshots, reusing
each as long as its configuration is unchanged (a policy edit must not throw away the verified-token
cache or fetch every JWKS again). Outbound clients are keyed by the versions (revision and creation
time) of the keystore and truststore they were built from, so replacing a store, or deleting it and
uploading it again under the same name, is seen at the next snapshot. Every cache is bounded (least
recently used go first). :meth:`OAuthRuntime.compile` makes one snapshot's
:class:`~portico.oauth.view.OAuthView` (which tokens go to which server is described there).
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from joserfc.jwk import ECKey, RSAKey

from portico.oauth.clients import Strategy
from portico.oauth.config import AuthServer, open_secret
from portico.oauth.local_tokens import LOCAL_CACHE_SECONDS, LocalTokens, Lru
from portico.oauth.tokens import TokenStore
from portico.oauth.validate import AnyKey, JwksKeys, JwtVerifier, RemoteIntrospector, StaticKeys, import_jwks
from portico.oauth.view import Binding, Identified, OAuthView, ServerView
from portico.security.keystore import KEYSTORE, TRUSTSTORE, client_context_for, open_store
from portico.security.keystore.records import KeystoreUnavailable, store_version, unseal
from portico.security.secrets import SecretBox
from portico.store import Store, StoreTransaction

log = logging.getLogger("portico.oauth")
SERVICE = "oauth"
EXTRAS = "oauth"
CACHE_CAPACITY = 64  # verifiers, JWKS sources, introspectors, clients kept across snapshots
RETIRED_CLIENT_GRACE = 120.0  # seconds an outbound client replaced by a new one stays open
JWT_TYPES = ("JWT_RSA", "OPENID_CONNECT_RSA")


def jwks_min_refresh() -> float:
    return float(os.environ.get("PORTICO_JWKS_MIN_REFRESH_SECONDS", "30"))


def jwks_max_age() -> float:
    return float(os.environ.get("PORTICO_JWKS_MAX_AGE_SECONDS", "3600"))


def inactive_cache_seconds() -> float:
    return float(os.environ.get("PORTICO_OAUTH_INACTIVE_CACHE_SECONDS", "30"))


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
        """The outbound client's identity: the stores it uses and their versions (a truststore or
        keystore replaced, or deleted and uploaded again under the same name, makes a new client)."""
        ssl_cfg = server.sslConfig
        key: list[Any] = []
        for kind, name in ((TRUSTSTORE, ssl_cfg.trustStoreAlias), (KEYSTORE, ssl_cfg.keyStoreAlias)):
            key += [name, await store_version(tx, kind, name)]
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
        if self.local_tokens is not None:
            self.local_tokens.forget()  # grants revoked with this configuration change show at once
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
                    jwt_apps.setdefault(strategy.authServerAlias, []).append(
                        Binding(app_id, strategy.audience, strategy.client_id or ""))
        view.bindings = {k: tuple(dict.fromkeys(v)) for k, v in clients.items()}
        view.jwt_bindings = {k: tuple(dict.fromkeys(v)) for k, v in jwt_apps.items()}
        return view


__all__ = ["EXTRAS", "LOCAL_CACHE_SECONDS", "SERVICE", "Binding", "Identified", "LocalTokens", "OAuthRuntime",
           "OAuthView", "ServerView", "key_of_certificate", "trusted_certificate"]
