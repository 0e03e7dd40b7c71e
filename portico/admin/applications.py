"""``/applications``: CRUD, API keys, suspension and API registration.

An application belongs to its owner (``owner``: the login id of the user who created it, or a team
name after ``POST /assets/owner``). As the guide says of "Manage applications" ("You cannot modify or
delete an application if you are not the owner of the application"), changing, suspending, deleting
it, renewing its key or changing its APIs is for the owner (or a member of the owning team) and for
administrators (members of ``Administrators`` or ``API-Gateway-Administrators``); anyone else with
the privilege gets 403 naming the owner. Unregistering an application from one's own APIs stays open
to the API's team (the guide's team-support exception)."""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import teams
from portico.admin.common import ids_param, json_response, read_object, str_list
from portico.admin.config_store import extended_setting
from portico.admin.context import context_of
from portico.admin.errors import ApiError, not_found
from portico.admin.strategies import check_strategy_ids
from portico.domain import teams as dt
from portico.domain.application import IDENTIFIER_KEYS, Application, Identifier, parse_ip_range
from portico.federation import grants
from portico.gateway.client_certs import certificate_der, fingerprint
from portico.security.principal import TEAM
from portico.settings import parse_period
from portico.store import StoreTransaction
from portico.wire.applications import application_body, applications_response

EDITABLE_LISTS = ("contactEmails", "siteURLs", "jsOrigins", "authStrategyIds")


def _now() -> int:
    return int(time.time() * 1000)


def new_api_key() -> str:
    # 256 bits from the OS CSPRNG, hex: safe in headers, unguessable.
    return secrets.token_hex(32)


async def _key_expiry(tx: StoreTransaction, issued: int) -> tuple[int | None, str | None]:
    period = await extended_setting(tx, "apiKeyExpirationPeriod")
    try:
        seconds = parse_period(period)
    except ValueError:
        return None, None
    return (issued + seconds * 1000, period) if seconds is not None else (None, None)


async def load_app(tx: StoreTransaction, app_id: str) -> tuple[Application, int]:
    row = await tx.get("application", app_id)
    if row is None:
        raise not_found("application", app_id)
    return Application.model_validate(row.body), row.revision


async def save_app(tx: StoreTransaction, app: Application, revision: int | None) -> None:
    body = app.model_dump(mode="json")
    if revision is None:
        await tx.insert("application", app.id, body, name=app.name, version=app.version)
    else:
        await tx.update("application", app.id, body, revision, name=app.name, version=app.version)


def _identifiers(data: dict[str, Any]) -> list[Identifier]:
    raw = data.get("identifiers", [])
    if not isinstance(raw, list):
        raise ApiError(400, "field 'identifiers' must be a list")
    out = []
    for i, item in enumerate(raw):
        try:
            ident = Identifier.model_validate(item)
        except ValidationError as exc:
            raise ApiError(400, f"identifiers[{i}]: {exc.errors()[0]['msg']}") from None
        if ident.key not in IDENTIFIER_KEYS:
            raise ApiError(400, f"identifiers[{i}].key {ident.key!r} is not one of {sorted(IDENTIFIER_KEYS)}")
        for value in ident.value:
            if not value.strip():
                raise ApiError(400, f"identifiers[{i}].value must not contain empty strings")
            if ident.key == "ipAddressRange" and parse_ip_range(value) is None:
                raise ApiError(400, f"identifiers[{i}].value {value!r} is not an IP address, range (a-b) or CIDR block")
            if ident.key == "httpsCertificate" and certificate_der(value) is None:
                raise ApiError(400, f"identifiers[{i}].value holds something that is not an X.509 certificate "
                                    "(expected PEM, base64 of the PEM, or base64 DER)")
        out.append(ident.model_copy(update={"id": ident.id or str(uuid.uuid4())}))
    return out


def _certificates(app: Application) -> dict[str, int]:
    """The fingerprints of ``app``'s ``httpsCertificate`` identifiers, each with its index."""
    found: dict[str, int] = {}
    for i, ident in enumerate(app.identifiers):
        if ident.key == "httpsCertificate":
            for value in ident.value:
                der = certificate_der(value)
                if der is not None:
                    found.setdefault(fingerprint(der), i)
    return found


