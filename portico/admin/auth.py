"""Who is calling the management API, and whether they may.

Every request under ``/rest/apigateway`` passes through :func:`authorize`: it authenticates the
caller (:func:`authenticate`: HTTP basic against local users' login ids, ``Authorization: Bearer`` with a
personal access token, or, with no ``Authorization`` header, the session cookie that
``/users/authenticate`` issues) and checks the route's entry in :mod:`portico.admin.access`.

Password logins honour the account lock settings (failed logins counted, the account locked for a
while after too many) and password expiry (an expired password is refused except on the call
that changes it: ``PUT /users/{userId}`` of the caller themself). Token and session logins honour the
lock and ``restrictLoginForUsersInDefaultTeam`` too. Failed logins of any kind are audited; a
successful one is audited by ``/users/authenticate``, a logout by ``/users/logout``.

``request.state`` tells handlers how the caller signed in: ``access_token`` (the token's id) or
``session`` (the session's id) is set for those; neither for password credentials."""

from __future__ import annotations

import base64
import hashlib
import os
import time

from starlette.requests import Request

from portico.admin import access
from portico.admin.config_store import extended_setting
from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.audit import AuditEntry
from portico.domain.password_policy import AccountLockSettings, PasswordExpiry
from portico.domain.users import is_predefined, login_of
from portico.security import login_state, sessions, tokens
from portico.security import privileges as priv
from portico.security.passwords import hash_password_async, verify_password_async
from portico.security.principal import USER, Principal, load_principal
from portico.store import StoreTransaction
from portico.store.db import AssetRow, now_ms
from portico.wire.common import gmt

_CACHE_SECONDS = 60.0
_INVALID = "invalid user name or password"
_MAX_AUDITED_LOGIN = 256   # a failed login records what was typed as the user: keep it short
_OWN_PASSWORD_ROUTE = ("PUT", "/users/{userId}")
_DUMMY: list[str] = []


