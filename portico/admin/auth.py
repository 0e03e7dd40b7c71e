"""Who is calling the management API, and whether they may.

Every request under ``/rest/apigateway`` passes through :func:`authorize`: it authenticates the
caller (:func:`authenticate`) and checks the route's entry in :mod:`portico.admin.access`."""

from __future__ import annotations

import base64
import hashlib
import time

from starlette.requests import Request

from portico.admin import access
from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.security.passwords import verify_password_async
from portico.security.principal import Principal, load_principal

_CACHE_SECONDS = 60.0


def _credentials(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        raise ApiError(401, "authentication required: send HTTP basic credentials")
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(401, "malformed HTTP basic credentials") from None
    if not sep or not user:
        raise ApiError(401, "malformed HTTP basic credentials")
    return user, password


async def authenticate(request: Request) -> Principal:
    user, password = _credentials(request)
    ctx = context_of(request)
    cache: dict[bytes, float] = ctx.extras.setdefault("auth_cache", {})
    async with ctx.store.read() as tx:
        row = await tx.get("user", user)
        if row is None or not row.body.get("active", True):
            raise ApiError(401, "invalid user name or password")
        stored = row.body["passwordHash"]
        token = hashlib.sha256(f"{user}\0{password}\0{stored}".encode()).digest()
        if cache.get(token, 0.0) < time.monotonic():
            if not await verify_password_async(password, stored):
                raise ApiError(401, "invalid user name or password")
            if len(cache) > 1000:
                cache.clear()
            cache[token] = time.monotonic() + _CACHE_SECONDS
        return await load_principal(tx, row)


async def authorize(request: Request, route_path: str) -> Principal | None:
    """Authenticate the caller and check the functional privilege the route requires.

    The principal is left on ``request.state.principal`` for handlers (team visibility, audit)."""
    needed = access.required(request.method, route_path)
    if needed is access.PUBLIC:
        request.state.principal = None
        return None
    principal = await authenticate(request)
    request.state.principal = principal
    if needed is None:
        raise ApiError(403, f"{request.method} {route_path} declares no functional privilege; refused")
    if needed and not any(principal.holds(p) for p in needed):
        names = " or ".join(f"'{p}'" for p in needed)
        raise ApiError(403, f"user {principal.login_id!r} lacks the functional privilege {names}")
    return principal