async def _check_certificates(request: Request, tx: StoreTransaction, app: Application) -> None:
    """A client certificate identifies one application (the gateway indexes them by certificate):
    409 naming the other application when another one has it already, in whatever encoding."""
    mine = _certificates(app)
    if not mine:
        return
    for row in await tx.list("application"):
        if row.id == app.id:
            continue
        other = Application.model_validate(row.body)
        shared = next((mine[f] for f in _certificates(other) if f in mine), None)
        if shared is not None:
            named = repr(other.name) if await teams.is_visible(request, tx, other) else "another application"
            raise ApiError(409, f"identifiers[{shared}]: this httpsCertificate already identifies application "
                                f"{named}; a client certificate identifies one application")


def _apply_fields(app: Application, data: dict[str, Any]) -> None:
    for key in ("name", "description", "version"):
        if key in data:
            value = data[key]
            if not isinstance(value, str) or (key == "name" and not value.strip()):
                raise ApiError(400, f"field '{key}' must be a non-empty string" if key == "name"
                               else f"field '{key}' must be a string")
            setattr(app, key, value.strip() if key == "name" else value)
    for key in EDITABLE_LISTS:
        if key in data:
            setattr(app, key, str_list(data, key))
    if "identifiers" in data:
        app.identifiers = _identifiers(data)


async def _check_api_ids(request: Request, tx: StoreTransaction, api_ids: list[str], registered: list[str]) -> None:
    """New registrations need a visible API; ones the application already has need only to exist."""
    await teams.require_visible_ids(request, tx, "api", [i for i in api_ids if i not in registered], "apiIDs")
    for api_id in api_ids:
        if await tx.get("api", api_id) is None:
            raise ApiError(400, f"unknown API id {api_id!r} in 'apiIDs'")


async def _load_visible(request: Request, tx: StoreTransaction, app_id: str) -> tuple[Application, int]:
    app, revision = await load_app(tx, app_id)
    await teams.require_visible(request, tx, app, "application", app.id)
    return app, revision


async def require_owner(request: Request, tx: StoreTransaction, app: Application) -> None:
    """403 unless the caller owns the application (or is in its owning team) or is an administrator."""
    principal = teams.principal_of(request)
    if principal is None or dt.sees_all(principal.teams) or app.owner in (principal.login_id, principal.user_id):
        return
    owning_team = next((r.id for r in await tx.list(TEAM) if r.body.get("name") == app.owner), None)
    if owning_team is not None and owning_team in principal.teams:
        return
    raise ApiError(403, f"application {app.name!r} belongs to {app.owner!r}: only its owner or an administrator "
                        "may modify or delete it (POST /assets/owner changes the owner)")


async def _load_owned(request: Request, tx: StoreTransaction, app_id: str) -> tuple[Application, int]:
    app, revision = await _load_visible(request, tx, app_id)
    await require_owner(request, tx, app)
    return app, revision


async def create_application(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request)
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        raise ApiError(400, "field 'name' is required")
    async with ctx.store.transaction() as tx:
        ts = _now()
        expires, interval = await _key_expiry(tx, ts)
        app = Application(id=str(uuid.uuid4()), name="x", apiKey=new_api_key(), created=ts,
                          apiKeyExpirationDate=expires, apiKeyExpirationInterval=interval)
        _apply_fields(app, data)
        await _check_certificates(request, tx, app)
        await check_strategy_ids(request, tx, app.id, app.authStrategyIds, [])
        principal = teams.principal_of(request)
        if principal is not None:
            app.owner = principal.login_id
        api_ids = str_list(data, "apiIDs") or str_list(data, "consumingAPIs")
        await _check_api_ids(request, tx, api_ids, [])
        app.apiIds = list(dict.fromkeys(api_ids))
        app.teams = await teams.teams_for_new(request, tx, "application", application_body(app), data.get("teams"))
        await save_app(tx, app, None)
    ctx.notify_change()
    return json_response(application_body(app))


async def list_applications(request: Request) -> Response:
    ids = ids_param(request, "applicationIds") or ids_param(request, "ids")
    async with context_of(request).store.read() as tx:
        rows = await teams.list_visible(request, tx, "application", ids=ids)
    return json_response(applications_response([Application.model_validate(r.body) for r in rows]))


