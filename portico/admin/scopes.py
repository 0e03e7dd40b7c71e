"""``/scopes``: OAuth scope mappings (issue 5) -- authorization-server scopes mapped to whole APIs
or to API scopes (``<apiId>:<scopeName>``, an entry of the API's ``scopes`` whose resources and
methods are the paths and operations naming it in ``apiDefinition.paths``; ``admin/api_scopes.py``).

Shape (the reference's ``GatewayScope``): ``{id, scopeName, scopeDescription, audience, apiScopes:
[apiId | apiScopeId], requiredAuthScopes: [{authServerAlias, scopeName}]}``. Every authorization
server and scope named must exist (a server that lists no scopes accepts any scope name), and
every API or API scope; a 400 names the first that does not. The gateway reads the mappings through
``gateway/parts/scopes.py``."""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import json_response, read_object, require_str, str_list
from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.oauth.clients import KIND as STRATEGY
from portico.oauth.config import AUTH_SERVER, LOCAL_ID, AuthServer, Scope, default_local
from portico.oauth.tokens import revoke_scope, scope_in_use
from portico.store import StoreTransaction
from portico.store.db import AssetRow

KIND = "scopeMapping"
FIELDS = ("id", "scopeName", "scopeDescription", "audience", "apiScopes", "requiredAuthScopes")


DEFAULT_KIND = "defaultScope"  # id = API id: what create_default_scope made for it, undone with the API


async def create_default_scope(tx: StoreTransaction, api_id: str, api_name: str, api_version: str) -> None:
    """``pg_oauth2_createDefaultScopes``: give a new API a scope of the local authorization server and a
    scope mapping from that scope to the whole API (in the API's own transaction). What was made is
    noted (kind ``defaultScope``), so that :func:`forget_api` removes that and nothing else."""
    from portico.admin.config_store import extended_setting

    if (await extended_setting(tx, "pg_oauth2_createDefaultScopes")).strip().lower() != "true":
        return
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{api_name}_{api_version}").strip("_") or api_id
    mappings = await tx.list(KIND)
    if await _local_scope_taken(tx, name, mappings) or await scope_in_use(tx.connection, name, LOCAL_ID):
        # another API's name normalises alike ("My API" and "My_API"), or a client was granted the
        # scope of a deleted API of this name, or a live grant of ``local`` still carries it (one
        # forget_api did not revoke because a client was granted the scope then, or one issued while
        # the API was being deleted): sharing it would let a token for one call the other. The first
        # keeps the plain name; this one gets its id's start.
        name = f"{name}_{api_id[:8]}"
    row = await tx.get("alias", LOCAL_ID)
    added = False
    if row is not None:
        local = AuthServer.model_validate(row.body)
        # even when local lists no scopes yet: a client can be granted only a scope it lists
        if all(s.name != name for s in local.scopes):
            local.scopes.append(Scope(name=name, description=f"Default scope of API {api_name} {api_version}"))
            await tx.update("alias", row.id, {**row.body, "scopes": [s.model_dump() for s in local.scopes]},
                            row.revision, name=row.body.get("name", LOCAL_ID))
            added = True
    mapping_name = name
    if any(r.body.get("scopeName") == mapping_name for r in mappings):
        mapping_name = f"{name}_{api_id[:8]}"
    scope_id = str(uuid.uuid4())
    await tx.insert(KIND, scope_id, {
        "id": scope_id, "scopeName": mapping_name, "scopeDescription": f"Default scope of API {api_name} {api_version}",
        "audience": "", "apiScopes": [api_id], "requiredAuthScopes": [{"authServerAlias": LOCAL_ID, "scopeName": name}],
    })
    await tx.upsert(DEFAULT_KIND, api_id, {"scopeName": name, "addedToLocal": added})


async def _local_scope_taken(tx: StoreTransaction, name: str, mappings: list[AssetRow]) -> bool:
    """A scope of ``local`` that a mapping requires, or that a client of ``local`` is granted."""
    if any(r.get("authServerAlias") == LOCAL_ID and r.get("scopeName") == name
           for m in mappings for r in m.body.get("requiredAuthScopes") or () if isinstance(r, dict)):
        return True
    for row in await tx.list(STRATEGY):
        if row.body.get("authServerAlias") != LOCAL_ID:
            continue
        granted = [*((row.body.get("dcrConfig") or {}).get("scopes") or ()),
                   *((row.body.get("clientRegistration") or {}).get("clScopes") or ())]
        if name in granted:
            return True
    return False


