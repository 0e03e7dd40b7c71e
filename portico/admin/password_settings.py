"""``/configurations/passwordRestrictions``, ``/configurations/passwordExpiry``,
``/configurations/accountLockSettings`` and ``/is/lockedAccounts`` (list and unlock).

The documents are rows of kind ``settings`` named after the document; a PUT changes the fields it
sends (400 naming a bad one, nothing stored) and answers the whole document."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.auth import find_user
from portico.admin.common import json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.domain.password_policy import (
    AccountLockSettings,
    PasswordExpiry,
    PasswordRestrictions,
    SettingsError,
)
from portico.domain.users import login_of
from portico.security import login_state
from portico.security.principal import USER
from portico.store import StoreTransaction

_DOCUMENTS: dict[str, type[PasswordRestrictions] | type[PasswordExpiry] | type[AccountLockSettings]] = {
    cls.NAME: cls for cls in (PasswordRestrictions, PasswordExpiry, AccountLockSettings)
}
_READ_ONLY = {"passwordExpiry": {"remainingUsers"}}


async def _answer(tx: StoreTransaction, doc: Any) -> dict[str, Any]:
    out: dict[str, Any] = doc.to_wire()
    if isinstance(doc, PasswordExpiry):
        listed = doc.users()
        logins = [login_of(r) for r in await tx.list(USER)]
        out["remainingUsers"] = ";".join(login for login in logins if listed and login not in listed)
    return out


def _endpoints(name: str) -> list[Route]:
    cls: Any = _DOCUMENTS[name]

    async def get_document(request: Request) -> Response:
        async with context_of(request).store.read() as tx:
            return json_response(await _answer(tx, await login_state.load_settings(tx, cls)))

    async def put_document(request: Request) -> Response:
        ctx = context_of(request)
        data = await read_object(request)
        data = {k: v for k, v in data.items() if k not in _READ_ONLY.get(name, set())}
        async with ctx.store.transaction() as tx:
            current = await login_state.load_settings(tx, cls)
            try:
                updated = current.merged(data)
            except SettingsError as exc:
                raise ApiError(400, str(exc)) from None
            await tx.upsert(login_state.SETTINGS_KIND, name, updated.to_store())
            tx.changed = False   # the gateway does not read these documents
            answer = await _answer(tx, updated)
        return json_response(answer)

    get_document.__doc__ = f"The {name} settings."
    put_document.__doc__ = f"Change the {name} settings."
    path = f"/configurations/{name}"
    return [Route(path, get_document, methods=["GET"]), Route(path, put_document, methods=["PUT"])]


async def _locked(tx: StoreTransaction) -> list[str]:
    settings = await login_state.load_settings(tx, AccountLockSettings)
    return sorted(await login_state.locked_logins(tx, settings, await tx.list(USER)))


async def locked_accounts(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        return json_response({"lockedAccounts": await _locked(tx)})


def _names(data: dict[str, Any]) -> list[str]:
    inner = data.get("unLockAccounts")
    names = inner.get("userName") if isinstance(inner, dict) else None
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ApiError(400, "expected {\"unLockAccounts\": {\"userName\": [login ids]}}")
    return names


async def unlock_accounts(request: Request) -> Response:
    ctx = context_of(request)
    names = _names(await read_object(request))
    async with ctx.store.read() as tx:
        users = {name: await find_user(tx, name) for name in names}
    unknown = sorted(n for n, row in users.items() if row is None)
    if unknown:
        raise ApiError(400, f"'unLockAccounts.userName': no user with login id {unknown[0]!r}")
    await login_state.clear(ctx.store, [row.id for row in users.values() if row is not None])
    async with ctx.store.read() as tx:
        return json_response({"lockedAccounts": await _locked(tx)})


routes = [
    *(route for name in _DOCUMENTS for route in _endpoints(name)),
    Route("/is/lockedAccounts", locked_accounts, methods=["GET"]),
    Route("/is/lockedAccounts", unlock_accounts, methods=["POST"]),
]