def _credentials(request: Request) -> tuple[str, str]:
    """``("bearer", token)`` or ``(user, password)`` from HTTP basic; 401 for anything else."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return "bearer", value.strip()
    if scheme.lower() != "basic":
        raise ApiError(401, "authentication required: send HTTP basic credentials or a bearer access token")
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(401, "malformed HTTP basic credentials") from None
    if not sep or not user:
        raise ApiError(401, "malformed HTTP basic credentials")
    return user, password


async def find_login(tx: StoreTransaction, login: str) -> AssetRow | None:
    """The user who signs in as ``login``: by login id only, as in webMethods API Gateway (a user
    id is no login: a UUID, or 'Administrator' for the seeded Administrator however renamed)."""
    rows = await tx.list(USER, name=login)
    return rows[0] if rows else None


async def find_user(tx: StoreTransaction, key: str) -> AssetRow | None:
    """A user named in a path or a reference: by login id, else by id. Never for sign-in
    (:func:`find_login`)."""
    return await find_login(tx, key) or await tx.get(USER, key)


def _failed(request: Request, login: str, message: str, reason: str, status: int = 401) -> ApiError:
    client = request.client.host if request.client else ""
    login = login[:_MAX_AUDITED_LOGIN]
    context_of(request).audit.record(AuditEntry(object_type="Login", action="Failed login", object=login,
                                                message=reason, user=login, client_ip=client))
    return ApiError(status, message)


async def _burn_time(login: str, password: str) -> None:
    """Hash work for an unknown user, so a reply does not tell which login ids exist."""
    if not _DUMMY:
        _DUMMY.append(await hash_password_async(os.urandom(16).hex()))
    await verify_password_async(password, _DUMMY[0], lane=login)


async def authenticate(request: Request, route_path: str = "") -> Principal:
    if "authorization" not in request.headers:
        cookie = request.cookies.get(sessions.COOKIE)
        if cookie:
            return await _session_principal(request, cookie)
    first, second = _credentials(request)
    if first == "bearer":
        return await _token_principal(request, second)
    return await _password_principal(request, route_path, first, second)


async def session_limits(tx: StoreTransaction) -> sessions.Limits:
    return sessions.Limits.from_settings(await extended_setting(tx, sessions.IDLE_SETTING),
                                         await extended_setting(tx, sessions.LIFETIME_SETTING))


async def _account_open(request: Request, tx: StoreTransaction, user: AssetRow, principal: Principal) -> None:
    """What a token or session login must pass besides its own validity: the account is not locked,
    and not refused by ``restrictLoginForUsersInDefaultTeam``."""
    lock = await login_state.load_settings(tx, AccountLockSettings)
    login = login_of(user)
    if lock.applies_to(is_predefined(user)):
        until = login_state.locked_until(await login_state.state_of(tx, user.id), now_ms())
        if until:
            raise _failed(request, login, f"the account {login!r} is locked after repeated failed logins until "
                          f"{gmt(until)}; an administrator can unlock it", "locked account")
    _check_default_team(request, lock, user, principal)


def _check_default_team(request: Request, lock: AccountLockSettings, user: AssetRow, principal: Principal) -> None:
    if lock.restrictLoginForUsersInDefaultTeam and principal.teams <= {priv.DEFAULT_TEAM} \
            and not is_predefined(user):
        login = login_of(user)
        raise _failed(request, login, f"user {login!r} belongs to no team but Default and may not sign in "
                      "(accountLockSettings.restrictLoginForUsersInDefaultTeam)", "restricted to Default team")


async def _session_principal(request: Request, secret: str) -> Principal:
    """The caller of a session cookie. An unknown or ended session is a plain 401 (a browser keeps
    sending a stale cookie; that is no login attempt to audit)."""
    store = context_of(request).store
    now = now_ms()
    async with store.read() as tx:
        record = await sessions.find(tx, secret)
        if record is None:
            raise ApiError(401, "the session is unknown or has ended; sign in again")
        ended = record.ended(now, await session_limits(tx))
        user = await tx.get(USER, record.user_id)
        if user is None or not user.body.get("active", True):
            ended = ended or "the session's user is inactive or deleted"
        principal = None if ended or user is None else await load_principal(tx, user)
        if principal is not None and user is not None:
            await _account_open(request, tx, user, principal)
    if principal is None:
        await sessions.end(store, record.id)
        raise ApiError(401, f"{ended}; sign in again")
    await sessions.touch(store, record, now)
    request.state.session = record.id
    return principal


async def _token_principal(request: Request, secret: str) -> Principal:
    store = context_of(request).store
    async with store.read() as tx:
        rows = await tx.list(tokens.KIND, name=tokens.digest(secret)) if tokens.looks_like_token(secret) else []
        if not rows:
            raise _failed(request, "", "invalid or revoked access token", "unknown or revoked access token")
        record = tokens.TokenRecord.from_body(rows[0].body)
        user = await tx.get(USER, record.user_id)
        login = login_of(user) if user else ""
        if record.expired(now_ms()):
            raise _failed(request, login, f"the access token {record.name!r} expired on {gmt(record.expires)}",
                          f"expired access token {record.id}")
        if user is None or not user.body.get("active", True):
            raise _failed(request, login, "the access token's user is inactive or deleted",
                          f"access token {record.id} of an inactive user")
        principal = await load_principal(tx, user)
        await _account_open(request, tx, user, principal)
    request.state.access_token = record.id
    return principal


async def _password_principal(request: Request, route_path: str, login: str, password: str) -> Principal:
    ctx = context_of(request)
    now = now_ms()
    async with ctx.store.read() as tx:
        row = await find_login(tx, login)
        lock = await login_state.load_settings(tx, AccountLockSettings)
        expiry = await login_state.load_settings(tx, PasswordExpiry)
        state = await login_state.state_of(tx, row.id) if row else None
    stored = row.body.get("passwordHash") if row else None
    if row is None or not isinstance(stored, str) or not row.body.get("active", True):
        if row is None:
            await _burn_time(login, password)
        raise _failed(request, login, _INVALID, "unknown or inactive user")
    login = login_of(row)
    lockable = lock.applies_to(is_predefined(row))
    until = login_state.locked_until(state, now) if lockable else None
    if until:
        raise _failed(request, login, f"the account {login!r} is locked after repeated failed logins until "
                      f"{gmt(until)}; an administrator can unlock it", "locked account")
    if not await _verified(request, login, password, stored):
        locked = lockable and await login_state.record_failure(ctx.store, row.id, login, lock)
        suffix = "; the account is now locked" if locked else ""
        raise _failed(request, login, _INVALID + suffix, "wrong password" + suffix)
    if state is not None:
        await login_state.clear(ctx.store, [row.id])
    changed = row.body.get("passwordChanged") or row.body.get("created") or row.created_at
    if isinstance(changed, int) and expiry.expired(login, changed, now):
        if not _changes_own_password(request, route_path, row):
            expired_on = gmt(changed + expiry.expirationInterval * 86_400_000)
            raise _failed(request, login, f"the password of {login!r} expired on {expired_on}; change it with "
                          f"PUT /rest/apigateway/users/{row.id} and a new 'password'", "expired password")
        request.state.password_expired = True
    async with ctx.store.read() as tx:
        principal = await load_principal(tx, row)
    _check_default_team(request, lock, row, principal)
    return principal


async def _verified(request: Request, login: str, password: str, stored: str) -> bool:
    """The slow hash, remembered for a minute per (login, password, stored hash)."""
    cache: dict[bytes, float] = context_of(request).extras.setdefault("auth_cache", {})
    key = hashlib.sha256(f"{login}\0{password}\0{stored}".encode()).digest()
    if cache.get(key, 0.0) >= time.monotonic():
        return True
    if not await verify_password_async(password, stored, lane=login):
        return False
    if len(cache) > 1000:
        cache.clear()
    cache[key] = time.monotonic() + _CACHE_SECONDS
    return True


def _changes_own_password(request: Request, route_path: str, row: AssetRow) -> bool:
    return (request.method, route_path) == _OWN_PASSWORD_ROUTE and \
        request.path_params.get("userId") in (row.id, login_of(row))


def _self_service(request: Request, route_path: str, principal: Principal) -> bool:
    """Routes a user may call on their own account without the route's privilege."""
    return (request.method, route_path) in access.SELF_SERVICE and \
        request.path_params.get("userId") in (principal.user_id, principal.login_id)


async def authorize(request: Request, route_path: str) -> Principal | None:
    """Authenticate the caller and check the functional privilege the route requires.

    The principal is left on ``request.state.principal`` for handlers (team visibility, audit)."""
    needed = access.required(request.method, route_path)
    if needed is access.PUBLIC:
        request.state.principal = None
        return None
    principal = await authenticate(request, route_path)
    request.state.principal = principal
    if needed is None:
        raise ApiError(403, f"{request.method} {route_path} declares no functional privilege; refused")
    if needed and not any(principal.holds(p) for p in needed) and not _self_service(request, route_path, principal):
        names = " or ".join(f"'{p}'" for p in needed)
        raise ApiError(403, f"user {principal.login_id!r} lacks the functional privilege {names}")
    return principal