async def forget_api(tx: StoreTransaction, api_id: str) -> None:
    """A deleted API leaves every scope mapping; a mapping left with no API goes too.

    The scope :func:`create_default_scope` made for it is then free, unless a mapping (the user's,
    for other APIs) or a client of ``local`` still names it (a later API of that name then gets a
    scope of its own). A free name goes to the next API of the same name and version, so what was
    issued for it goes now, in this transaction: the local server's grants carrying it are revoked
    (access and refresh tokens, the ID tokens of those grants) and its pending codes dropped, as
    Kong drops an OAuth2 plugin's tokens with their service and Gravitee revokes a deleted API's
    keys; a grant that also carried other scopes is asked for again without this one. And the scope
    leaves ``local`` if :func:`create_default_scope` added it there; left, a new API of the same name
    would take it over, with whatever clients were granted it."""
    for row in await tx.list(KIND):
        refs = [r for r in row.body.get("apiScopes") or [] if r.partition(":")[0] != api_id]
        if len(refs) == len(row.body.get("apiScopes") or []):
            continue
        if refs:
            await tx.update(KIND, row.id, {**row.body, "apiScopes": refs}, row.revision)
        else:
            await tx.delete(KIND, row.id)
    made = await tx.get(DEFAULT_KIND, api_id)
    if made is None:
        return
    await tx.delete(DEFAULT_KIND, api_id)
    name = made.body.get("scopeName")
    if not isinstance(name, str) or await _local_scope_taken(tx, name, await tx.list(KIND)):
        return
    # Revoking, rather than only keeping the name taken while tokens carry it: a deleted API grants
    # nothing any more (what a user of the references expects), and the next API of that name gets
    # the plain name the user knows. Revoked in the API's own transaction, so each node's snapshot of
    # the deletion forgets its cached token lookups (OAuthRuntime.compile) after the revocation
    # committed; a token issued meanwhile on another connection (PostgreSQL) is what
    # create_default_scope's scope_in_use still catches.
    await revoke_scope(tx.connection, name, LOCAL_ID)
    if not made.body.get("addedToLocal"):
        return
    local = await tx.get("alias", LOCAL_ID)
    if local is None:
        return
    scopes = [s for s in local.body.get("scopes") or [] if not (isinstance(s, dict) and s.get("name") == name)]
    if len(scopes) != len(local.body.get("scopes") or []):
        await tx.update("alias", local.id, {**local.body, "scopes": scopes}, local.revision,
                        name=local.body.get("name", LOCAL_ID))


async def mapping_using(tx: StoreTransaction, server_name: str, scopes: set[str] | None = None) -> str | None:
    """A scope mapping that requires a scope of ``server_name`` (one of ``scopes``, when given), as
    ``'<mapping>' (scope '<scope>')``; None when no mapping does. An authorization server keeps its
    name and the scopes mappings require while they do."""
    for row in await tx.list(KIND):
        for required in row.body.get("requiredAuthScopes") or ():
            if not isinstance(required, dict) or required.get("authServerAlias") != server_name:
                continue
            scope = str(required.get("scopeName", ""))
            if scopes is None or scope in scopes:
                return f"{row.body.get('scopeName', row.id)!r} (scope {scope!r})"
    return None


async def mapping_using_api_scope(tx: StoreTransaction, api_id: str, names: set[str]) -> tuple[str, str] | None:
    """(mapping name, API scope name) of a mapping referring to one of ``names`` of API ``api_id``."""
    for row in await tx.list(KIND):
        for ref in row.body.get("apiScopes") or ():
            ref_api, sep, scope = str(ref).partition(":")
            if sep and ref_api == api_id and scope in names:
                return str(row.body.get("scopeName", row.id)), scope
    return None


def _not_found(scope_id: str) -> ApiError:
    return ApiError(404, f"scope mapping {scope_id!r} does not exist")


async def _servers(tx: StoreTransaction) -> dict[str, AuthServer]:
    servers = {r.body.get("name", r.id): AuthServer.model_validate(r.body)
               for r in await tx.list("alias") if r.body.get("type") == AUTH_SERVER}
    if not any(s.is_local for s in servers.values()):
        local = default_local()
        servers[local.name] = local
    return servers


