"""OAuth tokens issued by the local authorization server (the guide's "OAuth tokens" list; issue 5).

- ``GET /oauthTokens[?clientId=&ownerId=&from=&size=]``: Client ID, Owner ID, remaining refresh
  count and dates of each grant (the secrets themselves are stored only as digests).
- ``DELETE /oauthTokens/{tokenId}``: revoke (the access and refresh token of that grant).
- ``DELETE /oauthTokens/expired``: remove expired and revoked tokens now (the scheduled job does
  the same every ``PORTICO_OAUTH_TOKEN_REMOVAL_INTERVAL`` seconds) -> ``{"removedTokensCount": N}``.

With ``enableTeamWork`` on, a user sees, revokes and removes only the tokens of clients that belong
to an application visible to them (through the application's strategies; the rule is ``teams.py``'s);
another token answers 404 like an unknown id, and ``/expired`` leaves the others' dead tokens to
them. Administrators see all.
Token rows live outside the configuration: these calls do not move the configuration revision."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import teams
from portico.admin.common import int_param, json_response
from portico.admin.context import context_of
from portico.admin.errors import not_found
from portico.domain import teams as dt
from portico.oauth.clients import KIND as STRATEGY
from portico.oauth.tokens import TokenStore


async def visible_clients(request: Request) -> frozenset[str] | None:
    """The client ids whose tokens the caller may see, or None for all (team work off, or a caller
    who sees every asset)."""
    principal = teams.principal_of(request)
    if principal is None or dt.sees_all(principal.teams):
        return None
    async with context_of(request).store.read() as tx:
        if not await teams.team_work_enabled(tx):
            return None
        apps = await teams.only_visible(request, tx, await tx.list("application"))
        strategy_ids = {sid for app in apps for sid in app.body.get("authStrategyIds") or () if isinstance(sid, str)}
        strategies = await tx.list(STRATEGY, ids=sorted(strategy_ids)) if strategy_ids else []
    return frozenset(cid for row in strategies for cid in _client_ids(row.body))


def _client_ids(strategy: dict[str, object]) -> list[str]:
    registration = strategy.get("clientRegistration")
    found = [registration.get("clientId") if isinstance(registration, dict) else None, strategy.get("clientId")]
    return [c for c in found if isinstance(c, str) and c]


async def list_tokens(request: Request) -> Response:
    offset = int_param(request, "from", 0, 0, 1_000_000_000)
    size = int_param(request, "size", 20, 1, 1000)
    records, total = await TokenStore(context_of(request).store).list(
        request.query_params.get("clientId") or None, request.query_params.get("ownerId") or None, offset, size,
        client_ids=await visible_clients(request))
    return json_response({"oauthTokens": [r.view() for r in records], "total": total})


async def revoke_token(request: Request) -> Response:
    token_id = request.path_params["tokenId"]
    tokens = TokenStore(context_of(request).store)
    record = await tokens.get(token_id)
    allowed = await visible_clients(request)
    if record is None or (allowed is not None and record.client_id not in allowed):
        raise not_found("OAuth token", token_id)
    if not await tokens.revoke(token_id):
        raise not_found("OAuth token", token_id)
    record = await tokens.get(token_id)
    return json_response({"oauthToken": record.view() if record else {"id": token_id}})


async def remove_expired(request: Request) -> Response:
    removed = await TokenStore(context_of(request).store).purge_expired(client_ids=await visible_clients(request))
    return json_response({"removedTokensCount": removed})


routes = [
    Route("/oauthTokens", list_tokens, methods=["GET"]),
    Route("/oauthTokens/expired", remove_expired, methods=["DELETE"]),
    Route("/oauthTokens/{tokenId}", revoke_token, methods=["DELETE"]),
]
