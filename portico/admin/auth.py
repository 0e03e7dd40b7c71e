"""Who is calling the management API, and whether they may.

Every request under ``/rest/apigateway`` (except health) passes through
:func:`authorize`: the one place users, groups and teams plug into later."""

from __future__ import annotations

import base64
import hashlib
import time

from starlette.requests import Request

from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.security.passwords import verify_password_async

PUBLIC_PREFIXES = ("/health",)
_CACHE_SECONDS = 60.0


class Principal:
    __slots__ = ("login_id",)

    def __init__(self, login_id: str) -> None:
        self.login_id = login_id


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
    return Principal(user)


async def authorize(request: Request) -> Principal | None:
    """Authenticate the caller and check the privilege the request needs.

    For now every authenticated user is an administrator; functional privileges
    (users, groups, teams) will be checked here."""
    if request.url.path.removeprefix("/rest/apigateway").startswith(PUBLIC_PREFIXES):
        return None
    return await authenticate(request)
