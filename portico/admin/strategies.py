"""``/strategies``: how applications authenticate with OAuth2, JWT and OpenID Connect
(APIGatewayApplication.json; issue 5).

- On ``local``: an OAuth2/OpenID strategy needs ``dcrConfig``; Portico generates the client id and
  secret (shown in full in the answers of POST and ``refreshCredentials``, masked elsewhere).
- On an EXTERNAL server: with ``dcrConfig`` the client is registered there through the server's
  DCR provider (changes of the registered fields are sent there too, ``PUT {endpoint}/{client_id}``);
  without it ``clientId`` names an existing client of that server.
- A strategy belongs to at most one application (``authStrategyIds``); one an application lists
  cannot be deleted. With team work on, a strategy is visible as its application is (404
  otherwise); one no application lists yet is visible to its creator and to administrators.
- Tokens do not outlive their client: deleting a local strategy revokes its client's tokens, and
  ``refreshCredentials`` revokes the tokens issued with the old secret.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import teams
from portico.admin.common import json_response, read_object
from portico.admin.context import AdminContext, context_of
from portico.admin.errors import ApiError, not_found
from portico.domain import teams as dt
from portico.oauth import dcr
from portico.oauth.clients import JWT_TYPES, KIND, Strategy, parse_strategy, registration, stored_body, wire
from portico.oauth.config import AUTH_SERVER, LOCAL_ID, PROVIDER, AuthServer, ConfigError, Provider, default_local
from portico.oauth.runtime import OAuthRuntime
from portico.oauth.tokens import TokenStore
from portico.security.secrets import SecretBox
from portico.store import StoreTransaction
from portico.store.db import AssetRow, now_ms

log = logging.getLogger("portico.oauth")


def _box(ctx: AdminContext) -> SecretBox:
    box: SecretBox = ctx.extras["secrets"]
    return box


async def _server(tx: StoreTransaction, name: str) -> AuthServer:
    for row in await tx.list("alias"):
        if row.body.get("type") == AUTH_SERVER and row.body.get("name") == name:
            return AuthServer.model_validate(row.body)
    if name == LOCAL_ID:
        return default_local()
    raise ApiError(400, f"field 'authServerAlias': no authorization server named {name!r}")


async def _provider(tx: StoreTransaction, name: str) -> Provider:
    for row in await tx.list("alias"):
        if row.body.get("type") == PROVIDER and name in (row.body.get("name"), row.body.get("providerName")):
            return Provider.model_validate(row.body)
    raise ApiError(400, f"the authorization server's provider {name!r} does not exist")


# -- visibility (team work) -----------------------------------------------------------------------


def _owners(apps: Iterable[AssetRow]) -> dict[str, AssetRow]:
    """Strategy id -> the application that lists it."""
    found: dict[str, AssetRow] = {}
    for row in apps:
        for sid in row.body.get("authStrategyIds") or []:
            if isinstance(sid, str):
                found.setdefault(sid, row)
    return found


async def _visible(request: Request, tx: StoreTransaction, strategy: Strategy, app: AssetRow | None) -> bool:
    """As its application; without one, to its creator and to those who see every asset."""
    if app is not None:
        return await teams.is_visible(request, tx, app)
    principal = teams.principal_of(request)
    if principal is None or dt.sees_all(principal.teams) or not await teams.team_work_enabled(tx):
        return True
    return bool(strategy.owner) and strategy.owner in (principal.login_id, principal.user_id)


async def _load(request: Request, tx: StoreTransaction, strategy_id: str) -> tuple[Strategy, int]:
    """The strategy, 404 when unknown or not visible to the caller."""
    row = await tx.get(KIND, strategy_id)
    if row is None:
        raise not_found("strategy", strategy_id)
    strategy = Strategy.model_validate(row.body)
    app = _owners(await tx.list("application")).get(strategy_id)
    if not await _visible(request, tx, strategy, app):
        raise not_found("strategy", strategy_id)
    return strategy, row.revision


async def check_strategy_ids(request: Request, tx: StoreTransaction, app_id: str, ids: list[str],
                             previous: list[str]) -> None:
    """An application's ``authStrategyIds``: each names an existing strategy (one newly added must be
    visible to the caller), and no other application lists it (a strategy's client identifies one
    application)."""
    owners = _owners(r for r in await tx.list("application") if r.id != app_id)
    for sid in dict.fromkeys(ids):
        row = await tx.get(KIND, sid)
        strategy = Strategy.model_validate(row.body) if row is not None else None
        if strategy is None or (sid not in previous and not await _visible(request, tx, strategy, owners.get(sid))):
            raise ApiError(400, f"field 'authStrategyIds': unknown strategy id {sid!r}")
        other = owners.get(sid)
        if other is not None:
            named = repr(other.body.get("name", other.id)) if await teams.is_visible(request, tx, other) \
                else "another application"
            raise ApiError(409, f"field 'authStrategyIds': strategy {strategy.name!r} already belongs to "
                                f"application {named}; a strategy belongs to one application")


# -- checks and registration ----------------------------------------------------------------------


def _parse(data: dict[str, object], strategy_id: str) -> Strategy:
    try:
        return parse_strategy(dict(data), strategy_id)
    except ConfigError as exc:
        raise ApiError(400, str(exc)) from None


async def _check(tx: StoreTransaction, strategy: Strategy, server: AuthServer) -> None:
    for row in await tx.list(KIND):
        if row.id == strategy.id:
            continue
        if row.body.get("name") == strategy.name:
            raise ApiError(400, f"field 'name': a strategy named {strategy.name!r} already exists")
        other = Strategy.model_validate(row.body)
        if strategy.client_id and other.client_id == strategy.client_id and other.authServerAlias == server.name:
            raise ApiError(400, f"field 'clientId': client {strategy.client_id!r} of {server.name!r} is already "
                                f"used by strategy {other.name!r}")
    dcr_cfg = strategy.dcrConfig
    if strategy.type in JWT_TYPES:
        return
    if dcr_cfg is None:
        if server.is_local:
            raise ApiError(400, "field 'dcrConfig' is required for an OAuth2/OpenID strategy on 'local': "
                                "Portico registers the client and generates its credentials")
        if not strategy.clientId:
            raise ApiError(400, "field 'clientId' is required without dcrConfig (the id of an existing client "
                                f"of {server.name!r})")
        return
    if "authorization_code" in dcr_cfg.allowedGrantTypes and not dcr_cfg.redirectUris:
        raise ApiError(400, "field 'dcrConfig.redirectUris': the authorization_code grant needs at least one "
                            "redirect URI")
    if server.is_local and server.scopes:
        known = {s.name for s in server.scopes} | {"openid"}
        unknown = [s for s in dcr_cfg.scopes if s not in known]
        if unknown:
            raise ApiError(400, f"field 'dcrConfig.scopes': {unknown[0]!r} is not a scope of 'local' "
                                f"(scopes: {', '.join(sorted(known))})")
    if not server.is_local and (server.dcrEndpoint is None or not server.providerName):
        raise ApiError(400, f"field 'dcrConfig': authorization server {server.name!r} has no dynamic client "
                            "registration configured (dcrEndpoint and providerName)")


def _runtime(ctx: AdminContext) -> OAuthRuntime:
    from portico.gateway.parts.oauth import runtime_of

    return runtime_of(ctx.extras["services"])


async def _register(ctx: AdminContext, strategy: Strategy, server: AuthServer, provider: Provider | None,
                    ) -> str | None:
    """Give ``strategy`` its client; the plain secret, when one was made."""
    if strategy.type in JWT_TYPES or strategy.dcrConfig is None:
        strategy.clientRegistration = None
        strategy.sealedClientSecret = None
        return None
    lifetime = server.tokenGeneratorConfig.accessTokenExpInterval
    if server.is_local:
        secret = None if strategy.dcrConfig.clientType == "PUBLIC" else secrets.token_urlsafe(32)
        registration(strategy, str(uuid.uuid4()), _box(ctx), secret, lifetime)
        return secret
    assert provider is not None
    try:
        client_id, secret = await dcr.register(server, provider, strategy, _box(ctx),
                                               await _runtime(ctx).http_client(server))
    except ConfigError as exc:
        raise ApiError(400, f"dynamic client registration failed: {exc}") from None
    registration(strategy, client_id, _box(ctx), secret, lifetime)
    return secret


async def _push_update(ctx: AdminContext, current: Strategy, strategy: Strategy, server: AuthServer,
                       provider: Provider | None) -> None:
    """Send what changed in a registered client's metadata to its EXTERNAL server first: a refusal
    there leaves the strategy as it was (400)."""
    if server.is_local or provider is None or current.dcrConfig is None or strategy.dcrConfig is None \
            or not current.client_id:
        return
    if dcr.registration_request(provider, current, None) == dcr.registration_request(provider, strategy, None):
        return
    try:
        await dcr.update(server, provider, strategy, _box(ctx), current.client_id,
                         await _runtime(ctx).http_client(server))
    except ConfigError as exc:
        raise ApiError(400, f"field 'dcrConfig': the authorization server did not take the change: {exc}") from None


async def _forget_client(ctx: AdminContext, server: AuthServer, strategy: Strategy, client_id: str | None) -> None:
    """After a strategy's client was dropped (commit done): its local tokens are revoked; an
    EXTERNAL registration is deleted there (a failure is logged: the strategy is gone already)."""
    if not client_id:
        return
    if server.is_local:
        revoked = await TokenStore(ctx.store).revoke_client(client_id)
        if revoked:
            log.info("revoked %d token(s) of client %s (strategy %r)", revoked, client_id, strategy.name)
        return
    if strategy.dcrConfig is None:
        return
    problem = await dcr.unregister(server, _box(ctx), client_id, await _runtime(ctx).http_client(server))
    if problem:
        log.warning("client %s of strategy %r could not be deleted at %s: %s", client_id, strategy.name,
                    server.name, problem)


# -- endpoints ------------------------------------------------------------------------------------


async def list_strategies(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        rows = await tx.list(KIND)
        owners = _owners(await tx.list("application"))
        shown = []
        for row in rows:
            strategy = Strategy.model_validate(row.body)
            if await _visible(request, tx, strategy, owners.get(row.id)):
                shown.append(wire(strategy))
    return json_response({"strategies": shown})


async def get_strategy(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        strategy, _ = await _load(request, tx, request.path_params["strategyId"])
    return json_response({"strategy": wire(strategy)})


async def _prepare(ctx: AdminContext, strategy: Strategy) -> tuple[AuthServer, Provider | None]:
    async with ctx.store.read() as tx:
        server = await _server(tx, strategy.authServerAlias)
        await _check(tx, strategy, server)
        provider = await _provider(tx, server.providerName) if (not server.is_local and strategy.dcrConfig
                                                                and server.providerName) else None
    return server, provider


async def create_strategy(request: Request) -> Response:
    ctx = context_of(request)
    strategy = _parse(await read_object(request, envelope="strategy"), str(uuid.uuid4()))
    principal = getattr(request.state, "principal", None)
    strategy.owner = principal.login_id if principal is not None else ""
    strategy.created = now_ms()
    server, provider = await _prepare(ctx, strategy)
    secret = await _register(ctx, strategy, server, provider)  # may call the external server: outside the tx
    async with ctx.store.transaction() as tx:
        await _check(tx, strategy, server)
        await tx.insert(KIND, strategy.id, stored_body(strategy), name=strategy.name)
    ctx.notify_change()
    return json_response({"strategy": wire(strategy, secret)})


async def update_strategy(request: Request) -> Response:
    """Name, description, audience, ``clientId`` (without DCR) and the client's settings; the
    registered client id and secret stay (``refreshCredentials`` makes a new secret)."""
    ctx = context_of(request)
    data = await read_object(request, envelope="strategy")
    strategy_id = request.path_params["strategyId"]
    async with ctx.store.read() as tx:
        current, _ = await _load(request, tx, strategy_id)
    strategy = _parse(data, strategy_id)
    if strategy.authServerAlias != current.authServerAlias:
        raise ApiError(400, "field 'authServerAlias': a strategy's authorization server cannot change; "
                            "create another strategy")
    if (strategy.dcrConfig is None) != (current.dcrConfig is None):
        raise ApiError(400, "field 'dcrConfig': a strategy cannot switch between a registered and an existing "
                            "client; create another strategy")
    strategy.owner, strategy.created = current.owner, current.created
    server, provider = await _prepare(ctx, strategy)
    if current.clientRegistration and strategy.dcrConfig is not None:
        client_id = str(current.clientRegistration["clientId"])
        sealed = current.sealedClientSecret
        registration(strategy, client_id, _box(ctx), None, server.tokenGeneratorConfig.accessTokenExpInterval)
        strategy.sealedClientSecret = sealed
    await _push_update(ctx, current, strategy, server, provider)
    async with ctx.store.transaction() as tx:
        _, revision = await _load(request, tx, strategy_id)
        await _check(tx, strategy, server)
        await tx.update(KIND, strategy_id, stored_body(strategy), revision, name=strategy.name)
    ctx.notify_change()
    return json_response({"strategy": wire(strategy)})


async def refresh_credentials(request: Request) -> Response:
    """A new client secret (local: tokens issued before are revoked), or a new registration
    (EXTERNAL with DCR: the old client is deleted there once the new one is stored)."""
    ctx = context_of(request)
    strategy_id = request.path_params["strategyId"]
    async with ctx.store.read() as tx:
        strategy, _ = await _load(request, tx, strategy_id)
        server = await _server(tx, strategy.authServerAlias)
        provider = await _provider(tx, server.providerName) if (not server.is_local and server.providerName) \
            else None
    if strategy.dcrConfig is None or not strategy.clientRegistration:
        raise ApiError(400, "refreshCredentials applies only to strategies whose client was registered by Portico "
                            "(dcrConfig)")
    old = strategy.model_copy(deep=True)
    old_client = str(strategy.clientRegistration["clientId"])
    if server.is_local:
        secret = None if strategy.dcrConfig.clientType == "PUBLIC" else secrets.token_urlsafe(32)
        registration(strategy, old_client, _box(ctx), secret, server.tokenGeneratorConfig.accessTokenExpInterval)
    else:
        secret = await _register(ctx, strategy, server, provider)
    async with ctx.store.transaction() as tx:
        _, revision = await _load(request, tx, strategy_id)
        await tx.update(KIND, strategy_id, stored_body(strategy), revision, name=strategy.name)
    ctx.notify_change()
    await _forget_client(ctx, server, old, old_client)
    return json_response({"strategy": wire(strategy, secret)})


async def delete_strategy(request: Request) -> Response:
    ctx = context_of(request)
    strategy_id = request.path_params["strategyId"]
    async with ctx.store.transaction() as tx:
        strategy, _ = await _load(request, tx, strategy_id)
        for row in await tx.list("application"):
            if strategy_id in (row.body.get("authStrategyIds") or []):
                raise ApiError(400, f"strategy {strategy.name!r} is used by application "
                                    f"{row.body.get('name', row.id)!r}; remove it from authStrategyIds first")
        server = await _server(tx, strategy.authServerAlias)
        await tx.delete(KIND, strategy_id)
    ctx.notify_change()
    await _forget_client(ctx, server, strategy, strategy.client_id)
    return Response(status_code=204)


routes = [
    Route("/strategies", list_strategies, methods=["GET"]),
    Route("/strategies", create_strategy, methods=["POST"]),
    Route("/strategies/{strategyId}", get_strategy, methods=["GET"]),
    Route("/strategies/{strategyId}", update_strategy, methods=["PUT"]),
    Route("/strategies/{strategyId}", delete_strategy, methods=["DELETE"]),
    Route("/strategies/{strategyId}/refreshCredentials", refresh_credentials, methods=["PUT"]),
]