async def _check_auth_scopes(tx: StoreTransaction, value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ApiError(400, "field 'requiredAuthScopes' must be a non-empty list of "
                            "{\"authServerAlias\", \"scopeName\"} objects")
    servers = await _servers(tx)
    out: list[dict[str, str]] = []
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ApiError(400, f"field 'requiredAuthScopes[{i}]' must be an object")
        server_name = require_str(entry, "authServerAlias")
        scope = require_str(entry, "scopeName").strip()
        server = servers.get(server_name)
        if server is None:
            raise ApiError(400, f"field 'requiredAuthScopes[{i}].authServerAlias': authorization server "
                                f"{server_name!r} does not exist")
        known = {s.name for s in server.scopes}
        if known and scope not in known:
            raise ApiError(400, f"field 'requiredAuthScopes[{i}].scopeName': {scope!r} is not a scope of "
                                f"{server_name!r} (scopes: {', '.join(sorted(known))})")
        out.append({"authServerAlias": server_name, "scopeName": scope})
    return out


def api_scope_names(api: dict[str, Any]) -> set[str]:
    return {s["name"] if isinstance(s, dict) else s for s in api.get("scopes") or ()
            if isinstance(s, str) or (isinstance(s, dict) and isinstance(s.get("name"), str))}


async def _check_api_scopes(tx: StoreTransaction, ids: list[str]) -> list[str]:
    if not ids:
        raise ApiError(400, "field 'apiScopes' must name at least one API or API scope")
    for i, ref in enumerate(ids):
        api_id, sep, scope = ref.partition(":")
        row = await tx.get("api", api_id)
        if row is None:
            raise ApiError(400, f"field 'apiScopes[{i}]': API {api_id!r} does not exist")
        if sep and scope not in api_scope_names(row.body):
            raise ApiError(400, f"field 'apiScopes[{i}]': API {api_id!r} has no API scope {scope!r}")
    return list(dict.fromkeys(ids))


async def _parse(tx: StoreTransaction, data: dict[str, Any], scope_id: str) -> dict[str, Any]:
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ApiError(400, f"invalid property key(s) {unknown}; expected {list(FIELDS)}")
    if data.get("id") not in (None, "", scope_id):
        raise ApiError(400, f"field 'id' must be {scope_id!r} (the id in the path) or absent")
    return {
        "id": scope_id,
        "scopeName": require_str(data, "scopeName").strip(),
        "scopeDescription": require_str(data, "scopeDescription", required=False),
        "audience": require_str(data, "audience", required=False).strip(),
        "apiScopes": await _check_api_scopes(tx, str_list(data, "apiScopes")),
        "requiredAuthScopes": await _check_auth_scopes(tx, data.get("requiredAuthScopes")),
    }


async def _check_name(tx: StoreTransaction, body: dict[str, Any]) -> None:
    for row in await tx.list(KIND):
        if row.id != body["id"] and row.body.get("scopeName") == body["scopeName"]:
            raise ApiError(400, f"a scope mapping named {body['scopeName']!r} already exists")


async def list_scopes(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        rows = await tx.list(KIND)
    return json_response({"scopes": [r.body for r in rows]})


async def get_scope(request: Request) -> Response:
    scope_id = request.path_params["oauthScopeId"]
    async with context_of(request).store.read() as tx:
        row = await tx.get(KIND, scope_id)
    if row is None:
        raise _not_found(scope_id)
    return json_response({"scope": row.body})


async def create_scope(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request, envelope="scope")
    given = data.get("id")
    scope_id = given if isinstance(given, str) and given else str(uuid.uuid4())
    async with ctx.store.transaction() as tx:
        if await tx.get(KIND, scope_id) is not None:
            raise ApiError(400, f"a scope mapping with id {scope_id!r} already exists")
        body = await _parse(tx, data, scope_id)
        await _check_name(tx, body)
        await tx.insert(KIND, scope_id, body, name=body["scopeName"])
    ctx.notify_change()
    return json_response({"scope": body}, status=201)


async def update_scope(request: Request) -> Response:
    ctx = context_of(request)
    scope_id = request.path_params["oauthScopeId"]
    data = await read_object(request, envelope="scope")
    async with ctx.store.transaction() as tx:
        row = await tx.get(KIND, scope_id)
        if row is None:
            raise _not_found(scope_id)
        body = await _parse(tx, data, scope_id)
        await _check_name(tx, body)
        await tx.update(KIND, scope_id, body, row.revision, name=body["scopeName"])
    ctx.notify_change()
    return json_response({"scope": body})


async def delete_scope(request: Request) -> Response:
    ctx = context_of(request)
    scope_id = request.path_params["oauthScopeId"]
    async with ctx.store.transaction() as tx:
        if not await tx.delete(KIND, scope_id):
            raise _not_found(scope_id)
    ctx.notify_change()
    return Response(status_code=204)


routes = [
    Route("/scopes", list_scopes, methods=["GET"]),
    Route("/scopes", create_scope, methods=["POST"]),
    Route("/scopes/{oauthScopeId}", get_scope, methods=["GET"]),
    Route("/scopes/{oauthScopeId}", update_scope, methods=["PUT"]),
    Route("/scopes/{oauthScopeId}", delete_scope, methods=["DELETE"]),
]