async def get_application(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        app, _ = await _load_visible(request, tx, request.path_params["applicationId"])
    return json_response(applications_response([app]))


async def update_application(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request)
    async with ctx.store.transaction() as tx:
        app, revision = await _load_owned(request, tx, request.path_params["applicationId"])
        previous_strategies = list(app.authStrategyIds)
        _apply_fields(app, data)
        if "identifiers" in data:
            await _check_certificates(request, tx, app)
        await check_strategy_ids(request, tx, app.id, app.authStrategyIds, previous_strategies)
        app.lastupdated = _now()
        app.teams = await teams.teams_after_update(tx, "application", application_body(app), app.teams)
        await save_app(tx, app, revision)
    ctx.notify_change()
    return json_response(application_body(app))


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ApiError(400, "field 'isSuspended' must be true or false")


async def patch_application(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request)
    if "isSuspended" not in data:
        raise ApiError(400, "field 'isSuspended' is required")
    async with ctx.store.transaction() as tx:
        app, revision = await _load_owned(request, tx, request.path_params["applicationId"])
        app.isSuspended = _flag(data["isSuspended"])
        app.lastupdated = _now()
        await save_app(tx, app, revision)
    ctx.notify_change()
    return json_response(application_body(app))


async def _delete_app(request: Request, tx: StoreTransaction, app_id: str) -> None:
    await _load_owned(request, tx, app_id)
    # An application's subscription goes with it (a dangling one would break subscription listings).
    await tx.delete("subscription", app_id)
    await grants.save(tx, None, app_id)
    await tx.delete("application", app_id)


async def _delete_apps(request: Request, app_ids: list[str]) -> None:
    """Delete applications, all or none; a subscription to a federated plan holds a key in the other
    gateway. As a plan switch does (:mod:`portico.federation.keys`), the transaction that deletes the
    applications and their grants schedules those keys' deletion, and the keys are revoked after it
    commits (a revocation that fails now is retried at the integration's health checks): no failure
    leaves a stored grant pointing at a revoked key, nor a key forgotten in the provider. The
    federated applications' write claims (:func:`grants.exclusive`) are held up to the commit only;
    a grant that appeared meanwhile on an application not claimed refuses the deletion (409)."""
    ctx = context_of(request)
    async with ctx.store.read() as tx:
        federated = set()
        for app_id in app_ids:
            await _load_owned(request, tx, app_id)
            if await grants.grant_of(tx, app_id) is not None:
                federated.add(app_id)
    retired: list[dict[str, Any]] = []
    async with contextlib.AsyncExitStack() as claims:
        for app_id in sorted(federated):  # one order: two bulk deletions do not wait for each other
            await claims.enter_async_context(grants.exclusive(request, app_id))
        async with ctx.store.transaction() as tx:
            for app_id in app_ids:
                grant = await grants.grant_of(tx, app_id)
                if grant is not None:
                    if app_id not in federated:
                        raise ApiError(409, f"the subscription of application {app_id} changed while it was "
                                            "being deleted; try again")
                    await grants.retire(tx, grant)
                    retired.append(grant)
                await _delete_app(request, tx, app_id)
    ctx.notify_change()
    for grant in retired:  # each under its own short claim, taken again: a long list outlasts none
        await grants.revoke_later(request, grant)


async def token_endpoints(request: Request) -> Response:
    """The token endpoints of every authorization server, for an application's OAuth2 clients."""
    base = f"{request.url.scheme}://{request.url.netloc}"
    async with context_of(request).store.read() as tx:
        await _load_visible(request, tx, request.path_params["applicationId"])
        servers = [row.body for row in await tx.list("alias") if row.body.get("type") == "authServerAlias"]
    answer: dict[str, Any] = {}
    for server in servers:
        uris: dict[str, Any]
        if server.get("authServerType") == "LOCAL_IS":
            token_url = f"{base}/invoke/pub.apigateway.oauth2/getAccessToken"
            uris = {"authorizeUrl": f"{base}/invoke/pub.apigateway.oauth2/authorize",
                    "accessTokenUrl": token_url, "refreshTokenUrl": token_url}
        else:
            meta = server.get("metadata") or {}
            uris = {"authorizeUrl": meta.get("authorizeURL"), "accessTokenUrl": meta.get("accessTokenURL"),
                    "refreshTokenUrl": meta.get("refreshTokenURL") or meta.get("accessTokenURL")}
        answer[str(server.get("name") or server.get("id"))] = {"uris": {k: v for k, v in uris.items() if v}}
    return json_response(answer)


async def delete_application(request: Request) -> Response:
    await _delete_apps(request, [request.path_params["applicationId"]])
    return Response(status_code=204)


async def delete_applications(request: Request) -> Response:
    ids = ids_param(request, "ids") or ids_param(request, "applicationIds")
    if not ids:
        raise ApiError(400, "query parameter 'ids' is required")
    await _delete_apps(request, list(dict.fromkeys(ids)))
    return Response(status_code=204)


async def regenerate_key(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request)
    kind = data.get("type", "apiAccessKeyCredentials")
    if kind != "apiAccessKeyCredentials":
        raise ApiError(400, f"field 'type' must be 'apiAccessKeyCredentials', got {kind!r}")
    async with ctx.store.transaction() as tx:
        app, revision = await _load_owned(request, tx, request.path_params["applicationId"])
        ts = _now()
        app.apiKey = new_api_key()
        app.apiKeyExpirationDate, app.apiKeyExpirationInterval = await _key_expiry(tx, ts)
        app.lastupdated = ts
        await save_app(tx, app, revision)
    ctx.notify_change()
    return json_response(application_body(app)["accessTokens"], status=201)


async def refresh_all_expiries(request: Request) -> Response:
    """Recompute every key's expiry from ``apiKeyExpirationPeriod`` (counted from now)."""
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        ts = _now()
        expires, interval = await _key_expiry(tx, ts)
        count = 0
        for row in await teams.list_visible(request, tx, "application"):
            app = Application.model_validate(row.body)
            app.apiKeyExpirationDate, app.apiKeyExpirationInterval = expires, interval
            await save_app(tx, app, row.revision)
            count += 1
    ctx.notify_change()
    return json_response({"updated": count})


async def get_registered_apis(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        app, _ = await _load_visible(request, tx, request.path_params["applicationId"])
    return json_response({"apiIDs": app.apiIds})


async def _may_unregister(request: Request, tx: StoreTransaction, app: Application, api_ids: list[str]) -> bool:
    """Team work exception: members of an API's teams may unregister an application they cannot see
    from that API (and change nothing else about it)."""
    removed = [i for i in app.apiIds if i not in api_ids]
    if not removed or any(i not in app.apiIds for i in api_ids):
        return False
    for api_id in removed:
        row = await tx.get("api", api_id)
        if row is None or not await teams.is_visible(request, tx, row):
            return False
    return True


async def set_registered_apis(request: Request) -> Response:
    """The complete list of APIs the application is registered to."""
    ctx = context_of(request)
    data = await read_object(request)
    if "apiIDs" not in data:
        raise ApiError(400, "field 'apiIDs' is required (the complete list of API ids)")
    api_ids = str_list(data, "apiIDs")
    async with ctx.store.transaction() as tx:
        app, revision = await load_app(tx, request.path_params["applicationId"])
        if not await _may_unregister(request, tx, app, api_ids):
            if not await teams.is_visible(request, tx, app):
                raise not_found("application", app.id)
            await require_owner(request, tx, app)
        await _check_api_ids(request, tx, api_ids, app.apiIds)
        app.apiIds = list(dict.fromkeys(api_ids))
        app.lastupdated = _now()
        await save_app(tx, app, revision)
    ctx.notify_change()
    return json_response({"apiIDs": app.apiIds})


routes = [
    Route("/applications", create_application, methods=["POST"]),
    Route("/applications", list_applications, methods=["GET"]),
    Route("/applications", delete_applications, methods=["DELETE"]),
    Route("/applications/accessTokens", refresh_all_expiries, methods=["PUT"]),
    Route("/applications/{applicationId}", get_application, methods=["GET"]),
    Route("/applications/{applicationId}", update_application, methods=["PUT"]),
    Route("/applications/{applicationId}", patch_application, methods=["PATCH"]),
    Route("/applications/{applicationId}", delete_application, methods=["DELETE"]),
    Route("/applications/{applicationId}/accessTokens", regenerate_key, methods=["POST"]),
    Route("/applications/{applicationId}/accessTokens", token_endpoints, methods=["GET"]),
    Route("/applications/{applicationId}/apis", get_registered_apis, methods=["GET"]),
    Route("/applications/{applicationId}/apis", set_registered_apis, methods=["POST", "PUT"]),
]
