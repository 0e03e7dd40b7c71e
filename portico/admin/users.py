"""``/users`` (local users), ``/users/authenticate``, ``/authenticate`` and ``/users/logout``.

A user may be named in a path by id or by login id. Passwords are checked against
``/configurations/passwordRestrictions`` on create and on every change, stored as bcrypt hashes
and never returned (the reference's mask stands in their place, and a PUT that sends the mask back
leaves the password alone). Deleting a user takes it out of every group and team.

Changing one's own password needs the current one in the same request (``oldPassword``, or
``currentPassword``); a holder of "Manage user administration" sets another user's without it. A
request signed in with a personal access token changes no password at all. A new password ends the
user's sessions (but the caller's own).

``/users/authenticate`` (and ``/authenticate``) with password credentials also starts a management
session: the ``portico_session`` cookie (:mod:`portico.security.sessions`), accepted like the
credentials until it ends. ``POST /users/logout`` (a Portico extension) ends the caller's session
and records the Logout in the audit log."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.auth import find_user, session_limits
from portico.admin.common import json_response, read_body, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError, not_found
from portico.audit import AuditEntry
from portico.domain.password_policy import AccountLockSettings, PasswordRestrictions, PasswordRuleError
from portico.domain.users import (
    HISTORY_KEEP,
    LOGIN_MARKER,
    UserInputError,
    is_predefined,
    login_of,
    new_password,
    user_fields,
)
from portico.security import login_state, sessions, tokens
from portico.security import privileges as priv
from portico.security.passwords import hash_password_async, verify_password_async
from portico.security.principal import GROUP, TEAM, USER, Principal
from portico.store import ConflictError, StoreTransaction
from portico.store.db import AssetRow, now_ms
from portico.wire.users import user_wire


def _fields(data: dict[str, Any], creating: bool) -> tuple[dict[str, Any], str | None]:
    try:
        return user_fields(data, creating), new_password(data)
    except UserInputError as exc:
        raise ApiError(400, str(exc)) from None


async def _target(tx: StoreTransaction, key: str) -> AssetRow:
    row = await find_user(tx, key)
    if row is None:
        raise not_found("user", key)
    return row


async def _is_administrator(tx: StoreTransaction, user_id: str) -> bool:
    group = await tx.get(GROUP, priv.ADMINISTRATORS)
    return group is not None and user_id in group.body.get("userIds", [])


async def _check_password(tx: StoreTransaction, password: str, user: AssetRow | None) -> None:
    """400 naming the rule the password breaks (restrictions, then history)."""
    rules = await login_state.load_settings(tx, PasswordRestrictions)
    if rules.mode == "lax" and user is not None and await _is_administrator(tx, user.id):
        return   # the reference's lax mode: Administrators choose their own passwords freely
    try:
        rules.check_password(password)
    except PasswordRuleError as exc:
        raise ApiError(400, str(exc)) from None
    if user is None or not rules.historyLength:
        return
    earlier = [user.body.get("passwordHash"), *user.body.get("passwordHistory", [])[: rules.historyLength]]
    for stored in earlier:
        if isinstance(stored, str) and await verify_password_async(password, stored):
            raise ApiError(400, f"the password matches one of the last {rules.historyLength} passwords of this "
                           "user (passwordRestrictions.historyLength)")


async def _claim_login(tx: StoreTransaction, login: str, user_id: str) -> None:
    """409 unless ``login`` is free; then reserve it (the marker row's key makes it unique)."""
    holder = await find_user(tx, login)
    if holder is not None and holder.id != user_id:
        raise ApiError(409, f"a user with login id {login!r} already exists")
    try:
        await tx.insert(LOGIN_MARKER, login, {"userId": user_id}, name=login)
    except ConflictError:
        raise ApiError(409, f"a user with login id {login!r} already exists") from None


async def list_users(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        return json_response({"users": [user_wire(r) for r in await tx.list(USER)]})


async def create_user(request: Request) -> Response:
    ctx = context_of(request)
    fields, password = _fields(await read_object(request), creating=True)
    if password is None:
        raise ApiError(400, "field 'password' is required")
    async with ctx.store.read() as tx:
        await _check_password(tx, password, None)
    stored = await hash_password_async(password)
    user_id = str(uuid.uuid4())
    now = now_ms()
    body = {"id": user_id, "type": "local", "active": True, "firstName": "", "lastName": "", "language": "en",
            "allowDigestAuth": False, "emailAddresses": [], **fields, "passwordHash": stored,
            "passwordChanged": now, "passwordHistory": [], "created": now}
    async with ctx.store.transaction() as tx:
        await _claim_login(tx, fields["loginId"], user_id)
        row = await tx.insert(USER, user_id, body, name=fields["loginId"])
    ctx.notify_change()
    return json_response(user_wire(row), 201)


async def get_user(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        row = await _target(tx, request.path_params["userId"])
    return json_response({"users": [user_wire(row)]})


def _self_service_limits(principal: Principal, row: AssetRow, fields: dict[str, Any], password: str | None,
                         rules: PasswordRestrictions) -> None:
    """What a user without 'Manage user administration' may change on their own account."""
    if principal.holds(priv.MANAGE_USERS):
        return
    now = {"loginId": login_of(row), "active": row.body.get("active", True)}
    changed = sorted(k for k, value in now.items() if k in fields and fields[k] != value)
    if changed:
        raise ApiError(403, f"changing {changed} of a user needs the functional privilege '{priv.MANAGE_USERS}'")
    if password is not None and not rules.enablePasswordChange:
        raise ApiError(403, "users may not change their own passwords here "
                       "(passwordRestrictions.enablePasswordChange is false); ask an administrator")


_CURRENT_KEYS = ("oldPassword", "currentPassword")


def _current_password(data: dict[str, Any]) -> str | None:
    """The current password a request sends along a change of it (and takes it out of ``data``)."""
    given = [data.pop(k) for k in _CURRENT_KEYS if k in data]
    value = next((v for v in given if v is not None), None)
    if value is not None and (not isinstance(value, str) or not value or len(value) > 1024):
        raise ApiError(400, "field 'oldPassword' must be the current password: a non-empty string")
    return value


async def _check_current_password(request: Request, row: AssetRow, current: str | None) -> None:
    """Changing one's own password: the current one must come with it (a stolen session or an open
    console must not be enough to take the account)."""
    if current is None:
        raise ApiError(400, "field 'oldPassword' (your current password) is required to change your own password")
    stored = row.body.get("passwordHash")
    if isinstance(stored, str) and await verify_password_async(current, stored, lane=login_of(row)):
        return
    ctx = context_of(request)
    async with ctx.store.read() as tx:
        lock = await login_state.load_settings(tx, AccountLockSettings)
    if lock.applies_to(is_predefined(row)):   # a wrong current password counts as a failed login
        await login_state.record_failure(ctx.store, row.id, login_of(row), lock)
    raise ApiError(403, "field 'oldPassword' does not match your current password")


async def _check_new_password(request: Request, principal: Principal, row: AssetRow, password: str,
                              current: str | None) -> None:
    """Who may set this password, and whether it fits the rules."""
    if getattr(request.state, "access_token", None) is not None:
        raise ApiError(403, "changing a password needs password credentials (HTTP basic or a session), "
                            "not a personal access token")
    if row.id == principal.user_id or not principal.holds(priv.MANAGE_USERS):
        await _check_current_password(request, row, current)
    async with context_of(request).store.read() as tx:
        await _check_password(tx, password, row)
    hashed = row.body.get("passwordHash")
    if getattr(request.state, "password_expired", False) and isinstance(hashed, str) \
            and await verify_password_async(password, hashed):
        raise ApiError(400, "the new password must differ from the expired one")


async def update_user(request: Request) -> Response:
    ctx = context_of(request)
    principal: Principal = request.state.principal
    data = await read_object(request)
    current = _current_password(data)
    fields, password = _fields(data, creating=False)
    if getattr(request.state, "password_expired", False) and password is None:
        raise ApiError(401, "your password has expired: this call must set a new 'password'")
    async with ctx.store.read() as tx:
        row = await _target(tx, request.path_params["userId"])
        _self_service_limits(principal, row, fields, password,
                             await login_state.load_settings(tx, PasswordRestrictions))
    if is_predefined(row) and fields.get("active") is False:
        raise ApiError(400, f"user {login_of(row)!r} is predefined and cannot be deactivated")
    if password is not None:
        await _check_new_password(request, principal, row, password, current)
    stored = await hash_password_async(password) if password is not None else None
    async with ctx.store.transaction() as tx:
        current_row = await tx.get(USER, row.id)
        if current_row is None:
            raise not_found("user", request.path_params["userId"])
        body = {**current_row.body, **fields}
        old_login, new_login = login_of(current_row), body.get("loginId", login_of(current_row))
        if new_login != old_login:
            await _claim_login(tx, new_login, row.id)
            await tx.delete(LOGIN_MARKER, old_login)
        if stored is not None:
            previous = current_row.body.get("passwordHash")
            history = [previous, *current_row.body.get("passwordHistory", [])] if previous else []
            body.update(passwordHash=stored, passwordChanged=now_ms(), passwordHistory=history[:HISTORY_KEEP])
            await login_state.clear_in(tx, row.id)   # a new password also lifts a lock
            await sessions.end_all_in(tx, row.id, keep=getattr(request.state, "session", None))
        updated = await tx.update(USER, row.id, body, current_row.revision, name=new_login)
    ctx.notify_change()
    return json_response(user_wire(updated))


def without(body: dict[str, Any], key: str, member: str) -> dict[str, Any] | None:
    """``body`` with ``member`` taken out of its ``key`` lists (top level and one level down, e.g.
    ``teamAdmin.userIds``); None when it was in none of them."""
    found = False

    def strip(doc: dict[str, Any]) -> dict[str, Any]:
        nonlocal found
        out = dict(doc)
        values = doc.get(key)
        if isinstance(values, list) and member in values:
            out[key] = [v for v in values if v != member]
            found = True
        return out

    result = strip(body)
    for name, value in body.items():
        if isinstance(value, dict):
            result[name] = strip(value)
    return result if found else None


async def remove_member(tx: StoreTransaction, kind: str, key: str, member: str) -> None:
    for row in await tx.list(kind):
        body = without(row.body, key, member)
        if body is not None:
            await tx.update(kind, row.id, body, row.revision, name=str(row.body.get("name", row.id)))


async def delete_user(request: Request) -> Response:
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        row = await _target(tx, request.path_params["userId"])
        if is_predefined(row):
            raise ApiError(400, f"user {login_of(row)!r} is predefined and cannot be deleted")
        await remove_member(tx, GROUP, "userIds", row.id)
        await remove_member(tx, TEAM, "userIds", row.id)
        for token in await tx.list(tokens.KIND):
            if token.body.get("userId") == row.id:
                await tx.delete(tokens.KIND, token.id)
        await login_state.clear_in(tx, row.id)
        await sessions.end_all_in(tx, row.id)
        await tx.delete(LOGIN_MARKER, login_of(row))
        await tx.delete(USER, row.id)
    ctx.notify_change()
    return Response(status_code=204)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _cookie(request: Request, value: str, max_age: int | None = None) -> str:
    parts = [f"{sessions.COOKIE}={value}", "HttpOnly", "SameSite=Strict", f"Path={sessions.COOKIE_PATH}"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if request.url.scheme == "https":
        parts.append("Secure")
    return "; ".join(parts)


async def authenticate_user(request: Request) -> Response:
    """The caller's own user, once their credentials passed (the route needs nothing more). A login
    with password credentials also starts a session (the ``portico_session`` cookie)."""
    principal: Principal = request.state.principal
    raw = await read_body(request)
    if raw.strip():
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"malformed JSON in request body: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "request body must be a JSON object")
        login = data.get("loginId")
        if login is not None and login != principal.login_id:
            raise ApiError(400, f"field 'loginId' ({login!r}) does not match the credentials sent")
    ctx = context_of(request)
    async with ctx.store.read() as tx:
        row = await tx.get(USER, principal.user_id)
    if row is None:
        raise not_found("user", principal.user_id)
    response = json_response(user_wire(row))
    signed_with_password = getattr(request.state, "access_token", None) is None and \
        getattr(request.state, "session", None) is None
    if signed_with_password:
        async with ctx.store.read() as tx:
            limits = await session_limits(tx)
        secret = await sessions.start(ctx.store, row.id, now_ms(), limits)
        response.headers.append("set-cookie", _cookie(request, secret))
        ctx.audit.record(AuditEntry(object_type="Login", action="Login", object=principal.login_id,
                                    message="signed in", user=principal.login_id, client_ip=_client(request)))
    return response


async def logout(request: Request) -> Response:
    """End the caller's session (the cookie's; its cookie is cleared) and record the Logout. With
    other credentials there is no session to end: the Logout is recorded all the same."""
    ctx = context_of(request)
    principal: Principal = request.state.principal
    ended = getattr(request.state, "session", None)
    cookie = request.cookies.get(sessions.COOKIE)
    if ended is None and cookie:
        async with ctx.store.read() as tx:
            record = await sessions.find(tx, cookie)
        ended = record.id if record is not None and record.user_id == principal.user_id else None
    if ended is not None:
        await sessions.end(ctx.store, ended)
    request.state.audit_skip = True   # recorded here, as a Logout
    ctx.audit.record(AuditEntry(object_type="Login", action="Logout", object=principal.login_id,
                                message="signed out" + (" (session ended)" if ended else ""),
                                user=principal.login_id, client_ip=_client(request)))
    response = Response(status_code=204)
    if cookie:
        response.headers.append("set-cookie", _cookie(request, "", max_age=0))
    return response


routes = [
    Route("/users/authenticate", authenticate_user, methods=["POST"]),
    Route("/authenticate", authenticate_user, methods=["POST"]),
    Route("/users/logout", logout, methods=["POST"]),
    Route("/users", list_users, methods=["GET"]),
    Route("/users", create_user, methods=["POST"]),
    Route("/users/{userId}", get_user, methods=["GET"]),
    Route("/users/{userId}", update_user, methods=["PUT"]),
    Route("/users/{userId}", delete_user, methods=["DELETE"]),
]
