"""One configuration snapshot's view of token validation (:class:`OAuthView`): authorization
servers with their verifiers and introspectors, issuers, and which application each client id /
strategy belongs to. Built by :class:`portico.oauth.runtime.OAuthRuntime`.

Which tokens go where (so a token is shown only to the server that issued it):

- a JWT is routed by its ``iss``: the server with that issuer verifies it (or introspects it, when
  it has no local introspection); an unknown issuer is refused without any outbound call;
- an opaque token is looked up in the local token table, then introspected by the EXTERNAL servers
  that can identify an application (one of its strategies names a client of that server), or only
  by the servers the caller names; in name order, each negative answer cached for
  ``PORTICO_OAUTH_INACTIVE_CACHE_SECONDS`` (default 30 s).

ID tokens are not access tokens (:func:`portico.oauth.validate.is_id_token`); they identify
applications only through :meth:`OAuthView.identify_id_token`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from portico.oauth.local_tokens import LocalTokens
from portico.oauth.validate import (
    MAX_TOKEN_BYTES,
    JwtVerifier,
    RemoteIntrospector,
    TokenError,
    VerifiedToken,
    audiences,
    b64json,
    is_access_type,
    is_id_token,
)


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
    client_id: str = ""  # the strategy's client, when it names one: only that client's tokens

    def accepts(self, verified: VerifiedToken) -> bool:
        if self.client_id and self.client_id != verified.client_id:
            return False
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

    async def _verify(self, server: ServerView, token: str, check_audience: bool = True) -> VerifiedToken:
        if server.verifier is None:
            raise TokenError("issuer", f"authorization server {server.name!r} does not verify JWTs locally")
        return await server.verifier.verify(token, check_audience=check_audience)

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
        verified = await self._verify(server, token, check_audience=False)  # its aud is a client id
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
        """Applications with a JWT/OpenID strategy on ``server`` whose audience ``verified`` carries
        (and whose client it is, when the strategy names a client)."""
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
