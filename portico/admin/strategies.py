"""``/strategies``: how applications authenticate with OAuth2, JWT and OpenID Connect
(APIGatewayApplication.json; issue 5).

- On ``local``: an OAuth2/OpenID strategy needs ``dcrConfig``; Portico generates the client id and
  secret (shown in full in the answers of POST and ``refreshCredentials``, masked elsewhere).
- On an EXTERNAL server: with ``dcrConfig`` the client is registered there through the server's
  DCR provider; without it ``clientId`` names an existing client of that server.
- A strategy an application lists in ``authStrategyIds`` cannot be deleted.
"""

from __future__ import annotations

import secrets
import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import json_response, read_object
from portico.admin.context import AdminContext, context_of
from portico.admin.errors import ApiError, not_found
from portico.oauth import dcr
from portico.oauth.clients import JWT_TYPES, KIND, Strategy, parse_strategy, registration, stored_body, wire
from portico.oauth.config import AUTH_SERVER, LOCAL_ID, PROVIDER, AuthServer, ConfigError, Provider, default_local
from portico.oauth.runtime import OAuthRuntime
from portico.security.secrets import SecretBox
from portico.store import StoreTransaction
from portico.store.db import now_ms


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


async def _load(tx: StoreTransaction, strategy_id: str) -> tuple[Strategy, int]:
    row = await tx.get(KIND, strategy_id)
    if row is None:
        raise not_found("strategy", strategy_id)
    return Strategy.model_validate(row.body), row.revision


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


async def list_strategies(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        rows = await tx.list(KIND)
    return json_response({"strategies": [wire(Strategy.model_validate(r.body)) for r in rows]})


async def get_strategy(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        strategy, _ = await _load(tx, request.path_params["strategyId"])
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
        current, _ = await _load(tx, strategy_id)
    strategy = _parse(data, strategy_id)
    if strategy.authServerAlias != current.authServerAlias:
        raise ApiError(400, "field 'authServerAlias': a strategy's authorization server cannot change; "
                            "create another strategy")
    if (strategy.dcrConfig is None) != (current.dcrConfig is None):
        raise ApiError(400, "field 'dcrConfig': a strategy cannot switch between a registered and an existing "
                            "client; create another strategy")
    strategy.owner, strategy.created = current.owner, current.created
    server, _ = await _prepare(ctx, strategy)
    if current.clientRegistration and strategy.dcrConfig is not None:
        client_id = str(current.clientRegistration["clientId"])
        sealed = current.sealedClientSecret
        registration(strategy, client_id, _box(ctx), None, server.tokenGeneratorConfig.accessTokenExpInterval)
        strategy.sealedClientSecret = sealed
    async with ctx.store.transaction() as tx:
        _, revision = await _load(tx, strategy_id)
        await _check(tx, strategy, server)
        await tx.update(KIND, strategy_id, stored_body(strategy), revision, name=strategy.name)
    ctx.notify_change()
    return json_response({"strategy": wire(strategy)})


async def refresh_credentials(request: Request) -> Response:
    """A new client secret (local), or a new registration (EXTERNAL with DCR)."""
    ctx = context_of(request)
    strategy_id = request.path_params["strategyId"]
    async with ctx.store.read() as tx:
        strategy, _ = await _load(tx, strategy_id)
        server = await _server(tx, strategy.authServerAlias)
        provider = await _provider(tx, server.providerName) if (not server.is_local and server.providerName) \
            else None
    if strategy.dcrConfig is None or not strategy.clientRegistration:
        raise ApiError(400, "refreshCredentials applies only to strategies whose client was registered by Portico "
                            "(dcrConfig)")
    old_client = str(strategy.clientRegistration["clientId"])
    if server.is_local:
        secret = None if strategy.dcrConfig.clientType == "PUBLIC" else secrets.token_urlsafe(32)
        registration(strategy, old_client, _box(ctx), secret, server.tokenGeneratorConfig.accessTokenExpInterval)
    else:
        secret = await _register(ctx, strategy, server, provider)
        await dcr.unregister(server, _box(ctx), old_client, await _runtime(ctx).http_client(server))
    async with ctx.store.transaction() as tx:
        _, revision = await _load(tx, strategy_id)
        await tx.update(KIND, strategy_id, stored_body(strategy), revision, name=strategy.name)
    ctx.notify_change()
    return json_response({"strategy": wire(strategy, secret)})


async def delete_strategy(request: Request) -> Response:
    ctx = context_of(request)
    strategy_id = request.path_params["strategyId"]
    async with ctx.store.transaction() as tx:
        strategy, _ = await _load(tx, strategy_id)
        for row in await tx.list("application"):
            if strategy_id in (row.body.get("authStrategyIds") or []):
                raise ApiError(400, f"strategy {strategy.name!r} is used by application "
                                    f"{row.body.get('name', row.id)!r}; remove it from authStrategyIds first")
        server = await _server(tx, strategy.authServerAlias)
        await tx.delete(KIND, strategy_id)
    if not server.is_local and strategy.dcrConfig is not None and strategy.client_id:
        await dcr.unregister(server, _box(ctx), strategy.client_id, await _runtime(ctx).http_client(server))
    ctx.notify_change()
    return Response(status_code=204)


routes = [
    Route("/strategies", list_strategies, methods=["GET"]),
    Route("/strategies", create_strategy, methods=["POST"]),
    Route("/strategies/{strategyId}", get_strategy, methods=["GET"]),
    Route("/strategies/{strategyId}", update_strategy, methods=["PUT"]),
    Route("/strategies/{strategyId}", delete_strategy, methods=["DELETE"]),
    Route("/strategies/{strategyId}/refreshCredentials", refresh_credentials, methods=["PUT"]),
]
