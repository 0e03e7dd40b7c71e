"""Personal access tokens: ``/users/{userId}/tokens`` (``userId`` = id or login id).

``POST`` issues a token (body ``{"name", "expiresInDays"}``) and answers 201 with the secret,
shown only there; ``GET`` lists a user's tokens without secrets; ``DELETE .../{tokenId}`` revokes
at once (every management request looks the token up in the store).

Only the user themself creates their tokens, signed in with their password (HTTP basic): not with
another token (a token cannot mint its successor), not with a session, and not an administrator for
someone else (a token acts as its user, and the audit log names that user). The user or a holder of
"Manage user administration" may list and revoke a user's tokens (``access.SELF_SERVICE``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.auth import find_user
from portico.admin.common import json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError, not_found
from portico.security import tokens
from portico.security.principal import Principal
from portico.store import StoreTransaction
from portico.store.db import AssetRow, now_ms
from portico.wire.common import gmt

MAX_PER_USER = 100


async def _user(tx: StoreTransaction, key: str) -> AssetRow:
    row = await find_user(tx, key)
    if row is None:
        raise not_found("user", key)
    return row


async def _tokens_of(tx: StoreTransaction, user_id: str) -> list[tokens.TokenRecord]:
    return [tokens.TokenRecord.from_body(r.body) for r in await tx.list(tokens.KIND)
            if r.body.get("userId") == user_id]


def _wire(record: tokens.TokenRecord, now: int) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "creationDate": gmt(record.created),
            "expirationDate": gmt(record.expires), "expired": record.expired(now)}


def _request(data: dict[str, Any]) -> tuple[str, int]:
    unknown = sorted(set(data) - {"name", "expiresInDays"})
    if unknown:
        raise ApiError(400, f"unexpected field(s) {unknown}; a token request has 'name' and 'expiresInDays'")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise ApiError(400, "field 'name' is required and must be a non-empty string of at most 256 characters")
    days = data.get("expiresInDays", tokens.DEFAULT_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= tokens.MAX_DAYS:
        raise ApiError(400, f"field 'expiresInDays' must be a whole number of days from 1 to {tokens.MAX_DAYS}")
    return name, days


def _check_issuer(request: Request, user: AssetRow) -> None:
    principal: Principal = request.state.principal
    if user.id != principal.user_id:
        raise ApiError(403, "access tokens are created only by their own user; an administrator may list and "
                            "revoke another user's tokens, not create them")
    if getattr(request.state, "access_token", None) is not None or getattr(request.state, "session", None) is not None:
        raise ApiError(403, "a new access token needs the user's password credentials (HTTP basic), not an "
                            "access token or a session")


async def create_token(request: Request) -> Response:
    ctx = context_of(request)
    async with ctx.store.read() as tx:
        _check_issuer(request, await _user(tx, request.path_params["userId"]))
    name, days = _request(await read_object(request))
    async with ctx.store.transaction() as tx:
        user = await _user(tx, request.path_params["userId"])
        mine = await _tokens_of(tx, user.id)
        if len(mine) >= MAX_PER_USER:
            raise ApiError(400, f"user already has {MAX_PER_USER} access tokens; revoke some first")
        if any(t.name == name for t in mine):
            raise ApiError(409, f"user already has an access token named {name!r}")
        now = now_ms()
        secret, record = tokens.issue(user.id, name, days, now)
        await tx.insert(tokens.KIND, record.id, record.body(), name=tokens.digest(secret))
        tx.changed = False   # the gateway does not read tokens: no configuration revision
    return json_response({"id": record.id, "name": record.name, "token": secret,
                          "creationDate": gmt(record.created), "expirationDate": gmt(record.expires)}, 201)


async def list_tokens(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        user = await _user(tx, request.path_params["userId"])
        mine = await _tokens_of(tx, user.id)
    now = now_ms()
    return json_response({"tokens": [_wire(t, now) for t in sorted(mine, key=lambda t: t.created)]})


async def revoke_token(request: Request) -> Response:
    token_id = request.path_params["tokenId"]
    async with context_of(request).store.transaction() as tx:
        user = await _user(tx, request.path_params["userId"])
        row = await tx.get(tokens.KIND, token_id)
        if row is None or row.body.get("userId") != user.id:
            raise not_found("access token", token_id)
        await tx.delete(tokens.KIND, token_id)
        tx.changed = False
    return Response(status_code=204)


routes = [
    Route("/users/{userId}/tokens", list_tokens, methods=["GET"]),
    Route("/users/{userId}/tokens", create_token, methods=["POST"]),
    Route("/users/{userId}/tokens/{tokenId}", revoke_token, methods=["DELETE"]),
]
