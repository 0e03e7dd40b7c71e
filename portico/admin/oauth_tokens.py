"""OAuth tokens issued by the local authorization server (the guide's "OAuth tokens" list; issue 5).

- ``GET /oauthTokens[?clientId=&ownerId=&from=&size=]``: Client ID, Owner ID, remaining refresh
  count and dates of each grant (the secrets themselves are stored only as digests).
- ``DELETE /oauthTokens/{tokenId}``: revoke (the access and refresh token of that grant).
- ``DELETE /oauthTokens/expired``: remove expired and revoked tokens now (the scheduled job does
  the same every ``PORTICO_OAUTH_TOKEN_REMOVAL_INTERVAL`` seconds) -> ``{"removedTokensCount": N}``.
Token rows live outside the configuration: these calls do not move the configuration revision."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import int_param, json_response
from portico.admin.context import context_of
from portico.admin.errors import not_found
from portico.oauth.tokens import TokenStore


async def list_tokens(request: Request) -> Response:
    offset = int_param(request, "from", 0, 0, 1_000_000_000)
    size = int_param(request, "size", 20, 1, 1000)
    records, total = await TokenStore(context_of(request).store).list(
        request.query_params.get("clientId") or None, request.query_params.get("ownerId") or None, offset, size)
    return json_response({"oauthTokens": [r.view() for r in records], "total": total})


async def revoke_token(request: Request) -> Response:
    token_id = request.path_params["tokenId"]
    tokens = TokenStore(context_of(request).store)
    if not await tokens.revoke(token_id):
        raise not_found("OAuth token", token_id)
    record = await tokens.get(token_id)
    return json_response({"oauthToken": record.view() if record else {"id": token_id}})


async def remove_expired(request: Request) -> Response:
    removed = await TokenStore(context_of(request).store).purge_expired()
    return json_response({"removedTokensCount": removed})


routes = [
    Route("/oauthTokens", list_tokens, methods=["GET"]),
    Route("/oauthTokens/expired", remove_expired, methods=["DELETE"]),
    Route("/oauthTokens/{tokenId}", revoke_token, methods=["DELETE"]),
]
